#include "cli/matrix_file.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "core/parse.h"
#include "core/validate.h"

namespace fl::cli {

namespace {

// Errors point at a node of the document. yaml-cpp marks are 0-based; people count from 1.
class Reporter {
 public:
  explicit Reporter(std::string_view source) : source_(source) {}

  Error at(const YAML::Node& node, const std::string& msg) const { return at(node.Mark(), msg); }
  Error at(const YAML::Mark& mark, const std::string& msg) const {
    std::string where(source_);
    if (!mark.is_null()) where += ":" + std::to_string(mark.line + 1);
    return make_error(Errc::invalid_argument, where + ": " + msg);
  }
  Error syntax(const YAML::Mark& mark, const std::string& msg) const {
    return make_error(Errc::invalid_argument, std::string(source_) + ":" + std::to_string(mark.line + 1) + ":" +
                                                  std::to_string(mark.column + 1) + ": " + msg);
  }
  Error whole(const std::string& msg) const {
    return make_error(Errc::invalid_argument, std::string(source_) + ": " + msg);
  }

 private:
  std::string_view source_;
};

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

std::string index_path(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// A map's keys, each checked against `known` and seen at most once (yaml-cpp keeps duplicate
// keys, and the second one silently winning would hide a typo'd copy-paste).
Status check_keys(const Reporter& rep, const YAML::Node& map, const std::string& path,
                  std::initializer_list<std::string_view> known, std::string_view known_text) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const YAML::Node& key = kv.first;
    if (!key.IsScalar()) return rep.at(key, path + ": a key must be a plain name, not " + node_kind(key));
    const std::string& k = key.Scalar();
    bool ok = false;
    for (std::string_view n : known) ok = ok || k == n;
    if (!ok) {
      return rep.at(key, path + ": unknown key " + core::quote(k) + "; expected " + std::string(known_text));
    }
    if (!seen.insert(k).second) return rep.at(key, path + ": key " + core::quote(k) + " given twice");
  }
  return {};
}

Result<std::string> scalar(const Reporter& rep, const YAML::Node& n, const std::string& path, const char* expected) {
  if (!n.IsScalar()) return rep.at(n, path + ": expected " + std::string(expected) + ", got " + node_kind(n));
  return n.Scalar();
}

// A side's addresses: a list of CIDRs, or one string of comma-separated CIDRs.
Result<std::vector<core::Cidr>> read_cidrs(const Reporter& rep, const YAML::Node& n, const std::string& path) {
  std::vector<core::Cidr> out;
  if (n.IsScalar()) {
    auto list = core::parse_cidr_list(n.Scalar());
    if (!list) return rep.at(n, path + ": " + list.error().message);
    out = std::move(*list);
  } else if (n.IsSequence()) {
    // Sides can hold tens of thousands of addresses: a set keeps de-duplication O(n log n).
    std::set<core::Cidr> seen;
    out.reserve(n.size());
    size_t i = 0;
    for (const auto& item : n) {
      const std::string p = index_path(path, i++);
      // In a flow list, "fd00::" reads as a one-entry map ("fd00:" -> ":"): say how to write it.
      if (item.IsMap()) {
        return rep.at(item, p + ": expected a CIDR, got a map (in [...] lists, quote IPv6 addresses: \"fd00::\")");
      }
      auto s = scalar(rep, item, p, "a CIDR");
      if (!s) return s.take_error();
      auto c = core::parse_cidr(*s);
      if (!c) return rep.at(item, p + ": " + c.error().message);
      if (seen.insert(*c).second) out.push_back(*c);
    }
  } else {
    return rep.at(n, path + ": expected a list of CIDRs or a comma-separated string, got " + node_kind(n));
  }
  if (out.empty()) return rep.at(n, path + ": no addresses");
  return out;
}

struct SideEntry {
  core::Side side;
  YAML::Mark mark;
};

Status read_sides(const Reporter& rep, const YAML::Node& n, std::vector<SideEntry>& out) {
  auto add = [&](const YAML::Node& name_node, const std::string& name, const YAML::Node& cidrs_node,
                 const std::string& path, const std::string& cidrs_path) -> Status {
    if (auto st = core::check_name(name, "side name"); !st) return rep.at(name_node, path + ": " + st.error().message);
    for (const auto& e : out) {
      if (e.side.name == name) {
        return rep.at(name_node, path + ": side " + core::quote(name) + " given twice (first on line " +
                                     std::to_string(e.mark.line + 1) + ")");
      }
    }
    auto cidrs = read_cidrs(rep, cidrs_node, cidrs_path);
    if (!cidrs) return cidrs.take_error();
    out.push_back(SideEntry{core::Side{name, std::move(*cidrs)}, name_node.Mark()});
    return {};
  };
  if (n.IsMap()) {
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) {
        return rep.at(kv.first, std::string("sides: a side name must be a plain name, not ") + node_kind(kv.first));
      }
      const std::string& name = kv.first.Scalar();
      FL_TRY(add(kv.first, name, kv.second, "sides." + name, "sides." + name));
    }
  } else if (n.IsSequence()) {
    size_t i = 0;
    for (const auto& item : n) {
      const std::string path = index_path("sides", i++);
      if (!item.IsMap()) return rep.at(item, path + ": expected a map with name and cidrs, got " + node_kind(item));
      FL_TRY(check_keys(rep, item, path, {"name", "cidrs"}, "name and cidrs"));
      const YAML::Node name = item["name"];
      const YAML::Node cidrs = item["cidrs"];
      if (!name) return rep.at(item, path + ": missing key \"name\"");
      if (!cidrs) return rep.at(item, path + ": missing key \"cidrs\"");
      auto s = scalar(rep, name, path + ".name", "a name");
      if (!s) return s.take_error();
      FL_TRY(add(name, *s, cidrs, path, path + ".cidrs"));
    }
  } else {
    return rep.at(n, std::string("sides: expected a map of name: CIDRs, or a list of {name, cidrs}; got ") +
                         node_kind(n));
  }
  if (out.size() < 2) {
    return rep.at(n, "sides: a matrix needs at least 2 sides (got " + std::to_string(out.size()) + ")");
  }
  if (out.size() > core::kMaxMatrixSides) {
    return rep.at(n, "sides: a matrix allows at most " + std::to_string(core::kMaxMatrixSides) + " sides (got " +
                         std::to_string(out.size()) + ")");
  }
  return {};
}

