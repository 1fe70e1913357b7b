// The registry: ids and names, creation, heal, expiry, the recently ended faults, shutdown.
#include "daemon/engine.h"

#include <time.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/plan.h"
#include "core/scope_exit.h"
#include "daemon/engine_state.h"
#include "daemon/real_kernel_port.h"

namespace fl::daemon {

uint64_t monotonic_ns() {
  struct timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the data path reads it too (bpf_ktime_get_coarse_ns)
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int64_t unix_ms_now() {
  struct timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}


const char* fault_state_name(FaultState s) {
  switch (s) {
    case FaultState::active: return "active";
    case FaultState::expired: return "expired";
    case FaultState::healed: return "healed";
    case FaultState::gone: return "gone";
  }
  return "active";
}

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions opts, kernel::Features features,
                                               Journal* journal) {
  // Refused before the port starts its threads and loads a spare data path.
  if (opts.force_mode == kernel::AttachMode::tcx && features.tcx == kernel::Tri::no)
    return make_error(Errc::kernel_unsupported, "--attach-mode tcx: this kernel has no tcx (needs 6.6+)");
  auto port = make_real_kernel_port(opts.spare_datapaths);
  if (!port.ok()) return port.take_error();
  return create(std::move(opts), std::move(features), journal, std::move(*port));
}

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions opts, kernel::Features features, Journal* journal,
                                               std::unique_ptr<KernelPort> port) {
  std::unique_ptr<Engine> e(new Engine());
  e->opts_ = std::move(opts);
  if (!e->opts_.clock) e->opts_.clock = monotonic_ns;
  if (!e->opts_.wall_clock_ms) e->opts_.wall_clock_ms = unix_ms_now;
  e->features_ = features;
  e->journal_ = journal;
  if (e->opts_.force_mode) {
    e->mode_ = *e->opts_.force_mode;
    if (e->mode_ == kernel::AttachMode::tcx && features.tcx == kernel::Tri::no)
      return make_error(Errc::kernel_unsupported, "--attach-mode tcx: this kernel has no tcx (needs 6.6+)");
  } else {
    e->mode_ = features.tcx == kernel::Tri::yes ? kernel::AttachMode::tcx : kernel::AttachMode::tc;
  }
  e->port_ = std::move(port);
  e->lease_ = std::make_unique<LeaseKeeper>(e->opts_.lease, e->opts_.on_lease_late, e->stall_limit());
  return e;
}

std::chrono::milliseconds Engine::stall_limit() const {
  return opts_.stall_limit.count() > 0 ? opts_.stall_limit : LeaseKeeper::default_stall_limit(opts_.lease);
}

Engine::~Engine() {
  auto st = shutdown();
  if (!st.ok()) spdlog::error("shutdown: {}", st.error().message);
}

void Engine::end_fault(Fault& f, FaultState why, std::optional<Caller> caller) {
  changes_.fetch_add(1, std::memory_order_acq_rel);
  // Off everywhere first (one store each), then the bookkeeping.
  for (auto& p : f.parts)
    if (p.active)
      for (uint32_t idx : p.slots) p.t->dp->deactivate_slot(idx);
  const uint64_t stamp = port_->grace_current();
  const uint64_t fault_id = f.id;
  // The report below is the only part that could throw; what the fault holds in the kernel is
  // given back whatever it does.
  core::ScopeExit release([&] {
    no_throw("fault " + std::to_string(fault_id) + ": release", [&] { release_ended(fault_id, why, stamp); });
  });
  f.last_counters.clear();
  for (auto& p : f.parts) {
    if (p.gone) {
      f.last_counters.push_back(p.final_counters);
      continue;
    }
    f.last_counters.emplace_back();
    for (uint32_t idx : p.slots) {
      auto c = p.t->dp->counters(idx);
      f.last_counters.back().push_back(c.ok() ? *c : kernel::Counters{});
    }
  }
  ended_.push_front(status_of(f, why));
  ended_.front()["ended_unix_ms"] = opts_.wall_clock_ms();
  while (ended_.size() > 64) ended_.pop_back();
  if (events_) {
    Event e;
    e.type = why == FaultState::expired ? EventType::expired
             : why == FaultState::gone  ? EventType::gone
                                        : EventType::healed;
    e.fault_id = f.id;
    e.name = f.spec.name;
    e.kind = core::kind_name(f.spec.kind);
    for (const auto& p : f.parts) {
      e.targets.push_back(p.label);
      if (why == FaultState::gone && p.gone) e.detail += (e.detail.empty() ? "" : "; ") + p.label + " " + p.gone_reason;
    }
    e.caller = caller;
    e.fault = ended_.front();
    events_->emit(std::move(e));
  }
}

