#include "kernel/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

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

}  // namespace fl::kernel
