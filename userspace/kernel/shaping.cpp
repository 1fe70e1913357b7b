#include "kernel/shaping.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <spdlog/spdlog.h>

namespace fl::kernel {

namespace {

// Messages are built with libnl's nlmsg/nla calls, but TCA_OPTIONS payloads are plain bytes we
// assemble ourselves: restoring a saved qdisc has to send back exactly the bytes the kernel
// dumped, whatever the kind, and rtnl_qdisc has no way to carry raw options. Building our own
// kinds the same way keeps one path, and lets us use what libnl 3.7 lacks (netem's 64-bit
// latency and jitter).
//
// Replies are read by hand rather than with nl_wait_for_ack: libnl folds errno into its own
// codes and drops the kernel's extended ack, and "Specified qdisc kind is unknown." is the
// most useful thing the kernel says.

constexpr uint32_t kRootHandle = uint32_t{kHtbMajor} << 16;
constexpr uint32_t kPfifoLimit = 1000;  // the leaf of a rate-only class
constexpr uint32_t kIfbTxqlen = 1000;
constexpr uint64_t kPschedTickNs = 64;  // PSCHED_SHIFT 6: qdisc times are in 64 ns ticks

// psched_mtu() for Ethernet devices: MTU plus the 14-byte header, what a full frame costs HTB.
uint32_t frame_bytes(uint32_t mtu) { return mtu + 14; }

std::string hex_handle(uint32_t h) {
  char buf[24];
  if (TC_H_MIN(h) == 0)
    std::snprintf(buf, sizeof buf, "%x:", TC_H_MAJ(h) >> 16);
  else
    std::snprintf(buf, sizeof buf, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
  return buf;
}

std::string dev_name(int ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(ifindex), buf)) return buf;
  return "ifindex " + std::to_string(ifindex);
}

Error kernel_refused(int err, const std::string& ext) {
  Errc c = Errc::kernel_error;
  if (err == ENODEV) c = Errc::target_unavailable;
  if (err == EPERM || err == EACCES) c = Errc::permission_denied;
  std::string msg = std::strerror(err);
  if (!ext.empty()) msg += " (kernel: " + ext + ")";
  return Error{c, std::move(msg), err};
}

struct MsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using Msg = std::unique_ptr<nl_msg, MsgDeleter>;

// A netem distribution table alone is 8 KiB; libnl's default message size is one page.
constexpr size_t kMsgSize = 64 * 1024;

Msg new_msg(int type, int flags, const void* hdr, size_t hdr_len) {
  Msg m(nlmsg_alloc_size(kMsgSize));
  if (!m) return m;
  if (!nlmsg_put(m.get(), NL_AUTO_PORT, NL_AUTO_SEQ, type, 0, flags) ||
      nlmsg_append(m.get(), const_cast<void*>(hdr), hdr_len, NLMSG_ALIGNTO) < 0)
    m.reset();
  return m;
}

// Attributes as bytes, for TCA_OPTIONS payloads (see the top of this file).
class Attrs {
 public:
  void raw(const void* p, size_t n) {
    auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
    buf_.resize(NLA_ALIGN(buf_.size()), 0);
  }
  void put(uint16_t type, const void* p, size_t n) {
    nlattr h{static_cast<uint16_t>(NLA_HDRLEN + n), type};
    raw(&h, sizeof h);
    if (n) raw(p, n);
  }
  template <typename T>
  void put(uint16_t type, const T& v) {
    put(type, &v, sizeof v);
  }
  size_t open_nest(uint16_t type) {
    size_t at = buf_.size();
    put(type, nullptr, 0);
    return at;
  }
  void close_nest(size_t at) {
    auto len = static_cast<uint16_t>(buf_.size() - at);
    std::memcpy(&buf_[at], &len, sizeof len);
  }
  std::vector<uint8_t> take() { return std::move(buf_); }

 private:
  std::vector<uint8_t> buf_;
};

// One NETLINK_ROUTE socket with extended acks.
class Rtnl {
 public:
  static Result<Rtnl> open() {
    nl_sock* sk = nl_socket_alloc();
    if (!sk) return make_error(Errc::internal, "nl_socket_alloc failed");
    int err = nl_connect(sk, NETLINK_ROUTE);
    if (err < 0) {
      nl_socket_free(sk);
      return make_error(Errc::kernel_error, std::string("rtnetlink socket: ") + nl_geterror(err));
    }
    nl_socket_disable_auto_ack(sk);  // talk() asks for acks itself, and never on dumps
    int one = 1, fd = nl_socket_get_fd(sk);
    // Extended acks carry the kernel's reason; capped acks do not echo our 8 KiB tables back.
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    return Rtnl(sk);
  }
  Rtnl(Rtnl&& o) noexcept : sk_(std::exchange(o.sk_, nullptr)) {}
  Rtnl& operator=(Rtnl&&) = delete;
  ~Rtnl() {
    if (sk_) nl_socket_free(sk_);
  }

  // Sends m and reads until the kernel's ack, error or end of dump; every other message of ours
  // goes to on_reply.
  Status talk(nl_msg* m, const std::function<void(nlmsghdr*)>& on_reply = {}) {
    nlmsghdr* req = nlmsg_hdr(m);
    bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    if (!dump) req->nlmsg_flags |= NLM_F_ACK;
    int n = nl_send_auto(sk_, m);
    if (n < 0) return make_error(Errc::kernel_error, std::string("netlink send: ") + nl_geterror(n));
    uint32_t seq = req->nlmsg_seq;
    std::vector<char> buf(kMsgSize);
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
          if (err < 0) return kernel_refused(-err, "");
          return {};
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
          auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
          if (e->error == 0) return {};
          return kernel_refused(-e->error, ext_ack(h, e));
        }
        if (on_reply) on_reply(h);
      }
    }
  }

 private:
  explicit Rtnl(nl_sock* sk) : sk_(sk) {}

  static std::string ext_ack(nlmsghdr* h, nlmsgerr* e) {
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
    size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
    if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    if (off >= h->nlmsg_len) return "";
    auto* a = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(h) + off);
    int rem = static_cast<int>(h->nlmsg_len - off);
    for (; nla_ok(a, rem); a = nla_next(a, &rem)) {
      if (nla_type(a) != NLMSGERR_ATTR_MSG) continue;
      std::string s(static_cast<const char*>(nla_data(a)), strnlen(static_cast<const char*>(nla_data(a)), nla_len(a)));
      while (!s.empty() && (s.back() == '.' || s.back() == '\n')) s.pop_back();
      return s;
    }
    return "";
  }

  nl_sock* sk_ = nullptr;
};

