#include "cli/address_list.h"

#include <cerrno>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/parse.h"

namespace fl::cli {

namespace {

using json = nlohmann::json;

Error usage(std::string msg) { return make_error(Errc::invalid_argument, std::move(msg)); }

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Calls fn(line_number, content) for each line with something left once the comment and the
// surrounding blanks are cut off. Stops at the first error.
template <typename Fn>
Status for_each_line(std::string_view text, Fn fn) {
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    while (!line.empty() && is_blank(line.front())) line.remove_prefix(1);
    while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
    if (line.empty()) continue;
    FL_TRY(fn(line_no, line));
  }
  return {};
}

std::string display_name(const std::string& path) { return path == "-" ? "<stdin>" : path; }

bool lab_chars_ok(std::string_view v) {
  for (char c : v) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// Adds the CIDRs not seen yet, in order.
void add_unique(std::vector<core::Cidr>& out, std::set<core::Cidr>& seen, const std::vector<core::Cidr>& more) {
  for (const auto& c : more) {
    if (seen.insert(c).second) out.push_back(c);
  }
}

}  // namespace

Result<std::vector<core::Cidr>> parse_cidr_lines(std::string_view text, const std::string& name) {
  std::vector<core::Cidr> out;
  // Files hold up to tens of thousands of lines; a set keeps de-duplication O(n log n).
  std::set<core::Cidr> seen;
  auto st = for_each_line(text, [&](size_t n, std::string_view line) -> Status {
    auto c = core::parse_cidr(line);
    if (!c) return c.take_error().wrap(name + ":" + std::to_string(n));
    if (seen.insert(*c).second) out.push_back(*c);
    return {};
  });
  if (!st) return st.take_error();
  if (out.empty()) return usage(name + ": no CIDR in the file (one per line; '#' starts a comment)");
  return out;
}

Result<std::vector<core::Exemption>> parse_exemption_lines(std::string_view text, const std::string& name) {
  std::vector<core::Exemption> out;
  auto st = for_each_line(text, [&](size_t n, std::string_view line) -> Status {
    auto e = core::parse_exemption(line);
    if (!e) return e.take_error().wrap(name + ":" + std::to_string(n));
    out.push_back(*e);
    return {};
  });
  if (!st) return st.take_error();
  if (out.empty()) return usage(name + ": no exemption in the file (one CIDR[/PROTO[:PORT]] per line)");
  return out;
}

Result<std::string> AddressSources::read(const std::string& path) {
  if (path.empty()) return usage("missing file name after '@'");
  if (path == "-") {
    if (stdin_used_) return usage("stdin ('-') can be read only once per command");
    stdin_used_ = true;
  }
  if (!read_file_) return usage("this caller cannot read files");
  auto text = read_file_(path);
  if (!text) return text.take_error();
  return std::move(*text);
}

Result<std::vector<core::Cidr>> AddressSources::lab_node(std::string_view spec) {
  const std::string item = "lab:" + std::string(spec);
  auto fail = [&](const std::string& why) { return usage(item + ": " + why); };
  std::string_view lab = core::kDefaultLab, node = spec;
  if (const size_t slash = spec.find('/'); slash != std::string_view::npos) {
    lab = spec.substr(0, slash);
    node = spec.substr(slash + 1);
    if (lab.empty()) return fail("missing lab name before '/'");
  }
  if (lab.size() > 40 || !lab_chars_ok(lab) || lab.front() == '-') {
    return fail("lab name " + core::quote(lab) + " is not a lab name (1 to 40 of a-z, 0-9 and '-')");
  }
  if (node.empty()) return fail("missing node name; expected lab:NODE or lab:LAB/NODE");
  if (node.size() != 1 || node[0] < 'a' || node[0] > 'z') {
    return fail("node name " + core::quote(node) + " is not a lab node (one letter, a to z)");
  }

  auto cached = labs_.find(lab);
  if (cached == labs_.end()) {
    const std::string path = std::string(kLabStateDir) + "/" + std::string(lab) + ".json";
    if (!read_file_) return fail("this caller cannot read the lab's state file " + path);
    auto text = read_file_(path);
    if (!text) {
      if (text.error().sys_errno == ENOENT) {
        return fail("no lab named " + core::quote(lab) + " (no " + path + "; 'faultctl lab up --name " +
                    std::string(lab) + "' makes one)");
      }
      return fail(text.error().message);
    }
    std::vector<LabNode> nodes;
    try {
      const json j = json::parse(*text);
      if (!j.is_object() || j.value("version", 0) != 1) return fail(path + ": not a lab state file (no \"version\": 1)");
      if (j.at("name").get<std::string>() != lab) return fail(path + ": the file names another lab");
      if (const std::string phase = j.value("phase", ""); phase != "ready") {
        return fail("lab " + core::quote(lab) + " is not ready (phase " + core::quote(phase) +
                    "); 'faultctl lab status --name " + std::string(lab) + "' says more");
      }
      for (const auto& o : j.at("nodes")) {
        LabNode n;
        n.name = o.at("node").get<std::string>();
        for (const char* key : {"ipv4", "ipv6"}) {
          if (!o.contains(key)) continue;
          auto c = core::parse_cidr(o.at(key).get<std::string>());
          if (!c) return fail(path + ": node " + core::quote(n.name) + ": " + c.error().message);
          n.addrs.push_back(*c);
        }
        nodes.push_back(std::move(n));
      }
    } catch (const json::exception& e) {
      return fail(path + ": malformed state file: " + e.what());
    }
    cached = labs_.emplace(std::string(lab), std::move(nodes)).first;
  }
  std::string names;
  for (const auto& n : cached->second) {
    if (n.name == node) {
      if (n.addrs.empty()) return fail("node " + core::quote(node) + " has no address in the state file");
      return n.addrs;
    }
    names += (names.empty() ? "" : ", ") + n.name;
  }
  return fail("lab " + core::quote(lab) + " has no node " + core::quote(node) + " (its nodes: " + names + ")");
}

Result<std::vector<core::Cidr>> resolve_cidr_list(std::string_view arg, AddressSources& src) {
  // The common case, plain CIDRs, keeps core's parser and its messages.
  if (arg.find('@') == std::string_view::npos && arg.find("lab:") == std::string_view::npos) {
    return core::parse_cidr_list(arg);
  }
  std::vector<core::Cidr> out;
  std::set<core::Cidr> seen;
  size_t start = 0, item = 1;
  while (true) {
    const size_t comma = arg.find(',', start);
    const std::string_view part = arg.substr(start, comma == std::string_view::npos ? arg.npos : comma - start);
    if (part.empty()) {
      return usage("invalid CIDR list " + core::quote(arg) + ": item " + std::to_string(item) + " is empty");
    }
    if (part.front() == '@') {
      const std::string path(part.substr(1));
      auto text = src.read(path);
      if (!text) return text.take_error();
      auto cidrs = parse_cidr_lines(*text, display_name(path));
      if (!cidrs) return cidrs.take_error();
      add_unique(out, seen, *cidrs);
    } else if (part.starts_with("lab:")) {
      auto cidrs = src.lab_node(part.substr(4));
      if (!cidrs) return cidrs.take_error();
      add_unique(out, seen, *cidrs);
    } else {
      auto c = core::parse_cidr(part);
      if (!c) return c.take_error();
      add_unique(out, seen, {*c});
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
    ++item;
  }
  return out;
}

Result<core::Side> resolve_side(std::string_view arg, size_t index, AddressSources& src) {
  if (arg.find('@') == std::string_view::npos && arg.find("lab:") == std::string_view::npos) {
    return core::parse_side(arg, index);
  }
  const std::string ctx = "invalid side " + std::to_string(index + 1) + " " + core::quote(arg);
  core::Side side{core::default_side_name(index), {}};
  std::string_view list = arg;
  // A name is what comes before '=', unless the side starts with a file: "@a=b.txt" is a path.
  if (const size_t eq = arg.find('='); eq != std::string_view::npos && arg.front() != '@') {
    const std::string_view name = arg.substr(0, eq);
    FL_TRY_CTX(core::check_name(name, "side name"), ctx);
    side.name = std::string(name);
    list = arg.substr(eq + 1);
    if (list.empty()) return usage(ctx + ": missing CIDRs after '='");
  }
  auto cidrs = resolve_cidr_list(list, src);
  if (!cidrs) return cidrs.take_error().wrap(ctx);
  side.cidrs = std::move(*cidrs);
  return side;
}

}  // namespace fl::cli
