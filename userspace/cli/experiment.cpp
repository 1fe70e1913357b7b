// Over 600 lines on purpose: the experiment file's whole schema (keys, types, ranges, and an
// error naming line and field for each) is read here, in the order docs/EXPERIMENTS.md lists
// it; split, the schema would be read in several places.
#include "cli/experiment.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <set>
#include <sstream>
#include <utility>

#include "core/parse.h"
#include "core/validate.h"
#include "protocol/protocol.h"

namespace fl::cli {

using json = nlohmann::json;

const char* probe_kind_name(ProbeKind k) {
  switch (k) {
    case ProbeKind::tcp: return "tcp";
    case ProbeKind::http: return "http";
    case ProbeKind::exec: return "exec";
    case ProbeKind::prometheus: return "prometheus";
  }
  return "?";
}

const char* statistic_name(Statistic s) {
  switch (s) {
    case Statistic::success_rate: return "success_rate";
    case Statistic::p50: return "p50";
    case Statistic::p95: return "p95";
    case Statistic::p99: return "p99";
    case Statistic::value: return "value";
  }
  return "?";
}

namespace {

Error bad(std::string msg) {
  return make_error(Errc::invalid_argument, std::move(msg));
}

// Both address families, numeric only: a probe never resolves a name.
bool numeric_host(const std::string& h, bool v6) {
  unsigned char buf[16];
  return inet_pton(v6 ? AF_INET6 : AF_INET, h.c_str(), buf) == 1;
}

// "HOST:PORT" or "[V6]:PORT".
Status split_host_port(std::string_view s, std::string& host, bool& v6, uint16_t& port) {
  std::string_view p;
  if (s.starts_with("[")) {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return bad("expected [IPV6]:PORT, got " + core::quote(s));
    }
    host = std::string(s.substr(1, close - 1));
    v6 = true;
    p = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return bad("expected HOST:PORT, got " + core::quote(s) + " (no port)");
    host = std::string(s.substr(0, colon));
    v6 = false;
    p = s.substr(colon + 1);
    if (host.find(':') != std::string::npos) return bad("write an IPv6 address in brackets: [fd00::1]:80");
  }
  if (!numeric_host(host, v6)) {
    return bad(core::quote(host) + " is not a numeric " + (v6 ? "IPv6" : "IPv4") +
               " address (probes do not resolve names)");
  }
  const bool digits =
      !p.empty() && p.size() <= 5 && std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; });
  const long n = digits ? std::strtol(std::string(p).c_str(), nullptr, 10) : 0;
  if (!digits || n < 1 || n > 65535) return bad("port " + core::quote(p) + ": expected 1 to 65535");
  port = static_cast<uint16_t>(n);
  return {};
}

class Reporter {
 public:
  explicit Reporter(std::string_view source) : source_(source) {}
  Error at(const YAML::Node& node, const std::string& msg) const {
    std::string where(source_);
    if (!node.Mark().is_null()) where += ":" + std::to_string(node.Mark().line + 1);
    return bad(where + ": " + msg);
  }
  Error whole(const std::string& msg) const { return bad(std::string(source_) + ": " + msg); }
  Error syntax(const YAML::Mark& mark, const std::string& msg) const {
    return bad(std::string(source_) + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) +
               ": " + msg);
  }

 private:
  std::string_view source_;
};

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    default: return "nothing";
  }
}

std::string idx(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}
std::string sub(const std::string& path, const char* key) {
  return path.empty() ? key : path + "." + key;
}

// Unknown keys are refused (a typo must not silently mean "default"), and so is a key given twice.
Status check_keys(const Reporter& rep, const YAML::Node& map, const std::string& path,
                  const std::vector<std::string>& known) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return rep.at(kv.first, path + ": a key must be a plain name");
    const std::string& k = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      return rep.at(kv.first, (path.empty() ? "top level" : path) + ": unknown key " + core::quote(k) +
                                  "; expected one of " + list);
    }
    if (!seen.insert(k).second) return rep.at(kv.first, sub(path, k.c_str()) + ": given twice");
  }
  return {};
}

