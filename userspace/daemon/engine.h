// The fault registry and everything it holds in the kernel: per target namespace one loaded
// data path, its interface attachments, node-set bits, exemption rules and slots. Every apply is
// a transaction across all its targets: prepared everywhere, then switched on with one store
// per target, or rolled back completely. Single-threaded: in the daemon every call but the few
// marked "any thread" comes from the kernel worker (daemon/kernel_worker.h).
//
// Every kernel call goes through a KernelPort (daemon/kernel_port.h); expiry reads only
// EngineOptions::clock (CLOCK_MONOTONIC). The implementation is split by concept: engine.cpp
// (registry: ids, names, heal, expiry, ended faults), engine_target_state.cpp,
// engine_shaping_trees.cpp, engine_apply.cpp, engine_reconcile.cpp, engine_report.cpp, with
// their shared state in engine_state.h.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/index_pool.h"
#include "core/model.h"
#include "core/result.h"
#include "core/set_map.h"
#include "daemon/events.h"
#include "daemon/journal.h"
#include "daemon/kernel_port.h"
#include "daemon/lease_keeper.h"
#include "kernel/attach.h"
#include "kernel/datapath.h"
#include "kernel/features.h"
#include "kernel/netns.h"

namespace fl::daemon {

struct EngineOptions {
  std::chrono::milliseconds lease{15000};
  std::vector<core::Exemption> exemptions;  // daemon-wide, on top of every fault's own
  std::optional<kernel::AttachMode> force_mode;  // default: tcx where the kernel has it
  size_t spare_datapaths = 1;  // loaded ahead so a first fault need not wait for the verifier
  // Called on the lease thread when a renewal came late (LeaseKeeper::LateHook).
  std::function<void(uint64_t gap_ns)> on_lease_late;
  // 0: LeaseKeeper::default_stall_limit(lease).
  std::chrono::milliseconds stall_limit{0};
  // Where fault expiry reads the time: CLOCK_MONOTONIC ns (monotonic_ns), the clock the data
  // path's bpf_ktime_get_coarse_ns() reads, so setting the wall clock never ends or stretches a fault.
  // Tests move it by hand. Unset: monotonic_ns.
  std::function<uint64_t()> clock;
  // Only for the created_unix_ms and ended_unix_ms a report shows. Unset: unix_ms_now.
  std::function<int64_t()> wall_clock_ms;
};

// What the engine holds, for tests: every id a pool has handed out and not taken back.
struct EngineUsage {
  size_t targets = 0, recycled = 0;
  size_t slots = 0, set_bits = 0, rule_bits = 0, if_bits = 0;
  size_t attached = 0, egress_trees = 0, ingress_trees = 0;
};

struct AttachedIface;

// gone: every target of the fault disappeared (its namespace, or every interface it was on) and
// the fault ended with it.
enum class FaultState : uint8_t { active, expired, healed, gone };
const char* fault_state_name(FaultState s);

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(EngineOptions opts, kernel::Features features,
                                                Journal* journal);
  // With another kernel port: the tests' fake (the daemon uses the real one, above).
  static Result<std::unique_ptr<Engine>> create(EngineOptions opts, kernel::Features features, Journal* journal,
                                                std::unique_ptr<KernelPort> port);
  ~Engine();

  // Where applies and ends are reported (applied, healed, expired, gone); may stay unset.
  void set_events(EventBus* bus) { events_ = bus; }
  // What an earlier instance left in its history: ids continue after next_id, and `get` still
  // finds the faults that ended (newest first).
  void restore_history(uint64_t next_id, const std::vector<nlohmann::json>& ended);

  // spec must have passed core::validate. caller: who asked, for the event.
  Result<nlohmann::json> apply(core::FaultSpec spec, std::optional<Caller> caller = std::nullopt);
  // "7" or a name. Returns the ids healed.
  Result<std::vector<uint64_t>> heal(const std::string& ref, std::optional<Caller> caller = std::nullopt);
  std::vector<uint64_t> heal_all(std::optional<Caller> caller = std::nullopt);
  Result<nlohmann::json> get(const std::string& ref);
  nlohmann::json list();  // active faults, fresh counters

