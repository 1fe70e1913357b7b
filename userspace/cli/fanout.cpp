#include "cli/fanout.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>
#include <utility>

#include "core/parse.h"

extern char** environ;

namespace fl::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

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

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

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

// ---------------------------------------------------------------- Tunnel

namespace {

std::string temp_root() {
  // ssh -L splits on ':', and a Unix socket path is short: fall back to /tmp when TMPDIR would
  // not do.
  const char* t = std::getenv("TMPDIR");
  if (t != nullptr && t[0] == '/' && std::string_view(t).find(':') == std::string_view::npos &&
      std::string_view(t).size() < 64) {
    return t;
  }
  return "/tmp";
}

// What the signal handler needs to undo a tunnel, in storage it can read without locks or
// allocation: one slot per possible tunnel, claimed with an atomic flag.
struct CleanupSlot {
  std::atomic<bool> used{false};
  std::atomic<pid_t> pid{-1};
  char dir[128];
  char sock[160];
  char err[160];
};
CleanupSlot g_slots[kMaxHosts];

int claim_slot(const std::string& dir, const std::string& sock, const std::string& err) {
  if (dir.size() >= sizeof g_slots[0].dir || sock.size() >= sizeof g_slots[0].sock ||
      err.size() >= sizeof g_slots[0].err) {
    return -1;
  }
  for (size_t i = 0; i < kMaxHosts; ++i) {
    bool expected = false;
    if (!g_slots[i].used.compare_exchange_strong(expected, true)) continue;
    CleanupSlot& s = g_slots[i];
    s.pid = -1;
    dir.copy(s.dir, sizeof s.dir - 1);
    s.dir[dir.size()] = '\0';
    sock.copy(s.sock, sizeof s.sock - 1);
    s.sock[sock.size()] = '\0';
    err.copy(s.err, sizeof s.err - 1);
    s.err[err.size()] = '\0';
    return static_cast<int>(i);
  }
  return -1;
}

// Only async-signal-safe calls: kill, unlink, rmdir, sigaction, raise.
extern "C" void clean_up_and_die(int sig) {
  for (auto& s : g_slots) {
    if (!s.used.load()) continue;
    if (const pid_t pid = s.pid.load(); pid > 0) ::kill(pid, SIGTERM);
    ::unlink(s.sock);
    ::unlink(s.err);
    ::rmdir(s.dir);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

// Reaping ssh frees its pid for reuse, and the signal handler kills whatever pid a slot holds.
// So ssh is never reaped while its slot names it: exited() sees that it is gone without reaping
// it (the pid stays ours, a zombie), the caller clears the slot, and only then reap()s it.

// Whether the child `pid` has exited (block: once it has), leaving it unreaped. True as well
// when it is no child of ours any more (ECHILD), since there is nothing left to wait for.
bool exited(pid_t pid, bool block) {
  for (;;) {
    siginfo_t info{};
    const int r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
    if (r == 0) return info.si_pid == pid;  // WNOHANG and still running: si_pid stays 0
    if (errno == EINTR) continue;
    return true;
  }
}

// The exit status of a child that exited(); nullopt if it was reaped elsewhere.
std::optional<int> reap(pid_t pid) {
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, 0) == pid) return status;
    if (errno != EINTR) return std::nullopt;
  }
}

std::string describe_exit(std::optional<int> st) {
  if (!st) return "ssh exited";
  const int status = *st;
  if (WIFEXITED(status)) return "ssh exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("ssh was killed by signal ") + strsignal(WTERMSIG(status));
  return "ssh stopped";
}

}  // namespace

Result<Tunnel> Tunnel::open(const Host& host, const std::string& remote_socket, const SshOptions& opts) {
  FL_TRY(check_remote_socket(remote_socket, "socket"));
  Tunnel t;
  t.timeout_ = opts.timeout;
  std::string tmpl = temp_root() + "/faultctl-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return Error::sys(Errc::internal, "mkdtemp " + tmpl, errno);
  t.dir_ = tmpl;  // from here on the destructor cleans up
  t.local_ = t.dir_ + "/fwd.sock";
  t.err_path_ = t.dir_ + "/ssh.err";
  t.slot_ = claim_slot(t.dir_, t.local_, t.err_path_);

  std::vector<std::string> argv = {"ssh"};
  if (!opts.config.empty()) argv.insert(argv.end(), {"-F", opts.config});
  // BatchMode: never prompt (there is no one to answer, and a prompt would hang the fan-out).
  // ExitOnForwardFailure: a local socket ssh cannot bind must end ssh, not leave it idle.
  // ControlPath=none: a multiplexing master from the user's config would carry the forwarding
  // in another process, out of our reach when we stop this one.
  argv.insert(argv.end(), {"-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o",
                           "StreamLocalBindUnlink=yes", "-o", "ConnectTimeout=10", "-o", "ControlPath=none", "-N",
                           "-L", t.local_ + ":" + remote_socket});
  if (host.port != 0) argv.insert(argv.end(), {"-p", std::to_string(host.port)});
  if (!host.user.empty()) argv.insert(argv.end(), {"-l", host.user});
  argv.insert(argv.end(), {"--", host.host});

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, t.err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  // ssh keeps a SIGTERM it inherits ignored, and close() stops it with SIGTERM.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t def, none;
  sigemptyset(&def);
  sigaddset(&def, SIGTERM);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, "ssh", &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Error::sys(Errc::target_unavailable, "cannot run ssh", rc);
  }
  t.pid_ = pid;
  if (t.slot_ >= 0) g_slots[t.slot_].pid = pid;
  return t;
}

