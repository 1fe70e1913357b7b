#include "kernel/rtnl.h"

#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

namespace fl::kernel {

Error rtnl_error(int err, const std::string& ext_ack) {
  Errc c = Errc::kernel_error;
  if (err == ENODEV) c = Errc::target_unavailable;
  if (err == EPERM || err == EACCES) c = Errc::permission_denied;
  std::string msg = std::strerror(err);
  if (!ext_ack.empty()) msg += " (kernel: " + ext_ack + ")";
  return Error{c, std::move(msg), err};
}

std::string ext_ack_text(const nlmsghdr* h) {
  if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return "";
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  // The TLVs follow the error and, unless the ack is capped, the whole request it answers.
  size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
  auto* base = reinterpret_cast<const char*>(h);
  while (off + NLA_HDRLEN <= h->nlmsg_len) {
    nlattr a;
    std::memcpy(&a, base + off, sizeof a);
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > h->nlmsg_len) break;
    if ((a.nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* s = base + off + NLA_HDRLEN;
      std::string text(s, strnlen(s, a.nla_len - NLA_HDRLEN));
      while (!text.empty() && (text.back() == '.' || text.back() == '\n')) text.pop_back();
      return text;
    }
    off += NLA_ALIGN(a.nla_len);
  }
  return "";
}

// ---- RtMsg ----

RtMsg::RtMsg(int type, int flags, const void* hdr, size_t hdr_len) : msg_(nlmsg_alloc_size(kMaxSize)) {
  if (!msg_) return;
  if (!nlmsg_put(msg_, NL_AUTO_PORT, NL_AUTO_SEQ, type, 0, flags) ||
      nlmsg_append(msg_, const_cast<void*>(hdr), hdr_len, NLMSG_ALIGNTO) < 0)
    ok_ = false;
}

RtMsg::RtMsg(RtMsg&& o) noexcept
    : msg_(std::exchange(o.msg_, nullptr)), ok_(o.ok_), nests_(std::move(o.nests_)) {}

RtMsg::~RtMsg() {
  if (msg_) nlmsg_free(msg_);
}

RtMsg& RtMsg::put(uint16_t type, const void* data, size_t len) {
  if (ok() && nla_put(msg_, type, static_cast<int>(len), data) < 0) ok_ = false;
  return *this;
}

RtMsg& RtMsg::put_string(uint16_t type, const std::string& s) { return put(type, s.c_str(), s.size() + 1); }

RtMsg& RtMsg::append(const void* data, size_t len) {
  if (ok() && nlmsg_append(msg_, const_cast<void*>(data), len, NLMSG_ALIGNTO) < 0) ok_ = false;
  return *this;
}

RtMsg& RtMsg::begin_nest(uint16_t type) {
  if (!ok()) return *this;
  nlattr* n = nla_nest_start(msg_, type);
  if (!n) ok_ = false;
  nests_.push_back(n);
  return *this;
}

RtMsg& RtMsg::end_nest() {
  if (nests_.empty()) {
    ok_ = false;  // a builder bug; talk() refuses the message
    return *this;
  }
  nlattr* n = nests_.back();
  nests_.pop_back();
  if (ok()) nla_nest_end(msg_, n);
  return *this;
}

// ---- Rtnl ----

Result<Rtnl> Rtnl::open() {
  nl_sock* sk = nl_socket_alloc();
  if (!sk) return make_error(Errc::internal, "nl_socket_alloc failed");
  int err = nl_connect(sk, NETLINK_ROUTE);
  if (err < 0) {
    nl_socket_free(sk);
    return make_error(Errc::kernel_error, std::string("rtnetlink socket: ") + nl_geterror(err));
  }
  nl_socket_disable_auto_ack(sk);  // talk() asks for acks itself, and never on dumps
  int one = 1, fd = nl_socket_get_fd(sk);
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  return Rtnl(sk);
}

Result<Rtnl> Rtnl::open_in(int netns_fd, const std::string& ns_name) {
  // The thread that enters the namespace ends right after: nothing else ever runs in there by
  // accident, and the caller's own namespace never changes.
  std::optional<Result<Rtnl>> out;
  std::thread t([&] {
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
      out.emplace(Error::sys(Errc::target_unavailable, "enter namespace " + ns_name, errno));
      return;
    }
    auto nl = open();
    if (!nl.ok()) {
      out.emplace(nl.take_error().wrap("in " + ns_name));
      return;
    }
    out.emplace(std::move(nl));
  });
  t.join();
  return std::move(*out);
}

Rtnl::Rtnl(Rtnl&& o) noexcept : sk_(std::exchange(o.sk_, nullptr)) {}

Rtnl::~Rtnl() {
  if (sk_) nl_socket_free(sk_);
}

Status Rtnl::talk(RtMsg& m, const std::function<void(nlmsghdr*)>& on_reply) {
  if (!m.ok()) return make_error(Errc::internal, "netlink message does not fit (or out of memory)");
  nlmsghdr* req = nlmsg_hdr(m.get());
  bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (!dump) req->nlmsg_flags |= NLM_F_ACK;
  int n = nl_send_auto(sk_, m.get());
  if (n < 0) return make_error(Errc::kernel_error, std::string("netlink send: ") + nl_geterror(n));
  uint32_t seq = req->nlmsg_seq;
  std::vector<char> buf(RtMsg::kMaxSize);
  int fd = nl_socket_get_fd(sk_);
  for (;;) {
    ssize_t len = recv(fd, buf.data(), buf.size(), MSG_TRUNC);
    if (len < 0) {
      if (errno == EINTR) continue;
      return Error::sys(Errc::kernel_error, "netlink receive", errno);
    }
    if (static_cast<size_t>(len) > buf.size())
      return make_error(Errc::internal, "netlink reply of " + std::to_string(len) + " bytes truncated");
    int left = static_cast<int>(len);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;  // a late answer to an earlier request
      if (h->nlmsg_type == NLMSG_DONE) {
        int err = 0;
        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof err)) std::memcpy(&err, NLMSG_DATA(h), sizeof err);
        if (err < 0) return rtnl_error(-err, "");
        return {};
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0) return {};
        return rtnl_error(-e->error, ext_ack_text(h));
      }
      if (on_reply) on_reply(h);
    }
  }
}

}  // namespace fl::kernel
