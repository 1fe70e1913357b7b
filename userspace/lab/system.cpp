#include "lab/system.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>


#include "kernel/rtnl_link.h"
#include "lab/lab.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace fl::lab {

namespace {

std::string netns_path(const std::string& name) { return std::string(kNetnsDir) + "/" + name; }

// Runs fn on a fresh thread, so whatever it does to its namespaces (setns, unshare) ends with
// the thread and never reaches the caller's.
template <typename Fn>
void on_own_thread(Fn&& fn) {
  std::thread t(std::forward<Fn>(fn));
  t.join();
}

// iproute2's convention, which `ip netns` and every other tool expects: /run/netns is a shared
// mount point, so a namespace mounted there later also appears in mount namespaces copied
// earlier (`ip netns exec` makes one per command).
Status prepare_netns_dir() {
  if (mkdir(kNetnsDir, 0755) < 0 && errno != EEXIST) return Error::sys(Errc::kernel_error, std::string("mkdir ") + kNetnsDir, errno);
  for (int attempt = 0;; attempt++) {
    if (mount("", kNetnsDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return {};
    if (errno != EINVAL || attempt > 0)
      return Error::sys(Errc::kernel_error, std::string("make ") + kNetnsDir + " a shared mount", errno);
    // EINVAL: not a mount point yet. Bind it onto itself to make it one.
    if (mount(kNetnsDir, kNetnsDir, "none", MS_BIND | MS_REC, nullptr) < 0)
      return Error::sys(Errc::kernel_error, std::string("bind-mount ") + kNetnsDir, errno);
  }
}

Status mkdir_mode(const std::string& dir, mode_t mode) {
  if (mkdir(dir.c_str(), mode) < 0) {
    if (errno == EEXIST) return {};
    return Error::sys(Errc::internal, "mkdir " + dir, errno);
  }
  if (chmod(dir.c_str(), mode) < 0) return Error::sys(Errc::internal, "chmod " + dir, errno);
  return {};
}

Status write_temp(const std::string& tmp, const nlohmann::json& j) {
  std::string text = j.dump(2) + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error::sys(Errc::internal, "create " + tmp, errno);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return Error::sys(Errc::internal, "write " + tmp, e);
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) < 0 || close(fd) < 0) {
    int e = errno;
    unlink(tmp.c_str());
    return Error::sys(Errc::internal, "sync " + tmp, e);
  }
  return {};
}

// A directory of its own, readable by all (faultctl reads a lab's addresses from it as any
// user): nothing that manages faultlined's directories ever removes it.
Status prepare_state_dir() { return mkdir_mode(kStateDir, 0755); }

std::string tmp_name(const std::string& path) { return path + ".tmp." + std::to_string(getpid()); }

}  // namespace

// ---- namespaces ----

NsFd::NsFd(int fd) : fd_(fd) {
  struct stat st{};
  if (fd_ >= 0 && fstat(fd_, &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
}

NsFd& NsFd::operator=(NsFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    dev_ = o.dev_;
    ino_ = o.ino_;
    o.fd_ = -1;
  }
  return *this;
}

NsFd::~NsFd() {
  if (fd_ >= 0) close(fd_);
}

Result<NsFd> open_netns(const std::string& name) {
  std::string path = netns_path(name);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return make_error(Errc::not_found, "namespace " + name + " does not exist");
    return Error::sys(Errc::target_unavailable, "open " + path, errno);
  }
  // The file stays behind, empty, when the bind mount on it is gone; that is not a namespace.
  if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
    close(fd);
    return make_error(Errc::not_found, path + " is not a network namespace");
  }
  return NsFd(fd);
}

Result<NetnsId> netns_id(const NsFd& ns, const std::string& name) {
  NetnsId id{static_cast<uint64_t>(ns.dev()), static_cast<uint64_t>(ns.ino()), 0};
  Status st;
  // The cookie is the namespace's, read from a socket made inside it.
  on_own_thread([&] {
    if (setns(ns.fd(), CLONE_NEWNET) < 0) {
      st = Error::sys(Errc::target_unavailable, "enter namespace " + name, errno);
      return;
    }
    int sk = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sk < 0) {
      st = Error::sys(Errc::internal, "socket in namespace " + name, errno);
      return;
    }
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (getsockopt(sk, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) == 0) {
      id.cookie = cookie;
    } else if (errno != ENOPROTOOPT) {
      st = Error::sys(Errc::internal, "SO_NETNS_COOKIE in namespace " + name, errno);
    }
    close(sk);
  });
  if (!st.ok()) return st.take_error();
  return id;
}

