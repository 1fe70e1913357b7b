// The one route-netlink layer: a NETLINK_ROUTE socket, the request being built, and the
// kernel's answer turned into an Error with its extended-ack text. Shaping (qdisc tree, ifb),
// attach (the legacy filter count) and faultline-lab all talk to rtnetlink through this file;
// tc_objects.h and rtnl_link.h are the shared request kinds built on top of it.
//
// Why libnl-3's socket and message builders but our own receive loop, and no libnl-route:
// - nl_send_sync / nl_wait_for_ack (and every libnl-route call built on them) fold the kernel's
//   errno into libnl's own NLE_* codes and drop the extended ack, and the ack's text
//   ("Specified qdisc kind is unknown", "Exclusivity flag on, cannot modify") is the most useful
//   thing the kernel says. talk() reads NLMSG_ERROR itself and keeps errno and that text.
// - tc options must go out as raw bytes: restoring a saved qdisc sends back exactly what the
//   kernel dumped, whatever its kind, which rtnl_qdisc cannot carry; our own kinds are encoded
//   the same way (core/tc_options.h), also using what libnl 3.7 lacks (netem's 64-bit times).
// - libnl-3's nlmsg/nla builders and parsers are small and well tested; hand-rolling them would
//   buy nothing. libnl-route's object caches would add a second way to read the same things.
// The socket asks for extended and capped acks (NETLINK_EXT_ACK, NETLINK_CAP_ACK): capped, so
// an error does not echo our 8 KiB netem tables back.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"

struct nl_msg;
struct nl_sock;

namespace fl::kernel {

// The error for a kernel refusal: errno's text, then the extended ack's (" (kernel: ...)"),
// sys_errno = err. ENODEV is target_unavailable, EPERM/EACCES permission_denied, the rest
// kernel_error; callers that know better (ifb: EOPNOTSUPP means no driver) re-code it.
Error rtnl_error(int err, const std::string& ext_ack);

// One request. Every put after a failed one is ignored and ok() turns false; talk() refuses a
// message that is not ok(), so building needs no check per attribute.
class RtMsg {
 public:
  // A netem distribution table alone is 8 KiB; libnl's default message size is one page.
  static constexpr size_t kMaxSize = 64 * 1024;

  RtMsg(int type, int flags, const void* hdr, size_t hdr_len);
  template <typename Hdr>
  RtMsg(int type, int flags, const Hdr& hdr) : RtMsg(type, flags, &hdr, sizeof hdr) {}
  RtMsg(RtMsg&& o) noexcept;
  RtMsg& operator=(RtMsg&&) = delete;
  RtMsg(const RtMsg&) = delete;
  ~RtMsg();

  RtMsg& put(uint16_t type, const void* data, size_t len);
  RtMsg& put(uint16_t type, const std::vector<uint8_t>& bytes) { return put(type, bytes.data(), bytes.size()); }
  RtMsg& put_string(uint16_t type, const std::string& s);  // NUL-terminated, as the kernel wants names
  RtMsg& put_u8(uint16_t type, uint8_t v) { return put(type, &v, sizeof v); }
  RtMsg& put_u32(uint16_t type, uint32_t v) { return put(type, &v, sizeof v); }
  // Bytes at the end of the message, no attribute header: the ifinfomsg that opens a veth peer.
  RtMsg& append(const void* data, size_t len);
  RtMsg& begin_nest(uint16_t type);
  RtMsg& end_nest();  // closes the innermost open nest

  bool ok() const { return msg_ && ok_; }
  nl_msg* get() const { return msg_; }

 private:
  nl_msg* msg_ = nullptr;
  bool ok_ = true;
  std::vector<struct nlattr*> nests_;
};

// One NETLINK_ROUTE socket. It stays in the network namespace it was created in, whatever the
// thread does afterwards.
class Rtnl {
 public:
  // In the calling thread's namespace.
  static Result<Rtnl> open();
  // In the namespace netns_fd refers to, created on a short-lived thread so the caller never
  // changes namespace. ns_name is for messages.
  static Result<Rtnl> open_in(int netns_fd, const std::string& ns_name);

  Rtnl(Rtnl&& o) noexcept;
  Rtnl& operator=(Rtnl&&) = delete;
  Rtnl(const Rtnl&) = delete;
  ~Rtnl();

  // Sends m (asking for an ack unless it is a dump) and reads until the kernel's ack, error or
  // end of dump; every other answer to m goes to on_reply. An error carries errno and the
  // extended ack (rtnl_error).
  Status talk(RtMsg& m, const std::function<void(nlmsghdr*)>& on_reply = {});

 private:
  explicit Rtnl(nl_sock* sk) : sk_(sk) {}
  nl_sock* sk_ = nullptr;
};

// The extended ack's message in an NLMSG_ERROR answer (h), without its trailing period; empty
// when there is none. Exposed for the unit tests, which feed it hand-built answers.
std::string ext_ack_text(const nlmsghdr* h);

}  // namespace fl::kernel
