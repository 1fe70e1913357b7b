// Human-readable output of daemon replies. Pure functions of the reply JSON: a member that is
// missing or of an unexpected type (an older or newer daemon) shows as "-", never throws.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace fl::cli {

// "4m59s", "1h", "1h0m1s", "850ms", "0s": seconds are truncated, not rounded, so a countdown
// never shows more time than is left.
std::string human_duration(int64_t ms);

// ID NAME KIND TARGETS EXPIRES MATCHED DROPPED EXEMPT, one row per FaultStatus in `faults`
// (a JSON array), columns padded to their widest cell; always ends in '\n'. When a shaping
// fault is among them, a last column DETAILS says what each shaping fault does ("delay 100ms
// jitter 10ms", "3 sides, 6 pairs"; "-" for the other kinds).
std::string format_fault_table(const nlohmann::json& faults);

// One FaultStatus as "key: value" lines, values aligned. A shaping fault shows its profile, a
// matrix its sides and every pair ("eu -> us: delay 80ms").
std::string format_fault_detail(const nlohmann::json& fault);

// The reset op's result: TARGET MATCHED DESTROYED GONE, one row per entry of "per_target" and a
// total row when there is more than one; always ends in '\n'.
std::string format_reset_result(const nlohmann::json& result);

// An apply's reply for people: 'applied fault 7 "split": partition on host, netns:a, ends
// 2026-05-01 12:05:00 UTC (in 5m)'. Scripts take the id from -o json (the fault object).
std::string format_applied(const nlohmann::json& fault);

// For an apply with reset: "reset 5 TCP connections\n" from the fault object's "reset" member
// ({"destroyed": N, "gone": N}), or "" when it has none. Meant for stderr.
std::string format_apply_reset(const nlohmann::json& fault);

// The status op's result, for people.
std::string format_status(const nlohmann::json& status);

// Pretty JSON that cannot throw on invalid UTF-8 in user-supplied strings; ends in '\n'.
std::string format_json(const nlohmann::json& j);

}  // namespace fl::cli