bool netns_exists(const std::string& name) {
  struct stat st{};
  return lstat(netns_path(name).c_str(), &st) == 0;
}

Result<NsFd> create_netns(const std::string& name) {
  FL_TRY(prepare_netns_dir());
  std::string path = netns_path(name);
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == EEXIST) return make_error(Errc::already_exists, "namespace " + name + " already exists");
    return Error::sys(Errc::kernel_error, "create " + path, errno);
  }
  close(fd);
  Status st;
  on_own_thread([&] {
    if (unshare(CLONE_NEWNET) < 0) {
      st = Error::sys(Errc::kernel_error, "unshare(CLONE_NEWNET)", errno);
      return;
    }
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) < 0)
      st = Error::sys(Errc::kernel_error, "bind-mount the new namespace on " + path, errno);
  });
  if (!st.ok()) {
    unlink(path.c_str());
    return st.take_error().wrap("create namespace " + name);
  }
  auto ns = open_netns(name);
  if (!ns.ok()) {
    (void)delete_netns(name);
    return ns.take_error().wrap("create namespace " + name);
  }
  return ns;
}

Status delete_netns(const std::string& name) {
  std::string path = netns_path(name);
  // EINVAL: nothing mounted there (an empty file left by a killed `up`); the unlink still runs.
  if (umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    return Error::sys(Errc::kernel_error, "unmount " + path, errno);
  if (unlink(path.c_str()) < 0 && errno != ENOENT) return Error::sys(Errc::kernel_error, "remove " + path, errno);
  return {};
}

Status remove_stale_netns_file(const std::string& name) {
  std::string path = netns_path(name);
  if (unlink(path.c_str()) < 0 && errno != ENOENT) {
    if (errno == EBUSY) return make_error(Errc::already_exists, path + " is a namespace again (mounted meanwhile); left alone");
    return Error::sys(Errc::kernel_error, "remove " + path, errno);
  }
  return {};
}

// ---- rtnetlink ----

Result<Rtnl> Rtnl::in(const NsFd& ns, const std::string& ns_name) {
  auto nl = kernel::Rtnl::open_in(ns.fd(), ns_name);
  if (!nl.ok()) return nl.take_error();
  return Rtnl(std::move(*nl), ns_name);
}

Error Rtnl::fail(const std::string& what, Error e) const {
  // The lab's own codes: a name taken is already_exists, a device missing not_found.
  if (e.sys_errno == EEXIST) e.code = Errc::already_exists;
  if (e.sys_errno == ENODEV || e.sys_errno == ENOENT) e.code = Errc::not_found;
  return std::move(e).wrap(what + " in " + ns_);
}

Result<int> Rtnl::ifindex(const std::string& name) {
  auto l = kernel::get_link(nl_, 0, name);
  if (!l.ok()) return fail("find " + name, l.take_error());
  if (!*l) return make_error(Errc::not_found, "find " + name + " in " + ns_ + ": no such device");
  return (*l)->index;
}

Status Rtnl::add_bridge(const std::string& name) {
  // STP off with no forward delay: ports forward as soon as they are up. Multicast snooping
  // off: with no MLD querier in the lab it could hold back IPv6 neighbour discovery; flood.
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  kernel::RtMsg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifi);
  m.put_string(IFLA_IFNAME, name)
      .begin_nest(IFLA_LINKINFO)
      .put_string(IFLA_INFO_KIND, "bridge")
      .begin_nest(IFLA_INFO_DATA)
      .put_u32(IFLA_BR_STP_STATE, 0)
      .put_u32(IFLA_BR_FORWARD_DELAY, 0)
      .put_u8(IFLA_BR_MCAST_SNOOPING, 0)
      .end_nest()
      .end_nest();
  if (auto st = nl_.talk(m); !st.ok()) return fail("create bridge " + name, st.take_error());
  return {};
}

Status Rtnl::add_veth(const std::string& name, const std::string& peer_name, const NsFd& peer_ns) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifinfomsg peer{};
  peer.ifi_family = AF_UNSPEC;
  kernel::RtMsg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifi);
  // The peer is an ifinfomsg and its own attributes inside VETH_INFO_PEER; IFLA_NET_NS_FD
  // creates it straight in the other namespace.
  m.put_string(IFLA_IFNAME, name)
      .begin_nest(IFLA_LINKINFO)
      .put_string(IFLA_INFO_KIND, "veth")
      .begin_nest(IFLA_INFO_DATA)
      .begin_nest(VETH_INFO_PEER)
      .append(&peer, sizeof peer)
      .put_string(IFLA_IFNAME, peer_name)
      .put_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns.fd()))
      .end_nest()
      .end_nest()
      .end_nest();
  if (auto st = nl_.talk(m); !st.ok()) return fail("create veth " + name + " (peer " + peer_name + ")", st.take_error());
  return {};
}

