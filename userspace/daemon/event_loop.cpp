#include "daemon/event_loop.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <exception>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

namespace fl::daemon {

namespace {

constexpr uint64_t kWakeToken = 0;  // real watches start at 1
constexpr int kMaxEvents = 64;

timespec to_timespec(std::chrono::milliseconds d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d - s);
  return timespec{static_cast<time_t>(s.count()), static_cast<long>(ns.count())};
}

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd_ < 0) return Error::sys(Errc::internal, "epoll_create1", errno);
  loop->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->wake_fd_ < 0) return Error::sys(Errc::internal, "eventfd", errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeToken;
  if (epoll_ctl(loop->epfd_, EPOLL_CTL_ADD, loop->wake_fd_, &ev) < 0)
    return Error::sys(Errc::internal, "epoll_ctl add eventfd", errno);
  return loop;
}

EventLoop::~EventLoop() {
  for (auto& [id, fd] : timers_) close(fd);
  for (auto& [signo, fd] : signals_) close(fd);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epfd_ >= 0) close(epfd_);
}

Status EventLoop::add(int fd, uint32_t events, Callback cb) {
  if (by_fd_.count(fd))
    return make_error(Errc::already_exists, "fd " + std::to_string(fd) + " is already watched");
  uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0)
    return Error::sys(Errc::internal, "epoll_ctl add fd " + std::to_string(fd), errno);
  by_token_.emplace(token, std::make_shared<Watch>(Watch{fd, std::move(cb)}));
  by_fd_.emplace(fd, token);
  return {};
}

Status EventLoop::modify(int fd, uint32_t events) {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end())
    return make_error(Errc::not_found, "fd " + std::to_string(fd) + " is not watched");
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = it->second;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0)
    return Error::sys(Errc::internal, "epoll_ctl mod fd " + std::to_string(fd), errno);
  return {};
}

void EventLoop::remove(int fd) {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return;
  by_token_.erase(it->second);
  by_fd_.erase(it);
  // EBADF/ENOENT mean the caller closed fd first, which already dropped the registration.
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

Result<EventLoop::TimerId> EventLoop::add_timer(std::chrono::milliseconds first,
                                                std::chrono::milliseconds interval,
                                                std::function<void()> cb) {
  if (first.count() < 0 || interval.count() < 0)
    return make_error(Errc::invalid_argument, "timer durations must not be negative");
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return Error::sys(Errc::internal, "timerfd_create", errno);
  itimerspec spec{};
  spec.it_value = to_timespec(first);
  // An all-zero it_value disarms a timerfd; "fire now" has to be spelled as 1 ns.
  if (first.count() == 0) spec.it_value.tv_nsec = 1;
  spec.it_interval = to_timespec(interval);
  if (timerfd_settime(fd, 0, &spec, nullptr) < 0) {
    int err = errno;
    close(fd);
    return Error::sys(Errc::internal, "timerfd_settime", err);
  }
  TimerId id = next_timer_++;
  bool one_shot = interval.count() == 0;
  auto fn = std::make_shared<std::function<void()>>(std::move(cb));
  Status st = add(fd, EPOLLIN, [this, id, fd, one_shot, fn](uint32_t) {
    uint64_t expirations = 0;
    if (read(fd, &expirations, sizeof expirations) != sizeof expirations) return;
    // Cancel first: it closes the fd, and the callback may legitimately add a timer that gets
    // the same number. fn stays alive through this lambda's capture, which the dispatcher holds.
    if (one_shot) cancel_timer(id);
    (*fn)();
  });
  if (!st.ok()) {
    close(fd);
    return st.take_error().wrap("add timer");
  }
  timers_.emplace(id, fd);
  return id;
}

void EventLoop::cancel_timer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  remove(it->second);
  close(it->second);
  timers_.erase(it);
}

Status EventLoop::on_signal(int signo, std::function<void()> cb) {
  if (signals_.count(signo))
    return make_error(Errc::already_exists, "signal " + std::to_string(signo) + " already handled");
  sigset_t set;
  sigemptyset(&set);
  if (sigaddset(&set, signo) < 0)
    return Error::sys(Errc::invalid_argument, "signal " + std::to_string(signo), errno);
  // Block before creating the signalfd so no instance is delivered the default way in between.
  int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (rc != 0) return Error::sys(Errc::internal, "pthread_sigmask", rc);
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return Error::sys(Errc::internal, "signalfd " + std::to_string(signo), errno);
  Status st = add(fd, EPOLLIN, [fd, fn = std::move(cb)](uint32_t) {
    signalfd_siginfo info;
    bool got = false;
    while (read(fd, &info, sizeof info) == sizeof info) got = true;
    if (got) fn();
  });
  if (!st.ok()) {
    close(fd);
    return st.take_error().wrap("signal " + std::to_string(signo));
  }
  signals_.emplace(signo, fd);
  return {};
}

void EventLoop::dispatch(uint64_t token, uint32_t events) {
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return;  // removed earlier in this batch
  // Hold a reference: the callback may remove its own watch, which would otherwise destroy the
  // std::function while it runs.
  std::shared_ptr<Watch> w = it->second;
  try {
    w->cb(events);
  } catch (const std::exception& e) {
    spdlog::error("event loop: callback for fd {} threw: {}", w->fd, e.what());
  } catch (...) {
    spdlog::error("event loop: callback for fd {} threw a non-standard exception", w->fd);
  }
}

void EventLoop::run() {
  std::array<epoll_event, kMaxEvents> events;
  while (!stop_.load(std::memory_order_acquire)) {
    int n = epoll_wait(epfd_, events.data(), kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Only a programming error (bad epfd, bad pointer) gets here; spinning would hide it.
      spdlog::critical("event loop: epoll_wait: {}", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n && !stop_.load(std::memory_order_acquire); ++i) {
      if (events[i].data.u64 == kWakeToken) {
        uint64_t v;
        while (read(wake_fd_, &v, sizeof v) == sizeof v) {
        }
        run_posted();
        continue;
      }
      dispatch(events[i].data.u64, events[i].events);
    }
  }
  stop_.store(false, std::memory_order_release);
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = write(wake_fd_, &one, sizeof one);
}

void EventLoop::drain_posted() {
  // Posted functions may post more; a few rounds take those too without looping forever.
  for (int round = 0; round < 4; ++round) {
    {
      std::lock_guard lock(posted_mu_);
      if (posted_.empty()) return;
    }
    run_posted();
  }
}

void EventLoop::run_posted() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) {
    if (stop_.load(std::memory_order_acquire)) {
      // Not run now, not lost: the next run() picks them up.
      std::lock_guard lock(posted_mu_);
      posted_.insert(posted_.begin(), std::make_move_iterator(batch.begin() + (&fn - batch.data())),
                     std::make_move_iterator(batch.end()));
      uint64_t one = 1;
      [[maybe_unused]] ssize_t r = write(wake_fd_, &one, sizeof one);
      return;
    }
    try {
      fn();
    } catch (const std::exception& e) {
      spdlog::error("event loop: posted function threw: {}", e.what());
    } catch (...) {
      spdlog::error("event loop: posted function threw a non-standard exception");
    }
  }
}

void EventLoop::stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: a wake-up is pending anyway.
  [[maybe_unused]] ssize_t r = write(wake_fd_, &one, sizeof one);
}

}  // namespace fl::daemon