// ---- qdiscs and classes as the kernel reports them ----

struct TcObject {
  int ifindex = 0;
  uint32_t handle = 0, parent = 0, info = 0;  // info: a filter's priority and protocol
  std::string kind;
  std::vector<uint8_t> options;
  bool stab = false;  // a size table (tc ... stab ...): the kernel dumps its base, never its cells
  std::string bpf_name;  // filters: the cls_bpf program's name
};

TcObject parse_tc(nlmsghdr* h) {
  TcObject o;
  auto* t = static_cast<tcmsg*>(nlmsg_data(h));
  o.ifindex = t->tcm_ifindex;
  o.handle = t->tcm_handle;
  o.parent = t->tcm_parent;
  o.info = t->tcm_info;
  nlattr* tb[TCA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0) return o;
  if (tb[TCA_KIND]) o.kind = nla_get_string(tb[TCA_KIND]);
  if (tb[TCA_OPTIONS]) {
    auto* p = static_cast<const uint8_t*>(nla_data(tb[TCA_OPTIONS]));
    o.options.assign(p, p + nla_len(tb[TCA_OPTIONS]));
    if (o.kind == "bpf") {
      nlattr* bt[TCA_BPF_MAX + 1] = {};
      if (nla_parse_nested(bt, TCA_BPF_MAX, tb[TCA_OPTIONS], nullptr) >= 0 && bt[TCA_BPF_NAME])
        o.bpf_name = nla_get_string(bt[TCA_BPF_NAME]);
    }
  }
  o.stab = tb[TCA_STAB] != nullptr;
  return o;
}

// The header of every tc message we send: one device, and where in its tree.
tcmsg tc_header(int ifindex, uint32_t parent = 0, uint32_t handle = 0, uint32_t info = 0) {
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = parent;
  t.tcm_handle = handle;
  t.tcm_info = info;
  return t;
}

// Qdiscs of one device. The kernel dumps every device's; we keep ifindex's.
Result<std::vector<TcObject>> dump_qdiscs(Rtnl& nl, int ifindex) {
  tcmsg t = tc_header(ifindex);
  Msg m = new_msg(RTM_GETQDISC, NLM_F_DUMP, &t, sizeof t);
  if (!m) return make_error(Errc::internal, "netlink message allocation failed");
  std::vector<TcObject> out;
  FL_TRY(nl.talk(m.get(), [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWQDISC) return;
    TcObject o = parse_tc(h);
    if (o.ifindex == ifindex) out.push_back(std::move(o));
  }));
  return out;
}

Result<SavedQdisc> root_qdisc(Rtnl& nl, int ifindex) {
  auto all = dump_qdiscs(nl, ifindex);
  if (!all.ok()) return all.take_error();
  SavedQdisc q;
  q.kind = "noqueue";  // a device the kernel reports nothing for (noop while down) queues nothing
  for (auto& o : *all) {
    if (o.parent != TC_H_ROOT) continue;
    q.kind = o.kind;
    q.handle = o.handle;
    q.options = std::move(o.options);
    q.stab = o.stab;
    q.ours = q.kind == "htb" && TC_H_MAJ(q.handle) == kRootHandle;
    break;
  }
  return q;
}

// overhead != 0 adds a size table without cells: every packet is accounted as its length plus
// overhead (the kernel's qdisc_calculate_pkt_len), which is how our root leaves the link-layer
// header out of rates.
Status put_qdisc(Rtnl& nl, int ifindex, uint32_t parent, uint32_t handle, const std::string& kind,
                 const std::vector<uint8_t>& options, int flags, int overhead = 0) {
  tcmsg t = tc_header(ifindex, parent, handle);
  Msg m = new_msg(RTM_NEWQDISC, flags, &t, sizeof t);
  if (!m || nla_put_string(m.get(), TCA_KIND, kind.c_str()) < 0 ||
      (!options.empty() && nla_put(m.get(), TCA_OPTIONS, static_cast<int>(options.size()), options.data()) < 0))
    return make_error(Errc::internal, "netlink message for " + kind + " does not fit");
  if (overhead != 0) {
    tc_sizespec sz{};
    sz.overhead = overhead;
    sz.linklayer = TC_LINKLAYER_ETHERNET;
    nlattr* stab = nla_nest_start(m.get(), TCA_STAB);
    if (!stab || nla_put(m.get(), TCA_STAB_BASE, sizeof sz, &sz) < 0)
      return make_error(Errc::internal, "netlink message for " + kind + " does not fit");
    nla_nest_end(m.get(), stab);
  }
  return nl.talk(m.get());
}

Status del_tc(Rtnl& nl, int type, int ifindex, uint32_t parent, uint32_t handle) {
  tcmsg t = tc_header(ifindex, parent, handle);
  Msg m = new_msg(type, 0, &t, sizeof t);
  if (!m) return make_error(Errc::internal, "netlink message allocation failed");
  return nl.talk(m.get());
}

constexpr uint32_t kClsactIngress = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
uint32_t mirred_info() { return TC_H_MAKE(uint32_t{kMirredPriority} << 16, htons(ETH_P_ALL)); }

}  // namespace

