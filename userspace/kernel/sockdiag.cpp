#include "kernel/sockdiag.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace fl::kernel {

namespace {

// Kernel TCP states (include/net/tcp_states.h); netinet/tcp.h spells them differently per libc.
enum : uint8_t {
  kEstablished = 1,
  kSynSent = 2,
  kSynRecv = 3,
  kFinWait1 = 4,
  kFinWait2 = 5,
  kTimeWait = 6,
  kClose = 7,
  kCloseWait = 8,
  kLastAck = 9,
  kListen = 10,
  kClosing = 11,
};

// The states in which a connection still has a peer that a reset would reach or a process that
// is waiting on it. TIME_WAIT has neither (and its minisockets cannot be destroyed); LISTEN is
// not a connection.
constexpr uint32_t kConnectedStates = (1u << kEstablished) | (1u << kSynSent) | (1u << kSynRecv) |
                                      (1u << kFinWait1) | (1u << kFinWait2) | (1u << kCloseWait) |
                                      (1u << kLastAck);

const char* state_name(uint8_t s) {
  switch (s) {
    case kEstablished: return "ESTABLISHED";
    case kSynSent: return "SYN_SENT";
    case kSynRecv: return "SYN_RECV";
    case kFinWait1: return "FIN_WAIT1";
    case kFinWait2: return "FIN_WAIT2";
    case kTimeWait: return "TIME_WAIT";
    case kClose: return "CLOSE";
    case kCloseWait: return "CLOSE_WAIT";
    case kLastAck: return "LAST_ACK";
    case kListen: return "LISTEN";
    case kClosing: return "CLOSING";
  }
  return "?";
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct DiagRequest {
  nlmsghdr nlh;
  inet_diag_req_v2 req;
};

// One socket as the dump gave it: the id (with its cookie) is what SOCK_DESTROY looks it up by.
struct Found {
  uint8_t family;  // AF_INET or AF_INET6, of the socket
  inet_diag_sockid id;
  TcpConn conn;
};

bool is_v4_mapped(const uint8_t* a) {
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kPrefix, sizeof kPrefix) == 0;
}

TcpConn conn_of(const inet_diag_msg& m) {
  TcpConn c;
  c.state = m.idiag_state;
  c.lport = ntohs(m.id.idiag_sport);
  c.rport = ntohs(m.id.idiag_dport);
  const auto* src = reinterpret_cast<const uint8_t*>(m.id.idiag_src);
  const auto* dst = reinterpret_cast<const uint8_t*>(m.id.idiag_dst);
  if (m.idiag_family == AF_INET) {
    c.family = 4;
    std::memcpy(c.local.data(), src, 4);
    std::memcpy(c.remote.data(), dst, 4);
  } else if (is_v4_mapped(src) && is_v4_mapped(dst)) {
    // On the wire this is IPv4, and that is what the data path (and so a fault) sees.
    c.family = 4;
    std::memcpy(c.local.data(), src + 12, 4);
    std::memcpy(c.remote.data(), dst + 12, 4);
  } else {
    c.family = 6;
    std::memcpy(c.local.data(), src, 16);
    std::memcpy(c.remote.data(), dst, 16);
  }
  return c;
}

Error errno_error(const std::string& what, int err) {
  if (err == EPERM || err == EACCES) {
    return Error{Errc::permission_denied, what + ": " + std::strerror(err) + " (needs CAP_NET_ADMIN)", err};
  }
  if (err == EOPNOTSUPP) {
    return Error{Errc::kernel_unsupported,
                 "this kernel cannot destroy sockets (needs CONFIG_INET_DIAG_DESTROY)", err};
  }
  return Error::sys(Errc::kernel_error, what, err);
}

Status send_request(int fd, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family,
                    uint32_t states, const inet_diag_sockid* id) {
  DiagRequest r{};
  r.nlh.nlmsg_len = sizeof r;
  r.nlh.nlmsg_type = type;
  r.nlh.nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
  r.nlh.nlmsg_seq = seq;
  r.req.sdiag_family = family;
  r.req.sdiag_protocol = IPPROTO_TCP;
  r.req.idiag_states = states;
  if (id != nullptr) r.req.id = *id;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t n = sendto(fd, &r, sizeof r, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel);
  if (n < 0) return Error::sys(Errc::kernel_error, "send sock_diag request", errno);
  return {};
}

// Reads replies to request `seq` until a dump ends or an acked request gets its ack,
// handing each inet_diag_msg to on_msg. Returns the request's errno (0 for success): a dump
// can end with an error, and an ack carries one.
Result<int> read_replies(int fd, uint32_t seq, const std::function<void(const inet_diag_msg&)>& on_msg) {
  alignas(nlmsghdr) static thread_local char buf[64 * 1024];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys(Errc::kernel_error, "read sock_diag reply", errno);
    }
    if (n == 0) return make_error(Errc::kernel_error, "read sock_diag reply: netlink socket closed");
    size_t len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;  // a late reply to an earlier request
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
          return make_error(Errc::kernel_error, "sock_diag: truncated netlink error");
        }
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return -e->error;
      }
      if (h->nlmsg_type == NLMSG_DONE) {
        int err = 0;
        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) std::memcpy(&err, NLMSG_DATA(h), sizeof err);
        return err < 0 ? -err : 0;
      }
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      on_msg(*static_cast<const inet_diag_msg*>(NLMSG_DATA(h)));
    }
  }
}

