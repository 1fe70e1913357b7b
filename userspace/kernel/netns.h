// Network namespaces: an open fd holds a target for as long as we need it, and NetnsGuard
// enters one on the calling thread and always comes back. The handle is netns.cpp; resolving a
// target to a handle (Netns::open, target_still_there) is netns_target.cpp. Also the umbrella
// for kernel/interfaces.h (the devices inside a namespace), which used to live here.
#pragma once

#include <sys/types.h>

#include <array>
#include <optional>
#include <string>

#include "core/model.h"
#include "core/result.h"
#include "kernel/interfaces.h"

namespace fl::kernel {

struct NetnsId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const NetnsId&) const = default;
  std::string str() const;  // "netns 4026532008@dev 4", for logs and the journal
};

class Netns {
 public:
  // The namespace this process runs in: what --target host means. Call once at start.
  static Result<Netns> self();
  // host: a dup of host; netns:NAME -> /run/netns/NAME; netns-path:P; pid:N -> /proc/N/ns/net;
  // pod-uid, container and pod: through a process of the pod found in /proc (pod_target.h).
  static Result<Netns> open(const core::Target& t, const Netns& host);
  // extra_flags: added to the O_PATH open (O_NOFOLLOW).
  static Result<Netns> open_path(const std::string& path, int extra_flags = 0);
  // Takes over fd (closed on error too) once it proved to be a network namespace.
  static Result<Netns> adopt(int fd, const std::string& path);

  Netns() = default;
  Netns(Netns&& o) noexcept;
  Netns& operator=(Netns&& o) noexcept;
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  ~Netns();

  int fd() const { return fd_; }
  const NetnsId& id() const { return id_; }
  const std::string& path() const { return path_; }  // what was opened, for the journal
  Result<Netns> dup() const;

  // Kubernetes targets: the process the namespace was opened through, and what the target
  // resolved to (the pod UID, or the full container id), so liveness checks start there.
  pid_t origin_pid() const { return origin_pid_; }
  const std::string& pod_uid() const { return pod_uid_; }
  const std::string& container_id() const { return container_id_; }

 private:
  int fd_ = -1;
  NetnsId id_;
  std::string path_;
  pid_t origin_pid_ = 0;
  std::string pod_uid_, container_id_;
};

// Whether the namespace a target named when it was opened (held) is still what the target
// names: host: always; netns:NAME and netns-path: the path still exists and is held's namespace
// (same device and inode); pid: /proc/PID/ns/net is held's namespace; pod-uid, container, pod:
// some process of that pod or container still sits in held's namespace (the process the target
// was opened through first, then a scan of /proc). Only reads /proc and /run; never enters a
// namespace or changes anything, so it is cheap enough to call periodically. A held namespace
// outlives its name (our fd keeps it), which is why the engine needs this to notice the end.
bool target_still_there(const core::Target& spec, const Netns& held);

// Enters a namespace on this thread; the destructor returns to the previous one. If it cannot
// return, the process aborts: carrying on in the wrong namespace would touch the wrong network.
class NetnsGuard {
 public:
  static Result<NetnsGuard> enter(const Netns& target);
  NetnsGuard(NetnsGuard&& o) noexcept : orig_(o.orig_) { o.orig_ = -1; }
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  ~NetnsGuard();

 private:
  explicit NetnsGuard(int orig) : orig_(orig) {}
  int orig_ = -1;
};

}  // namespace fl::kernel
