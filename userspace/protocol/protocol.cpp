// Over 600 lines on purpose: the whole wire format v1 (request envelope, fault and reset
// decoders, replies) in one file, so that every key the daemon accepts and every error it names
// can be read against docs/PROTOCOL.md in one place; the op list itself is protocol/ops.h.
#include "protocol/protocol.h"

#include <chrono>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "core/parse.h"

namespace fl::proto {

namespace {

// Nothing in protocol v1 nests deeper than 5 levels. The bound keeps a hostile line of a
// million '[' from becoming a value that the daemon later copies or dumps recursively.
constexpr int kMaxDepth = 32;

// Every dump of data that came from a user replaces invalid UTF-8 instead of throwing:
// a reply must always be producible, whatever the request contained.
std::string dump_safe(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Error invalid_request(std::string msg) { return make_error(Errc::invalid_request, std::move(msg)); }

struct DepthExceeded {};

// nlohmann's parse messages start with "[json.exception.parse_error.101] " and quote the token
// read so far ("...; last read: '<token>'[; expected ...]"), which can be a whole string of up
// to 1 MiB holding any byte. Keep the position and the explanation, keep only the end of a long
// token (where the error is), and escape what is not printable ASCII.
std::string tidy_parser_message(std::string_view what) {
  if (auto pos = what.find("] "); !what.empty() && what.front() == '[' && pos != std::string_view::npos) {
    what.remove_prefix(pos + 2);
  }
  std::string text(what);
  constexpr std::string_view kLastRead = "; last read: '";
  constexpr size_t kTokenKeep = 60;
  if (auto start = text.find(kLastRead); start != std::string::npos) {
    start += kLastRead.size();
    auto expected = text.rfind("; expected ");
    size_t end = (expected != std::string::npos && expected > start) ? expected : text.size();
    if (end > start && text[end - 1] == '\'') --end;
    if (end - start > kTokenKeep + 3) text = text.substr(0, start) + "..." + text.substr(end - kTokenKeep);
  }
  std::string out;
  out.reserve(text.size());
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  // nlohmann's own texts are short; this only guards against a format we did not foresee.
  constexpr size_t kMaxMessage = 400;
  if (out.size() > kMaxMessage) out = out.substr(0, kMaxMessage) + "...";
  return out;
}

const char* type_desc(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a fractional number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::binary: return "binary data";
    case json::value_t::discarded: break;
  }
  return "an invalid value";
}

// The offending value for an error message: scalars as written (a negative id, or 2^64 which
// nlohmann reads as a double, says more than "a number"), strings quoted and cut, containers by
// kind only.
std::string describe(const json& v) {
  if (v.is_number() || v.is_boolean() || v.is_null()) return dump_safe(v);
  if (v.is_string()) return "string " + core::quote(v.get_ref<const std::string&>());
  return type_desc(v);
}

// Integers built in C++ (json(5)) are signed, parsed ones unsigned; both count when >= 0.
std::optional<uint64_t> as_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

Error field_error(const std::string& path, const std::string& what) {
  return fl::field_error(Errc::invalid_argument, path, what);
}

Error type_error(const std::string& path, const char* expected, const json& got) {
  return field_error(path, std::string("expected ") + expected + ", got " + describe(got));
}

std::string index_path(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// Strict objects: a misspelt member must not silently become a default (a typo in "one_way"
// would turn a one-way partition into a full one on a production node).
Status check_members(const json& j, const std::string& path, std::initializer_list<std::string_view> known) {
  if (!j.is_object()) return type_error(path, "an object", j);
  for (const auto& [key, value] : j.items()) {
    bool found = false;
    for (std::string_view k : known) found = found || key == k;
    if (!found) return field_error(path, "unknown field " + core::quote(key));
  }
  return {};
}

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

Result<std::string> read_string(const json& v, const std::string& path) {
  if (!v.is_string()) return type_error(path, "a string", v);
  return v.get_ref<const std::string&>();
}

Result<bool> read_bool(const json& v, const std::string& path) {
  if (!v.is_boolean()) return type_error(path, "a boolean", v);
  return v.get<bool>();
}

Result<double> read_number(const json& v, const std::string& path) {
  if (!v.is_number()) return type_error(path, "a number", v);
  return v.get<double>();
}

Result<uint64_t> read_u64(const json& v, const std::string& path) {
  auto n = as_u64(v);
  if (!n) return type_error(path, "an integer in 0..18446744073709551615", v);
  return *n;
}

// Parses an array of strings with one of core/parse.h's parsers, prefixing each error with the
// element's path.
template <typename T, typename Parse>
Result<std::vector<T>> read_parsed_array(const json& v, const std::string& path, Parse parse) {
  if (!v.is_array()) return type_error(path, "an array of strings", v);
  std::vector<T> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = index_path(path, i);
    auto s = read_string(v[i], p);
    if (!s) return s.take_error();
    auto r = parse(std::string_view(*s));
    if (!r) return r.take_error().at(p);
    out.push_back(std::move(*r));
  }
  return out;
}

Result<std::vector<std::string>> read_string_array(const json& v, const std::string& path) {
  if (!v.is_array()) return type_error(path, "an array of strings", v);
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    auto s = read_string(v[i], index_path(path, i));
    if (!s) return s.take_error();
    out.push_back(std::move(*s));
  }
  return out;
}

json cidrs_to_json(const std::vector<core::Cidr>& cidrs) {
  json a = json::array();
  for (const auto& c : cidrs) a.push_back(c.str());
  return a;
}

Status read_sides(const json& v, const std::string& path, std::vector<core::Side>& out) {
  if (!v.is_array()) return type_error(path, "an array", v);
  out.clear();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = index_path(path, i);
    const json& js = v[i];
    FL_TRY(check_members(js, p, {"name", "cidrs"}));
    core::Side side;
    if (const json* n = member(js, "name")) {
      auto name = read_string(*n, p + ".name");
      if (!name) return name.take_error();
      // Empty means "unnamed": validate() names it s<index+1>.
      if (!name->empty()) FL_TRY_AT(core::check_name(*name, "side name"), p + ".name");
      side.name = std::move(*name);
    }
    if (const json* c = member(js, "cidrs")) {
      auto cidrs = read_parsed_array<core::Cidr>(*c, p + ".cidrs", core::parse_cidr);
      if (!cidrs) return cidrs.take_error();
      side.cidrs = std::move(*cidrs);
    }
    out.push_back(std::move(side));
  }
  return {};
}

