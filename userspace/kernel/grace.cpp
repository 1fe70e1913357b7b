#include "kernel/grace.h"

#include <unistd.h>

#include <bpf/bpf.h>
#include <spdlog/spdlog.h>

namespace fl::kernel {

Result<std::unique_ptr<GracePeriod>> GracePeriod::create() {
  std::unique_ptr<GracePeriod> g(new GracePeriod());
  g->inner_fd_ = bpf_map_create(BPF_MAP_TYPE_ARRAY, "fl_grace_in", 4, 4, 1, nullptr);
  if (g->inner_fd_ < 0) return Error::sys(Errc::kernel_error, "create grace-period map", errno);
  LIBBPF_OPTS(bpf_map_create_opts, opts, .inner_map_fd = static_cast<__u32>(g->inner_fd_));
  g->outer_fd_ = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "fl_grace", 4, 4, 1, &opts);
  if (g->outer_fd_ < 0) return Error::sys(Errc::kernel_error, "create grace-period map-in-map", errno);
  g->thread_ = std::thread([p = g.get()] { p->run(); });
  return g;
}

GracePeriod::~GracePeriod() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (outer_fd_ >= 0) close(outer_fd_);
  if (inner_fd_ >= 0) close(inner_fd_);
}

void GracePeriod::request() {
  {
    std::lock_guard lk(mu_);
    pending_ = true;
  }
  cv_.notify_one();
}

bool GracePeriod::wait(uint64_t stamp, std::chrono::milliseconds timeout) {
  if (passed(stamp)) return true;
  request();
  std::unique_lock lk(mu_);
  return done_cv_.wait_for(lk, timeout, [&] { return passed(stamp) || stop_; }) && passed(stamp);
}

void GracePeriod::run() {
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return pending_ || stop_; });
      if (stop_) return;
      pending_ = false;
    }
    // Everything stamped up to `covered` was retired before this point, hence before the grace
    // period that the update below waits for.
    uint64_t covered = epoch_.fetch_add(1, std::memory_order_seq_cst);
    uint32_t key = 0;
    uint32_t val = static_cast<uint32_t>(inner_fd_);
    if (bpf_map_update_elem(outer_fd_, &key, &val, BPF_ANY) != 0) {
      // Without proof of a grace period nothing is released; retry on the next request.
      spdlog::error("grace period: map-in-map update failed: {}", strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      std::lock_guard lk(mu_);
      pending_ = true;
      continue;
    }
    completed_.store(covered, std::memory_order_release);
    {
      std::lock_guard lk(mu_);
    }
    done_cv_.notify_all();
  }
}

}  // namespace fl::kernel