Status Rtnl::set_up(const std::string& name, const std::string& master) {
  auto idx = ifindex(name);
  if (!idx.ok()) return idx.take_error();
  int master_idx = 0;
  if (!master.empty()) {
    auto m = ifindex(master);
    if (!m.ok()) return m.take_error();
    master_idx = *m;
  }
  if (auto st = kernel::set_link_up(nl_, *idx, master_idx); !st.ok())
    return fail("set " + name + " up" + (master.empty() ? "" : " on " + master), st.take_error());
  return {};
}

Status Rtnl::add_address(const std::string& dev, const std::string& cidr) {
  auto idx = ifindex(dev);
  if (!idx.ok()) return idx.take_error();
  if (auto st = kernel::add_address(nl_, *idx, cidr); !st.ok())
    return fail("add address " + cidr + " to " + dev, st.take_error());
  return {};
}

Result<Rtnl::LinkState> Rtnl::link_state(const std::string& name) {
  LinkState s;
  auto l = kernel::get_link(nl_, 0, name);
  if (!l.ok()) return fail("read link " + name, l.take_error());
  if (!*l) return s;
  s.exists = true;
  s.up = (*l)->flags & IFF_UP;
  s.carrier = (*l)->flags & IFF_LOWER_UP;
  auto addrs = kernel::global_addresses(nl_, (*l)->index);
  if (!addrs.ok()) return fail("list addresses", addrs.take_error());
  s.addresses = std::move(*addrs);
  return s;
}

// ---- processes ----

namespace {

struct NsId {
  dev_t dev;
  ino_t ino;
};

bool stat_ns(const std::string& path, NsId& id) {
  struct stat st{};
  if (stat(path.c_str(), &st) < 0) return false;
  id = {st.st_dev, st.st_ino};
  return true;
}

bool is_one_of(const NsId& id, const std::vector<const NsFd*>& nss) {
  for (const NsFd* ns : nss)
    if (id.dev == ns->dev() && id.ino == ns->ino()) return true;
  return false;
}

enum class Inside { none, partly, wholly };

// Where process `pid`'s threads are. /proc/PID/ns/net is only the main thread's: faultlined
// enters a target namespace on its main thread while its other threads stay in the host's, so
// every thread is looked at. A thread that has exited (no namespace left) does not count.
Inside where(pid_t pid, const std::vector<const NsFd*>& nss) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return Inside::none;
  size_t in = 0, out = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    NsId id{};
    if (!stat_ns(dir + "/" + e->d_name + "/ns/net", id)) {
      // ENOENT: the thread has exited and has no namespace. Anything else (EACCES: a process
      // of an outer user namespace) is unknown, so counted as outside.
      if (errno != ENOENT) out++;
      continue;
    }
    (is_one_of(id, nss) ? in : out)++;
  }
  closedir(d);
  if (in == 0) return Inside::none;
  return out == 0 ? Inside::wholly : Inside::partly;
}

void scan(const std::vector<const NsFd*>& nss, std::vector<pid_t>& wholly, std::vector<pid_t>* partly) {
  DIR* d = opendir("/proc");
  if (!d) return;
  const pid_t self = getpid();
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    switch (where(static_cast<pid_t>(pid), nss)) {
      case Inside::wholly: wholly.push_back(static_cast<pid_t>(pid)); break;
      case Inside::partly: if (partly) partly->push_back(static_cast<pid_t>(pid)); break;
      case Inside::none: break;
    }
  }
  closedir(d);
}

int sys_pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int sys_pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Signals pid if, once a pidfd holds it (the number cannot be reused while the pidfd is open),
// every thread of it is still inside. `sent` says whether it was; fails only when the kernel
// has no pidfds.
Status signal_if_inside(pid_t pid, int sig, const std::vector<const NsFd*>& nss, bool& sent) {
  sent = false;
  int fd = sys_pidfd_open(pid);
  if (fd < 0) {
    if (errno == ENOSYS)
      return make_error(Errc::kernel_unsupported,
                        "this kernel has no pidfd_open (Linux 5.3 or later is needed to stop processes safely)");
    return {};  // ESRCH: gone already
  }
  // The pid may have been reused between the scan and pidfd_open: what the pidfd holds now is
  // what is checked.
  if (where(pid, nss) == Inside::wholly) sent = sys_pidfd_send_signal(fd, sig) == 0;
  close(fd);
  return {};
}

}  // namespace