// Every accessor takes the parent map, so a missing key is reported at the parent's line.
struct Map {
  const Reporter& rep;
  YAML::Node node;
  std::string path;

  YAML::Node get(const char* key) const { return node[key]; }
  bool has(const char* key) const { return static_cast<bool>(node[key]); }
  Error missing(const char* key) const {
    return rep.at(node, (path.empty() ? std::string("top level") : path) + ": missing key " + core::quote(key));
  }
  Result<std::string> str(const char* key, bool required = true, std::string def = "") const {
    const YAML::Node n = node[key];
    if (!n) {
      if (required) return missing(key);
      return def;
    }
    if (!n.IsScalar()) return rep.at(n, sub(path, key) + ": expected text, got " + node_kind(n));
    return n.Scalar();
  }
  Result<std::chrono::milliseconds> duration(const char* key, std::optional<std::chrono::milliseconds> def,
                                             std::chrono::milliseconds lo, std::chrono::milliseconds hi) const {
    const YAML::Node n = node[key];
    if (!n) {
      if (!def) return missing(key);
      return *def;
    }
    if (!n.IsScalar()) return rep.at(n, sub(path, key) + ": expected a duration (500ms, 2s, 1m), got " + node_kind(n));
    auto d = core::parse_duration(n.Scalar());
    if (!d) return rep.at(n, sub(path, key) + ": " + d.error().message);
    if (*d < lo || *d > hi) {
      return rep.at(n, sub(path, key) + ": " + core::format_duration(*d) + " is out of bounds (" +
                           core::format_duration(lo) + " to " + core::format_duration(hi) + ")");
    }
    return *d;
  }
  Result<double> number(const YAML::Node& n, const std::string& p) const {
    if (!n.IsScalar()) return rep.at(n, p + ": expected a number, got " + node_kind(n));
    const std::string& s = n.Scalar();
    char* end = nullptr;
    const double v = s.empty() ? 0 : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) {
      return rep.at(n, p + ": expected a number, got " + core::quote(s));
    }
    return v;
  }
  Result<uint64_t> count(const char* key, uint64_t def, uint64_t lo, uint64_t hi) const {
    const YAML::Node n = node[key];
    if (!n) return def;
    const std::string p = sub(path, key);
    const bool digits = n.IsScalar() && !n.Scalar().empty() && n.Scalar().size() <= 9 &&
                        std::all_of(n.Scalar().begin(), n.Scalar().end(), [](char c) { return c >= '0' && c <= '9'; });
    const uint64_t v = digits ? std::stoull(n.Scalar()) : 0;
    if (!digits || v < lo || v > hi) {
      return rep.at(n, p + ": expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                           (n.IsScalar() ? ", got " + core::quote(n.Scalar()) : std::string(", got ") + node_kind(n)));
    }
    return v;
  }
};

Result<Map> child_map(const Map& parent, const char* key, bool required) {
  const YAML::Node n = parent.get(key);
  if (!n) {
    if (required) return parent.missing(key);
    return Map{parent.rep, YAML::Node(YAML::NodeType::Map), sub(parent.path, key)};
  }
  if (!n.IsMap()) return parent.rep.at(n, sub(parent.path, key) + ": expected a map, got " + node_kind(n));
  return Map{parent.rep, n, sub(parent.path, key)};
}

// The words of a `cli:` string, split as a POSIX shell would without expansions: single quotes
// keep everything, double quotes keep all but \" and \\, a backslash escapes one character.
Result<std::vector<std::string>> split_words(std::string_view s) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else if (c == '\'') {
      const size_t close = s.find('\'', i + 1);
      if (close == std::string_view::npos) return bad("unterminated ' quote");
      cur.append(s.substr(i + 1, close - i - 1));
      i = close;
      in_word = true;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < s.size() && s[j] != '"'; ++j) {
        if (s[j] == '\\' && j + 1 < s.size() && (s[j + 1] == '"' || s[j + 1] == '\\')) ++j;
        cur.push_back(s[j]);
      }
      if (j >= s.size()) return bad("unterminated \" quote");
      i = j;
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= s.size()) return bad("a backslash at the end");
      cur.push_back(s[++i]);
      in_word = true;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

