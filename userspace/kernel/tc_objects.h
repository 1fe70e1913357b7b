// Traffic-control objects over rtnl.h: qdiscs and filters as the kernel dumps them, and the
// add/delete requests the qdisc tree, the ifb redirect filter, the legacy attach path and the
// shaping probe send. Acts on the namespace the Rtnl socket lives in.
#pragma once

#include <linux/rtnetlink.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "kernel/rtnl.h"



namespace fl::kernel {

// A qdisc, class or filter as dumped.
struct TcObject {
  int ifindex = 0;
  uint32_t handle = 0, parent = 0, info = 0;  // info: a filter's priority and protocol
  std::string kind;
  std::vector<uint8_t> options;  // TCA_OPTIONS payload, raw
  bool stab = false;      // a size table (tc ... stab ...): the kernel dumps its base, never its cells
  std::string bpf_name;   // filters: the cls_bpf program's name
};

// "fa17:" or "fa17:2", as tc prints handles.
std::string hex_handle(uint32_t h);
// The device's name for messages, "ifindex N" when it has none (any more).
std::string dev_name(int ifindex);

// Qdiscs of one device (the kernel dumps every device's; we keep ifindex's).
Result<std::vector<TcObject>> dump_qdiscs(Rtnl& nl, int ifindex);
// Filters of one device under parent (a clsact hook: TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)).
Result<std::vector<TcObject>> dump_filters(Rtnl& nl, int ifindex, uint32_t parent);

// Adds or changes a qdisc (flags: NLM_F_CREATE, NLM_F_REPLACE, ...). overhead != 0 adds a
// size table without cells: every packet is accounted as its length plus overhead (the
// kernel's qdisc_calculate_pkt_len).
Status put_qdisc(Rtnl& nl, int ifindex, uint32_t parent, uint32_t handle, const std::string& kind,
                 const std::vector<uint8_t>& options, int flags, int overhead = 0);
// An htb class under parent with raw options.
Status put_htb_class(Rtnl& nl, int ifindex, uint32_t parent, uint32_t classid, const std::vector<uint8_t>& options,
                     int flags);
// RTM_DELQDISC, RTM_DELTCLASS or RTM_DELTFILTER of (parent, handle[, info]).
Status del_tc(Rtnl& nl, int type, int ifindex, uint32_t parent, uint32_t handle, uint32_t info = 0);

// The header of every tc request: one device, and where in its tree.
tcmsg tc_header(int ifindex, uint32_t parent = 0, uint32_t handle = 0, uint32_t info = 0);

}  // namespace fl::kernel
