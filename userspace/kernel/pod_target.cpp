#include "kernel/pod_target.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/parse.h"

extern char** environ;

namespace fl::kernel {

namespace {

std::mutex g_opts_mu;
PodTargetOptions g_opts;
thread_local const PodAnswers* t_answers = nullptr;
thread_local bool t_no_crictl = false;

// A /proc/<pid>/cgroup is one line per hierarchy: a few hundred bytes, at most a few KB on a
// v1 system with every controller mounted. Anything beyond this is not a cgroup file we know.
constexpr size_t kMaxCgroupFile = 64 * 1024;

// Reads a small file relative to dirfd; false if it cannot be read (the process went away).
bool read_at(int dirfd, const char* name, std::string& out) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out.clear();
  char buf[4096];
  while (out.size() < kMaxCgroupFile) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

// A process holding the target's namespace, as the kubelet's cgroups describe it.
using Want = std::function<bool(const core::KubeCgroup&)>;

// Only a container's processes stand for its pod: CRI-O's conmon sits in the pod's cgroup but
// in the host's network namespace, and a process in the pod cgroup outside every container's
// is none of the runtime's.
bool container_process(const core::KubeCgroup& cg) { return !cg.conmon && !cg.container_id.empty(); }

struct Found {
  pid_t pid = 0;
  core::KubeCgroup cg;
};

// Every process in /proc whose cgroup matches. A process that exits meanwhile is skipped.
std::vector<Found> scan(const Want& want) {
  std::vector<Found> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  std::string text;
  while (struct dirent* e = ::readdir(d)) {
    const char* n = e->d_name;
    if (*n < '1' || *n > '9') continue;
    char* end = nullptr;
    const long pid = std::strtol(n, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const std::string path = "/proc/" + std::string(n) + "/cgroup";
    if (!read_at(AT_FDCWD, path.c_str(), text)) continue;
    auto cg = core::match_kube_cgroup(text);
    if (cg && want(*cg)) out.push_back(Found{static_cast<pid_t>(pid), std::move(*cg)});
  }
  ::closedir(d);
  return out;
}

// Opens pid's network namespace, then reads its cgroup again through the same /proc/<pid>
// directory: if the pid was reused between the scan and the open, the directory fd refers to
// the process that was scanned (or fails), and the second read catches a process that moved.
struct Opened {
  Netns ns;
  core::KubeCgroup cg;
};
Result<Opened> open_process(pid_t pid, const Want& want) {
  const std::string dir = "/proc/" + std::to_string(pid);
  int dfd = ::open(dir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (dfd < 0) return Error::sys(Errc::target_unavailable, "open " + dir, errno);
  int fd = ::openat(dfd, "ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    ::close(dfd);
    return Error::sys(e == EACCES || e == EPERM ? Errc::permission_denied : Errc::target_unavailable,
                      "open " + dir + "/ns/net", e);
  }
  auto ns = Netns::adopt(fd, dir + "/ns/net");
  std::string text;
  const bool read = read_at(dfd, "cgroup", text);
  ::close(dfd);
  if (!ns.ok()) return ns.take_error();
  auto cg = read ? core::match_kube_cgroup(text) : std::nullopt;
  if (!cg || !want(*cg)) {
    return make_error(Errc::target_unavailable, "process " + std::to_string(pid) + " left the cgroup");
  }
  return Opened{std::move(*ns), std::move(*cg)};
}

std::string pids_str(const std::vector<pid_t>& pids) {
  std::string out;
  for (size_t i = 0; i < pids.size() && i < 5; ++i) out += (i ? "," : "") + std::to_string(pids[i]);
  if (pids.size() > 5) out += ",...";
  return out;
}

// The one namespace the matched processes share, apart from the host's.
Result<PodNetns> choose(const std::vector<Found>& found, const Want& want, const Netns& host,
                        const std::string& what) {
  struct Group {
    Netns ns;
    pid_t pid = 0;
    core::KubeCgroup cg;
    std::vector<pid_t> pids;
  };
  std::vector<Group> groups;
  std::optional<Error> denied;
  std::vector<pid_t> host_pids;
  // The node's namespace is init's as well as ours: a daemon that is not itself in the node's
  // namespace must still refuse a hostNetwork pod rather than take the node for the pod.
  std::optional<NetnsId> init_ns;
  struct stat st{};
  if (::stat("/proc/1/ns/net", &st) == 0) init_ns = NetnsId{st.st_dev, st.st_ino};
  for (const Found& f : found) {
    auto o = open_process(f.pid, want);
    if (!o.ok()) {
      if (o.error().code == Errc::permission_denied && !denied) denied = o.take_error();
      continue;
    }
    if (o->ns.id() == host.id() || o->ns.id() == init_ns) {
      host_pids.push_back(f.pid);
      continue;
    }
    auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) { return x.ns.id() == o->ns.id(); });
    if (g != groups.end()) {
      g->pids.push_back(f.pid);
      continue;
    }
    groups.push_back(Group{std::move(o->ns), f.pid, std::move(o->cg), {f.pid}});
  }
  if (groups.empty() && host_pids.empty()) {
    if (denied) {
      return denied->wrap(what + ": reading another process's network namespace needs CAP_SYS_PTRACE");
    }
    return make_error(Errc::target_unavailable,
                      what + ": every matching process exited while it was being looked up");
  }
  if (groups.empty()) {
    return make_error(Errc::invalid_argument,
                      what + " uses the host's network namespace (hostNetwork: true; processes " +
                          pids_str(host_pids) +
                          "): a fault there hits the whole node; use --target host if that is what you mean");
  }
  if (groups.size() > 1 || !host_pids.empty()) {
    std::string list;
    for (const Group& g : groups) list += (list.empty() ? "" : "; ") + g.ns.id().str() + " (processes " + pids_str(g.pids) + ")";
    if (!host_pids.empty()) list += "; the host's (processes " + pids_str(host_pids) + ")";
    return make_error(Errc::invalid_argument,
                      what + " is ambiguous: its processes are in " +
                          std::to_string(groups.size() + (host_pids.empty() ? 0 : 1)) +
                          " network namespaces: " + list + "; name one container with --target container:ID");
  }
  Group& g = groups.front();
  PodNetns out;
  out.ns = std::move(g.ns);
  out.pid = g.pid;
  out.pod_uid = g.cg.pod_uid;
  return out;
}

Result<PodNetns> open_by_uid(const std::string& uid, const Netns& host, const std::string& what) {
  Want want = [&](const core::KubeCgroup& cg) { return cg.pod_uid == uid && container_process(cg); };
  auto found = scan(want);
  if (found.empty()) {
    return make_error(Errc::target_unavailable,
                      "no process of pod " + uid +
                          " in the kubelet's cgroups (searched /proc/*/cgroup); the pod must run on this node");
  }
  return choose(found, want, host, what);
}

Result<PodNetns> open_by_container(const std::string& prefix, const Netns& host, const std::string& what) {
  auto found = scan([&](const core::KubeCgroup& cg) { return cg.container_id.starts_with(prefix); });
  std::set<std::string> ids;
  bool conmon_only = false;
  for (const Found& f : found) {
    if (container_process(f.cg)) ids.insert(f.cg.container_id);
    else conmon_only = conmon_only || f.cg.conmon;
  }
  if (ids.empty()) {
    return make_error(Errc::target_unavailable,
                      "no process of a container with id " + prefix +
                          (prefix.size() < 64 ? "..." : "") +
                          " in the kubelet's cgroups (searched /proc/*/cgroup)" +
                          (conmon_only ? ", only CRI-O's conmon for it (has the container exited?)" : "") +
                          "; the container must run on this node");
  }
  if (ids.size() > 1) {
    std::string list;
    size_t n = 0;
    for (const auto& id : ids) {
      if (n++ == 4) {
        list += ", ...";
        break;
      }
      list += (list.empty() ? "" : ", ") + id;
    }
    return make_error(Errc::invalid_argument,
                      "the container id prefix " + prefix + " matches " + std::to_string(ids.size()) +
                          " containers (" + list + "); give more of the id");
  }
  const std::string id = *ids.begin();
  Want want = [&](const core::KubeCgroup& cg) { return cg.container_id == id && container_process(cg); };
  std::vector<Found> mine;
  for (Found& f : found) {
    if (want(f.cg)) mine.push_back(std::move(f));
  }
  auto r = choose(mine, want, host, what);
  if (!r.ok()) return r;
  r->container_id = id;
  return r;
}

// Where a bare name resolves, as execvp would; empty if nowhere.
std::string find_in_path(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string path = env && *env ? env : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    std::string dir = path.substr(start, colon - start);
    start = colon + 1;
    // An empty or relative entry would mean the daemon's working directory: root must not run
    // whatever crictl lies there.
    if (dir.empty() || dir[0] != '/') continue;
    const std::string cand = dir + "/" + name;
    struct stat st{};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
  }
  return "";
}

struct Run {
  int status = -1;  // exit status; -1: killed or did not exit
  std::string out, err;
};

// Runs argv[0] without a shell, stdin from /dev/null; stdout kept up to max bytes, stderr up to
// 4 KiB. Killed at the deadline or when stdout overflows.
Result<Run> run_bounded(const std::vector<std::string>& argv, std::chrono::milliseconds timeout, size_t max) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Error::sys(Errc::internal, "pipe", errno);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return Error::sys(Errc::internal, "pipe", e);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  // The daemon blocks its stop signals in every thread and ignores SIGPIPE; both would be
  // inherited across exec. crictl gets what a program started from a shell gets.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return Error::sys(Errc::target_unavailable, "run " + argv[0], rc);
  }
  Run r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  bool timed_out = false, overflow = false;
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    const int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[16384];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      const size_t n = static_cast<size_t>(got);
      if (i == 0) {
        overflow = r.out.size() + n > max;
        if (!overflow) r.out.append(buf, n);
      } else {
        r.err.append(buf, std::min(n, 4096 - std::min<size_t>(4096, r.err.size())));
      }
    }
    if (overflow) break;
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  // Closing its output is not exiting: a child that lingers is waited for until the same
  // deadline, then killed.
  int st = 0;
  while (!timed_out && !overflow) {
    const pid_t w = ::waitpid(pid, &st, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) timed_out = true;
    else ::usleep(5000);
  }
  if (timed_out || overflow) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
  }
  if (timed_out) {
    return make_error(Errc::target_unavailable,
                      argv[0] + " did not finish within " + core::format_duration(timeout) + "; killed it");
  }
  if (overflow) {
    return make_error(Errc::target_unavailable,
                      argv[0] + " printed more than " + std::to_string(max) + " bytes; killed it");
  }
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// The first line of a tool's complaint, enough to say why without flooding a reply.
std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}

}  // namespace

