#include "kernel/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "kernel/pod_target.h"

namespace fl::kernel {

std::string NetnsId::str() const {
  char buf[64];
  snprintf(buf, sizeof buf, "netns %lu@dev %lu", static_cast<unsigned long>(ino),
           static_cast<unsigned long>(dev));
  return buf;
}

Result<Netns> Netns::open_path(const std::string& path, int extra_flags) {
  // O_PATH first: opening a FIFO would block the daemon and opening a device node can have side
  // effects, and a client in the faultline group chooses this path. Only a file on nsfs is then
  // reopened for real.
  int pfd = ::open(path.c_str(), O_PATH | O_CLOEXEC | extra_flags);
  if (pfd < 0) {
    Errc code = errno == EACCES || errno == EPERM ? Errc::permission_denied : Errc::target_unavailable;
    return Error::sys(code, "open network namespace " + path, errno);
  }
  struct statfs sfs{};
  if (fstatfs(pfd, &sfs) != 0 || sfs.f_type != NSFS_MAGIC) {
    ::close(pfd);
    return make_error(Errc::target_unavailable, path + " is not a namespace file");
  }
  std::string via = "/proc/self/fd/" + std::to_string(pfd);
  int fd = ::open(via.c_str(), O_RDONLY | O_CLOEXEC);
  int err = errno;
  ::close(pfd);
  if (fd < 0) return Error::sys(Errc::target_unavailable, "open network namespace " + path, err);
  return adopt(fd, path);
}

Result<Netns> Netns::adopt(int fd, const std::string& path) {
  struct statfs sfs{};
  if (fstatfs(fd, &sfs) != 0 || sfs.f_type != NSFS_MAGIC) {
    ::close(fd);
    return make_error(Errc::target_unavailable, path + " is not a namespace file");
  }
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Error::sys(Errc::target_unavailable, "stat " + path, e);
  }
  if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
    ::close(fd);
    return make_error(Errc::target_unavailable, path + " is not a network namespace");
  }
  Netns n;
  n.fd_ = fd;
  n.id_ = NetnsId{st.st_dev, st.st_ino};
  n.path_ = path;
  return n;
}

Result<Netns> Netns::self() { return open_path("/proc/thread-self/ns/net"); }

Result<Netns> Netns::open(const core::Target& t, const Netns& host) {
  using K = core::Target::Kind;
  switch (t.kind) {
    case K::host: return host.dup();
    case K::netns_name: return open_path("/run/netns/" + t.value);
    case K::netns_path: {
      // One answer for every failure (missing, not a namespace, refused): the daemon opens the
      // path as root for a group member, and the difference would tell them what exists where
      // they cannot look. The parser already confined the path to root's directories; the last
      // component is not followed outside /proc (where ns/net is the kernel's own link).
      bool proc = t.value.rfind("/proc/", 0) == 0;
      auto n = open_path(t.value, proc ? 0 : O_NOFOLLOW);
      if (n.ok()) return n;
      spdlog::debug("netns-path:{}: {}", t.value, n.error().message);
      return make_error(Errc::target_unavailable, "not a network namespace file we can open");
    }
    case K::pid: return open_path("/proc/" + t.value + "/ns/net");
    case K::pod_uid:
    case K::container:
    case K::pod: {
      auto p = open_pod_target(t, host);
      if (!p.ok()) return p.take_error();
      Netns n = std::move(p->ns);
      n.origin_pid_ = p->pid;
      n.pod_uid_ = std::move(p->pod_uid);
      n.container_id_ = std::move(p->container_id);
      return n;
    }
  }
  return make_error(Errc::internal, "unknown target kind");
}

namespace {

bool same_ns(const std::string& path, const Netns& held) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && NetnsId{st.st_dev, st.st_ino} == held.id();
}

}  // namespace

bool target_still_there(const core::Target& spec, const Netns& held) {
  using K = core::Target::Kind;
  switch (spec.kind) {
    case K::host: return true;
    case K::netns_name: return same_ns("/run/netns/" + spec.value, held);
    case K::netns_path: return same_ns(spec.value, held);
    case K::pid: return same_ns("/proc/" + spec.value + "/ns/net", held);
    case K::pod_uid:
    case K::container:
    case K::pod: return pod_target_still_there(spec, held);
  }
  return false;
}

