// One request line in, one reply line out: protocol v1 on top of the Engine. Authorisation is
// per operation: apply, heal and reset need root or the faultline group.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "daemon/engine.h"
#include "daemon/server.h"

namespace fl::daemon {

class Dispatcher {
 public:
  // on_change runs after every apply/heal so the owner can re-arm the expiry timer.
  Dispatcher(Engine& engine, std::function<void()> on_change);
  std::string handle(const Peer& peer, std::string_view line);

 private:
  Result<nlohmann::json> dispatch(const Peer& peer, const std::string& op, const nlohmann::json& req);
  Engine& engine_;
  std::function<void()> on_change_;
  uint64_t started_ns_;
};

}  // namespace fl::daemon
