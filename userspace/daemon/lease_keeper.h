// The kernel lease (bpf/abi.h fl_ctl.lease_expires_ns), renewed by a thread that does nothing
// else. The event loop runs requests, netlink and crictl's answers; none of that can hold this
// thread, so a busy loop never turns the faults off. What still lets the lease lapse is the
// process not running at all: SIGKILL, a crash, SIGSTOP and a frozen cgroup stop every thread,
// this one included, and the program ignores every slot once the lease is past.
#pragma once

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

  // Renews every third of lease. The thread inherits the caller's signal mask.
  LeaseKeeper(std::chrono::milliseconds lease, LateHook late);
  ~LeaseKeeper();  // stops and joins the thread
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // From now until remove(), dp's lease is kept renewed; set at once to the current expiry.
  // remove() must come before dp is destroyed (the thread writes through dp's mapping).
  void add(kernel::Datapath* dp);
  void remove(kernel::Datapath* dp);
  // CLOCK_MONOTONIC ns at which the lease runs out unless renewed.
  uint64_t expires_ns() const;
  std::chrono::milliseconds lease() const { return lease_; }

 private:
  void run();
  void renew_locked(uint64_t now);

  const std::chrono::milliseconds lease_;
  const LateHook late_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t expires_ = 0;
  std::set<kernel::Datapath*> dps_;
  std::thread thread_;
};

}  // namespace fl::daemon