// The first line of a faultctl usage error: the "Try 'faultctl X --help'." line is for a terminal.
std::string first_line(const std::string& msg) {
  return msg.substr(0, msg.find('\n'));
}

// `range` (required) or `during` (optional; it may also give `after`, a duration).
Result<Range> read_range(const Map& p, const char* key, std::chrono::milliseconds* after = nullptr) {
  const YAML::Node n = p.get(key);
  const std::string path = sub(p.path, key);
  if (!n) return p.missing(key);
  const std::string form = after ? "{min: X, max: Y, after: DURATION}" : "{min: X, max: Y}";
  if (!n.IsMap()) return p.rep.at(n, path + ": expected a map " + form + ", got " + node_kind(n));
  FL_TRY(check_keys(p.rep, n, path, after ? std::vector<std::string>{"min", "max", "after"}
                                          : std::vector<std::string>{"min", "max"}));
  Map m{p.rep, n, path};
  Range r;
  for (const char* k : {"min", "max"}) {
    const YAML::Node v = n[k];
    if (!v || (v.IsNull())) continue;
    auto d = m.number(v, sub(path, k));
    if (!d) return d.take_error();
    (std::string(k) == "min" ? r.min : r.max) = *d;
  }
  if (!r.min && !r.max) return p.rep.at(n, path + ": give min, max or both");
  if (r.min && r.max && *r.min > *r.max) {
    return p.rep.at(n, path + ": min " + json(*r.min).dump() + " is above max " + json(*r.max).dump());
  }
  if (after) {
    auto a = m.duration("after", std::chrono::milliseconds(0), std::chrono::milliseconds(0), std::chrono::hours(1));
    if (!a) return a.take_error();
    *after = *a;
  }
  return r;
}

