#include "cli/fanout.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

#include "core/parse.h"

namespace fl::cli {

using json = nlohmann::json;

namespace {

Error usage(std::string msg) { return make_error(Errc::invalid_argument, std::move(msg)); }

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

// POSIX's portable user name characters; ssh would pass anything on, but a user name with a
// space or a leading '-' is a typo or an attack, never a login.
Status check_user(std::string_view user) {
  if (user.empty()) return usage("empty user before '@'");
  if (user.size() > 32) return usage("user name longer than 32 characters");
  if (user[0] == '-') return usage("a user name may not start with '-'");
  for (char c : user) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return usage("user name " + core::quote(user) + " has a character other than letters, digits, '.', '_', '-'");
    }
  }
  return {};
}

// A DNS name, or an ssh_config Host alias: labels of letters, digits, '-' and '_' (aliases
// often use it), neither starting nor ending with '-'.
Status check_dns_name(std::string_view name) {
  if (name.size() > 253) return usage("host name longer than 253 characters");
  size_t start = 0;
  for (;;) {
    const size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return usage("empty label in host name " + core::quote(name));
    if (label.size() > 63) return usage("label " + core::quote(label) + " longer than 63 characters");
    if (label.front() == '-' || label.back() == '-') {
      return usage("label " + core::quote(label) + " starts or ends with '-'");
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return usage("host name " + core::quote(name) + " has a character other than letters, digits, '-', '_', '.'");
      }
    }
    if (dot == std::string_view::npos) return {};
    start = dot + 1;
  }
}

std::optional<std::string> canonical_ip(int family, std::string_view s) {
  const std::string str(s);
  unsigned char buf[16];
  if (::inet_pton(family, str.c_str(), buf) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  if (::inet_ntop(family, buf, out, sizeof out) == nullptr) return std::nullopt;
  return std::string(out);
}

Result<uint16_t> parse_port(std::string_view s) {
  if (s.empty()) return usage("empty port after ':'");
  if (s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return usage("port " + core::quote(s) + " is not a number from 1 to 65535");
  }
  const unsigned long v = std::stoul(std::string(s));
  if (v < 1 || v > 65535) return usage("port " + core::quote(s) + " is not a number from 1 to 65535");
  return static_cast<uint16_t>(v);
}

bool overlaps(const core::Cidr& a, const core::Cidr& b) { return a.contains(b) || b.contains(a); }

}  // namespace

Result<ExtractedArgs> extract_host_options(const std::vector<std::string>& args) {
  ExtractedArgs out;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--" || a.size() < 2 || a[0] != '-') break;
    if (a == "--no-narrow") {
      out.hosts.narrow = false;
      continue;
    }
    if (starts_with(a, "--no-narrow=")) return usage("--no-narrow takes no value");
    std::string opt, value;
    for (const char* name : {"--host", "--hosts", "--ssh-config"}) {
      const std::string prefix = std::string(name) + "=";
      if (a == name) {
        if (i + 1 >= args.size()) return usage(a + ": missing value");
        opt = name;
        value = args[++i];
      } else if (starts_with(a, prefix)) {
        opt = name;
        value = a.substr(prefix.size());
      }
    }
    if (opt.empty()) {
      out.rest.push_back(a);
      // parse_args's own options with a separate value: the value is not the command.
      if ((a == "--socket" || a == "-o" || a == "--output") && i + 1 < args.size()) out.rest.push_back(args[++i]);
      continue;
    }
    if (value.empty()) return usage(opt + ": empty value");
    if (opt == "--host") {
      out.hosts.hosts.push_back(value);
    } else if (opt == "--hosts") {
      out.hosts.host_files.push_back(value);
    } else {
      if (!out.hosts.ssh_config.empty()) return usage("--ssh-config given twice");
      out.hosts.ssh_config = value;
    }
  }
  out.rest.insert(out.rest.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  if (!out.hosts.ssh_config.empty() && !out.hosts.any()) return usage("--ssh-config needs --host or --hosts");
  if (!out.hosts.narrow && !out.hosts.any()) return usage("--no-narrow needs --host or --hosts");
  return out;
}

std::string Host::name() const {
  std::string out = user.empty() ? "" : user + "@";
  const bool v6 = host.find(':') != std::string::npos;
  out += v6 && port != 0 ? "[" + host + "]" : host;
  if (port != 0) out += ":" + std::to_string(port);
  return out;
}