Result<Fd> open_diag() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    int e = errno;
    if (e == EPROTONOSUPPORT || e == EAFNOSUPPORT) {
      return Error{Errc::kernel_unsupported,
                   "this kernel has no socket diagnostics (needs CONFIG_SOCK_DIAG, CONFIG_INET_DIAG "
                   "and CONFIG_INET_TCP_DIAG)",
                   e};
    }
    return Error::sys(Errc::kernel_error, "open NETLINK_SOCK_DIAG socket", e);
  }
  return Fd(fd);
}

Result<std::vector<Found>> dump(int fd, uint32_t& seq) {
  std::vector<Found> out;
  for (uint8_t family : {static_cast<uint8_t>(AF_INET), static_cast<uint8_t>(AF_INET6)}) {
    const uint32_t s = ++seq;
    FL_TRY(send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, s, family, kConnectedStates, nullptr));
    auto r = read_replies(fd, s, [&](const inet_diag_msg& m) {
      // The kernel filters by state already; checked again so that a kernel which ignores part of
      // the mask can never make us destroy a listener.
      if (m.idiag_state >= 32 || !((1u << m.idiag_state) & kConnectedStates)) return;
      out.push_back(Found{m.idiag_family, m.id, conn_of(m)});
    });
    if (!r.ok()) return r.take_error();
    if (*r != 0) {
      // ENOENT: no handler for TCP (tcp_diag missing and not loadable).
      if (*r == ENOENT) {
        return Error{Errc::kernel_unsupported,
                     "this kernel cannot list TCP sockets (needs CONFIG_INET_TCP_DIAG)", *r};
      }
      return errno_error(std::string("dump TCP sockets (") + (family == AF_INET ? "IPv4" : "IPv6") + ")", *r);
    }
  }
  return out;
}

}  // namespace

std::string TcpConn::str() const {
  auto endpoint = [&](const std::array<uint8_t, 16>& a, uint16_t port) {
    char buf[INET6_ADDRSTRLEN] = "?";
    inet_ntop(family == 4 ? AF_INET : AF_INET6, a.data(), buf, sizeof buf);
    std::string host = family == 4 ? buf : "[" + std::string(buf) + "]";
    return host + ":" + std::to_string(port);
  };
  return endpoint(local, lport) + " -> " + endpoint(remote, rport) + " " + state_name(state);
}

Result<std::vector<TcpConn>> list_tcp() {
  auto fd = open_diag();
  if (!fd.ok()) return fd.take_error();
  uint32_t seq = 0;
  auto found = dump(fd->get(), seq);
  if (!found.ok()) return found.take_error();
  std::vector<TcpConn> out;
  out.reserve(found->size());
  for (const auto& f : *found) out.push_back(f.conn);
  return out;
}

Result<DestroyResult> destroy_tcp(const std::function<bool(const TcpConn&)>& match) {
  auto fd = open_diag();
  if (!fd.ok()) return fd.take_error();
  uint32_t seq = 0;
  // Dump first, destroy after: a dump in progress holds the socket's receive side, and the
  // destroys need replies of their own.
  auto found = dump(fd->get(), seq);
  if (!found.ok()) return found.take_error();
  DestroyResult res;
  for (const Found& f : *found) {
    if (!match(f.conn)) continue;
    ++res.matched;
    const uint32_t s = ++seq;
    auto progress = [&] {
      return " (" + std::to_string(res.destroyed) + " of " + std::to_string(res.matched - 1) +
             " matched connections destroyed before)";
    };
    auto st = send_request(fd->get(), SOCK_DESTROY, NLM_F_ACK, s, f.family, ~0u, &f.id);
    if (!st.ok()) return st.take_error().wrap("destroy " + f.conn.str() + progress());
    auto r = read_replies(fd->get(), s, [](const inet_diag_msg&) {});
    if (!r.ok()) return r.take_error().wrap("destroy " + f.conn.str() + progress());
    if (*r == 0) {
      ++res.destroyed;
    } else if (*r == ENOENT || *r == ESTALE) {
      // Closed since the dump, or its 4-tuple now belongs to a newer socket (cookie mismatch).
      ++res.gone;
    } else {
      Error e = errno_error("destroy " + f.conn.str(), *r);
      if (res.destroyed > 0) e.message += progress();
      return e;
    }
  }
  return res;
}

Status probe_sock_destroy() {
  auto fd = open_diag();
  if (!fd.ok()) return fd.take_error();
  // A destroy of a socket that cannot exist (all-zero 4-tuple, no cookie): the kernel checks
  // that TCP can destroy sockets before it looks the socket up, so ENOENT means it can and
  // EOPNOTSUPP that it cannot. Nothing is destroyed either way.
  inet_diag_sockid none{};
  none.idiag_cookie[0] = none.idiag_cookie[1] = ~0u;
  FL_TRY(send_request(fd->get(), SOCK_DESTROY, NLM_F_ACK, 1, AF_INET, ~0u, &none));
  auto r = read_replies(fd->get(), 1, [](const inet_diag_msg&) {});
  if (!r.ok()) return r.take_error();
  if (*r == 0 || *r == ENOENT) return {};
  return errno_error("probe SOCK_DESTROY", *r);
}

}  // namespace fl::kernel