// check_profile names the model's members; the file has its own keys.
std::string file_wording(std::string msg) {
  static const std::pair<std::string_view, std::string_view> kKeys[] = {
      {".delay_correlation", ".correlation"}, {".rate_bps", ".rate"},
      {".burst_bytes", ".burst"},             {".loss_percent", ".loss"},
      {".loss_correlation", ".loss-correlation"}, {".corrupt_percent", ".corrupt"},
      {".duplicate_percent", ".duplicate"},   {".reorder_percent", ".reorder"},
      {".reorder_gap", ".gap"},
  };
  const size_t colon = msg.find(": ");
  if (colon == std::string::npos) return msg;
  for (const auto& [model, key] : kKeys) {
    const size_t at = msg.rfind(model, colon);
    if (at != std::string::npos && at + model.size() == colon) {
      return msg.substr(0, at) + std::string(key) + msg.substr(colon);
    }
  }
  return msg;
}

struct PairEntry {
  core::MatrixPair pair;
  bool symmetric = false;
};

Result<PairEntry> read_pair(const Reporter& rep, const YAML::Node& item, const std::string& path,
                            const std::vector<SideEntry>& sides) {
  if (!item.IsMap()) {
    return rep.at(item, path + ": expected a map like {from: a, to: b, delay: 10ms}, got " + node_kind(item));
  }
  FL_TRY(check_keys(rep, item, path,
                    {"from", "to", "symmetric", "delay", "jitter", "correlation", "distribution", "rate", "burst",
                     "loss", "loss-correlation", "corrupt", "duplicate", "reorder", "gap"},
                    "from, to, symmetric, delay, jitter, correlation, distribution, rate, burst, loss, "
                    "loss-correlation, corrupt, duplicate, reorder or gap"));
  PairEntry out;
  core::MatrixPair& pr = out.pair;
  for (auto [key, dest] : {std::pair{"from", &pr.from}, std::pair{"to", &pr.to}}) {
    const YAML::Node v = item[key];
    const std::string p = path + "." + key;
    if (!v) return rep.at(item, path + ": missing key " + core::quote(key) + " (a side name)");
    auto name = scalar(rep, v, p, "a side name");
    if (!name) return name.take_error();
    size_t found = sides.size();
    for (size_t i = 0; i < sides.size() && found == sides.size(); ++i) {
      if (sides[i].side.name == *name) found = i;
    }
    if (found == sides.size()) {
      std::string known;
      for (size_t i = 0; i < sides.size(); ++i) known += (i ? ", " : "") + sides[i].side.name;
      return rep.at(v, p + ": no side named " + core::quote(*name) + " (sides: " + known + ")");
    }
    *dest = found;
  }
  if (pr.from == pr.to) {
    return rep.at(item, path + ": from and to are both " + core::quote(sides[pr.from].side.name) +
                            "; traffic within a side is not a pair");
  }

  // Each value is a scalar read with the parser of the matching faultctl option.
  auto value = [&](const char* key, auto parse, auto& dest) -> Status {
    const YAML::Node v = item[key];
    if (!v) return {};
    const std::string p = path + "." + key;
    auto s = scalar(rep, v, p, "a value");
    if (!s) return s.take_error();
    auto r = parse(std::string_view(*s));
    if (!r) return rep.at(v, p + ": " + r.error().message);
    dest = *r;
    return {};
  };
  core::ShapeProfile& sp = pr.profile;
  FL_TRY(value("delay", core::parse_duration_us, sp.delay));
  FL_TRY(value("jitter", core::parse_duration_us, sp.jitter));
  FL_TRY(value("correlation", core::parse_percent, sp.delay_correlation));
  FL_TRY(value("distribution", core::parse_distribution, sp.distribution));
  FL_TRY(value("rate", core::parse_rate, sp.rate_bps));
  FL_TRY(value("burst", core::parse_size, sp.burst_bytes));
  FL_TRY(value("loss", core::parse_percent, sp.loss_percent));
  FL_TRY(value("loss-correlation", core::parse_percent, sp.loss_correlation));
  FL_TRY(value("corrupt", core::parse_percent, sp.corrupt_percent));
  FL_TRY(value("duplicate", core::parse_percent, sp.duplicate_percent));
  FL_TRY(value("reorder", core::parse_percent, sp.reorder_percent));
  uint64_t gap = 0;
  FL_TRY(value("gap", core::parse_u64, gap));
  if (gap > std::numeric_limits<uint32_t>::max()) {
    return rep.at(item["gap"], path + ".gap: " + std::to_string(gap) + " is above 4294967295");
  }
  sp.reorder_gap = static_cast<uint32_t>(gap);
  if (const YAML::Node v = item["symmetric"]) {
    // YAML 1.2's booleans only: "yes" and "on" are strings there, and a file read as JSON
    // cannot hold them anyway.
    auto s = scalar(rep, v, path + ".symmetric", "true or false");
    if (!s) return s.take_error();
    if (*s == "true") {
      out.symmetric = true;
    } else if (*s != "false") {
      return rep.at(v, path + ".symmetric: expected true or false, got " + core::quote(*s));
    }
  }

  const std::string label = sides[pr.from].side.name + " -> " + sides[pr.to].side.name;
  if (sp.empty()) {
    return rep.at(item, path + ": " + label +
                            " has no effect; give it a delay, rate, loss, corrupt, duplicate or reorder");
  }
  if (auto st = core::check_profile(sp, path); !st) return rep.at(item, file_wording(st.error().message));
  return out;
}