Status read_loss(const json& v, const std::string& path, core::FaultSpec& spec) {
  FL_TRY(check_members(v, path, {"percent", "correlation", "seed"}));
  if (const json* p = member(v, "percent")) {
    auto r = read_number(*p, path + ".percent");
    if (!r) return r.take_error();
    spec.loss_percent = *r;
  }
  if (const json* c = member(v, "correlation")) {
    auto r = read_number(*c, path + ".correlation");
    if (!r) return r.take_error();
    spec.correlation_percent = *r;
  }
  if (const json* s = member(v, "seed"); s && !s->is_null()) {
    auto r = read_u64(*s, path + ".seed");
    if (!r) return r.take_error();
    spec.seed = *r;
  }
  return {};
}

// Unsigned integer members that land in narrower or signed fields: the bound keeps the
// conversion defined; validate() enforces the real limits.
Result<uint64_t> read_u64_max(const json& v, const std::string& path, uint64_t max) {
  auto r = read_u64(v, path);
  if (!r) return r.take_error();
  if (*r > max) return field_error(path, std::to_string(*r) + " is out of range (at most " + std::to_string(max) + ")");
  return *r;
}

Status read_shape(const json& v, const std::string& path, core::ShapeProfile& p) {
  FL_TRY(check_members(v, path,
                       {"delay_us", "jitter_us", "delay_correlation", "distribution", "rate_bps", "burst_bytes",
                        "loss_percent", "loss_correlation", "corrupt_percent", "duplicate_percent",
                        "reorder_percent", "reorder_gap"}));
  constexpr uint64_t kMaxUs = static_cast<uint64_t>(std::numeric_limits<std::chrono::microseconds::rep>::max());
  for (auto [key, dest] : {std::pair{"delay_us", &p.delay}, std::pair{"jitter_us", &p.jitter}}) {
    if (const json* d = member(v, key)) {
      auto r = read_u64_max(*d, path + "." + key, kMaxUs);
      if (!r) return r.take_error();
      *dest = std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(*r));
    }
  }
  for (auto [key, dest] : {std::pair{"delay_correlation", &p.delay_correlation},
                           std::pair{"loss_percent", &p.loss_percent},
                           std::pair{"loss_correlation", &p.loss_correlation},
                           std::pair{"corrupt_percent", &p.corrupt_percent},
                           std::pair{"duplicate_percent", &p.duplicate_percent},
                           std::pair{"reorder_percent", &p.reorder_percent}}) {
    if (const json* n = member(v, key)) {
      auto r = read_number(*n, path + "." + key);
      if (!r) return r.take_error();
      *dest = *r;
    }
  }
  if (const json* d = member(v, "distribution")) {
    const std::string pp = path + ".distribution";
    auto s = read_string(*d, pp);
    if (!s) return s.take_error();
    auto r = core::parse_distribution(*s);
    if (!r) return r.take_error().at(pp);
    p.distribution = *r;
  }
  if (const json* r = member(v, "rate_bps")) {
    auto n = read_u64(*r, path + ".rate_bps");
    if (!n) return n.take_error();
    p.rate_bps = *n;
  }
  for (auto [key, dest] : {std::pair{"burst_bytes", &p.burst_bytes}, std::pair{"reorder_gap", &p.reorder_gap}}) {
    if (const json* n = member(v, key)) {
      auto r = read_u64_max(*n, path + "." + key, std::numeric_limits<uint32_t>::max());
      if (!r) return r.take_error();
      *dest = static_cast<uint32_t>(*r);
    }
  }
  return {};
}