Result<Probe> read_probe(const Reporter& rep, const YAML::Node& n, const std::string& path) {
  if (!n.IsMap()) return rep.at(n, path + ": expected a map, got " + node_kind(n));
  FL_TRY(check_keys(rep, n, path,
                    {"name", "kind", "address", "url", "status", "argv", "server", "query", "timeout", "interval",
                     "statistic", "window", "range", "during"}));
  Map m{rep, n, path};
  Probe p;
  auto name = m.str("name");
  if (!name) return name.take_error();
  if (auto st = core::check_name(*name, "probe name"); !st)
    return rep.at(n["name"], path + ".name: " + st.error().message);
  p.name = *name;
  auto kind = m.str("kind");
  if (!kind) return kind.take_error();
  const std::vector<std::pair<ProbeKind, std::vector<std::string>>> kinds = {
      {ProbeKind::tcp, {"address"}},
      {ProbeKind::http, {"url", "status"}},
      {ProbeKind::exec, {"argv"}},
      {ProbeKind::prometheus, {"server", "query"}}};
  const std::vector<std::string>* own = nullptr;
  for (const auto& [k, keys] : kinds) {
    if (*kind == probe_kind_name(k)) {
      p.kind = k;
      own = &keys;
    }
  }
  if (own == nullptr) {
    return rep.at(n["kind"], path + ".kind: unknown probe kind " + core::quote(*kind) +
                                 "; expected tcp, http, exec or prometheus");
  }
  // A key of another kind is a mistake, not something to ignore.
  for (const auto& [k, keys] : kinds) {
    if (k == p.kind) continue;
    for (const auto& key : keys) {
      if (n[key] && std::find(own->begin(), own->end(), key) == own->end()) {
        return rep.at(n[key], path + "." + key + ": only for " + probe_kind_name(k) + " probes, not " + *kind);
      }
    }
  }
  switch (p.kind) {
    case ProbeKind::tcp: {
      auto a = m.str("address");
      if (!a) return a.take_error();
      if (auto st = split_host_port(*a, p.host, p.v6, p.port); !st)
        return rep.at(n["address"], path + ".address: " + st.error().message);
      break;
    }
    case ProbeKind::http: {
      auto u = m.str("url");
      if (!u) return u.take_error();
      auto url = parse_http_url(*u);
      if (!url) return rep.at(n["url"], path + ".url: " + url.error().message);
      p.url = *u;
      p.http = *url;
      if (m.has("status")) {
        auto s = m.count("status", 0, 100, 599);
        if (!s) return s.take_error();
        p.status = static_cast<int>(*s);
      }
      break;
    }
    case ProbeKind::exec: {
      const YAML::Node a = n["argv"];
      if (!a) return m.missing("argv");
      if (!a.IsSequence() || a.size() == 0) {
        return rep.at(a, path + ".argv: expected a list of words (no shell: [sh, -c, \"...\"] for one), got " +
                             (a.IsSequence() ? std::string("an empty list") : node_kind(a)));
      }
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].IsScalar()) return rep.at(a[i], idx(path + ".argv", i) + ": expected text, got " + node_kind(a[i]));
        p.argv.push_back(a[i].Scalar());
      }
      break;
    }
    case ProbeKind::prometheus: {
      auto s = m.str("server");
      if (!s) return s.take_error();
      auto url = parse_http_url(*s);
      if (!url) return rep.at(n["server"], path + ".server: " + url.error().message);
      if (url->path != "/")
        return rep.at(n["server"], path + ".server: give the server's base URL (http://HOST:PORT), without a path");
      p.server = *s;
      p.server_url = *url;
      auto q = m.str("query");
      if (!q) return q.take_error();
      if (q->empty()) return rep.at(n["query"], path + ".query: empty");
      p.query = *q;
      break;
    }
  }
  auto interval =
      m.duration("interval", std::chrono::milliseconds(1000), std::chrono::milliseconds(50), std::chrono::hours(1));
  if (!interval) return interval.take_error();
  p.interval = *interval;
  auto timeout = m.duration("timeout", std::min(p.interval, std::chrono::milliseconds(1000)),
                            std::chrono::milliseconds(10), std::chrono::seconds(60));
  if (!timeout) return timeout.take_error();
  p.timeout = *timeout;
  auto stat = m.str("statistic", false, "success_rate");
  if (!stat) return stat.take_error();
  bool found = false;
  for (Statistic s : {Statistic::success_rate, Statistic::p50, Statistic::p95, Statistic::p99, Statistic::value}) {
    if (*stat == statistic_name(s)) {
      p.statistic = s;
      found = true;
    }
  }
  if (!found) {
    return rep.at(n["statistic"], path + ".statistic: unknown statistic " + core::quote(*stat) +
                                      "; expected success_rate, p50, p95, p99 or value");
  }
  auto window = m.count("window", p.statistic == Statistic::value ? 1 : 5, 1, 1000);
  if (!window) return window.take_error();
  p.window = *window;
  auto range = read_range(m, "range");
  if (!range) return range.take_error();
  p.range = *range;
  if (m.has("during")) {
    auto during = read_range(m, "during", &p.during_after);
    if (!during) return during.take_error();
    p.during = *during;
  }
  for (const char* key : {"range", "during"}) {
    const Range* r = std::string(key) == "range" ? &p.range : p.during ? &*p.during : nullptr;
    if (r && p.statistic == Statistic::success_rate &&
        ((r->min && (*r->min < 0 || *r->min > 1)) || (r->max && (*r->max < 0 || *r->max > 1)))) {
      return rep.at(n[key], path + "." + key + ": a success_rate is a ratio from 0 to 1 (0.95 is 95%)");
    }
  }
  return p;
}