Netns::Netns(Netns&& o) noexcept
    : fd_(o.fd_),
      id_(o.id_),
      path_(std::move(o.path_)),
      origin_pid_(o.origin_pid_),
      pod_uid_(std::move(o.pod_uid_)),
      container_id_(std::move(o.container_id_)) {
  o.fd_ = -1;
}

Netns& Netns::operator=(Netns&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    id_ = o.id_;
    path_ = std::move(o.path_);
    origin_pid_ = o.origin_pid_;
    pod_uid_ = std::move(o.pod_uid_);
    container_id_ = std::move(o.container_id_);
    o.fd_ = -1;
  }
  return *this;
}

Netns::~Netns() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Netns> Netns::dup() const {
  int fd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return Error::sys(Errc::internal, "dup netns fd", errno);
  Netns n;
  n.fd_ = fd;
  n.id_ = id_;
  n.path_ = path_;
  n.origin_pid_ = origin_pid_;
  n.pod_uid_ = pod_uid_;
  n.container_id_ = container_id_;
  return n;
}

Result<NetnsGuard> NetnsGuard::enter(const Netns& target) {
  int orig = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) return Error::sys(Errc::internal, "open own network namespace", errno);
  if (setns(target.fd(), CLONE_NEWNET) != 0) {
    int e = errno;
    ::close(orig);
    return Error::sys(e == EPERM ? Errc::permission_denied : Errc::target_unavailable,
                      "enter " + target.path(), e);
  }
  return NetnsGuard(orig);
}

NetnsGuard::~NetnsGuard() {
  if (orig_ < 0) return;
  if (setns(orig_, CLONE_NEWNET) != 0) {
    spdlog::critical("cannot return to the original network namespace: {}", strerror(errno));
    std::abort();
  }
  ::close(orig_);
}

Result<std::vector<Interface>> list_interfaces() {
  struct if_nameindex* names = if_nameindex();
  if (!names) return Error::sys(Errc::kernel_error, "list interfaces", errno);
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  std::vector<Interface> out;
  for (auto* p = names; p->if_index != 0 && p->if_name; ++p) {
    Interface i{p->if_name, static_cast<int>(p->if_index), false};
    struct ifreq ifr{};
    std::strncpy(ifr.ifr_name, p->if_name, IFNAMSIZ - 1);
    if (sock >= 0 && ioctl(sock, SIOCGIFFLAGS, &ifr) == 0) i.loopback = ifr.ifr_flags & IFF_LOOPBACK;
    struct ifreq hw{};
    std::strncpy(hw.ifr_name, p->if_name, IFNAMSIZ - 1);
    if (sock >= 0 && ioctl(sock, SIOCGIFHWADDR, &hw) == 0) {
      i.arphrd = hw.ifr_hwaddr.sa_family;
      i.ethernet = i.arphrd == ARPHRD_ETHER || i.arphrd == ARPHRD_LOOPBACK;  // lo carries an Ethernet header too
      std::memcpy(i.hwaddr.data(), hw.ifr_hwaddr.sa_data, i.hwaddr.size());
    }
    out.push_back(std::move(i));
  }
  if (sock >= 0) ::close(sock);
  if_freenameindex(names);
  return out;
}

DeviceLookup lookup_device(int ifindex) {
  char name[IF_NAMESIZE] = {};
  errno = 0;
  if (if_indextoname(static_cast<unsigned>(ifindex), name)) return {DeviceLookup::present, name, 0};
  int err = errno;
  if (err == ENODEV || err == ENXIO) return {DeviceLookup::gone, "", err};
  return {DeviceLookup::unknown, "", err ? err : EIO};
}

std::optional<bool> same_device(const Interface& was) {
  DeviceLookup d = lookup_device(was.index);
  if (d.state == DeviceLookup::unknown) return std::nullopt;
  if (d.state == DeviceLookup::gone || was.name != d.name) return false;
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return std::nullopt;
  struct ifreq hw{};
  static_assert(sizeof hw.ifr_name >= IF_NAMESIZE);
  std::strncpy(hw.ifr_name, d.name.c_str(), IF_NAMESIZE - 1);
  if (ioctl(sock, SIOCGIFHWADDR, &hw) != 0) {
    int err = errno;
    ::close(sock);
    if (err == ENODEV || err == ENXIO) return false;
    return true;  // name and index agree; the address cannot be read (no hardware address)
  }
  ::close(sock);
  return std::memcmp(was.hwaddr.data(), hw.ifr_hwaddr.sa_data, was.hwaddr.size()) == 0;
}

}  // namespace fl::kernel