// What a pair's "from" and "to" are matched against: validate()'s names, so "s1" finds an
// unnamed first side.
std::string effective_side_name(const std::vector<core::Side>& sides, size_t i) { return core::side_name(sides, i); }

Status read_pairs(const json& v, const std::string& path, const std::vector<core::Side>& sides,
                  std::vector<core::MatrixPair>& out) {
  if (!v.is_array()) return type_error(path, "an array", v);
  out.clear();
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = index_path(path, i);
    const json& jp = v[i];
    FL_TRY(check_members(jp, p, {"from", "to", "shape"}));
    core::MatrixPair pair;
    for (auto [key, dest] : {std::pair{"from", &pair.from}, std::pair{"to", &pair.to}}) {
      const std::string pp = p + "." + key;
      const json* n = member(jp, key);
      if (n == nullptr) return field_error(p, std::string("missing field \"") + key + "\" (a side name)");
      auto name = read_string(*n, pp);
      if (!name) return name.take_error();
      size_t found = sides.size();
      for (size_t s = 0; s < sides.size() && found == sides.size(); ++s) {
        if (effective_side_name(sides, s) == *name) found = s;
      }
      if (found == sides.size()) {
        std::string known;
        for (size_t s = 0; s < sides.size(); ++s) known += (s ? ", " : "") + effective_side_name(sides, s);
        return field_error(pp, "no side named " + core::quote(*name) +
                                   (sides.empty() ? " (the fault has no sides)" : " (sides: " + known + ")"));
      }
      *dest = found;
    }
    if (const json* sh = member(jp, "shape")) FL_TRY(read_shape(*sh, p + ".shape", pair.profile));
    out.push_back(std::move(pair));
  }
  return {};
}

json shape_to_json(const core::ShapeProfile& p) {
  return json{
      {"delay_us", static_cast<int64_t>(p.delay.count())},
      {"jitter_us", static_cast<int64_t>(p.jitter.count())},
      {"delay_correlation", p.delay_correlation},
      {"distribution", core::distribution_name(p.distribution)},
      {"rate_bps", p.rate_bps},
      {"burst_bytes", p.burst_bytes},
      {"loss_percent", p.loss_percent},
      {"loss_correlation", p.loss_correlation},
      {"corrupt_percent", p.corrupt_percent},
      {"duplicate_percent", p.duplicate_percent},
      {"reorder_percent", p.reorder_percent},
      {"reorder_gap", p.reorder_gap},
  };
}