Result<ExperimentFault> read_fault(const Reporter& rep, const YAML::Node& n, const std::string& path,
                                   const ReadFile& read_file) {
  if (!n.IsMap()) return rep.at(n, path + ": expected a map, got " + node_kind(n));
  FL_TRY(check_keys(rep, n, path, {"name", "cli", "start", "duration"}));
  Map m{rep, n, path};
  ExperimentFault f;
  auto name = m.str("name");
  if (!name) return name.take_error();
  if (auto st = core::check_name(*name, "fault name"); !st)
    return rep.at(n["name"], path + ".name: " + st.error().message);
  f.name = *name;
  auto start = m.duration("start", std::chrono::milliseconds(0), std::chrono::milliseconds(0), std::chrono::hours(24));
  if (!start) return start.take_error();
  f.start = *start;
  auto duration = m.duration("duration", std::nullopt, core::kMinDuration, core::kMaxDuration);
  if (!duration) return duration.take_error();
  f.duration = *duration;

  const YAML::Node c = n["cli"];
  if (!c) return m.missing("cli");
  const std::string cpath = path + ".cli";
  std::vector<std::string> words;
  if (c.IsScalar()) {
    f.cli = c.Scalar();
    auto w = split_words(f.cli);
    if (!w) return rep.at(c, cpath + ": " + w.error().message);
    words = std::move(*w);
  } else if (c.IsSequence()) {
    for (size_t i = 0; i < c.size(); ++i) {
      if (!c[i].IsScalar()) return rep.at(c[i], idx(cpath, i) + ": expected a word, got " + node_kind(c[i]));
      words.push_back(c[i].Scalar());
      f.cli += (i ? " " : "") + c[i].Scalar();
    }
  } else {
    return rep.at(
        c, cpath + ": expected a faultctl command line (\"partition --side ... --target ...\"), got " + node_kind(c));
  }
  if (words.empty())
    return rep.at(c, cpath + ": empty; expected a faultctl command line such as \"loss 30 --dst 10.200.0.2\"");
  // Global options (--socket, --host) are the runner's business, not a fault's.
  if (words[0].starts_with("-")) {
    return rep.at(c, cpath + ": starts with " + core::quote(words[0]) +
                         "; expected a fault command (partition, loss, "
                         "isolate, delay, rate, corrupt, duplicate, reorder, shape, matrix)");
  }
  for (const auto& w : words) {
    if (w == "--") break;
    for (const char* owned : {"--for", "--name"}) {
      if (w == owned || w.starts_with(std::string(owned) + "=")) {
        return rep.at(c, cpath + ": " + owned + " is set by the experiment (the fault's " +
                             (std::string(owned) == "--for" ? "duration" : "name") + " field); leave it out");
      }
    }
  }
  auto inv = parse_args(words, nullptr, read_file);
  if (!inv) return rep.at(c, cpath + ": " + first_line(inv.error().message));
  if (!inv->fault) {
    return rep.at(c, cpath + ": " + core::quote(words[0]) +
                         " is not a fault command; expected partition, loss, isolate, "
                         "delay, rate, corrupt, duplicate, reorder, shape or matrix");
  }
  f.spec = std::move(*inv->fault);
  f.spec.name = f.name;
  f.spec.duration = f.duration;
  if (auto st = core::validate(f.spec); !st) return rep.at(c, cpath + ": " + st.error().message);
  return f;
}

