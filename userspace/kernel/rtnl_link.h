// Links and addresses over rtnl.h: what ifb (create, look up, bring up, delete), the qdisc tree
// (MTU, txqueuelen) and faultline-lab (bridge ports, addresses, carrier) ask of rtnetlink.
// Acts on the namespace the Rtnl socket lives in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "kernel/rtnl.h"

namespace fl::kernel {

struct LinkInfo {
  int index = 0;
  unsigned flags = 0;  // IFF_UP, IFF_LOWER_UP, ...
  uint32_t mtu = 1500, txqlen = 0;
  std::string kind;  // IFLA_INFO_KIND; empty for devices without one (lo, physical NICs)
};

// By index, or by name when ifindex is 0. nullopt when there is no such device.
Result<std::optional<LinkInfo>> get_link(Rtnl& nl, int ifindex, const std::string& name = "");
// As get_link by index, but a missing device is target_unavailable.
Result<LinkInfo> must_get_link(Rtnl& nl, int ifindex);
// Sets the link up, and makes it a port of master_ifindex if that is not 0.
Status set_link_up(Rtnl& nl, int ifindex, int master_ifindex = 0);
// ENODEV (gone already) is an error here; callers decide whether that is fine.
Status del_link(Rtnl& nl, int ifindex);
// "10.200.0.11/24" or "fd00:200::11/64". IPv6 skips duplicate address detection (IFA_F_NODAD)
// so the address works at once. invalid_argument for an unparsable address.
Status add_address(Rtnl& nl, int ifindex, const std::string& cidr);
// Addresses of global scope on ifindex, as "10.200.0.11/24".
Result<std::vector<std::string>> global_addresses(Rtnl& nl, int ifindex);

}  // namespace fl::kernel