Status read_match(const json& v, const std::string& path, core::Match& m, bool* direction_given) {
  FL_TRY(check_members(v, path, {"src", "dst", "proto", "sport", "dport", "direction", "new_only"}));
  for (auto [key, dest] : {std::pair{"src", &m.src}, std::pair{"dst", &m.dst}}) {
    if (const json* a = member(v, key)) {
      auto r = read_parsed_array<core::Cidr>(*a, path + "." + key, core::parse_cidr);
      if (!r) return r.take_error();
      *dest = std::move(*r);
    }
  }
  if (const json* p = member(v, "proto")) {
    const std::string pp = path + ".proto";
    auto s = read_string(*p, pp);
    if (!s) return s.take_error();
    auto r = core::parse_proto(*s);
    if (!r) return r.take_error().at(pp);
    m.proto = *r;
  }
  for (auto [key, dest] : {std::pair{"sport", &m.sport}, std::pair{"dport", &m.dport}}) {
    if (const json* p = member(v, key)) {
      const std::string pp = path + "." + key;
      auto s = read_string(*p, pp);
      if (!s) return s.take_error();
      auto r = core::parse_port_range(*s);
      if (!r) return r.take_error().at(pp);
      *dest = *r;
    }
  }
  if (const json* d = member(v, "direction")) {
    const std::string pp = path + ".direction";
    auto s = read_string(*d, pp);
    if (!s) return s.take_error();
    auto r = core::parse_direction(*s);
    if (!r) return r.take_error().at(pp);
    m.direction = *r;
    *direction_given = true;
  }
  if (const json* n = member(v, "new_only")) {
    auto r = read_bool(*n, path + ".new_only");
    if (!r) return r.take_error();
    m.new_only = *r;
  }
  return {};
}

Result<core::FaultSpec> spec_from_json(const json& j) {
  const std::string root = "fault";
  FL_TRY(check_members(j, root, {"kind", "name", "sides", "one_way", "reset", "loss", "shape", "pairs",
                                 "replace_root", "match", "exempt", "default_exempt", "targets", "devs",
                                 "duration_ms"}));
  core::FaultSpec spec;

  // kind first: every other rule depends on it, and it is the one required member.
  const json* kind = member(j, "kind");
  if (kind == nullptr) {
    return field_error(root,
                       "missing field \"kind\" (partition, loss, isolate, delay, rate, corrupt, duplicate, "
                       "reorder, shape or matrix)");
  }
  {
    auto s = read_string(*kind, "fault.kind");
    if (!s) return s.take_error();
    auto k = core::parse_kind(*s);
    if (!k) return k.take_error().at("fault.kind");
    spec.kind = *k;
  }
  if (const json* n = member(j, "name")) {
    auto s = read_string(*n, "fault.name");
    if (!s) return s.take_error();
    if (!s->empty()) FL_TRY_AT(core::check_name(*s, "fault name"), "fault.name");
    spec.name = std::move(*s);
  }
  if (const json* s = member(j, "sides")) FL_TRY(read_sides(*s, "fault.sides", spec.sides));
  if (const json* o = member(j, "one_way")) {
    auto r = read_bool(*o, "fault.one_way");
    if (!r) return r.take_error();
    spec.one_way = *r;
  }
  if (const json* o = member(j, "reset")) {
    auto r = read_bool(*o, "fault.reset");
    if (!r) return r.take_error();
    spec.reset = *r;
  }
  if (const json* l = member(j, "loss")) FL_TRY(read_loss(*l, "fault.loss", spec));
  if (const json* s = member(j, "shape")) FL_TRY(read_shape(*s, "fault.shape", spec.shape));
  // After sides: pairs name them.
  if (const json* p = member(j, "pairs")) FL_TRY(read_pairs(*p, "fault.pairs", spec.sides, spec.pairs));
  if (const json* r = member(j, "replace_root")) {
    auto b = read_bool(*r, "fault.replace_root");
    if (!b) return b.take_error();
    spec.replace_root = *b;
  }
  bool direction_given = false;
  if (const json* m = member(j, "match")) FL_TRY(read_match(*m, "fault.match", spec.match, &direction_given));
  core::normalize(spec, core::Given{.direction = direction_given});
  if (const json* e = member(j, "exempt")) {
    auto r = read_parsed_array<core::Exemption>(*e, "fault.exempt", core::parse_exemption);
    if (!r) return r.take_error();
    spec.exempt = std::move(*r);
  }
  if (const json* d = member(j, "default_exempt")) {
    auto r = read_bool(*d, "fault.default_exempt");
    if (!r) return r.take_error();
    spec.default_exempt = *r;
  }
  if (const json* t = member(j, "targets")) {
    auto r = read_parsed_array<core::Target>(*t, "fault.targets", core::parse_target);
    if (!r) return r.take_error();
    spec.targets = std::move(*r);
  }
  if (const json* d = member(j, "devs")) {
    auto r = read_string_array(*d, "fault.devs");
    if (!r) return r.take_error();
    spec.devs = std::move(*r);
  }
  if (const json* d = member(j, "duration_ms")) {
    auto r = read_u64(*d, "fault.duration_ms");
    if (!r) return r.take_error();
    // milliseconds::rep is int64; validate() enforces the real bounds, this only keeps the
    // conversion defined.
    if (*r > static_cast<uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max())) {
      return field_error("fault.duration_ms", std::to_string(*r) + " is out of range");
    }
    spec.duration = std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*r));
  }
  return spec;
}

}  // namespace

