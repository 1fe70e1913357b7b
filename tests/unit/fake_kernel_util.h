// An in-memory kernel for the engine (daemon/kernel_port.h): namespaces with interfaces, data
// paths with their maps, hooks, shaping trees, classes and ifb devices, all as plain state a
// test can print and compare. Every fallible call is a numbered step; a test can make step N
// fail, or make one call block until it is let go, to drive the engine through each way an
// apply can end. Thread-safe: the engine may run on a worker while a test thread looks.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/kernel_port.h"

namespace fl::test {

class FakeKernel;

struct FakeDatapathState {
  uint32_t nslots = 0;
  bool unscoped = false;
  std::array<fl_slot, FL_MAX_SLOTS> slots{};
  std::map<std::string, uint64_t> sets, exempt;  // by CIDR text
  std::map<uint32_t, uint64_t> ports, ifaces, ifb;
};

struct FakeNsState {
  std::string name;
  kernel::NetnsId id;
  bool gone = false;  // its name no longer leads to it (target_still_there is false)
  std::vector<kernel::Interface> ifaces;
  std::map<int, std::string> roots;                 // ifindex -> root qdisc kind ("htb:ours" once ours)
  std::set<std::pair<int, uint16_t>> classes;       // (device, minor)
  std::map<int, int> ifbs;                          // ifb ifindex -> the interface it serves
  std::set<int> mirred;                             // interfaces with the legacy mirred filter
  std::map<int, int> hooks;                         // ifindex -> data path id attached there
};

class FakeKernel {
 public:
  FakeKernel();
  ~FakeKernel();

  // A namespace netns:NAME with loopback and these Ethernet interfaces (ifindex 2, 3, ...).
  void add_ns(const std::string& name, const std::vector<std::string>& ifaces);
  // The interface is deleted (its hooks, root qdisc and classes go with it).
  void delete_iface(const std::string& ns, const std::string& ifname);
  // netns:NAME no longer names the namespace the engine holds.
  void lose_ns(const std::string& ns);
  void set_root_qdisc(const std::string& ns, const std::string& ifname, const std::string& kind);

  // The port the engine takes; it calls back into this object, which must outlive it.
  std::unique_ptr<daemon::KernelPort> port();

  // Fallible calls so far (every one is a step).
  int steps() const;
  std::vector<std::string> step_log() const;  // "N op" per step
  // Step n (1-based, counted from now on) fails; 0: none.
  void fail_at(int n);
  // The next call of op (e.g. "attach") waits until release(); blocked() tells it is waiting.
  void block_on(const std::string& op);
  bool wait_blocked(std::chrono::milliseconds timeout);
  void release();

  // Everything a packet or `tc`/`ip` would see, as text: equal dumps, equal kernel state. Data
  // paths with nothing in their maps and no hook are left out (an idle spare is not state).
  std::string dump() const;
  size_t datapaths_taken() const;

  // For the port's objects.
  Status step(const std::string& op);
  std::mutex mu_;
  std::map<std::string, FakeNsState> ns_;  // by name
  std::map<int, FakeDatapathState> dps_;   // by id
  std::vector<const FakeNsState*> entered_;
  FakeNsState* cur();
  int next_dp_ = 1, next_ifindex_ = 100;
  uint64_t epoch_ = 1, completed_ = 0;

 private:
  mutable std::mutex step_mu_;
  std::condition_variable cv_;
  int steps_ = 0, fail_at_ = 0;
  std::vector<std::string> log_;
  std::string block_op_;
  bool blocked_ = false;
};

}  // namespace fl::test
