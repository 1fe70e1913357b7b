// One faultctl command sent to the daemons of many hosts (--host/--hosts). An apply is all or
// nothing: every host is reached (and, for a partition narrowed to each host, asked for its
// addresses) before any is changed, and a fault applied on some hosts is healed there, by the id
// that host gave it, when another refuses or is lost. Other commands are asked of every host and
// answered host by host.
//
// Hosts are reached through a Connector (host_connection.h): ssh in faultctl, a fake in the unit
// tests. What is printed goes through FanOutOutput, so the caller keeps its own stdout checks and
// -o json error object.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/fanout.h"
#include "cli/host_connection.h"
#include "core/result.h"

namespace fl::cli {

// The exit statuses a fan-out returns; faultctl's main asserts its own list agrees.
inline constexpr int kFanOutOk = 0;
inline constexpr int kFanOutRefused = 1;
inline constexpr int kFanOutUnreachable = 3;

// Reply text for a host that a narrowed partition leaves out.
inline constexpr const char* kSkipped = "none of its addresses is in a side";

struct FanOutOutput {
  // Writes to stdout: 0, or the exit status of a write that failed.
  std::function<int(const std::string& text)> out;
  // A line on stderr that is not a failure (what an applied fault resets when it ends).
  std::function<void(const std::string& text)> note;
  // A failure, on stderr (and in -o json's error object): `foreign` when the message carries a
  // daemon's or ssh's text, which is shown on one line with nothing that drives a terminal.
  // Returns `code`.
  std::function<int(int code, const std::string& message, bool foreign)> fail;
  // For commands other than apply: the part of a reply that is shown (-o json), and its text.
  std::function<Result<nlohmann::json>(const std::string& op, const nlohmann::json& result)> shown_part;
  std::function<Result<std::string>(const Invocation& inv, const std::string& op, const nlohmann::json& result)>
      render;
};

// Runs inv (an apply when inv.fault is set) on every host, at most kMaxParallelHosts at a time,
// and returns the exit status: unreachable when any host was, else refused when any refused.
// `narrow`: false for --no-narrow. The daemon's socket on a host is its own socket= or else
// inv.socket.
int fan_out(const Invocation& inv, const std::vector<Host>& hosts, bool narrow, const Connector& connector,
            const FanOutOutput& output);

}  // namespace fl::cli