Status attach_ifb_mirred(int ifindex, int prog_fd, int ifb_ifindex) {
  std::string dev = dev_name(ifindex);
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  tcmsg t = tc_header(ifindex, kClsactIngress, kMirredHandle, mirred_info());
  // REPLACE: a leftover of a killed instance (same handle and priority) is taken over.
  Msg m = new_msg(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE, &t, sizeof t);
  bool ok = m && nla_put_string(m.get(), TCA_KIND, "bpf") >= 0;
  nlattr* opts = ok ? nla_nest_start(m.get(), TCA_OPTIONS) : nullptr;
  ok = opts && nla_put_u32(m.get(), TCA_BPF_FD, static_cast<uint32_t>(prog_fd)) >= 0 &&
       nla_put_string(m.get(), TCA_BPF_NAME, "fl_ifb_match") >= 0 &&
       nla_put_u32(m.get(), TCA_BPF_FLAGS, 0) >= 0;  // classic mode: the actions run
  nlattr* acts = ok ? nla_nest_start(m.get(), TCA_BPF_ACT) : nullptr;
  nlattr* act = acts ? nla_nest_start(m.get(), 1) : nullptr;
  ok = act && nla_put_string(m.get(), TCA_ACT_KIND, "mirred") >= 0;
  nlattr* aopts = ok ? nla_nest_start(m.get(), TCA_ACT_OPTIONS) : nullptr;
  tc_mirred parms{};
  parms.action = TC_ACT_STOLEN;
  parms.eaction = TCA_EGRESS_REDIR;
  parms.ifindex = static_cast<uint32_t>(ifb_ifindex);
  ok = aopts && nla_put(m.get(), TCA_MIRRED_PARMS, sizeof parms, &parms) >= 0;
  if (!ok) return make_error(Errc::internal, "netlink message for the ifb filter does not fit");
  nla_nest_end(m.get(), aopts);
  nla_nest_end(m.get(), act);
  nla_nest_end(m.get(), acts);
  nla_nest_end(m.get(), opts);
  FL_TRY_CTX(nl->talk(m.get()), "add ifb redirect filter (mirred) on " + dev + " ingress");
  return {};
}

Status detach_ifb_mirred(int ifindex) {
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  // Ours only: priority 2, handle 0xfa18, a cls_bpf filter running fl_ifb_match.
  tcmsg q = tc_header(ifindex, kClsactIngress);
  Msg dump = new_msg(RTM_GETTFILTER, NLM_F_DUMP, &q, sizeof q);
  if (!dump) return make_error(Errc::internal, "netlink message allocation failed");
  bool ours = false, foreign = false;
  auto listed = nl->talk(dump.get(), [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWTFILTER) return;
    TcObject o = parse_tc(h);
    if (o.handle != kMirredHandle || TC_H_MAJ(o.info) >> 16 != kMirredPriority) return;
    (o.kind == "bpf" && o.bpf_name.rfind("fl_ifb_match", 0) == 0 ? ours : foreign) = true;
  });
  if (!listed.ok()) {
    int e = listed.error().sys_errno;
    // No device, no clsact: no filter of ours either.
    if (e == ENOENT || e == EINVAL || e == ENODEV) return {};
    return listed.take_error().wrap("list ingress filters of " + dev_name(ifindex));
  }
  if (foreign) spdlog::warn("{}: a filter at priority 2 handle 0xfa18 is not faultline's; left alone", dev_name(ifindex));
  if (!ours) return {};
  tcmsg t = tc_header(ifindex, kClsactIngress, kMirredHandle, mirred_info());
  Msg m = new_msg(RTM_DELTFILTER, 0, &t, sizeof t);
  if (!m) return make_error(Errc::internal, "netlink message allocation failed");
  auto st = nl->talk(m.get());
  // Gone already (with its device or its clsact): what we wanted.
  if (!st.ok() && (st.error().sys_errno == ENOENT || st.error().sys_errno == EINVAL ||
                   st.error().sys_errno == ENODEV))
    return {};
  return st.ok() ? Status{} : st.take_error().wrap("delete ifb redirect filter on " + dev_name(ifindex));
}

namespace {

Status put_class(Rtnl& nl, int ifindex, uint16_t minor, const std::vector<uint8_t>& options) {
  // parent X:0, the root qdisc: a root class that borrows from nobody
  tcmsg t = tc_header(ifindex, kRootHandle, class_id(minor));
  // CREATE without EXCL also updates an existing class: the tree under 0xfa17: is ours alone and
  // the engine's slot allocator is the only owner of minors, so a class already there is a
  // leftover of ours (a daemon killed mid-apply) and re-applying over it must succeed.
  Msg m = new_msg(RTM_NEWTCLASS, NLM_F_CREATE, &t, sizeof t);
  if (!m || nla_put_string(m.get(), TCA_KIND, "htb") < 0 ||
      nla_put(m.get(), TCA_OPTIONS, static_cast<int>(options.size()), options.data()) < 0)
    return make_error(Errc::internal, "netlink message for htb class does not fit");
  return nl.talk(m.get());
}

// ---- links ----

struct LinkInfo {
  int index = 0;
  unsigned flags = 0;
  uint32_t mtu = 1500, txqlen = 0;
  std::string kind;  // IFLA_INFO_KIND; empty for devices without one (lo, physical NICs)
};

// By index, or by name when ifindex is 0. nullopt when there is no such device.
Result<std::optional<LinkInfo>> get_link(Rtnl& nl, int ifindex, const std::string& name = "") {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  Msg m = new_msg(RTM_GETLINK, 0, &ifi, sizeof ifi);
  if (!m || (!name.empty() && nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) < 0))
    return make_error(Errc::internal, "netlink message allocation failed");
  std::optional<LinkInfo> info;
  auto st = nl.talk(m.get(), [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK) return;
    LinkInfo l;
    auto* i = static_cast<ifinfomsg*>(nlmsg_data(h));
    l.index = i->ifi_index;
    l.flags = i->ifi_flags;
    nlattr* tb[IFLA_MAX + 1] = {};
    if (nlmsg_parse(h, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) return;
    if (tb[IFLA_MTU]) l.mtu = nla_get_u32(tb[IFLA_MTU]);
    if (tb[IFLA_TXQLEN]) l.txqlen = nla_get_u32(tb[IFLA_TXQLEN]);
    if (tb[IFLA_LINKINFO]) {
      nlattr* li[IFLA_INFO_MAX + 1] = {};
      if (nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) == 0 && li[IFLA_INFO_KIND])
        l.kind = nla_get_string(li[IFLA_INFO_KIND]);
    }
    info = l;
  });
  if (!st.ok()) {
    if (st.error().sys_errno == ENODEV) return std::optional<LinkInfo>{};
    return st.take_error();
  }
  return info;
}

