#include "daemon/watch.h"

#include <spdlog/spdlog.h>

#include "protocol/protocol.h"

namespace fl::daemon {

using json = nlohmann::json;

Watch::~Watch() {
  for (auto& [key, w] : waiters_)
    if (w.timer) loop_.cancel_timer(w.timer);
}

Status Watch::follow(uint64_t client, uint64_t request_id) {
  if (!followers_.count(client) && followers_.size() >= kMaxFollowers)
    return make_error(Errc::resource_exhausted,
                      "events --follow: " + std::to_string(kMaxFollowers) + " clients follow already");
  followers_[client] = request_id;
  if (io_.hold) io_.hold(client, true);
  return {};
}

Status Watch::wait(uint64_t client, uint64_t request_id, uint64_t fault_id, std::chrono::milliseconds timeout) {
  size_t mine = 0;
  for (const auto& [key, w] : waiters_) mine += w.client == client;
  if (mine >= kMaxWaitsPerClient)
    return make_error(Errc::resource_exhausted,
                      "wait: this connection waits " + std::to_string(mine) + " times already (at most " +
                          std::to_string(kMaxWaitsPerClient) + ")");
  if (waiters_.size() >= kMaxWaits)
    return make_error(Errc::resource_exhausted, "wait: " + std::to_string(kMaxWaits) + " waits are pending already");
  const uint64_t key = next_key_++;
  waiters_[key] = Waiter{client, request_id, fault_id};
  if (io_.hold) io_.hold(client, true);
  if (timeout.count() <= 0) return {};
  auto t = loop_.add_timer(timeout, std::chrono::milliseconds(0), [this, key, timeout] {
    auto it = waiters_.find(key);
    if (it == waiters_.end()) return;
    Waiter w = it->second;
    waiters_.erase(it);
    if (io_.send)
      io_.send(w.client, proto::reply_error(w.request_id, make_error(Errc::timeout,
                                                                      "fault " + std::to_string(w.fault_id) +
                                                                          " is still active after " +
                                                                          std::to_string(timeout.count()) + " ms")));
    release(w.client);
  });
  if (!t.ok()) {
    waiters_.erase(key);
    release(client);
    return t.take_error().wrap("wait");
  }
  waiters_[key].timer = *t;
  return {};
}

void Watch::on_event(const Event& e) {
  if (!followers_.empty()) {
    const json wire = json::array({e.to_json()});
    // send() never closes a client inside the call, but one it refuses is let go here.
    for (auto it = followers_.begin(); it != followers_.end();) {
      if (io_.send && !io_.send(it->first, proto::reply_ok(it->second, json{{"events", wire}})))
        it = followers_.erase(it);
      else
        ++it;
    }
  }
  const bool ended = e.type == EventType::healed || e.type == EventType::expired || e.type == EventType::gone;
  if (!ended || !e.fault_id) return;
  std::vector<Waiter> done;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.fault_id == e.fault_id) {
      done.push_back(it->second);
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& w : done) {
    if (w.timer) loop_.cancel_timer(w.timer);
    if (io_.send) io_.send(w.client, proto::reply_ok(w.request_id, json{{"fault", e.fault}}));
    release(w.client);
  }
}

void Watch::release(uint64_t client) {
  if (followers_.count(client)) return;
  for (const auto& [key, w] : waiters_)
    if (w.client == client) return;
  if (io_.hold) io_.hold(client, false);
}

void Watch::forget(uint64_t client) {
  followers_.erase(client);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.client == client) {
      if (it->second.timer) loop_.cancel_timer(it->second.timer);
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace fl::daemon
