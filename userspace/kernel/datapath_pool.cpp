#include "kernel/datapath_pool.h"

#include <spdlog/spdlog.h>

namespace fl::kernel {

DatapathPool::DatapathPool(size_t spares) : want_(spares) {
  if (want_ > 0) thread_ = std::thread([this] { run(); });
}

DatapathPool::~DatapathPool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<Datapath>> DatapathPool::take() {
  {
    std::lock_guard lk(mu_);
    if (!ready_.empty()) {
      auto dp = std::move(ready_.back());
      ready_.pop_back();
      cv_.notify_all();
      return dp;
    }
  }
  cv_.notify_all();
  return Datapath::load();
}

void DatapathPool::run() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || ready_.size() < want_; });
    if (stop_) return;
    lk.unlock();
    auto dp = Datapath::load();
    lk.lock();
    if (!dp.ok()) {
      // take() still loads on demand and reports the error to the client; do not spin here.
      spdlog::warn("preloading a data path: {}", dp.error().message);
      cv_.wait_for(lk, std::chrono::seconds(30), [&] { return stop_; });
      if (stop_) return;
      continue;
    }
    ready_.push_back(std::move(*dp));
  }
}

}  // namespace fl::kernel