Result<LinkInfo> must_get_link(Rtnl& nl, int ifindex) {
  auto l = get_link(nl, ifindex);
  if (!l.ok()) return l.take_error();
  if (!*l)
    return make_error(Errc::target_unavailable,
                      "no interface with ifindex " + std::to_string(ifindex) + " in this network namespace");
  return **l;
}

Status set_up(Rtnl& nl, int ifindex) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  Msg m = new_msg(RTM_NEWLINK, 0, &ifi, sizeof ifi);
  if (!m) return make_error(Errc::internal, "netlink message allocation failed");
  return nl.talk(m.get());
}

Status add_ifb(Rtnl& nl, const std::string& name) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;  // applied as the link is registered: no window where it is down
  ifi.ifi_change = IFF_UP;
  Msg m = new_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  if (!m || nla_put_string(m.get(), IFLA_IFNAME, name.c_str()) < 0 ||
      nla_put_u32(m.get(), IFLA_TXQLEN, kIfbTxqlen) < 0)
    return make_error(Errc::internal, "netlink message allocation failed");
  nlattr* info = nla_nest_start(m.get(), IFLA_LINKINFO);
  if (!info || nla_put_string(m.get(), IFLA_INFO_KIND, "ifb") < 0)
    return make_error(Errc::internal, "netlink message allocation failed");
  nla_nest_end(m.get(), info);
  return nl.talk(m.get());
}

// ---- options of our qdiscs and classes ----

// Time to send `bytes` at bytes_per_s, in psched ticks, as HTB and TBF take their buffers.
uint32_t xmit_ticks(uint64_t bytes, uint64_t bytes_per_s) {
  if (bytes_per_s == 0) return 0;
  long double ns = static_cast<long double>(bytes) * 1e9L / static_cast<long double>(bytes_per_s);
  long double ticks = std::ceil(ns / kPschedTickNs);
  return ticks >= 4294967295.0L ? UINT32_MAX : static_cast<uint32_t>(ticks);
}

tc_ratespec ratespec(uint64_t bytes_per_s) {
  tc_ratespec r{};
  // Ethernet link layer: the kernel computes times from the rate itself and wants no rate table.
  r.linklayer = TC_LINKLAYER_ETHERNET;
  r.rate = bytes_per_s >= (uint64_t{1} << 32) ? UINT32_MAX : static_cast<uint32_t>(bytes_per_s);
  return r;
}

std::vector<uint8_t> htb_root_options() {
  tc_htb_glob g{};
  g.version = 3;
  g.rate2quantum = 10;
  g.defcls = kDefaultMinor;
  Attrs a;
  a.put(TCA_HTB_INIT, g);
  return a.take();
}

std::vector<uint8_t> htb_class_options(uint64_t rate_bps, uint32_t burst_bytes, uint32_t quantum) {
  uint64_t bps = rate_bps / 8;
  tc_htb_opt o{};
  o.rate = o.ceil = ratespec(bps);
  o.buffer = o.cbuffer = xmit_ticks(burst_bytes, bps);
  o.quantum = quantum;  // explicit, so HTB does not derive one and warn that it is small or big
  Attrs a;
  a.put(TCA_HTB_PARMS, o);
  if (bps >= (uint64_t{1} << 32)) {
    a.put(TCA_HTB_RATE64, bps);
    a.put(TCA_HTB_CEIL64, bps);
  }
  return a.take();
}

// Unshaped: 1 ms worth of the huge rate, so its bucket can never run dry.
std::vector<uint8_t> unshaped_class_options() {
  return htb_class_options(kUnshapedRateBps, static_cast<uint32_t>(kUnshapedRateBps / 8 / 1000), 200'000);
}

// Burst of a shaped class when the profile gives none: the larger of two full frames and 10 ms
// at the rate. Two frames keep a slow class from stalling on every packet; 10 ms is the
// classic tc default (rate/HZ with HZ=100) and lets the bucket absorb timer slack, so a TCP
// flow lands within a few percent of the rate (its goodput sits about 4.5% under it, which is
// the TCP/IP/Ethernet header share of a 1514-byte frame, not shaping error). Larger bursts buy
// no accuracy and send longer line-rate bursts past the "link".
uint32_t derived_burst(uint64_t rate_bps, uint32_t mtu) {
  uint64_t ten_ms = rate_bps / 8 / 100;
  return static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(2ull * frame_bytes(mtu), ten_ms), UINT32_MAX));
}

std::vector<uint8_t> fifo_options(uint32_t limit) {
  tc_fifo_qopt f{};
  f.limit = limit;
  std::vector<uint8_t> v(sizeof f);
  std::memcpy(v.data(), &f, sizeof f);
  return v;
}

uint32_t probability(double percent) {
  if (percent <= 0) return 0;
  if (percent >= 100) return UINT32_MAX;
  return static_cast<uint32_t>(std::llround(percent / 100.0 * 4294967295.0));
}

uint32_t ticks_of(std::chrono::microseconds d) {
  uint64_t t = static_cast<uint64_t>(d.count()) * 1000 / kPschedTickNs;
  return t > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(t);
}

