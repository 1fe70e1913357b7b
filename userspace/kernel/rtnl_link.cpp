#include "kernel/rtnl_link.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <netlink/attr.h>
#include <netlink/msg.h>

namespace fl::kernel {

Result<std::optional<LinkInfo>> get_link(Rtnl& nl, int ifindex, const std::string& name) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  RtMsg m(RTM_GETLINK, 0, ifi);
  if (!name.empty()) m.put_string(IFLA_IFNAME, name);
  std::optional<LinkInfo> info;
  auto st = nl.talk(m, [&](nlmsghdr* h) {
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

Status set_link_up(Rtnl& nl, int ifindex, int master_ifindex) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  RtMsg m(RTM_NEWLINK, 0, ifi);
  if (master_ifindex) m.put_u32(IFLA_MASTER, static_cast<uint32_t>(master_ifindex));
  return nl.talk(m);
}

Status del_link(Rtnl& nl, int ifindex) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  RtMsg m(RTM_DELLINK, 0, ifi);
  return nl.talk(m);
}

Status add_address(Rtnl& nl, int ifindex, const std::string& cidr) {
  auto slash = cidr.find('/');
  std::string addr = cidr.substr(0, slash);
  bool v6 = addr.find(':') != std::string::npos;
  unsigned char bin[16] = {};
  int max_prefix = v6 ? 128 : 32;
  int prefix = max_prefix;
  if (slash != std::string::npos) {
    std::string p = cidr.substr(slash + 1);
    char* end = nullptr;
    long v = p.empty() ? -1 : std::strtol(p.c_str(), &end, 10);
    if (v < 0 || v > max_prefix || *end) return make_error(Errc::invalid_argument, "bad prefix length in " + cidr);
    prefix = static_cast<int>(v);
  }
  if (inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), bin) != 1)
    return make_error(Errc::invalid_argument, "not an IP address: " + cidr);
  ifaddrmsg ifa{};
  ifa.ifa_family = v6 ? AF_INET6 : AF_INET;
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa.ifa_flags = v6 ? IFA_F_NODAD : 0;
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(ifindex);
  size_t len = v6 ? 16 : 4;
  // Local and address both: on a point-to-point link IFA_ADDRESS would be the peer; here it is
  // the same address, as `ip addr add` sends it.
  RtMsg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifa);
  m.put(IFA_LOCAL, bin, len).put(IFA_ADDRESS, bin, len);
  return nl.talk(m);
}

Result<std::vector<std::string>> global_addresses(Rtnl& nl, int ifindex) {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  RtMsg m(RTM_GETADDR, NLM_F_DUMP, ifa);
  std::vector<std::string> out;
  FL_TRY(nl.talk(m, [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWADDR) return;
    auto* a = static_cast<ifaddrmsg*>(nlmsg_data(h));
    if (static_cast<int>(a->ifa_index) != ifindex || a->ifa_scope != RT_SCOPE_UNIVERSE) return;
    nlattr* tb[IFA_MAX + 1] = {};
    if (nlmsg_parse(h, sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) return;
    // IPv4 reports its own address as IFA_LOCAL; IPv6 only as IFA_ADDRESS.
    nlattr* local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
    size_t want = a->ifa_family == AF_INET6 ? 16 : 4;
    if (!local || static_cast<size_t>(nla_len(local)) < want) return;
    char buf[INET6_ADDRSTRLEN] = {};
    if (!inet_ntop(a->ifa_family, nla_data(local), buf, sizeof buf)) return;
    out.push_back(std::string(buf) + "/" + std::to_string(a->ifa_prefixlen));
  }));
  return out;
}

}  // namespace fl::kernel
