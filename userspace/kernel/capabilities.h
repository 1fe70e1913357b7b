// The capabilities faultlined needs, in one place: the start-up check reads this list, and
// tests/unit/deploy_test.cpp holds the DaemonSet's and the systemd unit's lists against it, so a
// manifest cannot grant more (or less) than the daemon asks for.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace fl::kernel {

struct Capability {
  int number;             // linux/capability.h
  std::string_view name;  // as systemd spells it; Kubernetes and docker drop the CAP_ prefix
  std::string_view why;
};

inline constexpr std::array<Capability, 5> kRequiredCapabilities{{
    {39, "CAP_BPF", "create maps and load the tc programs"},
    {38, "CAP_PERFMON", "the verifier's pointer-leak and Spectre checks relaxed as for root"},
    {12, "CAP_NET_ADMIN", "tcx/clsact attach, qdiscs, ifb devices, SOCK_DESTROY"},
    {21, "CAP_SYS_ADMIN", "setns(2) into other network namespaces"},
    {19, "CAP_SYS_PTRACE", "open /proc/PID/ns/net of other users' processes"},
}};

// The required capabilities missing from this process's effective set (read from
// /proc/self/status). Empty when all are there or when the set cannot be read.
std::vector<Capability> missing_capabilities();

}  // namespace fl::kernel
