// The kernel lease (bpf/abi.h fl_ctl.lease_expires_ns), renewed by a thread that does nothing
// else. The event loop and the kernel worker run requests, netlink and the verifier; none of
// that can hold this thread, so a daemon busy for a few seconds never turns the faults off. The process not running
// at all lets the lease lapse: SIGKILL, a crash, SIGSTOP and a frozen cgroup stop every thread,
// this one included, and the program ignores every slot once the lease is past. So does a loop
// that is wedged rather than busy (a deadlock, a netlink call that never returns): the loop
// calls alive() every second, vouching for the kernel worker only up to the start of its job in
// progress, and once that has been stale for stall_limit the keeper stops renewing, so faults
// still end in the kernel when the daemon can no longer heal them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

namespace fl::kernel {
class Datapath;
}

namespace fl::daemon {

class LeaseKeeper {
 public:
  // Called on the keeper's thread when a renewal came later than planned (the process was
  // stopped, or starved of CPU): gap_ns since the previous renewal. Must not block.
  using LateHook = std::function<void(uint64_t gap_ns)>;

  // Renews every third of lease while alive() was called within stall_limit. The thread
  // inherits the caller's signal mask.
  LeaseKeeper(std::chrono::milliseconds lease, LateHook late, std::chrono::milliseconds stall_limit);
  // How long the loop may go without alive() before the lease is let lapse: four leases, and
  // never less than 30 s, so that no request a loop can legitimately be busy with comes near.
  static std::chrono::milliseconds default_stall_limit(std::chrono::milliseconds lease);
  ~LeaseKeeper();  // stops and joins the thread
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // From now until remove(), dp's lease is kept renewed; set at once to the current expiry.
  // remove() must come before dp is destroyed (the thread writes through dp's mapping).
  void add(kernel::Datapath* dp);
  void remove(kernel::Datapath* dp);
  // CLOCK_MONOTONIC ns at which the lease runs out unless renewed.
  uint64_t expires_ns() const;
  // The event loop's heartbeat; any thread. as_of_ns: the daemon is known to have made progress
  // up to then (CLOCK_MONOTONIC; a kernel worker busy with one job since then).
  void alive();
  void alive(uint64_t as_of_ns);
  std::chrono::milliseconds lease() const { return lease_; }

 private:
  void run();
  void renew_locked(uint64_t now);

  const std::chrono::milliseconds lease_;
  const LateHook late_;
  const uint64_t stall_limit_ns_;
  std::atomic<uint64_t> alive_ns_;
  bool lapsing_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t expires_ = 0;
  std::set<kernel::Datapath*> dps_;
  std::thread thread_;
};

}  // namespace fl::daemon