Result<Experiment> parse(const Reporter& rep, std::string_view text, const ReadFile& read_file) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return rep.syntax(e.mark, "not valid YAML: " + e.msg);
  }
  if (root.IsNull()) return rep.whole("empty; expected an experiment (see docs/EXPERIMENTS.md)");
  if (!root.IsMap()) return rep.at(root, std::string("expected a map, got ") + node_kind(root));
  FL_TRY(check_keys(rep, root, "",
                    {"name", "hypothesis", "steady_state", "probes", "method", "abort", "blast_radius", "recovery"}));
  Map top{rep, root, ""};
  Experiment e;
  auto name = top.str("name");
  if (!name) return name.take_error();
  if (auto st = core::check_name(*name, "experiment name"); !st)
    return rep.at(root["name"], "name: " + st.error().message);
  e.name = *name;
  auto hyp = top.str("hypothesis");
  if (!hyp) return hyp.take_error();
  // A folded block (hypothesis: >) ends with a newline that is no part of the statement.
  while (!hyp->empty() && std::isspace(static_cast<unsigned char>(hyp->back()))) hyp->pop_back();
  if (hyp->empty()) return rep.at(root["hypothesis"], "hypothesis: empty; state what you expect to hold");
  e.hypothesis = *hyp;

  // Probes first: the steady state, abort rules and recovery refer to them.
  const YAML::Node probes = root["probes"];
  if (!probes) return top.missing("probes");
  if (!probes.IsSequence() || probes.size() == 0) {
    return rep.at(probes, std::string("probes: expected a list of at least one probe, got ") +
                              (probes.IsSequence() ? "an empty list" : node_kind(probes)));
  }
  for (size_t i = 0; i < probes.size(); ++i) {
    auto p = read_probe(rep, probes[i], idx("probes", i));
    if (!p) return p.take_error();
    for (const auto& q : e.probes) {
      if (q.name == p->name)
        return rep.at(probes[i]["name"], idx("probes", i) + ".name: probe " + core::quote(p->name) + " given twice");
    }
    e.probes.push_back(std::move(*p));
  }

  auto steady = child_map(top, "steady_state", true);
  if (!steady) return steady.take_error();
  FL_TRY(check_keys(rep, steady->node, "steady_state", {"duration"}));
  auto sd = steady->duration("duration", std::nullopt, std::chrono::milliseconds(100), std::chrono::hours(1));
  if (!sd) return sd.take_error();
  e.steady_state = *sd;
  for (size_t i = 0; i < e.probes.size(); ++i) {
    // The steady state is judged on the probe's statistic: it needs the window full.
    const auto needed = e.probes[i].interval * static_cast<int64_t>(e.probes[i].window - 1);
    if (e.steady_state < needed) {
      return rep.at(steady->get("duration"),
                    "steady_state.duration: " + core::format_duration(e.steady_state) + " is too short for probe " +
                        core::quote(e.probes[i].name) + " (" + std::to_string(e.probes[i].window) + " samples every " +
                        core::format_duration(e.probes[i].interval) + " need " + core::format_duration(needed) + ")");
    }
  }

  auto blast = child_map(top, "blast_radius", false);
  if (!blast) return blast.take_error();
  FL_TRY(check_keys(rep, blast->node, "blast_radius", {"max_targets"}));
  auto max_targets = blast->count("max_targets", 1, 1, 4096);
  if (!max_targets) return max_targets.take_error();
  e.max_targets = *max_targets;

  auto method = child_map(top, "method", true);
  if (!method) return method.take_error();
  FL_TRY(check_keys(rep, method->node, "method", {"faults", "duration"}));
  const YAML::Node faults = method->get("faults");
  if (!faults) return method->missing("faults");
  if (!faults.IsSequence() || faults.size() == 0) {
    return rep.at(faults, std::string("method.faults: expected a list of at least one fault, got ") +
                              (faults.IsSequence() ? "an empty list" : node_kind(faults)));
  }
  std::chrono::milliseconds last_end{0};
  for (size_t i = 0; i < faults.size(); ++i) {
    const std::string path = idx("method.faults", i);
    auto f = read_fault(rep, faults[i], path, read_file);
    if (!f) return f.take_error();
    for (const auto& g : e.faults) {
      if (g.name == f->name)
        return rep.at(faults[i]["name"], path + ".name: fault " + core::quote(f->name) + " given twice");
    }
    if (f->spec.targets.size() > e.max_targets) {
      return rep.at(faults[i]["cli"], path + ".cli: " + std::to_string(f->spec.targets.size()) +
                                          " targets, more than blast_radius.max_targets (" +
                                          std::to_string(e.max_targets) + ")");
    }
    last_end = std::max(last_end, f->start + f->duration);
    e.faults.push_back(std::move(*f));
  }
  auto md = method->duration("duration", last_end, std::chrono::milliseconds(100), std::chrono::hours(24));
  if (!md) return md.take_error();
  if (*md < last_end) {
    return rep.at(method->get("duration"), "method.duration: " + core::format_duration(*md) +
                                               " ends before the last fault does (" + core::format_duration(last_end) +
                                               ")");
  }
  e.method_duration = *md;

  if (const YAML::Node aborts = root["abort"]) {
    if (!aborts.IsSequence())
      return rep.at(aborts, std::string("abort: expected a list of rules, got ") + node_kind(aborts));
    for (size_t i = 0; i < aborts.size(); ++i) {
      const std::string path = idx("abort", i);
      const YAML::Node a = aborts[i];
      if (!a.IsMap())
        return rep.at(a, path + ": expected a map {probe: NAME, samples: N} or {probe: NAME, for: DURATION}");
      FL_TRY(check_keys(rep, a, path, {"probe", "samples", "for"}));
      Map m{rep, a, path};
      AbortRule r;
      auto probe = m.str("probe");
      if (!probe) return probe.take_error();
      if (std::none_of(e.probes.begin(), e.probes.end(), [&](const Probe& p) { return p.name == *probe; })) {
        return rep.at(a["probe"], path + ".probe: no probe named " + core::quote(*probe));
      }
      r.probe = *probe;
      if (m.has("samples") == m.has("for")) {
        return rep.at(
            a, path + ": give one of samples (N consecutive samples out of range) or for (out of range this long)");
      }
      if (m.has("samples")) {
        auto s = m.count("samples", 1, 1, 1000);
        if (!s) return s.take_error();
        r.samples = *s;
      } else {
        auto d = m.duration("for", std::nullopt, std::chrono::milliseconds(1), std::chrono::hours(1));
        if (!d) return d.take_error();
        r.for_time = *d;
      }
      e.aborts.push_back(std::move(r));
    }
  }

  auto recovery = child_map(top, "recovery", true);
  if (!recovery) return recovery.take_error();
  FL_TRY(check_keys(rep, recovery->node, "recovery", {"within"}));
  auto within = recovery->duration("within", std::nullopt, std::chrono::milliseconds(100), std::chrono::hours(1));
  if (!within) return within.take_error();
  e.recovery_within = *within;
  return e;
}