bool op_is_mutating(std::string_view op) {
  const OpInfo* info = find_op(op);
  return info != nullptr && info->mutating;
}

std::optional<Errc> errc_from_name(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Errc::timeout); ++i) {
    const auto c = static_cast<Errc>(i);
    if (name == errc_name(c)) return c;
  }
  return std::nullopt;
}

Result<Request> parse_request(std::string_view line, std::optional<uint64_t>* id_out) {
  if (id_out != nullptr) id_out->reset();
  try {
    if (line.size() > kMaxLine) {
      return invalid_request("request line is " + std::to_string(line.size()) + " bytes; the limit is " +
                             std::to_string(kMaxLine));
    }
    json j;
    try {
      const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t, json&) {
        if (depth > kMaxDepth) throw DepthExceeded{};
        return true;
      };
      j = json::parse(line.begin(), line.end(), limit_depth);
    } catch (const json::parse_error& e) {
      return invalid_request("malformed JSON: " + tidy_parser_message(e.what()));
    } catch (const DepthExceeded&) {
      return invalid_request("malformed JSON: nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    if (!j.is_object()) return invalid_request(std::string("request must be a JSON object, got ") + type_desc(j));

    auto id_it = j.find("id");
    if (id_it == j.end()) return invalid_request("missing \"id\" (a non-negative integer)");
    const auto id_value = as_u64(*id_it);
    if (!id_value) {
      return invalid_request("\"id\" must be an integer in 0..18446744073709551615, got " + describe(*id_it));
    }
    const uint64_t id = *id_value;
    if (id_out != nullptr) *id_out = id;

    auto op_it = j.find("op");
    if (op_it == j.end()) return invalid_request("missing \"op\" (a string)");
    if (!op_it->is_string()) return invalid_request("\"op\" must be a string, got " + describe(*op_it));
    const auto& op = op_it->get_ref<const std::string&>();
    const OpInfo* info = find_op(op);
    if (info == nullptr) {
      std::string list;
      for (std::string_view k : kOps) {
        if (!list.empty()) list += ", ";
        list += k;
      }
      return make_error(Errc::unknown_op, "unknown op " + core::quote(op) + "; known: " + list);
    }
    Request req;
    req.id = id;
    req.op = op;
    req.kind = info->op;
    req.body = std::move(j);
    return req;
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("parse request: ") + e.what());
  }
}

std::string reply_ok(uint64_t id, const json& result) {
  // Built by hand so the envelope keeps the documented order (id, ok, result) for people
  // reading replies in socat; nlohmann's object would sort "result" after "ok" anyway but
  // "error" before "id".
  try {
    return "{\"id\":" + std::to_string(id) + ",\"ok\":true,\"result\":" + dump_safe(result) + "}";
  } catch (const std::exception& e) {
    return reply_error(id, make_error(Errc::internal, std::string("encode reply: ") + e.what()));
  }
}

