// Every call into the Engine runs on this one thread, in the order asked: applies, heals,
// resets, the reads of fault state (list, get, stats, wait, metrics), expiry and
// reconciliation. Loading a data path takes the verifier 0.1-0.2 s per namespace, a detach
// waits for a grace period, a journal change is fsynced; here that holds up only the next
// engine job, while the event loop keeps answering status and events, accepting clients,
// sending replies and pushing events. The Engine itself stays single-threaded: only this
// thread touches it while the loop runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "daemon/event_loop.h"

namespace fl::daemon {

class KernelWorker {
 public:
  // A job runs on the worker and returns what to do next on the loop thread (may be empty).
  using Then = std::function<void()>;
  using Job = std::function<Then()>;

  // on_start runs first on the new thread (per-thread settings). The thread inherits the
  // caller's signal mask.
  KernelWorker(EventLoop& loop, std::function<void()> on_start = {});
  // stop(), if not done yet.
  ~KernelWorker();
  KernelWorker(const KernelWorker&) = delete;
  KernelWorker& operator=(const KernelWorker&) = delete;

  // Queues job; if it throws, failed runs on the loop instead of what the job would have
  // returned (an owner that keeps a "job pending" flag clears it there). Any thread. Not bounded here: each client has at most one request waiting
  // (the server defers its next ones until the reply), and the loop's own jobs (expiry,
  // reconciliation, metrics) are coalesced by their owners.
  void run(Job job, Then failed = {});
  // Lets the job in progress finish (it is kernel work that must not be cut half-way), drops
  // the queued ones and joins. What finished jobs posted to the loop stays posted.
  void stop();

  // CLOCK_MONOTONIC ns at which the job in progress started; 0 when idle. Any thread: the lease
  // heartbeat uses it to tell a busy worker from a wedged one.
  uint64_t busy_since_ns() const { return busy_since_.load(std::memory_order_relaxed); }
  // True on the worker thread.
  bool on_worker() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  void loop();

  EventLoop& ev_;
  std::function<void()> on_start_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Job, Then>> jobs_;
  bool stop_ = false;
  std::atomic<uint64_t> busy_since_{0};
  std::thread thread_;
};

}  // namespace fl::daemon