Status check_not_host(const std::vector<const NsFd*>& nss, const std::vector<std::string>& names) {
  struct Ref {
    const char* path;
    const char* what;
  };
  for (const Ref& r : {Ref{"/proc/1/ns/net", "init's (pid 1)"}, Ref{"/proc/self/ns/net", "this process's own"},
                       Ref{"/proc/thread-self/ns/net", "this process's own"}}) {
    NsId id{};
    if (!stat_ns(r.path, id)) {
      // In a container pid 1 may be out of reach (EACCES); then so is every process whose
      // namespace we cannot read, and those are never signalled (see where()).
      if ((errno == EACCES || errno == EPERM) && r.path[6] == '1') continue;
      return Error::sys(Errc::internal, std::string("stat ") + r.path, errno);
    }
    for (size_t i = 0; i < nss.size(); i++) {
      if (id.dev == nss[i]->dev() && id.ino == nss[i]->ino())
        return make_error(Errc::invalid_request,
                          std::string(kNetnsDir) + "/" + (i < names.size() ? names[i] : "?") + " is " + r.what +
                              " network namespace, not the lab's: stopping the processes in it would stop the "
                              "host's; nothing was changed");
    }
  }
  return {};
}

Result<Stopped> stop_processes(const std::vector<const NsFd*>& nss, std::chrono::milliseconds grace) {
  Stopped res;
  std::set<pid_t> signalled;
  auto deadline = std::chrono::steady_clock::now() + grace;
  // Rescanned each round: a process may fork while we wait.
  for (;;) {
    std::vector<pid_t> pids;
    scan(nss, pids, nullptr);
    if (pids.empty()) break;
    // A SIGKILLed process leaves its namespaces at once; give up after a second more rather
    // than loop for ever on one stuck in the kernel (D state).
    if (std::chrono::steady_clock::now() >= deadline + std::chrono::seconds(1)) break;
    bool late = std::chrono::steady_clock::now() >= deadline;
    for (pid_t p : pids) {
      // SIGTERM once per process; a child forked meanwhile gets its own.
      if (!late && signalled.count(p)) continue;
      bool sent = false;
      FL_TRY(signal_if_inside(p, late ? SIGKILL : SIGTERM, nss, sent));
      if (sent) signalled.insert(p);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  res.signalled = signalled.size();
  // One last look: what survived the SIGKILL, or slipped in (a concurrent `exec`) after the
  // last round, keeps the namespaces alive; the caller must not remove their names then.
  scan(nss, res.remaining, &res.partial);
  return res;
}

// ---- state file ----

Status create_state(const std::string& path, const nlohmann::json& j) {
  FL_TRY(prepare_state_dir());
  std::string tmp = tmp_name(path);
  FL_TRY(write_temp(tmp, j));
  // link() fails if the name exists, so this both publishes the file whole and takes the lock.
  int rc = link(tmp.c_str(), path.c_str());
  int e = errno;
  unlink(tmp.c_str());
  if (rc < 0) {
    if (e == EEXIST) return make_error(Errc::already_exists, path + " exists");
    return Error::sys(Errc::internal, "create " + path, e);
  }
  return {};
}

Status replace_state(const std::string& path, const nlohmann::json& j) {
  std::string tmp = tmp_name(path);
  FL_TRY(write_temp(tmp, j));
  if (rename(tmp.c_str(), path.c_str()) < 0) {
    int e = errno;
    unlink(tmp.c_str());
    return Error::sys(Errc::internal, "rename " + tmp + " to " + path, e);
  }
  return {};
}

Result<nlohmann::json> read_state(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    if (errno == ENOENT) return make_error(Errc::not_found, path + " does not exist");
    return Error::sys(Errc::internal, "read " + path, errno);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) return make_error(Errc::invalid_request, path + " is not valid JSON");
  return j;
}

Status remove_state(const std::string& path) {
  if (unlink(path.c_str()) < 0 && errno != ENOENT) return Error::sys(Errc::internal, "remove " + path, errno);
  return {};
}

}  // namespace fl::lab