std::string reply_error(std::optional<uint64_t> id, const Error& e) {
  const std::string id_str = id ? std::to_string(*id) : "null";
  try {
    json err = {{"code", errc_name(e.code)}, {"message", e.message}};
    // Added in protocol v1 without a version change: clients ignore members they do not know.
    if (!e.field.empty()) err["field"] = e.field;
    return "{\"id\":" + id_str + ",\"ok\":false,\"error\":" + dump_safe(err) + "}";
  } catch (const std::exception&) {
    // Only allocation can fail here; a fixed reply still tells the client something broke.
    return "{\"id\":" + id_str + ",\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"cannot encode error\"}}";
  }
}

json fault_spec_to_json(const core::FaultSpec& spec) {
  json sides = json::array();
  for (const auto& s : spec.sides) sides.push_back({{"name", s.name}, {"cidrs", cidrs_to_json(s.cidrs)}});
  json exempt = json::array();
  for (const auto& e : spec.exempt) exempt.push_back(e.str());
  json targets = json::array();
  for (const auto& t : spec.targets) targets.push_back(t.str());
  const auto& m = spec.match;
  json out{
      {"kind", core::kind_name(spec.kind)},
      {"name", spec.name},
      {"sides", std::move(sides)},
      {"one_way", spec.one_way},
      {"loss",
       {{"percent", spec.loss_percent},
        {"correlation", spec.correlation_percent},
        {"seed", spec.seed ? json(*spec.seed) : json(nullptr)}}},
      {"match",
       {{"src", cidrs_to_json(m.src)},
        {"dst", cidrs_to_json(m.dst)},
        {"proto", core::proto_name(m.proto)},
        {"sport", m.sport.str()},
        {"dport", m.dport.str()},
        {"direction", core::direction_name(m.direction)},
        {"new_only", m.new_only}}},
      {"exempt", std::move(exempt)},
      {"default_exempt", spec.default_exempt},
      {"targets", std::move(targets)},
      {"devs", spec.devs},
      {"duration_ms", static_cast<int64_t>(spec.duration.count())},
  };
  // The shaping members appear for shaping kinds only (and whenever set, so that even a spec
  // validate() would refuse round-trips): a partition or loss request from this client stays
  // readable by a daemon that predates shaping.
  if ((core::is_shaping(spec.kind) && spec.kind != core::FaultKind::matrix) || spec.shape != core::ShapeProfile{}) {
    out["shape"] = shape_to_json(spec.shape);
  }
  if (spec.kind == core::FaultKind::matrix || !spec.pairs.empty()) {
    json pairs = json::array();
    for (const auto& p : spec.pairs) {
      // An index past the sides (only a hand-built, invalid spec has one) becomes its decimal
      // string, which no side can be called, so decoding it fails instead of finding a side.
      auto name = [&](size_t i) {
        return i < spec.sides.size() ? effective_side_name(spec.sides, i) : std::to_string(i);
      };
      pairs.push_back({{"from", name(p.from)}, {"to", name(p.to)}, {"shape", shape_to_json(p.profile)}});
    }
    out["pairs"] = std::move(pairs);
  }
  if (core::is_shaping(spec.kind) || spec.replace_root) out["replace_root"] = spec.replace_root;
  // Only when set: a request without it stays what daemons before resets accept.
  if (spec.reset) out["reset"] = true;
  return out;
}

json reset_spec_to_json(const core::ResetSpec& spec) {
  json exempt = json::array();
  for (const auto& e : spec.exempt) exempt.push_back(e.str());
  json targets = json::array();
  for (const auto& t : spec.targets) targets.push_back(t.str());
  const auto& m = spec.match;
  return json{
      {"match",
       {{"src", cidrs_to_json(m.src)},
        {"dst", cidrs_to_json(m.dst)},
        {"proto", core::proto_name(m.proto)},
        {"sport", m.sport.str()},
        {"dport", m.dport.str()}}},
      {"exempt", std::move(exempt)},
      {"default_exempt", spec.default_exempt},
      {"all", spec.all},
      {"targets", std::move(targets)},
  };
}

