// The daemon's single epoll loop. Everything that waits (client sockets, timers, signals) is an
// fd in one epoll set, so what the loop owns has one thread of control and no locks. Work that
// may take long (kernel work, crictl) runs on worker threads and comes back through post().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>
#include <unordered_map>

#include "core/result.h"

namespace fl::daemon {

// Single-threaded: every member except stop() and post() must be called on the thread that runs
// run(), or while no thread is running it. Callbacks may throw; the loop logs and carries on, because one
// faulty handler must not take the daemon (and the kernel lease it renews) down with it.
class EventLoop {
 public:
  static Result<std::unique_ptr<EventLoop>> create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  using Callback = std::function<void(uint32_t epoll_events)>;

  // Level-triggered. The loop does not own fd; remove() it before closing it.
  Status add(int fd, uint32_t events, Callback cb);
  Status modify(int fd, uint32_t events);
  // Safe from inside any callback, including the one running for fd: events already fetched for
  // a removed fd are dropped, even if its number is reused by add() in the same batch.
  void remove(int fd);

  using TimerId = uint64_t;  // never 0
  // CLOCK_MONOTONIC timerfd. interval 0 = one-shot, removed before its callback runs (so the
  // callback may add a new timer). Missed periods are coalesced into one call.
  Result<TimerId> add_timer(std::chrono::milliseconds first, std::chrono::milliseconds interval,
                            std::function<void()> cb);
  void cancel_timer(TimerId id);  // unknown ids are ignored; safe inside callbacks

  // Blocks signo in the calling thread and delivers it through a signalfd. Other threads must
  // block it too (create them after this call), or the kernel may deliver it to them instead.
  // Several pending instances of one signal produce one call.
  Status on_signal(int signo, std::function<void()> cb);

  // Runs fn on the loop thread, after the events already fetched. Safe from any thread: how a
  // worker hands its result back. fn posted from inside a posted fn runs after one more round of
  // epoll, so re-posting yields to every ready fd. Functions still queued at destruction are
  // dropped without running.
  void post(std::function<void()> fn);

  // Runs what was posted and not run, on the calling thread, while no thread runs the loop: after
  // run() has returned, what workers handed back before they stopped (a late reply, an event
  // for the history) is not lost.
  void drain_posted();

  // Dispatches until stop(). A stop() that arrives before run() makes that run() return at once.
  void run();
  // Thread-safe and async-signal-safe: an atomic store and an eventfd write.
  void stop();

 private:
  struct Watch {
    int fd;
    Callback cb;
  };

  EventLoop() = default;
  void dispatch(uint64_t token, uint32_t events);
  void run_posted();

  int epfd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  // epoll_event.data carries a token, never the fd: a token is never reused, so a stale event
  // cannot reach a callback registered later under the same fd number.
  uint64_t next_token_ = 1;
  std::unordered_map<uint64_t, std::shared_ptr<Watch>> by_token_;
  std::unordered_map<int, uint64_t> by_fd_;
  TimerId next_timer_ = 1;
  std::unordered_map<TimerId, int> timers_;  // id -> timerfd (owned)
  std::unordered_map<int, int> signals_;     // signo -> signalfd (owned)
};

}  // namespace fl::daemon
