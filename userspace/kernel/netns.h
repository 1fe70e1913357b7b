// Network namespaces: an open fd holds a target for as long as we need it, and NetnsGuard
// enters one on the calling thread and always comes back.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/model.h"
#include "core/result.h"

namespace fl::kernel {

struct NetnsId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const NetnsId&) const = default;
  std::string str() const;  // "ns:4026532008@0x4" style, for logs and the journal
};

class Netns {
 public:
  // The namespace this process runs in: what --target host means. Call once at start.
  static Result<Netns> self();
  // host: a dup of host; netns:NAME -> /run/netns/NAME; netns-path:P; pid:N -> /proc/N/ns/net.
  static Result<Netns> open(const core::Target& t, const Netns& host);
  static Result<Netns> open_path(const std::string& path);

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

 private:
  int fd_ = -1;
  NetnsId id_;
  std::string path_;
};

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

struct Interface {
  std::string name;
  int index = 0;
  bool loopback = false;
  bool ethernet = true;  // frames start with an Ethernet header (ARPHRD_ETHER), as we parse them
  int arphrd = 1;
};

// Interfaces of the namespace the calling thread is in.
Result<std::vector<Interface>> list_interfaces();

}  // namespace fl::kernel
