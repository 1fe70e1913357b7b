#include "daemon/lease_keeper.h"

#include <spdlog/spdlog.h>

#include "daemon/engine.h"
#include "kernel/datapath.h"

namespace fl::daemon {

LeaseKeeper::LeaseKeeper(std::chrono::milliseconds lease, LateHook late) : lease_(lease), late_(std::move(late)) {
  {
    std::lock_guard lock(mu_);
    renew_locked(monotonic_ns());
  }
  thread_ = std::thread([this] { run(); });
}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseKeeper::renew_locked(uint64_t now) {
  expires_ = now + static_cast<uint64_t>(lease_.count()) * 1000000ull;
  for (auto* dp : dps_) dp->set_lease(expires_);
}

void LeaseKeeper::add(kernel::Datapath* dp) {
  std::lock_guard lock(mu_);
  dps_.insert(dp);
  dp->set_lease(expires_);
}

void LeaseKeeper::remove(kernel::Datapath* dp) {
  std::lock_guard lock(mu_);
  dps_.erase(dp);
}

uint64_t LeaseKeeper::expires_ns() const {
  std::lock_guard lock(mu_);
  return expires_;
}

void LeaseKeeper::run() {
  const auto period = lease_ / 3;
  const uint64_t period_ns = static_cast<uint64_t>(period.count()) * 1000000ull;
  std::unique_lock lock(mu_);
  uint64_t last = monotonic_ns();
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    const uint64_t now = monotonic_ns(), gap = now - last;
    last = now;
    renew_locked(now);
    // The clock runs on while the process is stopped: a SIGSTOP shows here, after SIGCONT, as
    // one long gap.
    if (gap > period_ns + period_ns / 2 && late_) {
      lock.unlock();
      try {
        late_(gap);
      } catch (const std::exception& e) {
        spdlog::error("lease: reporting a late renewal: {}", e.what());
      }
      lock.lock();
    }
  }
}

}  // namespace fl::daemon
