#include "cli/tunnel.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

extern char** environ;

namespace fl::cli {

using Clock = std::chrono::steady_clock;

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}


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


Status SshConnection::connect() {
  auto tunnel = Tunnel::open(host_, socket_, opts_);
  if (!tunnel) return tunnel.take_error();
  tunnel_.emplace(std::move(*tunnel));
  auto client = tunnel_->connect();
  if (!client) return client.take_error();
  client_.emplace(std::move(*client));
  return {};
}

// A broken connection is explained with what ssh said, and in terms of the remote socket: the
// local end of the forwarding is a temporary file that means nothing to the user.
Result<nlohmann::json> SshConnection::call(const std::string& op, const nlohmann::json& params) {
  auto res = client_->call(op, params);
  if (res || !client_->lost()) return res;
  Error e = res.take_error();
  const std::string& local = tunnel_->local_socket();
  for (size_t at; (at = e.message.find(local)) != std::string::npos;) e.message.replace(at, local.size(), socket_);
  const std::string ssh = tunnel_->ssh_errors();
  if (!ssh.empty()) {
    e.message += " (ssh: " + ssh + ")";
  } else if (op == "hello") {
    e.message += " (is faultlined running there, listening on " + socket_ +
                 ", and does sshd there allow the forwarding: AllowStreamLocalForwarding, and "
                 "AllowTcpForwarding yes or local?)";
  }
  return e;
}

Connector ssh_connector(SshOptions opts) {
  return [opts = std::move(opts)](const Host& host, const std::string& socket) -> std::unique_ptr<HostConnection> {
    return std::make_unique<SshConnection>(host, socket, opts);
  };
}

}  // namespace fl::cli