Result<Host> parse_host_spec(std::string_view spec) {
  auto st = [&]() -> Result<Host> {
    if (spec.empty()) return usage("empty");
    if (!printable_ascii(spec)) return usage("spaces, control characters and non-ASCII bytes are not allowed");
    std::string_view s = spec;
    if (starts_with(s, "ssh://")) {
      s.remove_prefix(6);
    } else if (s.find("://") != std::string_view::npos) {
      return usage("only ssh:// is supported");
    }
    if (s.find('/') != std::string_view::npos) return usage("a path after the host is not supported");
    Host h;
    if (const size_t at = s.rfind('@'); at != std::string_view::npos) {
      FL_TRY(check_user(s.substr(0, at)));
      h.user = std::string(s.substr(0, at));
      s.remove_prefix(at + 1);
    }
    if (s.empty()) return usage("no host");
    std::string_view port;
    bool has_port = false;
    if (s.front() == '[') {
      const size_t close = s.find(']');
      if (close == std::string_view::npos) return usage("'[' without ']'");
      auto ip = canonical_ip(AF_INET6, s.substr(1, close - 1));
      if (!ip) return usage(core::quote(s.substr(1, close - 1)) + " is not an IPv6 address");
      h.host = *ip;
      const std::string_view after = s.substr(close + 1);
      if (!after.empty()) {
        if (after.front() != ':') return usage("expected ':PORT' after ']'");
        port = after.substr(1);
        has_port = true;
      }
    } else {
      const size_t colons = static_cast<size_t>(std::count(s.begin(), s.end(), ':'));
      std::string_view name = s;
      if (colons > 1) {
        auto ip = canonical_ip(AF_INET6, s);
        if (!ip) return usage(core::quote(s) + " is not an IPv6 address (write [ADDRESS]:PORT to give a port)");
        h.host = *ip;
      } else {
        if (colons == 1) {
          name = s.substr(0, s.find(':'));
          port = s.substr(s.find(':') + 1);
          has_port = true;
        }
        if (name.empty()) return usage("no host");
        if (name.front() == '-') return usage("a host may not start with '-'");
        const bool numeric =
            std::all_of(name.begin(), name.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
        if (numeric) {
          auto ip = canonical_ip(AF_INET, name);
          if (!ip) return usage(core::quote(name) + " is not an IPv4 address");
          h.host = *ip;
        } else {
          FL_TRY(check_dns_name(name));
          h.host = std::string(name);
        }
      }
    }
    if (has_port) {
      auto p = parse_port(port);
      if (!p) return p.take_error();
      h.port = *p;
    }
    return h;
  }();
  if (!st) return st.take_error().wrap("invalid host " + core::quote(spec));
  return st;
}

Status check_fan_out_ref(const Invocation& inv, size_t hosts) {
  if (hosts <= 1 || inv.ref.empty() || inv.fault || inv.reset) return {};
  // parse_args sends an id in canonical form, and a name is never all digits.
  const bool id = std::all_of(inv.ref.begin(), inv.ref.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!id) return {};
  const std::string& cmd = inv.command;
  return usage(cmd + " " + inv.ref + ": fault ids are per host (each faultlined numbers its own faults), so id " +
               inv.ref + " would name a different fault, or none, on each of the " + std::to_string(hosts) +
               " hosts; refer to the fault by its name (" + cmd + " NAME, the --name it was applied with)" +
               (cmd == "heal" ? ", or heal every fault with heal --all" : "") +
               ", or give a single --host to use that host's id");
}

Status check_remote_socket(std::string_view path, std::string_view what) {
  const std::string w(what);
  if (path.empty()) return usage(w + ": empty path");
  if (path.front() != '/') {
    return usage(w + ": " + core::quote(path) + " is not an absolute path (it names the socket on the remote host)");
  }
  if (!printable_ascii(path)) return usage(w + ": spaces, control characters and non-ASCII bytes are not allowed");
  if (path.find(':') != std::string_view::npos) {
    return usage(w + ": " + core::quote(path) + " contains ':', which ssh -L cannot forward to");
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return usage(w + ": path is " + std::to_string(path.size()) + " bytes; a Unix socket path has at most " +
                 std::to_string(sizeof(sockaddr_un::sun_path) - 1));
  }
  return {};
}

Result<std::vector<Host>> parse_hosts_file(std::string_view text, const std::string& file) {
  std::vector<Host> hosts;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    const std::string where = file + ":" + std::to_string(line_no);
    std::vector<std::string_view> words;
    size_t i = 0;
    while (i < line.size()) {
      const char c = line[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++i;
        continue;
      }
      if (c == '#') break;  // a word cannot start with '#', so this is a comment
      const size_t end = line.find_first_of(" \t\r", i);
      words.push_back(line.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i));
      i = end == std::string_view::npos ? line.size() : end;
    }
    if (words.empty()) continue;
    auto h = parse_host_spec(words[0]);
    if (!h) return h.take_error().wrap(where);
    for (size_t w = 1; w < words.size(); ++w) {
      if (!starts_with(words[w], "socket=")) {
        return usage(where + ": unexpected " + core::quote(words[w]) + " after the host (expected socket=PATH)");
      }
      if (!h->socket.empty()) return usage(where + ": socket= given twice");
      const std::string_view path = words[w].substr(7);
      FL_TRY_CTX(check_remote_socket(path, "socket"), where);
      h->socket = std::string(path);
    }
    hosts.push_back(std::move(*h));
  }
  if (hosts.empty()) return usage(file + ": no hosts in the file");
  return hosts;
}

