// Wire protocol v1: one JSON object per line each way, over the daemon's Unix socket.
// Shared by faultlined and faultctl; see docs/PROTOCOL.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/flow_match.h"
#include "core/model.h"
#include "core/result.h"
#include "protocol/ops.h"

namespace fl::proto {

using json = nlohmann::json;

inline constexpr int kVersion = 1;
// A request line longer than this is refused. Room for the largest fault validate() accepts:
// 65,536 CIDRs of up to 46 bytes each as JSON ("ffff:...:ffff/128",) is about 3 MiB.
inline constexpr size_t kMaxLine = 4u << 20;
inline constexpr size_t kMaxReply = 16u << 20;  // a reply line longer than this is refused by clients

// Operations: protocol/ops.h. Read-only ones may be allowed to any local user; mutating ones
// need root or the faultline group.
bool op_is_mutating(std::string_view op);  // kOpTable's mutating column; false for an unknown op

struct Request {
  uint64_t id = 0;
  std::string op;
  Op kind = Op::hello;  // op, as parse_request found it in kOpTable
  json body;  // the whole request object
};

// Parses and checks the envelope: a JSON object, "id" a non-negative integer, "op" a known
// string. On error, *id_out receives the id when one could be read (so the reply can carry it).
Result<Request> parse_request(std::string_view line, std::optional<uint64_t>* id_out);

// Reply lines, without the trailing newline.
std::string reply_ok(uint64_t id, const json& result);
std::string reply_error(std::optional<uint64_t> id, const Error& e);  // id null when unknown

// FaultSpec <-> JSON (the "fault" member of an apply request). from_json checks types and
// parses every string with core/parse.h, naming the field in errors ("fault.sides[1].cidrs[0]:
// ..."); it does not run core::validate. It does run core::normalize (core/normalize.h), so a
// loss or shaping request that names no match.direction gets egress. A matrix pair names its
// sides ("from": "eu"); an unnamed side is found by its core::side_name, "s<index+1>". Errors
// blame the member in Error::field ("fault.match.sport"), which reply_error sends as "field".
// to_json emits "shape", "pairs" and "replace_root" only for shaping kinds (or when set), so
// requests of the other kinds stay what daemons before shaping accept; from_json(to_json(x)) == x for every spec
// whose pairs index existing sides.
json fault_spec_to_json(const core::FaultSpec& spec);
Result<core::FaultSpec> fault_spec_from_json(const json& j);

// ResetSpec <-> JSON (the "reset" member of a reset request):
//   {"match": {"src", "dst", "proto", "sport", "dport"}, "exempt": [...], "default_exempt": bool,
//    "all": bool, "targets": [...]}
// every member optional, each as in a fault. Strict like the fault codec; "direction" and
// "new_only" get an error that says why a reset has neither. It does not run
// core::validate_reset. from_json(to_json(x)) == x for every spec with direction both and
// new_only false.
json reset_spec_to_json(const core::ResetSpec& spec);
Result<core::ResetSpec> reset_spec_from_json(const json& j);

// One profile, as the "shape" member of a FaultSpec or a pair: every member, in its wire units
// (delay_us, rate_bps, ...). `path` prefixes errors.
json shape_profile_to_json(const core::ShapeProfile& p);
Result<core::ShapeProfile> shape_profile_from_json(const json& j, const std::string& path);

// Reply parsing on the client side: {"id":N,"ok":true,"result":...} -> result, or the Error
// carried by an ok:false reply (code mapped back with errc_from_name).
Result<json> parse_reply(std::string_view line, uint64_t expected_id);

std::optional<Errc> errc_from_name(std::string_view name);

}  // namespace fl::proto
