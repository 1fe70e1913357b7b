// The data path's program-wide counters (bpf/abi.h enum fl_stat) by name, for everything that
// shows them: `faultctl status`, the metrics endpoint. The one place a counter gets its name.
#pragma once

#include <cstddef>
#include <iterator>

#include "abi.h"

namespace fl::core {

struct DatapathStat {
  enum fl_stat index;
  // The key in `faultctl status` (datapath.<name>) and the metric
  // faultline_datapath_<name>_packets_total.
  const char* name;
  const char* help;
};

// One row per enum fl_stat, in its order; a new counter there fails the static_asserts until it
// has a row.
inline constexpr DatapathStat kDatapathStats[] = {
    {FL_STAT_SEEN, "seen", "Packets our programs saw, on every attached interface and direction."},
    {FL_STAT_NOT_IP, "not_ip", "Packets passed untouched because they are not IPv4 or IPv6."},
    {FL_STAT_TRUNCATED, "truncated", "Packets passed untouched because their headers were cut short."},
    {FL_STAT_FRAGMENT, "fragment",
     "Non-first IP fragments, matched on addresses and protocol only (they carry no ports)."},
    {FL_STAT_LEASE_OFF, "lease_expired",
     "Packets seen while the kernel lease had run out (the daemon stopped renewing it): every fault was off."},
    {FL_STAT_DROPPED, "dropped", "Packets dropped by some fault."},
    {FL_STAT_SHAPED, "shaped", "Egress packets given one of our shaping classes."},
    {FL_STAT_REDIRECTED, "redirected", "Ingress packets redirected to an ifb device for shaping."},
    {FL_STAT_NO_IFB, "no_ifb",
     "Ingress packets a shaping fault matched on an interface without an ifb device (passed unshaped)."},
};
static_assert(std::size(kDatapathStats) == FL_STAT_MAX, "every enum fl_stat needs a row");

constexpr bool datapath_stats_in_enum_order() {
  for (size_t i = 0; i < std::size(kDatapathStats); i++)
    if (static_cast<size_t>(kDatapathStats[i].index) != i) return false;
  return true;
}
static_assert(datapath_stats_in_enum_order(), "kDatapathStats rows must follow enum fl_stat");

}  // namespace fl::core