// netem's TCA_OPTIONS: struct tc_netem_qopt, then attributes (not a nest). Loss stays 0: the BPF
// program drops before the qdisc, so loss works without netem and is counted by us.
//
// Reordering, as sch_netem does it: with gap 0 it never reorders. With gap N it delays N-1
// packets normally, then sends the next one at once (to the head of the queue) with the reorder
// probability, else delays it too and tries again on the next. "reorder P%" without a gap is
// therefore gap 1: every packet skips the delay with probability P (what tc does too). The
// reordered packets are the ones sent early, so reordering needs a delay to be visible.
std::vector<uint8_t> netem_options(const core::ShapeProfile& p) {
  tc_netem_qopt q{};
  q.latency = ticks_of(p.delay);  // the 64-bit attributes below win on kernels that know them
  q.jitter = ticks_of(p.jitter);
  q.limit = kNetemLimit;
  q.duplicate = probability(p.duplicate_percent);
  if (p.reorder_percent > 0) q.gap = std::max<uint32_t>(1, p.reorder_gap);
  Attrs a;
  a.raw(&q, sizeof q);
  a.put(TCA_NETEM_LATENCY64, static_cast<int64_t>(p.delay.count()) * 1000);
  a.put(TCA_NETEM_JITTER64, static_cast<int64_t>(p.jitter.count()) * 1000);
  if (p.delay_correlation > 0) {
    tc_netem_corr c{};
    c.delay_corr = probability(p.delay_correlation);
    a.put(TCA_NETEM_CORR, c);
  }
  if (p.reorder_percent > 0) {
    tc_netem_reorder r{};
    r.probability = probability(p.reorder_percent);
    a.put(TCA_NETEM_REORDER, r);
  }
  if (p.corrupt_percent > 0) {
    tc_netem_corrupt c{};
    c.probability = probability(p.corrupt_percent);
    a.put(TCA_NETEM_CORRUPT, c);
  }
  if (p.distribution != core::Distribution::uniform) {
    auto table = distribution_table(p.distribution);
    a.put(TCA_NETEM_DELAY_DIST, table.data(), table.size() * sizeof(int16_t));
  }
  return a.take();
}

bool same_qdisc(const SavedQdisc& now, const SavedQdisc& want) {
  if (now.kind != want.kind) return false;
  if (want.handle != 0 && now.handle != want.handle) return false;  // 0: the kernel picks one
  if (!want.options.empty() && now.options != want.options) return false;
  return true;
}

std::string describe(const SavedQdisc& q) { return q.kind + " (handle " + hex_handle(q.handle) + ")"; }

// ---- fq_codel defaults ----

// fq_codel as the kernel attaches it (default_qdisc=fq_codel), or as `tc qdisc add ... fq_codel`
// without parameters makes it: nothing to lose by replacing it. Attributes not checked here
// (and ones newer kernels add) are ignored as long as those we know are at their defaults.
std::string fq_codel_non_default(const std::vector<uint8_t>& opts, uint32_t mtu) {
  nlattr* tb[TCA_FQ_CODEL_MAX + 1] = {};
  if (nla_parse(tb, TCA_FQ_CODEL_MAX, reinterpret_cast<nlattr*>(const_cast<uint8_t*>(opts.data())),
                static_cast<int>(opts.size()), nullptr) < 0)
    return "options unreadable";
  auto u32_is = [&](int type, const char* name, std::initializer_list<uint64_t> ok) -> std::string {
    if (!tb[type]) return "";
    if (nla_len(tb[type]) < 4) return std::string(name) + " unreadable";
    uint32_t v = nla_get_u32(tb[type]);
    for (uint64_t o : ok)
      if (v == o) return "";
    return std::string(name) + " " + std::to_string(v);
  };
  // codel keeps times in 1024 ns units, so 5 ms and 100 ms dump as 4999 and 99999 us.
  for (auto s : {u32_is(TCA_FQ_CODEL_LIMIT, "limit", {10240}),
                 u32_is(TCA_FQ_CODEL_FLOWS, "flows", {1024}),
                 u32_is(TCA_FQ_CODEL_TARGET, "target(us)", {4999, 5000}),
                 u32_is(TCA_FQ_CODEL_INTERVAL, "interval(us)", {99999, 100000}),
                 u32_is(TCA_FQ_CODEL_ECN, "ecn", {1}),
                 u32_is(TCA_FQ_CODEL_QUANTUM, "quantum", {mtu, frame_bytes(mtu)}),
                 u32_is(TCA_FQ_CODEL_MEMORY_LIMIT, "memory_limit", {32u << 20}),
                 u32_is(TCA_FQ_CODEL_DROP_BATCH_SIZE, "drop_batch", {64})})
    if (!s.empty()) return s;
  if (tb[TCA_FQ_CODEL_CE_THRESHOLD]) return "ce_threshold set";
  return "";
}

// ---- distribution tables ----

constexpr size_t kDistSize = 4096;
constexpr double kDistScale = NETEM_DIST_SCALE;
constexpr double kDistLo = -32768.0 / kDistScale, kDistHi = 32767.0 / kDistScale;

double normal_quantile(double p) {
  // Bisection on the CDF through erfc: slow by numeric standards (about 60 steps) but exact to
  // double precision and branch-free of magic constants; 4096 of them take well under 10 ms.
  double lo = -40, hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-12; i++) {
    double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p)
      lo = mid;
    else
      hi = mid;
  }
  return (lo + hi) / 2;
}

// Pareto with scale 1 and shape 3 (mean 3/2, variance 3/4), standardized.
double pareto_quantile(double p) {
  constexpr double a = 3;
  double x = std::pow(1 - p, -1 / a);
  return (x - 1.5) / std::sqrt(0.75);
}

// Samples to table: standardize to mean 0 and standard deviation 1, clamp to what an int16
// holds at NETEM_DIST_SCALE (about +-4 sigma), and repeat, since clamping Pareto's long tail
// takes variance away that the next pass puts back. A few passes settle it.
std::vector<int16_t> to_table(std::vector<double> z) {
  for (int pass = 0; pass < 50; pass++) {
    double mean = 0, var = 0;
    for (double v : z) mean += v;
    mean /= static_cast<double>(z.size());
    for (double v : z) var += (v - mean) * (v - mean);
    double sd = std::sqrt(var / static_cast<double>(z.size()));
    if (std::abs(mean) < 1e-9 && std::abs(sd - 1) < 1e-9) break;
    for (double& v : z) v = std::clamp((v - mean) / sd, kDistLo, kDistHi);
  }
  std::sort(z.begin(), z.end());
  std::vector<int16_t> t(z.size());
  for (size_t i = 0; i < z.size(); i++)
    t[i] = static_cast<int16_t>(std::clamp(std::lround(z[i] * kDistScale), -32768L, 32767L));
  return t;
}

}  // namespace

// ---------------------------------------------------------------- public

nlohmann::json SavedQdisc::to_json() const {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  hex.reserve(options.size() * 2);
  for (uint8_t b : options) {
    hex.push_back(digits[b >> 4]);
    hex.push_back(digits[b & 15]);
  }
  return {{"kind", kind}, {"handle", handle}, {"options", hex}, {"ours", ours}, {"stab", stab}};
}