std::string fmt_number(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
  if (!url.starts_with("http://")) {
    return bad("expected an http:// URL, got " + core::quote(url) +
               (url.starts_with("https://") ? " (https is not supported)" : ""));
  }
  std::string_view rest = url.substr(7);
  const size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  HttpUrl u;
  u.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (hostport.empty()) return bad("no host in " + core::quote(url));
  if (hostport.find('@') != std::string_view::npos) return bad("user information in a URL is not supported");
  const bool bracket = hostport.starts_with("[");
  const size_t colon = bracket ? hostport.find("]:") : hostport.rfind(':');
  if (colon == std::string_view::npos) {
    u.v6 = bracket;
    u.host = bracket ? std::string(hostport.substr(1, hostport.size() - 2)) : std::string(hostport);
    if (bracket && !hostport.ends_with("]")) return bad("unterminated [ in " + core::quote(url));
    if (!numeric_host(u.host, u.v6))
      return bad(core::quote(u.host) + " is not a numeric IP address (probes do not resolve names)");
  } else {
    FL_TRY(split_host_port(hostport, u.host, u.v6, u.port));
  }
  for (char c : u.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return bad("the path has a space or control character; percent-encode it");
  }
  return u;
}

std::string Probe::target() const {
  switch (kind) {
    case ProbeKind::tcp: return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + " (TCP connect)";
    case ProbeKind::http:
      return "GET " + url + (status ? " (expect " + std::to_string(*status) + ")" : " (expect 2xx)");
    case ProbeKind::exec: {
      std::string s;
      // Quoted as a shell would need it, so the words can be told apart.
      for (const auto& a : argv) {
        const bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_./:=,+@%", c) != nullptr;
        });
        std::string w = a;
        if (!plain) {
          w = "'";
          for (char c : a) w += c == '\'' ? std::string("'\\''") : std::string(1, c);
          w += "'";
        }
        s += (s.empty() ? "" : " ") + w;
      }
      return s;
    }
    case ProbeKind::prometheus: return query + " at " + server;
  }
  return "";
}