Result<Client> Tunnel::connect() {
  const auto deadline = Clock::now() + timeout_;
  for (;;) {
    if (pid_ > 0 && exited(pid_, false)) {
      if (slot_ >= 0) g_slots[slot_].pid = -1;  // before the reap frees the pid for reuse
      const std::optional<int> status = reap(std::exchange(pid_, -1));
      const std::string err = ssh_errors();
      if (err.empty()) return make_error(Errc::target_unavailable, describe_exit(status));
      return make_error(Errc::target_unavailable, starts_with(err, "ssh: ") ? err : "ssh: " + err);
    }
    // The timeout is also the client's reply timeout: the daemon's, not ssh's, so the default.
    auto c = Client::connect(local_);
    if (c) return c;
    const int e = c.error().sys_errno;
    // The socket appears once ssh has logged in, and accepts once ssh listens on it.
    if (e != ENOENT && e != ECONNREFUSED) return c.take_error();
    if (Clock::now() >= deadline) {
      const std::string err = ssh_errors();
      return make_error(Errc::target_unavailable,
                        "ssh did not set up the forwarding within " +
                            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()) + "s" +
                            (err.empty() ? "" : " (ssh: " + err + ")"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string Tunnel::ssh_errors() const {
  if (err_path_.empty()) return "";
  // O_CLOEXEC: another host's ssh may be spawned meanwhile, and must not inherit this.
  const int fd = ::open(err_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string s;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  // A noisy ssh_config (LogLevel DEBUG) must not flood the message: keep the end.
  constexpr size_t kMax = 2000;
  if (s.size() > kMax) s = "..." + s.substr(s.size() - kMax);
  return one_line(std::move(s));
}

Tunnel::Tunnel(Tunnel&& other) noexcept
    : dir_(std::exchange(other.dir_, "")),
      local_(std::move(other.local_)),
      err_path_(std::exchange(other.err_path_, "")),
      pid_(std::exchange(other.pid_, -1)),
      slot_(std::exchange(other.slot_, -1)),
      timeout_(other.timeout_) {}

Tunnel& Tunnel::operator=(Tunnel&& other) noexcept {
  if (this != &other) {
    close();
    dir_ = std::exchange(other.dir_, "");
    local_ = std::move(other.local_);
    err_path_ = std::exchange(other.err_path_, "");
    pid_ = std::exchange(other.pid_, -1);
    slot_ = std::exchange(other.slot_, -1);
    timeout_ = other.timeout_;
  }
  return *this;
}

Tunnel::~Tunnel() { close(); }

void Tunnel::clean_up_on_signals() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler == SIG_IGN) continue;
    struct sigaction sa {};
    sa.sa_handler = clean_up_and_die;
    sigemptyset(&sa.sa_mask);
    for (int other : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&sa.sa_mask, other);
    ::sigaction(sig, &sa, nullptr);
  }
}

void Tunnel::close() {
  if (pid_ > 0) {
    // The slot keeps naming ssh until it has exited: a signal meanwhile still stops it.
    ::kill(pid_, SIGTERM);
    // ssh exits at once on SIGTERM; SIGKILL only for one stuck in a blocking call.
    bool gone = exited(pid_, false);
    for (int i = 0; i < 40 && !gone; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      gone = exited(pid_, false);
    }
    if (!gone) {
      ::kill(pid_, SIGKILL);
      exited(pid_, true);
    }
    // The handler must not signal a pid that is about to be reaped (and then reused).
    if (slot_ >= 0) g_slots[slot_].pid = -1;
    reap(std::exchange(pid_, -1));
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
  if (slot_ >= 0) g_slots[std::exchange(slot_, -1)].used = false;
}

}  // namespace fl::cli