Result<SavedQdisc> SavedQdisc::from_json(const nlohmann::json& j) {
  auto bad = [](const std::string& what) { return make_error(Errc::invalid_argument, "saved qdisc: " + what); };
  if (!j.is_object()) return bad("not an object");
  SavedQdisc q;
  if (!j.contains("kind") || !j["kind"].is_string() || j["kind"].get<std::string>().empty())
    return bad("kind missing or not a string");
  q.kind = j["kind"].get<std::string>();
  if (!j.contains("handle") || !j["handle"].is_number_unsigned() || j["handle"].get<uint64_t>() > UINT32_MAX)
    return bad("handle missing or not a 32-bit unsigned number");
  q.handle = j["handle"].get<uint32_t>();
  if (j.contains("options")) {
    if (!j["options"].is_string()) return bad("options not a string");
    const auto& hex = j["options"].get_ref<const std::string&>();
    if (hex.size() % 2) return bad("options: odd number of hex digits");
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (size_t i = 0; i < hex.size(); i += 2) {
      int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
      if (hi < 0 || lo < 0) return bad("options: not hex");
      q.options.push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
  }
  if (j.contains("stab")) {
    if (!j["stab"].is_boolean()) return bad("stab not a boolean");
    q.stab = j["stab"].get<bool>();
  }
  if (j.contains("ours")) {
    if (!j["ours"].is_boolean()) return bad("ours not a boolean");
    q.ours = j["ours"].get<bool>();
  }
  return q;
}

Result<SavedQdisc> read_root_qdisc(int ifindex) {
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto q = root_qdisc(*nl, ifindex);
  if (!q.ok()) return q.take_error().wrap("read root qdisc of " + dev_name(ifindex));
  return q;
}

Status check_replaceable(const SavedQdisc& q, int ifindex, const std::string& ifname, bool replace_root) {
  if (replace_root || q.ours) return {};
  // The kernel dumps a size table's base but never its cells, so it cannot be put back exactly.
  if (q.stab)
    return make_error(Errc::already_exists,
                      ifname + " has root qdisc " + q.kind + " (handle " + hex_handle(q.handle) +
                          ") with a size table (stab) configured by someone else; faultline would replace "
                          "it. Pass --replace-root to replace it for the fault's duration (its kind and "
                          "parameters are restored afterwards; its size table, classes, filters and child "
                          "qdiscs are not)");
  if (q.kind == "noqueue" || q.kind == "pfifo_fast") return {};
  // mq only fans out to one child per tx queue; the children are the kernel's defaults unless
  // someone grafted their own, which we accept as-is rather than walk and compare.
  if (q.kind == "mq") return {};
  std::string why;
  if (q.kind == "fq_codel") {
    auto nl = Rtnl::open();
    if (!nl.ok()) return nl.take_error();
    auto link = must_get_link(*nl, ifindex);
    if (!link.ok()) return link.take_error().wrap("check root qdisc of " + ifname);
    why = fq_codel_non_default(q.options, link->mtu);
    if (why.empty()) return {};
    why = " with non-default parameters (" + why + ")";
  }
  return make_error(Errc::already_exists,
                    ifname + " has root qdisc " + q.kind + " (handle " + hex_handle(q.handle) + ")" + why +
                        " configured by someone else; faultline would replace it. Pass --replace-root to "
                        "replace it for the fault's duration (its kind and parameters are restored "
                        "afterwards; its classes, filters and child qdiscs are not)");
}

constexpr int kEthHeaderLen = 14;

Status install_root(int ifindex) {
  std::string dev = dev_name(ifindex);
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto link = must_get_link(*nl, ifindex);
  if (!link.ok()) return link.take_error().wrap("install root htb on " + dev);
  auto cur = root_qdisc(*nl, ifindex);
  if (!cur.ok()) return cur.take_error().wrap("install root htb on " + dev);
  if (!cur->ours) {
    // CREATE|REPLACE with our own handle grafts a new root over whatever is there (noqueue,
    // pfifo_fast, mq, fq_codel or a user's qdisc the caller agreed to replace) in one step.
    // Rates count IP packets, not Ethernet frames: the size table takes the 14-byte header off
    // every packet. HTB alone counts frames (as tc does), which caps a bulk TCP transfer at
    // 1448/1514 = 95.6 % of the rate; without the header it gets 96.5 % or more (one set of
    // headers per GSO batch), which is what "rate 10mbit" means to whoever asks for it.
    FL_TRY_CTX(put_qdisc(*nl, ifindex, TC_H_ROOT, kRootHandle, "htb", htb_root_options(),
                         NLM_F_CREATE | NLM_F_REPLACE, -kEthHeaderLen),
               "add root htb " + hex_handle(kRootHandle) + " on " + dev);
  }
  // Also when ours is there already: a daemon killed mid-install may have left it without these.
  FL_TRY_CTX(put_class(*nl, ifindex, kDefaultMinor, unshaped_class_options()),
             "add htb class " + hex_handle(class_id(kDefaultMinor)) + " on " + dev);
  FL_TRY_CTX(put_qdisc(*nl, ifindex, class_id(kDefaultMinor), leaf_handle(kDefaultMinor), "pfifo",
                       fifo_options(std::max(link->txqlen, kPfifoLimit)), NLM_F_CREATE | NLM_F_REPLACE),
             "add pfifo leaf of " + hex_handle(class_id(kDefaultMinor)) + " on " + dev);
  return {};
}

Status restore_root(int ifindex, const SavedQdisc& saved) {
  std::string dev = dev_name(ifindex);
  std::string ctx = "restore root qdisc " + saved.kind + " on " + dev;
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto cur = root_qdisc(*nl, ifindex);
  if (!cur.ok()) return cur.take_error().wrap(ctx);
  if (!cur->ours) {
    if (same_qdisc(*cur, saved) || saved.ours) return {};  // restored already
    return make_error(Errc::already_exists, ctx + ": the root is now " + describe(*cur) +
                                                ", not ours; someone replaced it, so it is left in place");
  }
  // What the kernel attaches by itself when a root is deleted: noqueue (IFF_NO_QUEUE devices
  // such as veth), mq (multiqueue) or default_qdisc. A saved handle of 0 means the kernel had
  // attached it. Deleting ours lets it do that again, exactly as it would have.
  bool kernel_default = saved.ours || saved.handle == 0 || saved.kind == "noqueue" ||
                        saved.kind == "pfifo_fast" || saved.kind == "mq";
  if (kernel_default) {
    auto st = del_tc(*nl, RTM_DELQDISC, ifindex, TC_H_ROOT, kRootHandle);
    if (!st.ok() && st.error().sys_errno != ENOENT) return st.take_error().wrap(ctx + ": delete root htb");
    auto now = root_qdisc(*nl, ifindex);
    if (!now.ok()) return now.take_error().wrap(ctx);
    // saved.ours: the original is unknown (a leftover of a killed daemon); the default will do.
    if (saved.ours || same_qdisc(*now, saved)) return {};
    spdlog::info("{}: the kernel attached {} instead; adding {} back explicitly", ctx, describe(*now),
                 describe(saved));
  }
  // Same handle, kind and options as dumped. REPLACE grafts it over ours (or over the default
  // the kernel just attached), and our classes and leaves go with the old root.
  FL_TRY_CTX(put_qdisc(*nl, ifindex, TC_H_ROOT, saved.handle, saved.kind, saved.options,
                       NLM_F_CREATE | NLM_F_REPLACE),
             ctx);
  auto now = root_qdisc(*nl, ifindex);
  if (!now.ok()) return now.take_error().wrap(ctx);
  if (!same_qdisc(*now, saved))
    return make_error(Errc::kernel_error, ctx + ": it reads back as " + describe(*now) +
                                              (now->kind == saved.kind ? " with different parameters" : ""));
  return {};
}

Status add_class(int ifindex, uint16_t minor, const core::ShapeProfile& p) {
  std::string dev = dev_name(ifindex);
  std::string cls = hex_handle(class_id(minor));
  if (minor < kFirstSlotMinor || minor >= kHtbMajor)
    return make_error(Errc::internal, "htb class minor " + std::to_string(minor) + " out of range");
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto link = must_get_link(*nl, ifindex);
  if (!link.ok()) return link.take_error().wrap("add htb class " + cls);

  uint64_t rate = p.rate_bps ? p.rate_bps : kUnshapedRateBps;
  std::vector<uint8_t> opts;
  if (p.rate_bps) {
    uint32_t burst = p.burst_bytes ? p.burst_bytes : derived_burst(rate, link->mtu);
    uint32_t quantum = static_cast<uint32_t>(std::clamp<uint64_t>(rate / 8 / 10, frame_bytes(link->mtu), 200'000));
    opts = htb_class_options(rate, burst, quantum);
  } else {
    opts = unshaped_class_options();
  }
  FL_TRY_CTX(put_class(*nl, ifindex, minor, opts), "add htb class " + cls + " on " + dev);

  bool netem = p.needs_netem();
  std::string kind = netem ? "netem" : "pfifo";
  // A leftover leaf of ours with the other kind cannot be changed in place (same handle,
  // different kind is EINVAL): delete it, and HTB puts its default pfifo there meanwhile.
  Status st;
  auto qdiscs = dump_qdiscs(*nl, ifindex);
  if (!qdiscs.ok()) st = qdiscs.take_error().wrap("add leaf of " + cls + " on " + dev);
  for (size_t i = 0; st.ok() && i < qdiscs->size(); i++) {
    const auto& q = (*qdiscs)[i];
    if (q.parent == class_id(minor) && q.handle == leaf_handle(minor) && q.kind != kind) {
      auto del = del_tc(*nl, RTM_DELQDISC, ifindex, class_id(minor), leaf_handle(minor));
      if (!del.ok() && del.error().sys_errno != ENOENT)
        st = del.take_error().wrap("delete old " + q.kind + " leaf of " + cls + " on " + dev);
    }
  }
  if (st.ok())
    st = put_qdisc(*nl, ifindex, class_id(minor), leaf_handle(minor), kind,
                   netem ? netem_options(p) : fifo_options(kPfifoLimit), NLM_F_CREATE | NLM_F_REPLACE);
  if (st.ok()) return {};
  Error e = st.take_error();
  // A class without its leaf would shape with the wrong parameters: take it away again.
  auto undo = del_tc(*nl, RTM_DELTCLASS, ifindex, kRootHandle, class_id(minor));
  if (!undo.ok() && undo.error().sys_errno != ENOENT)
    spdlog::error("remove htb class {} on {} after its leaf failed: {}", cls, dev, undo.error().message);
  if (netem && e.sys_errno == ENOENT)
    return Error{Errc::kernel_unsupported,
                 "add netem leaf of " + cls + " on " + dev + ": this kernel has no netem qdisc (sch_netem); " +
                     "delay, jitter, corrupt, duplicate and reorder need it: " + e.message,
                 e.sys_errno};
  return std::move(e).wrap("add " + kind + " leaf " + hex_handle(leaf_handle(minor)) + " of " + cls + " on " + dev);
}

Status delete_class(int ifindex, uint16_t minor) {
  // The leaf goes with its class (htb_delete purges and frees it), so one message does both and
  // there is no moment where the class falls back to a default leaf.
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto st = del_tc(*nl, RTM_DELTCLASS, ifindex, kRootHandle, class_id(minor));
  if (!st.ok() && st.error().sys_errno != ENOENT)  // ENOENT: class (or our whole root) already gone
    return st.take_error().wrap("delete htb class " + hex_handle(class_id(minor)) + " on " + dev_name(ifindex));
  return {};
}

// Why not iproute2's normal.dist, pareto.dist and paretonormal.dist: iproute2 is not a
// dependency of ours, the files live in different places across distributions (/usr/lib/tc,
// /usr/lib64/tc, /usr/share/tc) and not every build ships them. The tables are simple enough
// to compute, and computing them makes the result the same everywhere.
//
// All three have kDistSize (4096) entries, mean 0 and standard deviation NETEM_DIST_SCALE
// (8192), sorted (netem picks entries at random, so order does not matter):
//   normal:       the normal quantiles at (i + 0.5) / 4096.
//   pareto:       the quantiles of Pareto with shape 3 (scale 1) at the same points,
//                 standardized; its long tail is clamped at the int16 limit (+4 sigma).
//   paretonormal: a deterministic stand-in for sum-of-independent-samples: normal quantile i
//                 scaled to variance 1/4 plus Pareto quantile (i * 2531 mod 4096) scaled to
//                 variance 3/4 (2531 is odd, so that is a permutation that pairs low with high
//                 quantiles evenly), then standardized like the others.
std::vector<int16_t> distribution_table(core::Distribution d) {
  std::vector<double> z(kDistSize);
  auto u = [](size_t i) { return (static_cast<double>(i) + 0.5) / kDistSize; };
  switch (d) {
    case core::Distribution::uniform:
      return {};
    case core::Distribution::normal:
      for (size_t i = 0; i < kDistSize; i++) z[i] = normal_quantile(u(i));
      break;
    case core::Distribution::pareto:
      for (size_t i = 0; i < kDistSize; i++) z[i] = pareto_quantile(u(i));
      break;
    case core::Distribution::paretonormal:
      for (size_t i = 0; i < kDistSize; i++)
        z[i] = 0.5 * normal_quantile(u(i)) + std::sqrt(0.75) * pareto_quantile(u((i * 2531) % kDistSize));
      break;
  }
  return to_table(std::move(z));
}

std::string ifb_name(int for_ifindex) { return kIfbPrefix + std::to_string(for_ifindex); }

Result<int> create_ifb(int for_ifindex) {
  std::string name = ifb_name(for_ifindex);
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  for (int attempt = 0; attempt < 2; attempt++) {
    auto have = get_link(*nl, 0, name);
    if (!have.ok()) return have.take_error().wrap("look up " + name);
    if (*have) {
      const LinkInfo& l = **have;
      if (l.kind != "ifb")
        return make_error(Errc::already_exists,
                          "create ifb " + name + ": a " + (l.kind.empty() ? "non-virtual" : l.kind) +
                              " device of that name exists; faultline uses only ifb devices of its own");
      if (!(l.flags & IFF_UP)) FL_TRY_CTX(set_up(*nl, l.index), "set " + name + " up");
      return l.index;
    }
    if (attempt) break;
    auto st = add_ifb(*nl, name);
    if (!st.ok()) {
      Error e = st.take_error();
      if (e.sys_errno == EEXIST) continue;  // raced with someone: look again
      if (e.sys_errno == EOPNOTSUPP || e.sys_errno == ENOENT)
        e.code = Errc::kernel_unsupported;  // "Unknown device type": no ifb driver
      return std::move(e).wrap("create ifb " + name);
    }
  }
  return make_error(Errc::kernel_error, "create ifb " + name + ": created but not found afterwards");
}

Status delete_link(int ifindex) {
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  std::string dev = dev_name(ifindex);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  Msg m = new_msg(RTM_DELLINK, 0, &ifi, sizeof ifi);
  if (!m) return make_error(Errc::internal, "netlink message allocation failed");
  auto st = nl->talk(m.get());
  if (!st.ok() && st.error().sys_errno != ENODEV) return st.take_error().wrap("delete link " + dev);
  return {};
}

namespace {

// yes on success; no when the kernel does not know the kind (ENOENT "Specified qdisc kind is
// unknown", or EOPNOTSUPP); unknown for anything else, which says nothing about the kind.
Tri classify(const Status& st) {
  if (st.ok()) return Tri::yes;
  int e = st.error().sys_errno;
  return e == ENOENT || e == EOPNOTSUPP ? Tri::no : Tri::unknown;
}

Tri probe_qdisc(Rtnl& nl, int ifindex, const std::string& kind, const std::vector<uint8_t>& opts) {
  Tri t = classify(put_qdisc(nl, ifindex, TC_H_ROOT, 0x10000, kind, opts, NLM_F_CREATE | NLM_F_REPLACE));
  if (t == Tri::yes) (void)del_tc(nl, RTM_DELQDISC, ifindex, TC_H_ROOT, 0x10000);
  return t;
}

}  // namespace

ShapingFeatures probe_shaping() {
  ShapingFeatures f;
  // The scratch namespace belongs to this thread alone and dies with it: nothing we add here is
  // visible anywhere else or outlives the probe. Missing sch_* modules are autoloaded by the
  // kernel on first use where it can; "no" means it could not.
  std::thread t([&f] {
    if (unshare(CLONE_NEWNET) != 0) {
      spdlog::debug("shaping probe: unshare(CLONE_NEWNET): {}", std::strerror(errno));
      return;
    }
    auto nl = Rtnl::open();
    if (!nl.ok()) return;
    // Probe on an ifb (MTU 1500) when there is one: on lo (MTU 65536) any TBF burst is "lower
    // than the device MTU" and the kernel logs a warning.
    int dev = static_cast<int>(if_nametoindex("lo"));
    f.ifb = classify(add_ifb(*nl, "flprobe0"));
    if (f.ifb == Tri::yes)
      if (int i = static_cast<int>(if_nametoindex("flprobe0")); i > 0) dev = i;
    if (dev <= 0) return;

    f.htb = probe_qdisc(*nl, dev, "htb", htb_root_options());
    tc_tbf_qopt tq{};
    tq.rate = ratespec(125'000);  // 1 mbit, a 10 kB bucket and a 10 kB queue
    tq.buffer = xmit_ticks(10'000, 125'000);
    tq.limit = 10'000;
    Attrs tbf;
    tbf.put(TCA_TBF_PARMS, tq);
    f.tbf = probe_qdisc(*nl, dev, "tbf", tbf.take());
    tc_netem_qopt nq{};
    nq.limit = 1000;
    std::vector<uint8_t> netem(sizeof nq);
    std::memcpy(netem.data(), &nq, sizeof nq);
    f.netem = probe_qdisc(*nl, dev, "netem", netem);
    f.fq = probe_qdisc(*nl, dev, "fq", {});
  });
  t.join();
  return f;
}

}  // namespace fl::kernel
