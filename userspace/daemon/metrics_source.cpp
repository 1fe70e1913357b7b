#include "daemon/metrics_source.h"

#include "abi.h"
#include "core/datapath_stats.h"

namespace fl::daemon::metrics {

Snapshot snapshot(Engine& engine, const EventCounts& events, size_t clients) {
  Snapshot s;
  s.faults = engine.list();
  s.events = &events;
  s.lease_seconds = std::chrono::duration<double>(engine.options().lease).count();
  const uint64_t now = monotonic_ns(), until = engine.lease_expires_ns();
  s.lease_remaining_seconds = until > now ? static_cast<double>(until - now) / 1e9 : 0.0;
  const auto stats = engine.program_stats();
  for (const auto& st : core::kDatapathStats) s.datapath.push_back({st.name, st.help, stats[st.index]});
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
