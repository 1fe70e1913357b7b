// Which TCP connections a fault cuts: the userspace mirror of the data path's packet match
// (bpf/faultline.bpf.c, slot_matches and packet_exemptions), asked of a connection instead of
// a packet. Pure; the daemon feeds it the sockets it reads with kernel/sockdiag.h.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model.h"

namespace fl::core {

// One connection as seen from the namespace that holds it.
struct Flow {
  Cidr local, remote;  // host prefixes (/32, /128)
  uint16_t lport = 0, rport = 0;
  Proto proto = Proto::tcp;
};

// Would this fault touch packets of this connection, in either direction? A connection carries
// packets both ways, so it matches when the packet local -> remote or the packet
// remote -> local would match the fault's slot, whatever the fault's direction (a cut in one
// direction still breaks the connection). The rules are the data path's:
//  - partition: both endpoints in sides of the fault and no side holding both (a bridge keeps
//    its connections); one-way: the packet's source in sides[0] and its destination in another
//    side, which for a connection means one endpoint in each.
//  - isolate: one endpoint inside the isolated addresses, the other outside.
//  - other kinds: no address condition of their own; matrix: some pair's from side holds one
//    endpoint and its to side the other.
//  - match.src/dst/sport/dport as for a packet of that orientation; match.proto all or
//    Flow::proto.
//  - match.new_only never matches: such a fault drops only SYNs, so a connection that exists is
//    never cut by it.
//  - exemptions (the daemon's, the defaults unless !spec.default_exempt, the fault's own): a
//    rule whose CIDR holds either endpoint and whose proto/port fits (proto all with port 0, or
//    Flow::proto with port 0 or either port) spares the connection; SSH on 22 survives
//    `isolate --reset`.
bool connection_matches(const FaultSpec& spec, const std::vector<Exemption>& daemon_exempt, const Flow& f);

// A standalone reset (`faultctl reset`, protocol op "reset"): the TCP connections that a loss of
// 100 % with these selectors would cut are destroyed, in each target.
struct ResetSpec {
  Match match;  // direction must stay both and new_only false: a reset has neither
  std::vector<Exemption> exempt;
  bool default_exempt = true;
  // Every connection of the targets (but exempt ones). Required when match selects no address
  // or port, so that a forgotten selector cannot reset a whole node.
  bool all = false;
  std::vector<Target> targets;  // empty after validation never happens: default {host}
};

// The fault whose cut a reset is: kind loss at 100 %, with the reset's match and exemptions.
FaultSpec reset_as_fault(const ResetSpec& r);

}  // namespace fl::core