Result<MatrixFile> parse(const Reporter& rep, std::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    return rep.syntax(e.mark, "not valid YAML or JSON: " + e.msg);
  }
  if (root.IsNull()) return rep.whole("empty; expected a map with sides and pairs");
  if (!root.IsMap()) return rep.at(root, std::string("expected a map with sides and pairs, got ") + node_kind(root));
  FL_TRY(check_keys(rep, root, "top level", {"sides", "pairs"}, "sides and pairs"));
  const YAML::Node sides_node = root["sides"];
  const YAML::Node pairs_node = root["pairs"];
  if (!sides_node) return rep.whole("missing key \"sides\"");
  if (!pairs_node) return rep.whole("missing key \"pairs\"");

  std::vector<SideEntry> sides;
  FL_TRY(read_sides(rep, sides_node, sides));

  if (!pairs_node.IsSequence()) {
    return rep.at(pairs_node, std::string("pairs: expected a list, got ") + node_kind(pairs_node));
  }
  if (pairs_node.size() == 0) return rep.at(pairs_node, "pairs: a matrix needs at least 1 pair");
  MatrixFile out;
  // (from, to) -> where it was given, so a pair listed twice, or once directly and once as the
  // mirror of a symmetric one, names both places.
  std::map<std::pair<size_t, size_t>, std::pair<size_t, YAML::Mark>> given;
  size_t i = 0;
  for (const auto& item : pairs_node) {
    const size_t index = i++;
    const std::string path = index_path("pairs", index);
    auto entry = read_pair(rep, item, path, sides);
    if (!entry) return entry.take_error();
    std::vector<core::MatrixPair> add{entry->pair};
    if (entry->symmetric) add.push_back(core::MatrixPair{entry->pair.to, entry->pair.from, entry->pair.profile});
    for (const auto& p : add) {
      const auto [it, fresh] = given.emplace(std::pair{p.from, p.to}, std::pair{index, item.Mark()});
      if (!fresh) {
        const auto& [first, mark] = it->second;
        return rep.at(item, path + ": " + sides[p.from].side.name + " -> " + sides[p.to].side.name +
                                " is already given by " + index_path("pairs", first) + " (line " +
                                std::to_string(mark.line + 1) + "); each ordered pair takes one profile");
      }
      out.pairs.push_back(p);
    }
  }
  for (auto& s : sides) out.sides.push_back(std::move(s.side));
  return out;
}

}  // namespace

Result<MatrixFile> parse_matrix_file(std::string_view text, std::string_view source) {
  const Reporter rep(source);
  try {
    return parse(rep, text);
  } catch (const YAML::Exception& e) {
    // Only yaml-cpp's own surprises get here (the reader checks every type before converting).
    return rep.syntax(e.mark, e.msg);
  } catch (const std::exception& e) {
    return rep.whole(std::string("cannot read: ") + e.what());
  }
}

}  // namespace fl::cli
