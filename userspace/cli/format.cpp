#include "cli/format.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "core/datapath_stats.h"
#include "core/model.h"
#include "core/parse.h"
#include "core/printable.h"
#include "protocol/protocol.h"

namespace fl::cli {

using json = nlohmann::json;

namespace {

const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string dump_safe(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A scalar as text: strings bare, numbers as written, booleans yes/no; anything else "-".
// Every string shown goes through here: names of interfaces, namespaces, pods and faults are
// other people's bytes, escaped so that none can drive the terminal (core/printable.h).
std::string text(const json* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    return s.empty() ? "-" : core::printable(s);
  }
  if (v->is_boolean()) return v->get<bool>() ? "yes" : "no";
  if (v->is_number_float()) {
    // Percentages: "30", "12.5", not nlohmann's "30.0".
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", v->get<double>());
    return buf;
  }
  if (v->is_number()) return dump_safe(*v);
  return "-";
}
std::string text(const json& obj, const char* key) { return text(field(obj, key)); }

std::optional<int64_t> integer(const json& obj, const char* key) {
  const json* v = field(obj, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) {
    const auto u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  return std::nullopt;
}

// Array of scalars joined; "-" when absent or empty.
std::string joined(const json* v, std::string_view sep) {
  if (v == nullptr || !v->is_array() || v->empty()) return "-";
  std::string out;
  for (const auto& e : *v) {
    if (!out.empty()) out += sep;
    out += text(&e);
  }
  return out;
}

std::string expires(const json& f) {
  const std::string state = text(f, "state");
  if (state != "-" && state != "active") return state;
  auto ms = integer(f, "expires_in_ms");
  return ms ? human_duration(*ms) : "-";
}

std::string counter(const json& f, const char* name) {
  const json* c = field(f, "counters");
  return c ? text(*c, name) : "-";
}

std::string utc_time(const json& f, const char* key) {
  auto ms = integer(f, key);
  if (!ms || *ms < 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(*ms / 1000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return "-";
  char buf[64];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) return "-";
  return buf;
}

std::string duration_field(const json& obj, const char* key) {
  auto ms = integer(obj, key);
  return ms ? human_duration(*ms) : "-";
}

bool is_shaping_kind(const std::string& kind) {
  auto k = core::parse_kind(kind);
  return k.ok() && core::is_shaping(*k);
}

// A profile as ShapeProfile::str() writes it ("delay 100ms jitter 10ms"); "-" if it does not
// decode (a newer daemon's member, say), since a listing must not fail over one cell.
std::string profile_text(const json* shape) {
  if (shape == nullptr) return "-";
  auto p = proto::shape_profile_from_json(*shape, "shape");
  return p.ok() ? p->str() : "-";
}

size_t array_size(const json* v) { return v != nullptr && v->is_array() ? v->size() : 0; }

// What a shaping fault does, in one cell: its profile, or for a matrix how big it is (the
// pairs are for `get`).
std::string shaping_summary(const json& f) {
  const json* spec = field(f, "spec");
  if (spec == nullptr) return "-";
  const std::string kind = text(*spec, "kind");
  if (kind == "matrix") {
    const size_t sides = array_size(field(*spec, "sides")), pairs = array_size(field(*spec, "pairs"));
    return std::to_string(sides) + (sides == 1 ? " side, " : " sides, ") + std::to_string(pairs) +
           (pairs == 1 ? " pair" : " pairs");
  }
  if (!is_shaping_kind(kind)) return "-";
  return profile_text(field(*spec, "shape"));
}

class KeyValues {
 public:
  void add(std::string key, std::string value) { rows_.emplace_back(std::move(key), std::move(value)); }
  std::string str() const {
    size_t width = 0;
    for (const auto& [k, v] : rows_) width = std::max(width, k.size());
    std::string out;
    for (const auto& [k, v] : rows_) {
      std::string line = k + ":" + std::string(width - k.size() + 2, ' ');
      // Continuation lines of a multi-line value line up under its first line.
      for (char c : v) {
        line += c;
        if (c == '\n') line += std::string(width + 3, ' ');
      }
      out += line + "\n";
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

}  // namespace

std::string human_duration(int64_t ms) {
  if (ms <= 0) return "0s";
  if (ms < 1000) return std::to_string(ms) + "ms";
  int64_t s = ms / 1000;
  const int64_t h = s / 3600;
  const int64_t m = (s % 3600) / 60;
  s %= 60;
  // Trailing zero units are dropped ("1h", "2m"), inner ones kept ("1h0m5s") so the string
  // stays unambiguous.
  std::string out;
  if (h > 0) out += std::to_string(h) + "h";
  if (m > 0 || (h > 0 && s > 0)) out += std::to_string(m) + "m";
  if (s > 0) out += std::to_string(s) + "s";
  return out;
}

std::string format_fault_table(const json& faults) {
  static const char* const kHeader[] = {"ID",      "NAME",    "KIND",   "TARGETS", "EXPIRES",
                                        "MATCHED", "DROPPED", "EXEMPT", "SHAPED",  "DETAILS"};
  // Numbers are right-aligned so magnitudes line up.
  static const bool kRight[] = {true, false, false, false, false, true, true, true, true, false};

  // SHAPED and DETAILS only when a shaping fault is listed: a table of partitions and losses
  // keeps the columns it always had.
  bool details = false;
  if (faults.is_array()) {
    for (const auto& f : faults) details = details || is_shaping_kind(text(f, "kind"));
  }
  const size_t kCols = std::size(kHeader) - (details ? 0 : 2);

  std::vector<std::vector<std::string>> rows;
  rows.emplace_back(std::begin(kHeader), std::begin(kHeader) + kCols);
  if (faults.is_array()) {
    for (const auto& f : faults) {
      rows.push_back({text(f, "id"), text(f, "name"), text(f, "kind"), joined(field(f, "targets"), ","), expires(f),
                      counter(f, "matched"), counter(f, "dropped"), counter(f, "exempted")});
      if (details) {
        rows.back().push_back(is_shaping_kind(text(f, "kind")) ? counter(f, "shaped") : "-");
        rows.back().push_back(shaping_summary(f));
      }
    }
  }
  std::vector<size_t> width(kCols, 0);
  for (const auto& r : rows) {
    for (size_t c = 0; c < kCols; ++c) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < kCols; ++c) {
      if (c > 0) line += "  ";
      const std::string pad(width[c] - r[c].size(), ' ');
      line += kRight[c] ? pad + r[c] : r[c] + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string format_fault_detail(const json& f) {
  KeyValues kv;
  kv.add("id", text(f, "id"));
  kv.add("name", text(f, "name"));
  kv.add("kind", text(f, "kind"));
  kv.add("state", text(f, "state"));
  kv.add("created", utc_time(f, "created_unix_ms"));
  if (text(f, "state") == "active") kv.add("expires in", duration_field(f, "expires_in_ms"));
  if (f.contains("ended_unix_ms")) kv.add("ended", utc_time(f, "ended_unix_ms"));
  kv.add("duration", duration_field(f, "duration_ms"));
  kv.add("targets", joined(field(f, "targets"), ", "));

  std::string ifaces;
  if (const json* arr = field(f, "interfaces"); arr && arr->is_array()) {
    for (const auto& i : *arr) {
      if (!ifaces.empty()) ifaces += "\n";
      ifaces += text(i, "target") + " " + text(i, "dev") + " (ifindex " + text(i, "ifindex") + ", " +
                text(i, "mode") + ")";
    }
  }
  kv.add("interfaces", ifaces.empty() ? "-" : ifaces);
  kv.add("matched", counter(f, "matched"));
  kv.add("dropped", counter(f, "dropped"));
  kv.add("exempted", counter(f, "exempted"));
  if (is_shaping_kind(text(f, "kind"))) {
    kv.add("shaped", counter(f, "shaped"));
    // Where the packets are queued, as the kernel has it now: proof the class exists.
    std::string classes;
    if (const json* pt = field(f, "per_target"); pt && pt->is_array()) {
      for (const auto& t : *pt) {
        const json* cl = field(t, "classes");
        if (!cl || !cl->is_array()) continue;
        for (const auto& c : *cl) {
          if (!classes.empty()) classes += "\n";
          classes += text(t, "target") + " " + text(c, "dev") + " class " + text(c, "class");
        }
      }
    }
    if (!classes.empty()) kv.add("classes", classes);
  }
  // Per-target counters only say something when there is more than one target.
  if (const json* pt = field(f, "per_target"); pt && pt->is_array() && pt->size() > 1) {
    std::string lines;
    for (const auto& t : *pt) {
      if (!lines.empty()) lines += "\n";
      const json* c = field(t, "counters");
      lines += text(t, "target") + ": matched " + (c ? text(*c, "matched") : "-") + ", dropped " +
               (c ? text(*c, "dropped") : "-") + ", exempted " + (c ? text(*c, "exempted") : "-");
    }
    kv.add("per target", lines);
  }

  if (const json* spec = field(f, "spec"); spec && spec->is_object()) {
    const std::string kind = text(*spec, "kind");
    if (kind == "partition" || kind == "isolate" || kind == "matrix") {
      std::string sides;
      if (const json* arr = field(*spec, "sides"); arr && arr->is_array()) {
        for (const auto& s : *arr) {
          if (!sides.empty()) sides += "\n";
          sides += text(s, "name") + " = " + joined(field(s, "cidrs"), ",");
        }
      }
      kv.add("sides", sides.empty() ? "-" : sides);
    }
    if (kind == "partition") kv.add("one way", text(*spec, "one_way"));
    if (kind == "partition" || kind == "isolate") {
      const json* r = field(f, "reset");
      std::string reset = text(*spec, "reset") == "yes" ? "yes" : "no";
      if (r && r->is_object()) reset += " (" + text(*r, "destroyed") + " connections destroyed)";
      kv.add("reset", reset);
    }
    if (kind == "matrix") {
      // Pairs by side name, as the matrix file wrote them.
      std::string pairs;
      const json* counted = field(f, "pairs");  // the daemon's per-pair counters, same order
      if (const json* arr = field(*spec, "pairs"); arr && arr->is_array()) {
        for (size_t i = 0; i < arr->size(); i++) {
          const json& p = (*arr)[i];
          if (!pairs.empty()) pairs += "\n";
          pairs += text(p, "from") + " -> " + text(p, "to") + ": " + profile_text(field(p, "shape"));
          if (counted && counted->is_array() && i < counted->size())
            pairs += " (matched " + counter((*counted)[i], "matched") + ", shaped " +
                     counter((*counted)[i], "shaped") + ", dropped " + counter((*counted)[i], "dropped") + ")";
        }
      }
      kv.add("pairs", pairs.empty() ? "-" : pairs);
    } else if (is_shaping_kind(kind)) {
      kv.add("profile", profile_text(field(*spec, "shape")));
    }
    if (is_shaping_kind(kind)) kv.add("replace root", text(*spec, "replace_root"));
    if (kind == "loss") {
      const json* loss = field(*spec, "loss");
      const json empty = json::object();
      const json& l = loss ? *loss : empty;
      kv.add("loss", text(l, "percent") + "%");
      kv.add("correlation", text(l, "correlation") + "%");
      kv.add("seed", text(l, "seed") == "-" ? "random" : text(l, "seed"));
    }
    if (const json* m = field(*spec, "match"); m && m->is_object()) {
      kv.add("src", joined(field(*m, "src"), ",") == "-" ? "any" : joined(field(*m, "src"), ","));
      kv.add("dst", joined(field(*m, "dst"), ",") == "-" ? "any" : joined(field(*m, "dst"), ","));
      kv.add("proto", text(*m, "proto"));
      kv.add("sport", text(*m, "sport"));
      kv.add("dport", text(*m, "dport"));
      kv.add("direction", text(*m, "direction"));
      kv.add("new only", text(*m, "new_only"));
    }
    const std::string exempt = joined(field(*spec, "exempt"), ", ");
    kv.add("exempt", exempt == "-" ? "none" : exempt);
    kv.add("default exempt", text(*spec, "default_exempt"));
    const std::string devs = joined(field(*spec, "devs"), ", ");
    kv.add("devs", devs == "-" ? "all non-loopback" : devs);
  }
  return kv.str();
}

std::string format_reset_result(const json& r) {
  std::vector<std::vector<std::string>> rows{{"TARGET", "MATCHED", "DESTROYED", "GONE"}};
  if (const json* pt = field(r, "per_target"); pt && pt->is_array()) {
    for (const auto& t : *pt) {
      rows.push_back({text(t, "target"), text(t, "matched"), text(t, "destroyed"), text(t, "gone")});
    }
  }
  // A total only adds something when there is more than one target.
  if (rows.size() != 2) rows.push_back({"total", text(r, "matched"), text(r, "destroyed"), text(r, "gone")});
  std::vector<size_t> width(4, 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < 4; ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line = row[0] + std::string(width[0] - row[0].size(), ' ');
    for (size_t c = 1; c < 4; ++c) line += "  " + std::string(width[c] - row[c].size(), ' ') + row[c];
    out += line + "\n";
  }
  return out;
}

std::string format_applied(const json& fault) {
  std::string out = "applied fault " + text(fault, "id");
  if (const std::string name = text(fault, "name"); name != "-") out += " \"" + name + "\"";
  out += ": " + text(fault, "kind") + " on " + joined(field(fault, "targets"), ", ");
  // The end is when it was made plus its lifetime: both come from the daemon, so this is the
  // daemon's clock, whatever the caller's.
  auto created = integer(fault, "created_unix_ms");
  auto lifetime = integer(fault, "duration_ms");
  if (created && lifetime && *created >= 0 && *lifetime >= 0) {
    out += ", ends " + utc_time(json{{"t", *created + *lifetime}}, "t") + " (in " + human_duration(*lifetime) + ")";
  } else if (auto left = integer(fault, "expires_in_ms")) {
    out += ", ends in " + human_duration(*left);
  }
  return out + "\n";
}

std::string format_apply_reset(const json& fault) {
  const json* r = field(fault, "reset");
  if (r == nullptr || !r->is_object()) return "";
  std::string out = "reset " + text(*r, "destroyed") + " TCP connections";
  if (auto gone = integer(*r, "gone"); gone && *gone > 0) {
    out += " (" + std::to_string(*gone) + " more closed on their own meanwhile)";
  }
  return out + "\n";
}

std::string format_status(const json& st) {
  KeyValues kv;
  std::string daemon = text(st, "daemon");
  if (daemon != "-" && daemon.rfind("faultlined", 0) != 0) daemon = "faultlined " + daemon;
  std::string extra;
  if (auto pid = integer(st, "pid")) extra += "pid " + std::to_string(*pid);
  if (auto up = integer(st, "uptime_ms")) {
    extra += (extra.empty() ? "up " : ", up ") + human_duration(*up);
  }
  kv.add("daemon", extra.empty() ? daemon : daemon + " (" + extra + ")");
  kv.add("protocol", text(st, "protocol"));
  if (field(st, "attach_mode")) kv.add("attach mode", text(st, "attach_mode"));
  auto lease = integer(st, "lease_ms");
  auto left = integer(st, "lease_remaining_ms");
  kv.add("lease", (left ? human_duration(*left) : "-") + " left of " + (lease ? human_duration(*lease) : "-"));
  kv.add("active faults", text(st, "faults_active"));
  kv.add("exemptions", joined(field(st, "exemptions"), ", ") == "-" ? "none" : joined(field(st, "exemptions"), ", "));
  if (const json* p = field(st, "policy"); p && p->is_object()) {
    std::string pol = field(*p, "require_default_exempt") && (*p)["require_default_exempt"] == true
                          ? "default exemptions required"
                          : "default exemptions may be turned off";
    auto md = integer(*p, "max_duration_ms");
    pol += md ? ", longest fault " + human_duration(*md) : ", longest fault 7d (protocol limit)";
    kv.add("policy", pol);
  }

  // Known features first, in the order an operator reads them (attach path, then shaping),
  // then whatever a newer daemon added.
  std::string features;
  if (const json* fs = field(st, "features"); fs && fs->is_object()) {
    static const char* const kOrder[] = {"kernel", "tcx", "clsact", "btf", "bpf_loop", "netem", "htb", "tbf", "fq", "ifb"};
    std::vector<std::string> keys;
    for (const char* k : kOrder) {
      if (fs->contains(k)) keys.emplace_back(k);
    }
    for (const auto& [k, v] : fs->items()) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
    size_t width = 0;
    for (const auto& k : keys) width = std::max(width, core::printable(k).size());
    for (const auto& k : keys) {
      if (!features.empty()) features += "\n";
      const std::string shown = core::printable(k);
      features += shown + std::string(width - shown.size() + 2, ' ') + text(&fs->at(k));
    }
  }
  kv.add("features", features.empty() ? "-" : features);

  // The data path's own counters since the daemon started: what no single fault shows (packets
  // seen while the lease had run out, shaping without an ifb, cut-short headers).
  if (const json* dp = field(st, "datapath"); dp && dp->is_object() && !dp->empty()) {
    std::vector<std::string> keys;
    for (const auto& s : core::kDatapathStats)
      if (dp->contains(s.name)) keys.emplace_back(s.name);
    for (const auto& [k, v] : dp->items())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    size_t width = 0;
    for (const auto& k : keys) width = std::max(width, core::printable(k).size());
    std::string counters;
    if (auto age = integer(st, "datapath_age_ms")) counters = "packets since start, read " + human_duration(*age) + " ago";
    for (const auto& k : keys) {
      if (!counters.empty()) counters += "\n";
      const std::string shown = core::printable(k);
      counters += shown + std::string(width - shown.size() + 2, ' ') + text(&dp->at(k));
    }
    kv.add("data path", counters);
  }
  if (auto busy = integer(st, "kernel_worker_busy_ms"); busy && *busy > 0)
    kv.add("kernel worker", "busy with one request for " + human_duration(*busy));
  return kv.str();
}

std::string format_json(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n"; }

}  // namespace fl::cli
