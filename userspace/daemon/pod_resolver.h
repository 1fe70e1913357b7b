// pod:NAMESPACE/NAME targets are turned into pod UIDs by crictl, which may take seconds (a busy
// runtime, a stand-in that hangs until its timeout). That runs here, on a worker thread, so the
// event loop keeps serving everyone else meanwhile; the answers go back to the loop.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/event_loop.h"
#include "kernel/pod_target.h"

namespace fl::daemon {

class PodResolver {
 public:
  explicit PodResolver(EventLoop& loop);
  // Waits for the crictl in progress (bounded by its timeout); queued jobs are dropped.
  ~PodResolver();
  PodResolver(const PodResolver&) = delete;
  PodResolver& operator=(const PodResolver&) = delete;

  // Asks crictl about every "NAMESPACE/NAME" in pods, one after the other on the worker, then
  // runs done with the answers on the loop thread. Jobs run in the order they were asked.
  // False, and nothing queued, when kMaxQueued jobs already wait: each may take crictl's
  // timeout per pod, so an unbounded queue would let one client delay every pod: target of the
  // node for as long as it likes.
  bool resolve(std::vector<std::string> pods, std::function<void(kernel::PodAnswers)> done);
  static constexpr size_t kMaxQueued = 16;

  // "NAMESPACE/NAME" of every pod: target among targets, each once.
  static std::vector<std::string> pod_names(const std::vector<core::Target>& targets);

 private:
  struct Job {
    std::vector<std::string> pods;
    std::function<void(kernel::PodAnswers)> done;
  };
  void run();

  EventLoop& loop_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace fl::daemon
