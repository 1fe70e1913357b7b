#include "daemon/lease_keeper.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/engine.h"
#include "kernel/datapath.h"

namespace fl::daemon {

std::chrono::milliseconds LeaseKeeper::default_stall_limit(std::chrono::milliseconds lease) {
  return std::max(lease * 4, std::chrono::milliseconds(30000));
}

LeaseKeeper::LeaseKeeper(std::chrono::milliseconds lease, LateHook late, std::chrono::milliseconds stall_limit)
    : lease_(lease),
      late_(std::move(late)),
      stall_limit_ns_(static_cast<uint64_t>(stall_limit.count()) * 1000000ull),
      alive_ns_(monotonic_ns()) {
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

void LeaseKeeper::alive() { alive_ns_.store(monotonic_ns(), std::memory_order_relaxed); }
void LeaseKeeper::alive(uint64_t as_of_ns) { alive_ns_.store(as_of_ns, std::memory_order_relaxed); }

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
    const uint64_t silent = now - std::min(now, alive_ns_.load(std::memory_order_relaxed));
    if (silent > stall_limit_ns_) {
      if (!lapsing_)
        spdlog::critical("the event loop or the kernel worker has not moved for {} s: no longer renewing "
                         "the lease, every fault turns off within it", silent / 1000000000ull);
      lapsing_ = true;
      continue;
    }
    if (lapsing_) spdlog::warn("the daemon moves again: renewing the lease");
    lapsing_ = false;
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