ScopedPodAnswers::ScopedPodAnswers(const PodAnswers* answers) : prev_(t_answers) {
  if (answers) t_answers = answers;
}
ScopedPodAnswers::~ScopedPodAnswers() { t_answers = prev_; }
bool pod_answers_in_scope() { return t_answers != nullptr; }
void forbid_crictl_on_this_thread() { t_no_crictl = true; }

void set_pod_target_options(PodTargetOptions o) {
  std::lock_guard lock(g_opts_mu);
  g_opts = std::move(o);
}

PodTargetOptions pod_target_options() {
  std::lock_guard lock(g_opts_mu);
  return g_opts;
}

Result<std::string> pick_pod_uid(std::string_view text, std::string_view ns, std::string_view name) {
  using nlohmann::json;
  const std::string what = "pod " + std::string(ns) + "/" + std::string(name);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(Errc::target_unavailable, what + ": crictl printed something that is not a JSON object");
  }
  auto items = j.find("items");
  if (items == j.end() || items->is_null()) {
    return make_error(Errc::target_unavailable, what + ": not found by crictl; the pod must run on this node");
  }
  if (!items->is_array()) return make_error(Errc::target_unavailable, what + ": crictl's \"items\" is not a list");
  std::set<std::string> ready, any;
  for (const json& it : *items) {
    if (!it.is_object()) continue;
    auto md = it.find("metadata");
    if (md == it.end() || !md->is_object()) continue;
    auto str = [&](const char* k) -> std::string {
      auto v = md->find(k);
      return v != md->end() && v->is_string() ? v->get<std::string>() : std::string();
    };
    if (str("name") != name || str("namespace") != ns) continue;
    const std::string uid = str("uid");
    if (!core::is_pod_uid(uid)) continue;
    any.insert(uid);
    auto state = it.find("state");
    if (state != it.end() && state->is_string() && *state == "SANDBOX_READY") ready.insert(uid);
  }
  const std::set<std::string>& pick = ready.empty() ? any : ready;
  if (pick.empty()) return make_error(Errc::target_unavailable, what + ": not found by crictl; the pod must run on this node");
  if (pick.size() > 1) {
    std::string list;
    for (const auto& u : pick) list += (list.empty() ? "" : ", ") + u;
    return make_error(Errc::invalid_argument,
                      what + ": crictl lists " + std::to_string(pick.size()) + (ready.empty() ? "" : " ready") +
                          " pods with that name (UIDs " + list + "); use --target pod-uid:UID");
  }
  return *pick.begin();
}

