// The engine's state, shared by the files that make it up (engine_*.cpp): per target namespace
// its data path, hooks, bits and trees (Engine::Target), and per fault its share of each target
// (Engine::FaultPart). Internal to the engine; nothing outside daemon/engine*.cpp includes it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/index_pool.h"
#include "core/ref_bit_pool.h"
#include "core/set_map.h"
#include "daemon/engine.h"
#include "kernel/shaping.h"

namespace fl::daemon::engine_detail {

using json = nlohmann::json;
using core::Cidr;
using core::Exemption;
inline json counters_json(const kernel::Counters& c) {
  return {{"matched", c.matched}, {"dropped", c.dropped}, {"exempted", c.exempted}, {"shaped", c.shaped}};
}

// A matrix's counters per ordered pair (empty for other kinds).
inline json pairs_json(const core::FaultSpec& spec, const std::vector<kernel::Counters>& per_slot) {
  json out = json::array();
  if (spec.kind != core::FaultKind::matrix) return out;
  for (size_t k = 0; k < spec.pairs.size() && k < per_slot.size(); k++) {
    const auto& p = spec.pairs[k];
    out.push_back({{"from", spec.sides.at(p.from).name},
                   {"to", spec.sides.at(p.to).name},
                   {"profile", p.profile.str()},
                   {"counters", counters_json(per_slot[k])}});
  }
  return out;
}

// The profiles of a shaping fault: one, or one per matrix pair; none for the other kinds.
inline std::vector<const core::ShapeProfile*> profiles_of(const core::FaultSpec& spec) {
  std::vector<const core::ShapeProfile*> out;
  if (spec.kind == core::FaultKind::matrix)
    for (const auto& p : spec.pairs) out.push_back(&p.profile);
  else if (core::is_shaping(spec.kind))
    out.push_back(&spec.shape);
  return out;
}

inline std::string class_str(uint16_t minor) {
  char buf[16];
  snprintf(buf, sizeof buf, "%x:%x", kernel::kHtbMajor, minor);
  return buf;
}

inline constexpr auto kGraceWait = std::chrono::milliseconds(500);  // keeps the loop (and the lease) live

// Runs a step of a cleanup so that an exception in it is logged and the cleanup goes on with
// the next step: a rollback or a heal that stops half-way leaves the kernel in a state no
// bookkeeping knows.
template <typename F>
void no_throw(const std::string& what, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", what, e.what());
  } catch (...) {
    spdlog::error("{}: unknown exception", what);
  }
}

}  // namespace fl::daemon::engine_detail

namespace fl::daemon {

using namespace engine_detail;

struct AttachedIface {
  std::unique_ptr<Attachment> a;
  JournalEntry je;
  int refs = 0;
};

// A shaping tree of ours: the root HTB on an interface (egress) or on the ifb serving it
// (ingress), shared by every shaping fault on that interface and direction.
struct ShapingTree {
  int ifindex = 0;         // the interface
  std::string ifname;
  int dev = 0;             // where the tree is: ifindex (egress) or the ifb's ifindex (ingress)
  kernel::SavedQdisc saved;  // egress: the root qdisc to put back
  JournalEntry je;
  int refs = 0;
};

struct Engine::Target {
  core::Target spec;
  std::string label;
  std::unique_ptr<TargetNs> ns;
  std::unique_ptr<DataPath> dp;

  std::map<int, AttachedIface> attached;  // by ifindex

  core::SetMap sets;
  core::RefBitPool<std::vector<Cidr>> set_bits{FL_SET_BITS};

  core::SetMap exempt_cidrs;
  core::RefBitPool<Exemption> rule_bits{FL_EXEMPT_BITS};
  std::map<uint32_t, uint64_t> port_masks;

  core::RefBitPool<int> if_bits{FL_MAX_IFACES};
  // Bits of interfaces that are gone, by bit: references of the faults still naming them. Such a
  // bit goes back to the pool only when the last of those faults ends, or a new interface given
  // it would fall under them.
  std::map<uint32_t, int> dead_if_bits;

  std::map<int, ShapingTree> egress_trees, ingress_trees;  // by interface ifindex
  std::array<uint64_t, FL_STAT_MAX> stats_base{};  // a reused data path's counts from before
  int netem_classes = 0, netem_dup_classes = 0;  // netem slots of active faults (see check_netem_mix)

  core::IndexPool slots{FL_MAX_SLOTS};
  int faults = 0;  // active slots
  // A kernel removal failed: some map entry may still carry a released meaning, or a filter
  // may still be attached. Its bits stay taken and its data path is never reused.
  bool dirty = false;
};

struct Engine::FaultPart {
  Target* t = nullptr;  // null once the part is gone
  // The target as this fault named it: two faults may name one namespace differently (pid:N
  // and netns:X), and each part lives as long as its own name still leads there.
  core::Target spec;
  std::string label;  // spec.str(), kept for reports after it is gone
  bool gone = false;    // its namespace or every interface it was on went away; all released
  std::string gone_reason;
  std::vector<kernel::Counters> final_counters;  // per slot, read when it went
  std::vector<uint32_t> dead_if_bits;  // interface bits of gone interfaces it still names
  std::vector<uint32_t> slots;  // one per planned slot (matrix: per pair, in pair order)
  bool active = false;
  std::vector<int> egress_trees, ingress_trees;  // interfaces whose tree this part holds
  std::vector<std::pair<int, uint16_t>> classes;  // (tree device, class minor) it created
  int netem_slots = 0, netem_dup_slots = 0;      // its share of Target::netem_*classes
  std::vector<std::vector<Cidr>> sets;
  std::vector<Exemption> rules;
  std::vector<int> attached;  // ifindexes holding an attachment ref
  std::vector<int> if_bits;   // ifindexes holding an interface-bit ref
  std::vector<kernel::Interface> ifaces;
};

struct Engine::Fault {
  uint64_t id = 0;
  core::FaultSpec spec;
  int64_t created_unix_ms = 0;
  uint64_t expires_ns = 0;

  using Part = FaultPart;
  std::vector<Part> parts;
  json reset;  // what --reset did, null without it
  std::vector<std::vector<kernel::Counters>> last_counters;  // per part, per slot
};


// Pool acquisition that waits out quarantine when it is the only thing in the way.
inline Result<uint32_t> acquire(core::IndexPool& pool, KernelPort& port, const char* what, const std::string& label) {
  auto id = pool.acquire(port.grace_completed());
  if (!id && pool.waiting(port.grace_completed())) {
    port.grace_wait(port.grace_current(), kGraceWait);
    id = pool.acquire(port.grace_completed());
  }
  if (!id)
    return make_error(Errc::resource_exhausted,
                      std::string("no free ") + what + " in " + label + " (" +
                          std::to_string(pool.size()) + " in use)");
  return *id;
}

inline Status write_set_changes(DataPath& dp, const std::vector<core::SetMap::Change>& ch, bool exempt) {
  return exempt ? dp.apply_exempt_changes(ch) : dp.apply_set_changes(ch);
}

}  // namespace fl::daemon