  // Ends faults whose time is up (state expired). Returns how many.
  size_t expire_due();
  // Notices targets and interfaces that went away under active faults: a deleted interface
  // leaves its faults (even if a new one takes its name or index), a namespace that is gone
  // ends its part of each fault, and a fault with no part left ends as "gone". Called
  // every second by the kernel worker (gone interfaces are also reaped before each apply touches a
  // target). Returns how many faults changed.
  size_t reconcile();
  // Earliest expiry of an active fault (CLOCK_MONOTONIC ns), if any.
  std::optional<uint64_t> next_expiry() const;
  // The lease is renewed by a thread of its own (daemon/lease_keeper.h), never by the loop.
  // Any thread.
  uint64_t lease_expires_ns() const { return lease_->expires_ns(); }
  // The event loop's heartbeat, every second, any thread: a loop silent for
  // EngineOptions::stall_limit lets the lease lapse (daemon/lease_keeper.h).
  void loop_alive() { lease_->alive(); }
  // The same, for a daemon whose engine work has progressed only up to as_of_ns (a kernel worker
  // in one job since then): a job stuck past the stall limit lets the lease lapse too.
  void loop_alive(uint64_t as_of_ns) { lease_->alive(as_of_ns); }
  std::chrono::milliseconds stall_limit() const;
  // Any thread (status on the loop while the kernel worker applies).
  size_t active_count() const { return active_.load(std::memory_order_relaxed); }
  // Counts every change to what list() would show (a fault applied or ended, a part or an
  // interface of one gone), made before the change's event is emitted. Any thread: a list
  // snapshot read at another count is out of date (Dispatcher::list_from_snapshot).
  uint64_t changes() const { return changes_.load(std::memory_order_acquire); }
  const kernel::Features& features() const { return features_; }
  // The data paths' program-wide counters (bpf/abi.h enum fl_stat), summed over every target
  // since start: what the targets since dropped had counted stays in, so each only grows.
  std::array<uint64_t, FL_STAT_MAX> program_stats() const;
  const EngineOptions& options() const { return opts_; }
  kernel::AttachMode attach_mode() const { return mode_; }

  // Heals everything and detaches from every interface; used on SIGTERM.
  Status shutdown();

  EngineUsage usage() const;

 private:
  struct Target;
  struct Fault;
  struct FaultPart;  // one fault's share of one target

  Engine() = default;
  Result<Target*> target_for(const core::Target& t);
  Status check_kernel_can(const core::FaultSpec& spec) const;
  Status resolve(Fault& f, FaultPart& part);
  // Finds our attachments whose device is gone and takes every trace of them out of the
  // target's faults. In the target's namespace is not needed; it enters by itself.
  void reap_dead_interfaces(Target& t);
  void forget_interface(Target& t, int ifindex, bool device_present);
  void end_part(Fault& f, size_t i, const std::string& why);
  void reset_connections(Fault& f, nlohmann::json& report);
  Status prepare(Fault& f, FaultPart& part);
  Status hold_tree(Target& t, FaultPart& part, const kernel::Interface& ifc, bool ingress, bool replace_root);
  void release_tree(Target& t, int ifindex, bool ingress);
  Status check_netem_mix(const Target& t, const core::FaultSpec& spec) const;
  static bool needs_class(const core::FaultSpec& spec);
  static bool needs_egress_tree(const core::FaultSpec& spec);
  static bool needs_ingress_tree(const core::FaultSpec& spec);
  void release_part(Fault& f, size_t part_idx, uint64_t stamp);
  void end_fault(Fault& f, FaultState why, std::optional<Caller> caller = std::nullopt);
  // The second half of end_fault: gives back everything the fault took and forgets it. Runs even
  // when the report in the first half throws.
  void release_ended(uint64_t id, FaultState why, uint64_t stamp);
  // Gives back everything an apply that did not complete took, in every target; never throws.
  void undo_apply(Fault& f) noexcept;
  // Recomputes a target's slot range and unscoped flag after slots went, and drops it if idle.
  void settle_target(Target* t);
  void drop_target_if_idle(Target& t);
  void detach_one(Target& t, struct AttachedIface& att, bool in_netns);
  Fault* find(const std::string& ref);
  nlohmann::json status_of(const Fault& f, FaultState state) const;

  EngineOptions opts_;
  kernel::Features features_;
  kernel::AttachMode mode_ = kernel::AttachMode::tcx;
  Journal* journal_ = nullptr;
  EventBus* events_ = nullptr;
  // Declared first so it is destroyed last: every data path leaves it before it goes.
  std::unique_ptr<LeaseKeeper> lease_;
  // Then the port: every target's data path, hooks and namespace go before it.
  std::unique_ptr<KernelPort> port_;
  static constexpr size_t kMaxRecycled = 4;
  std::vector<std::pair<std::unique_ptr<DataPath>, uint64_t>> recycled_;  // with grace stamp
  std::vector<std::unique_ptr<Target>> targets_;
  std::map<uint64_t, std::unique_ptr<Fault>> faults_;
  std::atomic<size_t> active_{0};  // faults_.size(), for readers on other threads
  std::atomic<uint64_t> changes_{0};
  std::deque<nlohmann::json> ended_;  // recent ended faults, for get
  uint64_t next_id_ = 1;
  uint32_t next_gen_ = 1;
  uint32_t next_shape_seq_ = 1;
  std::array<uint64_t, FL_STAT_MAX> retired_stats_{};  // of targets dropped since start
};

uint64_t monotonic_ns();
int64_t unix_ms_now();  // CLOCK_REALTIME, for reports only

}  // namespace fl::daemon
