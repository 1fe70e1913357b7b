#include "daemon/pod_resolver.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace fl::daemon {

PodResolver::PodResolver(EventLoop& loop) : loop_(loop), thread_([this] { run(); }) {}

PodResolver::~PodResolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    jobs_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

bool PodResolver::resolve(std::vector<std::string> pods, std::function<void(kernel::PodAnswers)> done) {
  {
    std::lock_guard lock(mu_);
    if (jobs_.size() >= kMaxQueued) return false;
    jobs_.push_back(Job{std::move(pods), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

std::vector<std::string> PodResolver::pod_names(const std::vector<core::Target>& targets) {
  std::vector<std::string> out;
  for (const auto& t : targets)
    if (t.kind == core::Target::Kind::pod && std::find(out.begin(), out.end(), t.value) == out.end())
      out.push_back(t.value);
  return out;
}

void PodResolver::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    kernel::PodAnswers answers;
    const auto opts = kernel::pod_target_options();
    for (const auto& p : job.pods) {
      const size_t slash = p.find('/');
      if (slash == std::string::npos) {
        answers.emplace(p, make_error(Errc::invalid_argument, "pod:" + p + ": expected NAMESPACE/NAME"));
        continue;
      }
      answers.emplace(p, kernel::resolve_pod_uid(std::string_view(p).substr(0, slash),
                                                 std::string_view(p).substr(slash + 1), opts));
    }
    loop_.post([done = std::move(job.done), answers = std::move(answers)]() mutable { done(std::move(answers)); });
  }
}

}  // namespace fl::daemon