Result<core::ResetSpec> reset_spec_from_json(const json& j) {
  try {
    const std::string root = "reset";
    FL_TRY(check_members(j, root, {"match", "exempt", "default_exempt", "all", "targets"}));
    core::ResetSpec spec;
    if (const json* m = member(j, "match")) {
      if (m->is_object() && m->contains("direction")) {
        return field_error("reset.match.direction",
                           "a reset takes no direction: a connection carries packets both ways, and a cut "
                           "in either breaks it");
      }
      if (m->is_object() && m->contains("new_only")) {
        return field_error("reset.match.new_only",
                           "not for a reset, which destroys established connections (new_only spares them)");
      }
      bool direction_given = false;
      FL_TRY(read_match(*m, "reset.match", spec.match, &direction_given));
    }
    if (const json* e = member(j, "exempt")) {
      auto r = read_parsed_array<core::Exemption>(*e, "reset.exempt", core::parse_exemption);
      if (!r) return r.take_error();
      spec.exempt = std::move(*r);
    }
    for (auto [key, dest] : {std::pair{"default_exempt", &spec.default_exempt}, std::pair{"all", &spec.all}}) {
      if (const json* b = member(j, key)) {
        auto r = read_bool(*b, root + "." + key);
        if (!r) return r.take_error();
        *dest = *r;
      }
    }
    if (const json* t = member(j, "targets")) {
      auto r = read_parsed_array<core::Target>(*t, "reset.targets", core::parse_target);
      if (!r) return r.take_error();
      spec.targets = std::move(*r);
    }
    return spec;
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("decode reset: ") + e.what());
  }
}

json shape_profile_to_json(const core::ShapeProfile& p) { return shape_to_json(p); }

Result<core::ShapeProfile> shape_profile_from_json(const json& j, const std::string& path) {
  try {
    core::ShapeProfile p;
    FL_TRY(read_shape(j, path, p));
    return p;
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("decode shape: ") + e.what());
  }
}

Result<core::FaultSpec> fault_spec_from_json(const json& j) {
  try {
    return spec_from_json(j);
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("decode fault: ") + e.what());
  }
}

Result<json> parse_reply(std::string_view line, uint64_t expected_id) {
  auto bad = [](const std::string& what) {
    return make_error(Errc::internal, "malformed reply from faultlined: " + what);
  };
  try {
    json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return bad("not JSON");
    if (!j.is_object()) return bad(std::string("expected an object, got ") + type_desc(j));

    const json* ok = member(j, "ok");
    if (ok == nullptr || !ok->is_boolean()) return bad("\"ok\" missing or not a boolean");
    const json* id = member(j, "id");
    if (id == nullptr) return bad("\"id\" missing");
    // A null id answers a request the daemon could not read an id from; with one request in
    // flight per connection it can only be ours, and its error is the useful part.
    const bool null_error = id->is_null() && !ok->get<bool>();
    if (!null_error && as_u64(*id) != expected_id) {
      return bad("reply id " + dump_safe(*id) + " does not match request id " + std::to_string(expected_id));
    }

    if (ok->get<bool>()) {
      auto it = j.find("result");
      if (it == j.end()) return bad("\"result\" missing");
      return std::move(*it);
    }
    const json* err = member(j, "error");
    if (err == nullptr || !err->is_object()) return bad("\"error\" missing or not an object");
    const json* code = member(*err, "code");
    const json* msg = member(*err, "message");
    if (code == nullptr || !code->is_string()) return bad("\"error.code\" missing or not a string");
    if (msg == nullptr || !msg->is_string()) return bad("\"error.message\" missing or not a string");
    const auto& code_s = code->get_ref<const std::string&>();
    const auto& msg_s = msg->get_ref<const std::string&>();
    const json* field = member(*err, "field");
    if (field != nullptr && !field->is_string()) return bad("\"error.field\" not a string");
    if (auto c = errc_from_name(code_s)) {
      Error e = make_error(*c, msg_s);
      if (field != nullptr) e.field = field->get<std::string>();
      return e;
    }
    // A newer daemon may know codes we do not; keep its name so the user still sees it.
    return make_error(Errc::internal, code_s + ": " + msg_s);
  } catch (const std::exception& e) {
    return make_error(Errc::internal, std::string("parse reply: ") + e.what());
  }
}

}  // namespace fl::proto
