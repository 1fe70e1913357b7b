// faultctl events and faultctl wait: the requests the daemon answers when something happens.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/client.h"
#include "core/result.h"

namespace fl::cli {

// One event as a line: "2026-12-03T03:10:00.123Z #12 applied fault 3 (split) partition on host by uid 0 pid 812 (4.1 ms)".
std::string format_event(const nlohmann::json& e);

struct EventsOptions {
  std::optional<uint64_t> since;  // only events after this seq
  std::optional<uint64_t> limit;  // at most this many of the recorded ones
  bool follow = false;            // then every new one, until interrupted or the daemon goes
  bool json = false;              // one JSON object per line instead of text
};
// Prints the recorded events, then (follow) the new ones as they come. An error is the
// daemon's or the connection's; a daemon that stops while we follow is reported as such.
Status run_events(Client& client, const EventsOptions& opts, std::ostream& out);

struct WaitOptions {
  std::string fault;                               // id or name
  std::optional<std::chrono::milliseconds> timeout;  // none: as long as it takes
  bool json = false;
};
// Returns once the fault has ended and prints how ("fault 3 (split) expired at ..."), or the
// daemon's not_found / timeout error.
Status run_wait(Client& client, const WaitOptions& opts, std::ostream& out);

}  // namespace fl::cli
