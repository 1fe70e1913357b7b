// The daemon's log lines. Most of them quote names that other people chose: an interface in a
// namespace someone else controls, a pod, a fault's name, a client's malformed request. One
// formatter escapes every message (core/printable.h) so no call site can forget to, and each
// record stays one line: nothing in a name can drive the terminal of whoever runs
// `journalctl -f`, or forge a log line of its own.
#pragma once

#include <memory>
#include <string>

#include <spdlog/formatter.h>

namespace fl::daemon {

// A spdlog formatter: `pattern` as spdlog::pattern_formatter has it, applied to the message
// with C0, DEL, C1, bidi controls and invalid UTF-8 escaped as \xNN.
std::unique_ptr<spdlog::formatter> escaping_formatter(const std::string& pattern);

}  // namespace fl::daemon