void Engine::release_ended(uint64_t id, FaultState why, uint64_t stamp) {
  auto it = faults_.find(id);
  if (it == faults_.end()) return;
  Fault& f = *it->second;
  std::vector<Target*> touched;
  for (size_t i = 0; i < f.parts.size(); i++) {
    if (f.parts[i].gone) continue;
    touched.push_back(f.parts[i].t);
    if (f.parts[i].active) f.parts[i].t->faults -= static_cast<int>(f.parts[i].slots.size());
    f.parts[i].active = false;
    no_throw("fault " + std::to_string(id) + ": release " + f.parts[i].label, [&] { release_part(f, i, stamp); });
  }
  f.parts.clear();
  faults_.erase(it);  // f is gone from here on
  active_.store(faults_.size(), std::memory_order_relaxed);
  for (auto* t : touched) no_throw("fault " + std::to_string(id), [&] { settle_target(t); });
  port_->grace_request();
  spdlog::info("fault {} {}", id, fault_state_name(why));
}

void Engine::restore_history(uint64_t next_id, const std::vector<json>& ended) {
  next_id_ = std::max(next_id_, next_id);
  for (const auto& j : ended) {
    if (ended_.size() >= 64) break;
    if (j.is_object() && j.contains("id") && j.contains("name")) ended_.push_back(j);
  }
}

Engine::Fault* Engine::find(const std::string& ref) {
  bool numeric = !ref.empty() && std::all_of(ref.begin(), ref.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) {
    auto it = faults_.find(std::strtoull(ref.c_str(), nullptr, 10));
    return it == faults_.end() ? nullptr : it->second.get();
  }
  for (auto& [id, f] : faults_)
    if (f->spec.name == ref) return f.get();
  return nullptr;
}

Result<std::vector<uint64_t>> Engine::heal(const std::string& ref, std::optional<Caller> caller) {
  Fault* f = find(ref);
  if (!f) return make_error(Errc::not_found, "no active fault " + ref);
  uint64_t id = f->id;
  end_fault(*f, FaultState::healed, caller);
  return std::vector<uint64_t>{id};
}

std::vector<uint64_t> Engine::heal_all(std::optional<Caller> caller) {
  std::vector<uint64_t> ids;
  for (auto& [id, f] : faults_) ids.push_back(id);
  // One heal that fails must not stop the others (this is also how SIGTERM heals).
  for (uint64_t id : ids)
    no_throw("heal fault " + std::to_string(id), [&] {
      if (auto it = faults_.find(id); it != faults_.end()) end_fault(*it->second, FaultState::healed, caller);
    });
  return ids;
}

size_t Engine::expire_due() {
  uint64_t now = opts_.clock();
  std::vector<uint64_t> due;
  for (auto& [id, f] : faults_)
    if (f->expires_ns <= now) due.push_back(id);
  for (uint64_t id : due)
    no_throw("expire fault " + std::to_string(id), [&] {
      if (auto it = faults_.find(id); it != faults_.end()) end_fault(*it->second, FaultState::expired);
    });
  return due.size();
}

std::optional<uint64_t> Engine::next_expiry() const {
  std::optional<uint64_t> best;
  for (auto& [id, f] : faults_)
    if (!best || f->expires_ns < *best) best = f->expires_ns;
  return best;
}

Status Engine::shutdown() {
  heal_all();
  std::vector<Target*> left;
  for (auto& t : targets_) left.push_back(t.get());
  for (auto* t : left)
    no_throw("shutdown: detach", [&] {
      if (std::any_of(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == t; }))
        drop_target_if_idle(*t);
    });
  if (targets_.empty()) return {};
  // Only when a heal failed: closing the data paths still ends tcx links; legacy filters and
  // shaping trees stay journalled for the next start.
  const size_t n = targets_.size();
  // Out of the keeper first: its thread writes through every data path it holds.
  for (auto& t : targets_)
    if (auto* l = t->dp->leased()) lease_->remove(l);
  no_throw("shutdown: close data paths", [&] { targets_.clear(); });
  return make_error(Errc::internal, std::to_string(n) + " target(s) could not be detached cleanly");
}

}  // namespace fl::daemon
