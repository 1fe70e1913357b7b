// RCU grace periods, observed from userspace. A BPF program run holds RCU; an update of a
// map-in-map returns only after synchronize_rcu() (kernel: maybe_wait_bpf_programs()), so one such
// update proves that no program run that started before it is still going. We use that to know
// when a deactivated slot or a freed set bit may be written again, without stalling applies: a
// background thread does the waiting (about 8 ms with HZ=250).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "core/result.h"

namespace fl::kernel {

class GracePeriod {
 public:
  static Result<std::unique_ptr<GracePeriod>> create();
  ~GracePeriod();

  // Stamp a retirement with current(), after the (seq_cst) store that retired the object.
  uint64_t current() const { return epoch_.load(std::memory_order_seq_cst); }
  // Retirements stamped <= completed() are past a grace period.
  uint64_t completed() const { return completed_.load(std::memory_order_acquire); }
  bool passed(uint64_t stamp) const { return stamp <= completed(); }
  // Ask for a grace period; returns at once.
  void request();
  // Blocks until passed(stamp) or the timeout; requests one if needed.
  bool wait(uint64_t stamp, std::chrono::milliseconds timeout);

 private:
  GracePeriod() = default;
  void run();
  int inner_fd_ = -1, outer_fd_ = -1;
  std::atomic<uint64_t> epoch_{1};
  std::atomic<uint64_t> completed_{0};
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  bool pending_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace fl::kernel
