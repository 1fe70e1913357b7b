// What faultline-lab does to the system: named network namespaces (the iproute2 convention, a
// bind mount under /run/netns), links and addresses over rtnetlink (kernel/rtnl.h, the layer faultlined uses), the processes
// inside a namespace, and the state file. Nothing here runs another program.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "kernel/rtnl.h"
#include "lab/lab.h"

namespace fl::lab {

// An open namespace: a file descriptor and the identity `down` compares /proc/PID/ns/net with.
class NsFd {
 public:
  NsFd() = default;
  explicit NsFd(int fd);
  NsFd(NsFd&& o) noexcept : fd_(o.fd_), dev_(o.dev_), ino_(o.ino_) { o.fd_ = -1; }
  NsFd& operator=(NsFd&& o) noexcept;
  NsFd(const NsFd&) = delete;
  NsFd& operator=(const NsFd&) = delete;
  ~NsFd();

  int fd() const { return fd_; }
  dev_t dev() const { return dev_; }
  ino_t ino() const { return ino_; }

 private:
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

// /run/netns/NAME, if it is a network namespace (not just a leftover empty file).
Result<NsFd> open_netns(const std::string& name);
bool netns_exists(const std::string& name);
// The identity of an open namespace (lab.h's NetnsId); `name` is for messages.
Result<NetnsId> netns_id(const NsFd& ns, const std::string& name);
// Creates the named namespace. already_exists if the name is taken: what we did not create we
// never delete.
Result<NsFd> create_netns(const std::string& name);
// Unmounts and unlinks /run/netns/NAME. The namespace itself goes when its last user does.
Status delete_netns(const std::string& name);
// Unlinks /run/netns/NAME, the empty file a namespace leaves when its mount is gone. Never
// unmounts: if a namespace was mounted there meanwhile, it is someone else's, and it stays
// (the kernel refuses to unlink a mount point).
Status remove_stale_netns_file(const std::string& name);

// A route netlink socket that lives in one namespace (a socket stays in the namespace it was
// created in, so no thread has to stay inside).
class Rtnl {
 public:
  static Result<Rtnl> in(const NsFd& ns, const std::string& ns_name);
  Rtnl(Rtnl&& o) noexcept = default;
  Rtnl& operator=(Rtnl&&) = delete;
  Rtnl(const Rtnl&) = delete;

  Status add_bridge(const std::string& name);
  // A veth pair: `name` here, `peer` created directly in `peer_ns`, so neither end ever
  // appears in the namespace faultline-lab runs in.
  Status add_veth(const std::string& name, const std::string& peer, const NsFd& peer_ns);
  // Sets the link up, and makes it a port of `master` if given.
  Status set_up(const std::string& name, const std::string& master = "");
  // "10.200.0.11/24"; IPv6 addresses skip duplicate address detection so they work at once.
  Status add_address(const std::string& dev, const std::string& cidr);

  struct LinkState {
    bool exists = false;
    bool up = false;       // IFF_UP
    bool carrier = false;  // IFF_LOWER_UP: the other end is up too
    std::vector<std::string> addresses;  // "10.200.0.11/24", global scope only
  };
  Result<LinkState> link_state(const std::string& name);

 private:
  Rtnl(kernel::Rtnl nl, std::string ns) : nl_(std::move(nl)), ns_(std::move(ns)) {}
  Result<int> ifindex(const std::string& name);
  Error fail(const std::string& what, Error e) const;
  kernel::Rtnl nl_;
  std::string ns_;
};

// An error if any of `namespaces` is the network namespace (same dev and inode) of pid 1 or of
// the caller: a lab name bind-mounted from one of those would make `down` stop every process of
// the host. `names` are the namespaces' names, in the same order, for the message.
Status check_not_host(const std::vector<const NsFd*>& namespaces, const std::vector<std::string>& names);

struct Stopped {
  size_t signalled = 0;          // processes signalled at least once
  std::vector<pid_t> remaining;  // wholly inside at the end (SIGKILL did not end it): keep the names
  std::vector<pid_t> partial;    // some thread inside, another outside: left alone
};

// Stops the processes inside `namespaces`: those with EVERY thread (/proc/PID/task/*/ns/net) in
// one of them. A process with only some threads inside (faultlined visiting a target with
// setns) is never signalled. SIGTERM, then SIGKILL to what is left after `grace`; each signal
// goes through a pidfd, and the condition is checked again once the pidfd pins the pid, so a
// reused pid is never hit. Fails, having signalled nothing, without pidfd_open (Linux < 5.3).
Result<Stopped> stop_processes(const std::vector<const NsFd*>& namespaces, std::chrono::milliseconds grace);

// The state file. create_state fails with already_exists if the file is there: it is the lock
// that keeps two `up` of one name apart. Both write a temporary file, fsync it, and link or
// rename it into place, so a reader sees the old file or the new one, never half of one.
Status create_state(const std::string& path, const nlohmann::json& j);
Status replace_state(const std::string& path, const nlohmann::json& j);
// not_found when there is no file.
Result<nlohmann::json> read_state(const std::string& path);
Status remove_state(const std::string& path);

}  // namespace fl::lab
