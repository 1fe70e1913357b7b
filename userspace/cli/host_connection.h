// One host's daemon as the fan-out sees it: reach it, then ask and await each reply in turn.
// faultctl reaches hosts through ssh (tunnel.h, SshConnection); the unit tests through a fake,
// so the transaction across hosts (transaction.h) runs without ssh or daemons.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace fl::cli {

struct Host;

class HostConnection {
 public:
  virtual ~HostConnection() = default;

  // Reaches the daemon's socket on the host. A failure means the host is unreachable: nothing
  // was sent. Errors carry the reason, not the host's name (the caller adds it).
  virtual Status connect() = 0;
  // Sends one request and returns the reply's "result", or the error. After a failure, lost()
  // tells a connection that broke or timed out (the daemon may or may not have acted on the
  // request) from the daemon's own refusal or a reply that made no sense.
  virtual Result<nlohmann::json> call(const std::string& op, const nlohmann::json& params) = 0;
  virtual bool lost() const = 0;
};

// Makes the (not yet connected) connection to `host`, whose daemon listens on `socket` there.
// Called from several threads at once, one call per host; dropping the connection closes it.
using Connector = std::function<std::unique_ptr<HostConnection>(const Host& host, const std::string& socket)>;

}  // namespace fl::cli
