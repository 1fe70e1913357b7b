// Requests answered later: `events --follow` gets every new event pushed as it happens, and
// `wait` is answered when its fault ends or its time runs out. Each is tied to one client
// connection and forgotten when that connection closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "daemon/event_loop.h"
#include "daemon/events.h"

namespace fl::daemon {

class Watch {
 public:
  // How lines reach clients: the server's send() and hold().
  struct Io {
    std::function<bool(uint64_t client, std::string line)> send;
    std::function<void(uint64_t client, bool held)> hold;
  };

  explicit Watch(EventLoop& loop) : loop_(loop) {}
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  void set_io(Io io) { io_ = std::move(io); }

  // Each wait with a timeout holds a timer (a descriptor) in a root daemon that any local
  // client can ask: bounded per client and in all, refused beyond (resource_exhausted).
  static constexpr size_t kMaxWaitsPerClient = 16;
  static constexpr size_t kMaxWaits = 256;
  static constexpr size_t kMaxFollowers = 64;

  // Every event from now on goes to this client as a reply to request_id.
  Status follow(uint64_t client, uint64_t request_id);
  // The client gets a reply to request_id when fault_id ends (healed, expired, gone), or a
  // timeout error after timeout (0: no limit).
  Status wait(uint64_t client, uint64_t request_id, uint64_t fault_id, std::chrono::milliseconds timeout);
  // An EventBus listener.
  void on_event(const Event& e);
  // The server's close hook.
  void forget(uint64_t client);

  size_t followers() const { return followers_.size(); }
  size_t waiters() const { return waiters_.size(); }

 private:
  struct Waiter {
    uint64_t client;
    uint64_t request_id;
    uint64_t fault_id;
    EventLoop::TimerId timer = 0;
  };
  void release(uint64_t client);  // unhold if nothing else of this client is pending

  EventLoop& loop_;
  Io io_;
  std::map<uint64_t, uint64_t> followers_;  // client -> request id
  std::map<uint64_t, Waiter> waiters_;      // by a key of ours
  uint64_t next_key_ = 1;
};

}  // namespace fl::daemon
