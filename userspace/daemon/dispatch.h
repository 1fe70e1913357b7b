// One request line in, one reply line out: protocol v1 on top of the Engine. Authorisation is
// per operation: apply, heal and reset need root or the faultline group.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "daemon/engine.h"
#include "daemon/history.h"
#include "daemon/pod_resolver.h"
#include "daemon/policy.h"
#include "daemon/server.h"
#include "daemon/watch.h"
#include "protocol/protocol.h"

namespace fl::daemon {

class Dispatcher {
 public:
  // on_change runs after every apply/heal so the owner can re-arm the expiry timer. Refused
  // mutating requests are reported to events (applies and ends are the engine's to report).
  Dispatcher(Engine& engine, std::function<void()> on_change, EventBus* events = nullptr);
  // Serve `events` from history and `events --follow`/`wait` through watch; without them those
  // ops answer that the daemon keeps no history.
  void set_history(const History* h) { history_ = h; }
  void set_watch(Watch* w) { watch_ = w; }
  // How a request is answered later, when it has to wait for something off the loop: the
  // server's defer() and deliver().
  struct Later {
    std::function<void(uint64_t client)> defer;
    std::function<bool(uint64_t client, std::string reply)> deliver;
    std::function<bool(uint64_t client)> connected;
  };
  // With these, an apply or reset naming pod: targets asks crictl on the resolver's thread and
  // runs once the answers are back; without, crictl runs inline.
  void set_pod_resolver(PodResolver* r, Later later) {
    resolver_ = r;
    later_ = std::move(later);
  }
  // The operator's limits on what clients may ask for; shown by status.
  void set_policy(const Policy& p) { policy_ = p; }
  // An empty string: the reply comes later (Server::send, or Server::deliver).
  std::string handle(const Peer& peer, std::string_view line);

 private:
  std::string answer(const Peer& peer, const proto::Request& req);
  static std::string bounded(std::string reply, uint64_t id);
  // True if the request was deferred until crictl has answered for its pod: targets.
  // A refusal when too many requests already wait for crictl.
  Result<bool> defer_for_pods(const Peer& peer, const proto::Request& req, const std::vector<core::Target>& targets);
  Result<nlohmann::json> dispatch(const Peer& peer, const proto::Request& req, bool* deferred);
  Result<nlohmann::json> events(const Peer& peer, const proto::Request& req);
  Result<nlohmann::json> wait(const Peer& peer, const proto::Request& req, bool* deferred);
  Engine& engine_;
  std::function<void()> on_change_;
  EventBus* events_;
  const History* history_ = nullptr;
  Watch* watch_ = nullptr;
  PodResolver* resolver_ = nullptr;
  Later later_;
  Policy policy_;
  uint64_t started_ns_;
};

}  // namespace fl::daemon