std::string Probe::unit() const {
  if (statistic == Statistic::success_rate) return "ratio";
  if (kind == ProbeKind::tcp || kind == ProbeKind::http) return "ms";
  return "";
}

std::string AbortRule::describe() const {
  if (samples > 0) return std::to_string(samples) + (samples == 1 ? " sample" : " samples") + " out of range";
  return "out of range for " + core::format_duration(for_time);
}

std::string format_plan(const Experiment& e) {
  using core::format_duration;
  std::ostringstream o;
  auto at = [](std::chrono::milliseconds t) {
    std::string s = "t+" + core::format_duration(t);
    s.resize(std::max<size_t>(s.size(), 10), ' ');
    return s;
  };
  auto range = [](const Range& r) {
    return "[" + (r.min ? fmt_number(*r.min) : std::string("-inf")) + ", " +
           (r.max ? fmt_number(*r.max) : std::string("+inf")) + "]";
  };
  o << "experiment " << e.name << (e.file.empty() ? "" : " (" + e.file + ")") << "\n";
  o << "hypothesis: " << e.hypothesis << "\n\n";
  o << "probes (all run from the first to the last phase):\n";
  for (const auto& p : e.probes) {
    o << "  " << p.name << ": " << probe_kind_name(p.kind) << " " << p.target() << ", every "
      << format_duration(p.interval) << ", timeout " << format_duration(p.timeout) << "; "
      << statistic_name(p.statistic) << " over " << p.window << (p.window == 1 ? " sample" : " samples") << " in "
      << range(p.range) << (p.unit().empty() ? "" : " " + p.unit());
    if (p.during) {
      o << "; while the method runs in " << range(*p.during)
        << (p.during_after.count() > 0 ? " (from " + format_duration(p.during_after) + " after the first fault)" : "");
    }
    o << "\n";
  }
  const auto inject = e.steady_state;
  const auto heal = inject + e.method_duration;
  o << "\nphases:\n";
  o << "  " << at(std::chrono::milliseconds(0)) << "steady_state  " << format_duration(e.steady_state)
    << ": every probe in range at the end, else verdict not_started and nothing is applied\n";
  o << "  " << at(inject) << "inject        each fault at its offset, with its duration (the kernel ends it):\n";
  for (const auto& f : e.faults) {
    json req = {{"op", "apply"}, {"fault", proto::fault_spec_to_json(f.spec)}};
    o << "    " << at(inject + f.start) << "apply " << f.name << " for " << format_duration(f.duration) << " ("
      << f.spec.targets.size() << (f.spec.targets.size() == 1 ? " target" : " targets") << "): " << f.cli << "\n"
      << "      request: " << req.dump(-1, ' ', true) << "\n";
  }
  o << "  " << at(inject) << "observe       " << format_duration(e.method_duration)
    << ": the hypothesis holds if every probe stays in range\n";
  o << "  " << at(heal) << "heal          every fault still active\n";
  o << "  " << at(heal) << "recovery      every probe back in range within " << format_duration(e.recovery_within)
    << ", else refuted\n";
  o << "\nabort rules (heal every fault at once, verdict aborted):";
  if (e.aborts.empty()) o << " none";
  o << "\n";
  for (const auto& a : e.aborts) o << "  " << a.probe << ": " << a.describe() << "\n";
  o << "  and SIGINT, SIGTERM or a lost daemon connection\n";
  o << "\nblast radius: at most " << e.max_targets << (e.max_targets == 1 ? " target" : " targets") << " per fault\n";
  o << "longest run: " << format_duration(heal + e.recovery_within) << "\n";
  return o.str();
}

Result<Experiment> parse_experiment(std::string_view text, std::string_view source, const ReadFile& read_file) {
  Reporter rep(source);
  try {
    auto e = parse(rep, text, read_file);
    if (e) e->file = std::string(source);
    return e;
  } catch (const YAML::Exception& ex) {
    return rep.syntax(ex.mark, ex.msg);
  } catch (const std::exception& ex) {
    return rep.whole(std::string("cannot read: ") + ex.what());
  }
}

}  // namespace fl::cli
