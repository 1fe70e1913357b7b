#include "daemon/metrics_source.h"

#include <iterator>

#include "abi.h"

namespace fl::daemon::metrics {

namespace {

struct StatName {
  enum fl_stat index;
  const char* name;  // faultline_datapath_<name>_packets_total
  const char* help;
};

// One row per enum fl_stat; a new counter there fails the static_assert until it has a row.
constexpr StatName kStats[] = {
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
static_assert(std::size(kStats) == FL_STAT_MAX, "every enum fl_stat needs a metric");

}  // namespace

Snapshot snapshot(Engine& engine, const EventCounts& events, size_t clients) {
  Snapshot s;
  s.faults = engine.list();
  s.events = &events;
  s.lease_seconds = std::chrono::duration<double>(engine.options().lease).count();
  const uint64_t now = monotonic_ns(), until = engine.lease_expires_ns();
  s.lease_remaining_seconds = until > now ? static_cast<double>(until - now) / 1e9 : 0.0;
  const auto stats = engine.program_stats();
  for (const auto& st : kStats) s.datapath.push_back({st.name, st.help, stats[st.index]});
  // Every feature the probe reports, so a new one shows here without a change.
  const nlohmann::json features = engine.features().to_json();
  for (const auto& [name, state] : features.items())
    if (name != "kernel" && state.is_string()) s.features.emplace_back(name, state.get<std::string>());
  s.kernel_release = engine.features().kernel_release;
  s.attach_mode = kernel::attach_mode_name(engine.attach_mode());
  s.faults_active = engine.active_count();
  s.clients = clients;
  return s;
}

}  // namespace fl::daemon::metrics