Result<std::string> resolve_pod_uid(std::string_view ns, std::string_view name, const PodTargetOptions& opts) {
  const std::string what = "pod " + std::string(ns) + "/" + std::string(name);
  std::string exe = opts.crictl;
  bool present = false;
  if (exe.find('/') != std::string::npos) {
    struct stat st{};
    present = ::stat(exe.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(exe.c_str(), X_OK) == 0;
  } else {
    exe = find_in_path(exe);
    present = !exe.empty();
  }
  if (!present) {
    return make_error(Errc::target_unavailable,
                      what + ": resolving a pod's name on the node needs crictl, and " +
                          (opts.crictl.find('/') != std::string::npos ? opts.crictl + " is not an executable file"
                                                                       : opts.crictl + " is not in PATH") +
                          " (faultlined --crictl PATH names it); use the kubectl plugin instead "
                          "(`kubectl faultline ...`, which resolves names through the API server) or "
                          "--target pod-uid:UID");
  }
  auto run = run_bounded({exe, "pods", "--namespace", std::string(ns), "--name", std::string(name), "-o", "json"},
                         opts.crictl_timeout, opts.crictl_max_output);
  if (!run.ok()) return run.take_error().wrap(what);
  if (run->status != 0) {
    return make_error(Errc::target_unavailable,
                      what + ": " + exe + " pods failed (" +
                          (run->status < 0 ? std::string("killed") : "exit " + std::to_string(run->status)) +
                          "): " + first_line(run->err));
  }
  return pick_pod_uid(run->out, ns, name);
}

Result<PodNetns> open_pod_target(const core::Target& t, const Netns& host, const PodTargetOptions& opts) {
  using K = core::Target::Kind;
  const std::string what = t.str();
  switch (t.kind) {
    case K::pod_uid: return open_by_uid(t.value, host, "pod " + t.value);
    case K::container: return open_by_container(t.value, host, "container " + t.value);
    case K::pod: {
      const size_t slash = t.value.find('/');
      if (slash == std::string::npos) return make_error(Errc::invalid_argument, what + ": expected NAMESPACE/NAME");
      Result<std::string> uid = make_error(Errc::internal, what + ": not resolved");
      if (auto a = t_answers ? t_answers->find(t.value) : PodAnswers::const_iterator{};
          t_answers && a != t_answers->end()) {
        uid = a->second;
      } else if (t_no_crictl) {
        return make_error(Errc::internal,
                          what + ": crictl would hold the daemon; the name must be resolved ahead");
      } else {
        uid = resolve_pod_uid(std::string_view(t.value).substr(0, slash),
                              std::string_view(t.value).substr(slash + 1), opts);
      }
      if (!uid.ok()) return uid.take_error();
      spdlog::debug("{}: crictl says pod UID {}", what, *uid);
      return open_by_uid(*uid, host, "pod " + t.value + " (UID " + *uid + ")");
    }
    default: break;
  }
  return make_error(Errc::internal, what + " is not a Kubernetes target");
}

bool pod_target_still_there(const core::Target& spec, const Netns& held) {
  using K = core::Target::Kind;
  Want want;
  if (!held.container_id().empty()) {
    want = [&](const core::KubeCgroup& cg) { return cg.container_id == held.container_id() && container_process(cg); };
  } else if (!held.pod_uid().empty()) {
    want = [&](const core::KubeCgroup& cg) { return cg.pod_uid == held.pod_uid() && container_process(cg); };
  } else if (spec.kind == K::pod_uid) {
    want = [&](const core::KubeCgroup& cg) { return cg.pod_uid == spec.value && container_process(cg); };
  } else if (spec.kind == K::container) {
    want = [&](const core::KubeCgroup& cg) { return cg.container_id.starts_with(spec.value) && container_process(cg); };
  } else {
    // A pod: target held without its UID was not opened by Netns::open; asking crictl again
    // here would make a periodic check depend on the runtime answering.
    return false;
  }
  if (held.origin_pid() > 0) {
    auto o = open_process(held.origin_pid(), want);
    if (o.ok() && o->ns.id() == held.id()) return true;
  }
  for (const Found& f : scan(want)) {
    auto o = open_process(f.pid, want);
    if (o.ok() && o->ns.id() == held.id()) return true;
  }
  return false;
}

}  // namespace fl::kernel
