// ifb devices for ingress shaping: one per shaped interface, our qdisc tree on its egress, and
// on the legacy attach path the classic cls_bpf + act_mirred filter that redirects into it.
// Acts on the calling thread's network namespace over kernel/rtnl.h.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace fl::kernel {

class Rtnl;

// ifb devices are named kIfbPrefix + the ifindex of the interface they serve ("flifb12").
inline constexpr const char* kIfbPrefix = "flifb";
std::string ifb_name(int for_ifindex);

// ifb device for the interface ifindex: created (or adopted if a leftover of ours has the name),
// txqueuelen 1000, up. Returns its ifindex.
Result<int> create_ifb(int for_ifindex);
Status delete_link(int ifindex);
// Creates ifb device `name` on nl, up from the start (the flags apply as the link is
// registered, so there is no window where it is down). For create_ifb and the shaping probe.
Status add_ifb(Rtnl& nl, const std::string& name);

// Legacy (clsact) path: kernels before 6.4 do not mark bpf_redirect()ed packets as redirected
// and ifb drops them, so there the ingress program only sets the class and this classic cls_bpf
// filter (priority 2, handle 0xfa18, program fl_ifb_match) redirects with act_mirred, which
// marks them. Needs the clsact qdisc our attachment created.
inline constexpr uint16_t kMirredPriority = 2;
inline constexpr uint32_t kMirredHandle = 0xfa18;
Status attach_ifb_mirred(int ifindex, int prog_fd, int ifb_ifindex);
Status detach_ifb_mirred(int ifindex);  // absent is fine

}  // namespace fl::kernel
