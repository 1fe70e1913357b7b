#include "daemon/kernel_worker.h"

#include <time.h>

#include <exception>
#include <tuple>

#include <spdlog/spdlog.h>

namespace fl::daemon {

namespace {
uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

KernelWorker::KernelWorker(EventLoop& loop, std::function<void()> on_start)
    : ev_(loop), on_start_(std::move(on_start)), thread_([this] { this->loop(); }) {}

KernelWorker::~KernelWorker() { stop(); }

void KernelWorker::run(Job job, Then failed) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    jobs_.emplace_back(std::move(job), std::move(failed));
  }
  cv_.notify_one();
}

void KernelWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KernelWorker::loop() {
  if (on_start_) on_start_();
  for (;;) {
    Job job;
    Then failed;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      std::tie(job, failed) = std::move(jobs_.front());
      jobs_.pop_front();
    }
    busy_since_.store(now_ns(), std::memory_order_relaxed);
    Then then;
    // Like the loop: one failing job is logged, the worker carries on for the others.
    try {
      then = job();
    } catch (const std::exception& e) {
      spdlog::error("kernel worker: job failed: {}", e.what());
      then = std::move(failed);
    } catch (...) {
      spdlog::error("kernel worker: job failed");
      then = std::move(failed);
    }
    busy_since_.store(0, std::memory_order_relaxed);
    if (then) ev_.post(std::move(then));
  }
}

}  // namespace fl::daemon