Result<std::vector<Host>> collect_hosts(const HostOptions& opts, const ReadFile& read_file) {
  std::vector<Host> hosts;
  for (const auto& spec : opts.hosts) {
    auto h = parse_host_spec(spec);
    if (!h) return h.take_error().wrap("--host");
    hosts.push_back(std::move(*h));
  }
  for (const auto& file : opts.host_files) {
    if (!read_file) return usage("--hosts: this caller cannot read files");
    auto text = read_file(file);
    if (!text) return usage("--hosts: " + text.error().message);
    auto more = parse_hosts_file(*text, file);
    if (!more) return more.take_error();
    for (auto& h : *more) hosts.push_back(std::move(h));
  }
  if (hosts.size() > kMaxHosts) {
    return usage(std::to_string(hosts.size()) + " hosts; faultctl drives at most " + std::to_string(kMaxHosts));
  }
  // Two entries for one daemon would apply a fault there twice, and heal it twice.
  std::map<std::pair<std::string, uint16_t>, std::string> seen;
  for (const auto& h : hosts) {
    std::string key = h.host;
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    auto [it, fresh] = seen.emplace(std::make_pair(key, h.port), h.name());
    if (!fresh) {
      return usage("host " + h.name() + " is given twice" +
                   (it->second == h.name() ? "" : " (also as " + it->second + ")"));
    }
  }
  return hosts;
}

Result<std::optional<std::vector<core::Cidr>>> status_addresses(const json& status) {
  if (!status.is_object()) return make_error(Errc::internal, "malformed status reply: not an object");
  auto it = status.find("addresses");
  if (it == status.end()) return std::optional<std::vector<core::Cidr>>();
  if (!it->is_array()) return make_error(Errc::internal, "malformed status reply: \"addresses\" is not an array");
  std::vector<core::Cidr> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& a = (*it)[i];
    if (!a.is_string()) {
      return make_error(Errc::internal, "malformed status reply: addresses[" + std::to_string(i) + "] is not a string");
    }
    auto c = core::parse_cidr(a.get<std::string>());
    if (!c) return c.take_error().wrap("malformed status reply: addresses[" + std::to_string(i) + "]");
    out.push_back(*c);
  }
  return std::optional<std::vector<core::Cidr>>(std::move(out));
}

bool narrowable(const core::FaultSpec& spec) {
  return spec.kind == core::FaultKind::partition &&
         std::all_of(spec.targets.begin(), spec.targets.end(),
                     [](const core::Target& t) { return t.kind == core::Target::Kind::host; });
}

std::optional<core::FaultSpec> narrow_for_host(const core::FaultSpec& spec, const std::vector<core::Cidr>& own) {
  if (!narrowable(spec)) return spec;
  auto holds = [](const core::Side& side, const core::Cidr& a) {
    return std::any_of(side.cidrs.begin(), side.cidrs.end(), [&](const core::Cidr& c) { return c.contains(a); });
  };
  std::vector<bool> ours(spec.sides.size(), false);
  for (size_t i = 0; i < spec.sides.size(); ++i) {
    ours[i] = std::any_of(own.begin(), own.end(), [&](const core::Cidr& a) { return holds(spec.sides[i], a); });
  }
  if (std::none_of(ours.begin(), ours.end(), [](bool b) { return b; })) return std::nullopt;

  core::FaultSpec out = spec;
  for (size_t i = 0; i < spec.sides.size(); ++i) {
    if (!ours[i]) continue;
    // A CIDR that overlaps a side this host is not in holds bridges: addresses that share this
    // side with the host and so must still reach it. Dropping the CIDR would leave them only
    // in the other side, and the host would cut them off.
    std::vector<core::Cidr> kept;
    for (const core::Cidr& c : spec.sides[i].cidrs) {
      bool bridge = false;
      for (size_t j = 0; j < spec.sides.size() && !bridge; ++j) {
        if (ours[j]) continue;
        bridge = std::any_of(spec.sides[j].cidrs.begin(), spec.sides[j].cidrs.end(),
                             [&](const core::Cidr& d) { return overlaps(c, d); });
      }
      if (bridge) kept.push_back(c);
    }
    for (const core::Cidr& a : own) {
      if (!holds(spec.sides[i], a)) continue;
      const bool covered =
          std::any_of(kept.begin(), kept.end(), [&](const core::Cidr& k) { return k.contains(a); });
      if (!covered) kept.push_back(a);
    }
    out.sides[i].cidrs = std::move(kept);
  }
  return out;
}

}  // namespace fl::cli
