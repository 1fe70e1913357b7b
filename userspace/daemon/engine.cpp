#include "daemon/engine.h"

#include <net/if.h>
#include <time.h>

#include <algorithm>
#include <utility>
#include <set>
#include <tuple>

#include <spdlog/spdlog.h>

#include "core/plan.h"
#include "core/scope_exit.h"
#include "kernel/shaping.h"
#include "daemon/real_kernel_port.h"
#include "daemon/reset.h"
#include "protocol/protocol.h"

namespace fl::daemon {

using json = nlohmann::json;
using core::Cidr;
using core::Exemption;

uint64_t monotonic_ns() {
  struct timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock bpf_ktime_get_ns() reads
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int64_t unix_ms_now() {
  struct timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {

json counters_json(const kernel::Counters& c) {
  return {{"matched", c.matched}, {"dropped", c.dropped}, {"exempted", c.exempted}, {"shaped", c.shaped}};
}

// A matrix's counters per ordered pair (empty for other kinds).
json pairs_json(const core::FaultSpec& spec, const std::vector<kernel::Counters>& per_slot) {
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
std::vector<const core::ShapeProfile*> profiles_of(const core::FaultSpec& spec) {
  std::vector<const core::ShapeProfile*> out;
  if (spec.kind == core::FaultKind::matrix)
    for (const auto& p : spec.pairs) out.push_back(&p.profile);
  else if (core::is_shaping(spec.kind))
    out.push_back(&spec.shape);
  return out;
}

std::string class_str(uint16_t minor) {
  char buf[16];
  snprintf(buf, sizeof buf, "%x:%x", kernel::kHtbMajor, minor);
  return buf;
}

constexpr auto kGraceWait = std::chrono::milliseconds(500);  // keeps the loop (and the lease) live

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

}  // namespace

const char* fault_state_name(FaultState s) {
  switch (s) {
    case FaultState::active: return "active";
    case FaultState::expired: return "expired";
    case FaultState::healed: return "healed";
    case FaultState::gone: return "gone";
  }
  return "active";
}

// ---- per-namespace state ----

template <typename K>
struct RefBit {
  uint32_t bit = 0;
  int refs = 0;
};

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
  core::IndexPool set_bits{FL_SET_BITS};
  std::map<std::vector<Cidr>, RefBit<Cidr>> set_refs;

  core::SetMap exempt_cidrs;
  core::IndexPool rule_bits{FL_EXEMPT_BITS};
  std::map<Exemption, RefBit<Exemption>> rule_refs;
  std::map<uint32_t, uint64_t> port_masks;

  core::IndexPool if_bits{FL_MAX_IFACES};
  std::map<int, RefBit<int>> if_refs;
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

namespace {

// Pool acquisition that waits out quarantine when it is the only thing in the way.
Result<uint32_t> acquire(core::IndexPool& pool, KernelPort& port, const char* what, const std::string& label) {
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

Status write_set_changes(DataPath& dp, const std::vector<core::SetMap::Change>& ch, bool exempt) {
  return exempt ? dp.apply_exempt_changes(ch) : dp.apply_set_changes(ch);
}

}  // namespace

// ---- creation and targets ----

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions opts, kernel::Features features,
                                               Journal* journal) {
  auto port = make_real_kernel_port(opts.spare_datapaths);
  if (!port.ok()) return port.take_error();
  return create(std::move(opts), std::move(features), journal, std::move(*port));
}

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions opts, kernel::Features features, Journal* journal,
                                               std::unique_ptr<KernelPort> port) {
  std::unique_ptr<Engine> e(new Engine());
  e->opts_ = std::move(opts);
  if (!e->opts_.clock) e->opts_.clock = monotonic_ns;
  if (!e->opts_.wall_clock_ms) e->opts_.wall_clock_ms = unix_ms_now;
  e->features_ = features;
  e->journal_ = journal;
  if (e->opts_.force_mode) {
    e->mode_ = *e->opts_.force_mode;
    if (e->mode_ == kernel::AttachMode::tcx && features.tcx == kernel::Tri::no)
      return make_error(Errc::kernel_unsupported, "--attach-mode tcx: this kernel has no tcx (needs 6.6+)");
  } else {
    e->mode_ = features.tcx == kernel::Tri::yes ? kernel::AttachMode::tcx : kernel::AttachMode::tc;
  }
  e->port_ = std::move(port);
  e->lease_ = std::make_unique<LeaseKeeper>(e->opts_.lease, e->opts_.on_lease_late, e->stall_limit());
  return e;
}

std::chrono::milliseconds Engine::stall_limit() const {
  return opts_.stall_limit.count() > 0 ? opts_.stall_limit : LeaseKeeper::default_stall_limit(opts_.lease);
}

Engine::~Engine() {
  auto st = shutdown();
  if (!st.ok()) spdlog::error("shutdown: {}", st.error().message);
}

Result<Engine::Target*> Engine::target_for(const core::Target& spec) {
  auto ns = port_->open_target(spec);
  if (!ns.ok()) return ns.take_error();
  for (auto& t : targets_)
    if (t->ns->id() == (*ns)->id()) return t.get();
  Result<std::unique_ptr<DataPath>> dp = make_error(Errc::internal, "no data path");
  if (!recycled_.empty()) {
    auto& [old, stamp] = recycled_.back();
    // The grace period asked for at detach is usually over by now (~10 ms); waiting for it
    // beats loading a new one.
    if (port_->grace_wait(stamp, std::chrono::milliseconds(200))) dp = std::move(old);
    recycled_.pop_back();
  }
  if (!dp.ok()) dp = port_->take_datapath();
  if (!dp.ok()) return dp.take_error();
  auto t = std::make_unique<Target>();
  t->spec = spec;
  t->label = spec.str();
  t->ns = std::move(*ns);
  t->dp = std::move(*dp);
  if (auto st = t->dp->stats(); st.ok()) t->stats_base = *st;
  if (auto* l = t->dp->leased()) lease_->add(l);
  targets_.push_back(std::move(t));
  spdlog::info("{}: data path ready ({})", targets_.back()->label, targets_.back()->ns->id().str());
  return targets_.back().get();
}

// Detaches one interface. Its journal entry goes only once the kernel said yes: if detaching
// failed, the entry stays for the next start and the data path is never reused.
void Engine::detach_one(Target& t, AttachedIface& att, bool in_netns) {
  Status st = in_netns ? att.a->detach() : make_error(Errc::internal, "not in the namespace");
  if (!st.ok()) {
    spdlog::error("{}: detach {}: {}", t.label, att.je.ifname, st.error().message);
    t.dirty = true;
    return;
  }
  if (journal_) {
    auto js = journal_->remove(att.je);
    if (!js.ok()) spdlog::error("journal: {}", js.error().message);
  }
}

void Engine::drop_target_if_idle(Target& t) {
  if (t.faults > 0) return;
  for (auto& p : faults_)
    for (auto& part : p.second->parts)
      if (part.t == &t) return;
  if (!t.attached.empty()) {
    auto g = port_->enter(*t.ns);
    for (auto& [idx, att] : t.attached) detach_one(t, att, g.ok());
    t.attached.clear();
  }
  std::string label = t.label;
  if (auto st = t.dp->stats(); st.ok())
    for (size_t i = 0; i < FL_STAT_MAX; i++) retired_stats_[i] += (*st)[i] - t.stats_base[i];
  // A data path whose maps are back to empty is kept, detached, for the next namespace: loading
  // costs the verifier 0.1-0.2 s. It is reused only after a grace period, when no program run
  // from its old attachment can still be reading its slots.
  if (auto* l = t.dp->leased()) lease_->remove(l);
  bool clean = !t.dirty && t.sets.size() == 0 && t.exempt_cidrs.size() == 0 && t.port_masks.empty() &&
               t.if_refs.empty() && t.dead_if_bits.empty();
  if (clean && recycled_.size() < kMaxRecycled) {
    t.dp->set_nslots(0);
    recycled_.push_back({std::move(t.dp), port_->grace_current()});
    port_->grace_request();
  }
  targets_.erase(std::remove_if(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == &t; }),
                 targets_.end());
  spdlog::info("{}: detached", label);
}

// ---- things that went away under us ----

// In t's namespace. Takes the interface out of every fault on t. If the device is gone, its
// hooks, root qdisc and classes went with it, and whatever now has its name or index is not ours
// to touch: only our bookkeeping, its map entry and an ifb (which outlives the interface it
// served) remain. If the device is still there (someone removed our hooks), it is put back as
// it was, as when its last fault ends.
void Engine::forget_interface(Target& t, int ifindex, bool device_present) {
  std::string ifname = std::to_string(ifindex);
  auto at = t.attached.find(ifindex);
  if (at != t.attached.end()) {
    ifname = at->second.je.ifname;
    Status st;
    if (device_present)
      st = at->second.a->detach();
    else
      at->second.a->forget();
    if (!st.ok()) {
      spdlog::error("{}: detach {}: {}; left in the journal for the next start", t.label, ifname, st.error().message);
      at->second.a->forget();
      t.dirty = true;
    } else if (journal_) {
      auto js = journal_->remove(at->second.je);
      if (!js.ok()) spdlog::error("journal: {}", js.error().message);
    }
    t.attached.erase(at);
  }
  std::optional<uint32_t> bit;
  auto ib = t.if_refs.find(ifindex);
  if (ib != t.if_refs.end()) {
    // The entry goes now, so a device that gets this index never matches the faults.
    auto st = t.dp->delete_iface(static_cast<uint32_t>(ifindex));
    if (!st.ok()) {
      spdlog::error("{}: remove interface bit of {}: {}", t.label, ifname, st.error().message);
      t.dirty = true;
    }
    bit = ib->second.bit;
    t.dead_if_bits[ib->second.bit] += ib->second.refs;
    t.if_refs.erase(ib);
  }
  int egress_dev = -1, ifb_dev = -1;
  if (auto eg = t.egress_trees.find(ifindex); eg != t.egress_trees.end()) {
    egress_dev = eg->second.dev;
    Status st;
    if (device_present) {
      // Putting the saved root back replaces ours with every class under it.
      auto now = port_->read_root_qdisc(ifindex);
      if (now.ok() && now->ours) st = port_->restore_root(ifindex, eg->second.saved);
    }
    if (!st.ok()) {
      spdlog::error("{}: restore root qdisc of {}: {}; left in the journal for the next start", t.label, ifname,
                    st.error().message);
      t.dirty = true;
    } else if (journal_) {
      (void)journal_->remove(eg->second.je);
    }
    t.egress_trees.erase(eg);
  }
  if (auto ig = t.ingress_trees.find(ifindex); ig != t.ingress_trees.end()) {
    ifb_dev = ig->second.dev;
    Status st = t.dp->delete_ifb(static_cast<uint32_t>(ifindex));
    if (st.ok() && device_present && mode_ == kernel::AttachMode::tc) st = port_->detach_ifb_mirred(ifindex);
    // Only the ifb named after the gone interface is ours to delete; a device that took the
    // ifb's index since is not. A lookup that fails for want of a descriptor says neither.
    auto ifb = port_->lookup_device(ifb_dev);
    if (st.ok() && ifb.state == kernel::DeviceLookup::unknown)
      st = Error::sys(Errc::internal, "look up ifindex " + std::to_string(ifb_dev), ifb.err);
    if (st.ok() && ifb.state == kernel::DeviceLookup::present && ifb.name == kernel::ifb_name(ifindex))
      st = port_->delete_link(ifb_dev);
    if (!st.ok()) {
      spdlog::error("{}: remove {}: {}; left in the journal for the next start", t.label,
                    kernel::ifb_name(ifindex), st.error().message);
      t.dirty = true;
    } else if (journal_) {
      (void)journal_->remove(ig->second.je);
    }
    t.ingress_trees.erase(ig);
  }
  for (auto& [id, f] : faults_) {
    for (auto& p : f->parts) {
      if (p.gone || p.t != &t) continue;
      auto drop = [&](std::vector<int>& v) {
        size_t before = v.size();
        v.erase(std::remove(v.begin(), v.end(), ifindex), v.end());
        return v.size() != before;
      };
      drop(p.attached);
      if (drop(p.if_bits) && bit) p.dead_if_bits.push_back(*bit);
      drop(p.egress_trees);
      drop(p.ingress_trees);
      p.classes.erase(std::remove_if(p.classes.begin(), p.classes.end(),
                                     [&](auto& c) { return c.first == egress_dev || c.first == ifb_dev; }),
                      p.classes.end());
      p.ifaces.erase(std::remove_if(p.ifaces.begin(), p.ifaces.end(), [&](auto& i) { return i.index == ifindex; }),
                     p.ifaces.end());
    }
  }
  if (device_present)
    spdlog::warn("{}: faultline's hooks on {} (ifindex {}) were removed by someone else; it leaves its faults and is "
                 "put back as it was",
                 t.label, ifname, ifindex);
  else
    spdlog::info("{}: interface {} (ifindex {}) is gone; the faults on it no longer apply there", t.label, ifname,
                 ifindex);
}

void Engine::reap_dead_interfaces(Target& t) {
  if (t.attached.empty()) return;
  auto g = port_->enter(*t.ns);
  if (!g.ok()) {
    spdlog::error("{}: cannot enter to check interfaces: {}", t.label, g.error().message);
    return;
  }
  std::vector<std::pair<int, bool>> dead;  // ifindex, device still there
  for (auto& [idx, att] : t.attached) {
    auto alive = att.a->alive();
    if (!alive.ok()) {
      spdlog::warn("{}: cannot tell whether {} is still there: {}", t.label, att.je.ifname, alive.error().message);
      continue;
    }
    if (*alive) continue;
    auto same = port_->same_device(att.a->interface());
    if (!same) {
      // Out of descriptors, say: nothing is known about the device, so nothing is forgotten;
      // the next check (a second later) asks again.
      static bool warned = false;  // once per process: this repeats every second until it passes
      if (!std::exchange(warned, true))
        spdlog::warn("{}: cannot tell whether {} is still there (out of descriptors?); asking again every second",
                     t.label, att.je.ifname);
      continue;
    }
    dead.emplace_back(idx, *same);
  }
  for (auto [idx, present] : dead) forget_interface(t, idx, present);
}

// Ends one target's share of a fault whose other targets carry on.
void Engine::end_part(Fault& f, size_t i, const std::string& why) {
  Fault::Part& p = f.parts[i];
  if (p.gone) return;
  Target* t = p.t;
  if (p.active)
    for (uint32_t idx : p.slots) t->dp->deactivate_slot(idx);
  p.final_counters.clear();
  for (uint32_t idx : p.slots) {
    auto c = t->dp->counters(idx);
    p.final_counters.push_back(c.ok() ? *c : kernel::Counters{});
  }
  if (p.active) t->faults -= static_cast<int>(p.slots.size());
  p.active = false;
  release_part(f, i, port_->grace_current());
  p.gone = true;
  p.gone_reason = why;
  p.t = nullptr;
  t->dp->set_nslots(t->slots.high_water());
  bool any = false;
  for (uint32_t k = 0; k < t->slots.size(); k++)
    if (t->slots.used(k) && core::slot_unscoped(t->dp->slot(k))) any = true;
  t->dp->set_unscoped(any);
  spdlog::info("fault {}: {} {}; its part there ended", f.id, p.label, why);
  drop_target_if_idle(*t);
  port_->grace_request();
}

size_t Engine::reconcile() {
  std::vector<Target*> snapshot;
  for (auto& t : targets_) snapshot.push_back(t.get());
  auto exists = [&](Target* t) {
    return std::any_of(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == t; });
  };
  std::set<uint64_t> touched;
  for (Target* t : snapshot) {
    if (!exists(t)) continue;
    reap_dead_interfaces(*t);
    std::map<core::Target, bool> there;  // per name the parts on t use
    std::vector<std::tuple<Fault*, size_t, const char*>> ending;
    for (auto& [id, f] : faults_)
      for (size_t i = 0; i < f->parts.size(); i++) {
        const auto& p = f->parts[i];
        if (p.gone || p.t != t) continue;
        auto it = there.find(p.spec);
        if (it == there.end()) it = there.emplace(p.spec, port_->target_still_there(p.spec, *t->ns)).first;
        if (!it->second)
          ending.emplace_back(f.get(), i, "is gone (it no longer names the namespace the fault was applied in)");
        else if (p.ifaces.empty())
          ending.emplace_back(f.get(), i, "lost every interface it was on");
      }
    for (auto [f, i, why] : ending) {
      touched.insert(f->id);
      end_part(*f, i, why);
    }
  }
  for (uint64_t id : touched) {
    auto it = faults_.find(id);
    if (it == faults_.end()) continue;
    auto& parts = it->second->parts;
    if (std::all_of(parts.begin(), parts.end(), [](auto& p) { return p.gone; }))
      end_fault(*it->second, FaultState::gone);
  }
  return touched.size();
}

// ---- apply ----

// What the kernel must have for spec, checked before anything changes. Probed, not assumed: a
// feature the probe could not decide counts as missing, with the reason.
Status Engine::check_kernel_can(const core::FaultSpec& spec) const {
  if (spec.reset) {
    auto st = port_->probe_sock_destroy();
    if (!st.ok()) return st.take_error().wrap(std::string(core::kind_name(spec.kind)) + " --reset; nothing was changed");
  }
  if (!core::is_shaping(spec.kind)) return {};
  auto profiles = profiles_of(spec);
  bool netem = false, klass = false;
  for (const auto* p : profiles) {
    netem = netem || p->needs_netem();
    klass = klass || p->needs_class();
  }
  const std::string kind = core::kind_name(spec.kind);
  auto missing = [&](kernel::Tri have, const char* what, const char* option, const char* why) -> Status {
    if (have == kernel::Tri::yes) return {};
    std::string state = have == kernel::Tri::no ? "has no " : "could not be probed for ";
    return make_error(Errc::kernel_unsupported, kind + ": this kernel (" + features_.kernel_release + ") " + state +
                                                    what + "; " + why + " need " + option + ". Nothing was changed.");
  };
  if (netem)
    FL_TRY(missing(features_.netem, "netem qdisc", "CONFIG_NET_SCH_NETEM (module sch_netem)",
                   "delay, jitter, corrupt, duplicate and reorder"));
  if (klass) FL_TRY(missing(features_.htb, "HTB qdisc", "CONFIG_NET_SCH_HTB (module sch_htb)", "shaping classes"));
  if (klass && (static_cast<uint8_t>(spec.match.direction) & static_cast<uint8_t>(core::Direction::ingress)))
    FL_TRY(missing(features_.ifb, "ifb device", "CONFIG_IFB (module ifb)", "shaping on ingress (--direction ingress|both)"));
  return {};
}

// Lists the part's interfaces and, for shaping, checks every root qdisc it would replace. Runs
// for every target before prepare() changes anything, so a refusal leaves every target as it was.
Status Engine::resolve(Fault& f, FaultPart& part) {
  Target& t = *part.t;
  const core::FaultSpec& spec = f.spec;
  size_t nslots = spec.kind == core::FaultKind::matrix ? spec.pairs.size() : 1;
  if (t.faults + static_cast<int>(nslots) > FL_MAX_ACTIVE_FAULTS)
    return make_error(Errc::resource_exhausted, "too many faults in " + t.label + " (limit " +
                                                    std::to_string(FL_MAX_ACTIVE_FAULTS) +
                                                    " slots; a matrix takes one per pair)");
  FL_TRY(check_netem_mix(t, spec));
  // An interface deleted (and perhaps re-created under the same name or index) since the last
  // look must not be taken for the one our bookkeeping knows.
  reap_dead_interfaces(t);
  auto guard = port_->enter(*t.ns);
  if (!guard.ok()) return guard.take_error();
  auto all = port_->list_interfaces();
  if (!all.ok()) return all.take_error();
  auto ours = [](const kernel::Interface& i) { return i.name.rfind(kernel::kIfbPrefix, 0) == 0; };
  if (spec.devs.empty()) {
    for (auto& i : *all) {
      if (i.loopback || ours(i)) continue;  // our ifb devices are plumbing, never targets
      if (!i.ethernet) {
        // The program parses Ethernet frames; on an L3 device (wireguard, tun, ipip) it would
        // see IP where it expects a MAC header and match nothing, silently.
        spdlog::info("{}: skipping {} (link type {}, not Ethernet)", t.label, i.name, i.arphrd);
        continue;
      }
      part.ifaces.push_back(i);
    }
    if (part.ifaces.empty())
      return make_error(Errc::target_unavailable, "no Ethernet interface other than loopback in " + t.label);
  } else {
    for (const auto& name : spec.devs) {
      auto it = std::find_if(all->begin(), all->end(), [&](auto& i) { return i.name == name; });
      if (it == all->end()) {
        std::string have;
        for (auto& i : *all) have += (have.empty() ? "" : ", ") + i.name;
        return make_error(Errc::target_unavailable,
                          "interface " + name + " not found in " + t.label + " (has: " + have + ")");
      }
      if (ours(*it))
        return make_error(Errc::invalid_argument,
                          "interface " + name + " in " + t.label + " is an ifb device of faultline's own");
      if (!it->ethernet)
        return make_error(Errc::kernel_unsupported,
                          "interface " + name + " in " + t.label + " is not an Ethernet interface (link type " +
                              std::to_string(it->arphrd) + "); faults apply to Ethernet-framed interfaces only");
      part.ifaces.push_back(*it);
    }
  }
  if (needs_egress_tree(spec) && needs_class(spec)) {
    for (const auto& ifc : part.ifaces) {
      if (t.egress_trees.count(ifc.index)) continue;
      auto q = port_->read_root_qdisc(ifc.index);
      if (!q.ok()) return q.take_error().wrap(ifc.name);
      FL_TRY(port_->check_replaceable(*q, ifc.index, ifc.name, spec.replace_root));
    }
  }
  return {};
}

bool Engine::needs_class(const core::FaultSpec& spec) {
  auto ps = profiles_of(spec);
  return std::any_of(ps.begin(), ps.end(), [](auto* p) { return p->needs_class(); });
}

// Since 6.16 (and in the stable kernels it was backported to) netem refuses a duplicating netem
// in a tree that has any other netem, and any netem in a tree that has a duplicating one: a
// duplicate re-enqueued at the root could loop through them. All our classes hang from one root
// per interface, so the rule is ours too, on every kernel, checked before anything changes.
Status Engine::check_netem_mix(const Target& t, const core::FaultSpec& spec) const {
  int dup = 0, other = 0;
  for (auto* p : profiles_of(spec)) {
    if (!p->needs_netem()) continue;
    (p->duplicate_percent > 0 ? dup : other)++;
  }
  const std::string why =
      ": a duplicating netem cannot share an interface's shaping tree with any other netem (the "
      "kernel refuses it since 6.16 and in its stable backports, because a duplicate re-enters the "
      "tree at the root); heal the other fault first, or combine the effects in one shape fault";
  if (dup > 0 && dup + other > 1)
    return make_error(Errc::invalid_argument,
                      std::string(core::kind_name(spec.kind)) + ": " + std::to_string(dup + other) +
                          " netem profiles of which " + std::to_string(dup) + " duplicate" + why);
  if (dup > 0 && t.netem_classes > 0)
    return make_error(Errc::already_exists, "duplicate on " + t.label + ": " + std::to_string(t.netem_classes) +
                                                " netem class(es) of other faults are active there" + why);
  if (other > 0 && t.netem_dup_classes > 0)
    return make_error(Errc::already_exists, std::string(core::kind_name(spec.kind)) + " on " + t.label +
                                                ": a duplicate fault is active there" + why);
  return {};
}

bool Engine::needs_egress_tree(const core::FaultSpec& spec) {
  return core::is_shaping(spec.kind) &&
         (static_cast<uint8_t>(spec.match.direction) & static_cast<uint8_t>(core::Direction::egress));
}

bool Engine::needs_ingress_tree(const core::FaultSpec& spec) {
  return core::is_shaping(spec.kind) &&
         (static_cast<uint8_t>(spec.match.direction) & static_cast<uint8_t>(core::Direction::ingress));
}

// Takes a reference on the interface's shaping tree in one direction, building it first if
// this is its first shaping fault. In the target's namespace.
Status Engine::hold_tree(Target& t, FaultPart& part, const kernel::Interface& ifc, bool ingress,
                         bool replace_root) {
  auto& trees = ingress ? t.ingress_trees : t.egress_trees;
  auto it = trees.find(ifc.index);
  if (it == trees.end()) {
    ShapingTree tree;
    tree.ifindex = ifc.index;
    tree.ifname = ifc.name;
    JournalEntry je;
    je.netns_path = t.ns->path();
    je.netns_dev = t.ns->id().dev;
    je.netns_ino = t.ns->id().ino;
    je.mode = "-";
    if (!ingress) {
      auto q = port_->read_root_qdisc(ifc.index);
      if (!q.ok()) return q.take_error().wrap(ifc.name);
      // Checked in resolve(); again here because another target's apply may sit in between.
      FL_TRY(port_->check_replaceable(*q, ifc.index, ifc.name, replace_root));
      if (q->ours) {
        // A tree of ours that nothing here knows of: the leftover of a killed instance whose
        // journal was lost. What it replaced is unknown; the kernel's default goes back.
        spdlog::warn("{}: {} already has faultline's root qdisc; the kernel default will replace it",
                     t.label, ifc.name);
      }
      tree.saved = *q;
      tree.dev = ifc.index;
      je.what = "root-qdisc";
      je.ifname = ifc.name;
      je.ifindex = ifc.index;
      je.saved_qdisc = tree.saved.to_json().dump();
      if (journal_) FL_TRY_CTX(journal_->add(je), "journal");
      auto st = port_->install_root(ifc.index);
      if (!st.ok()) {
        (void)port_->restore_root(ifc.index, tree.saved);
        if (journal_) (void)journal_->remove(je);
        return st.take_error().wrap(ifc.name);
      }
    } else {
      je.what = "ifb";
      je.ifname = kernel::ifb_name(ifc.index);
      if (journal_) FL_TRY_CTX(journal_->add(je), "journal");
      auto ifb = port_->create_ifb(ifc.index);
      if (!ifb.ok()) {
        if (journal_) (void)journal_->remove(je);
        return ifb.take_error().wrap(ifc.name + " ingress");
      }
      JournalEntry with_index = je;
      with_index.ifindex = *ifb;
      // If the journal keeps the entry without the index, so must we, or its removal would miss
      // it; the next start finds the ifb by its name.
      Status js = journal_ ? journal_->replace(je, with_index) : Status{};
      if (js.ok())
        je = with_index;
      else
        spdlog::error("journal: {}", js.error().message);
      tree.dev = *ifb;
      Status st = port_->install_root(*ifb);
      uint32_t value = static_cast<uint32_t>(*ifb);
      if (st.ok() && mode_ == kernel::AttachMode::tc) {
        // Before 6.4, ifb drops what bpf_redirect() sends it; act_mirred works everywhere. The
        // filter goes first so the program never classifies a packet nothing will redirect.
        st = port_->attach_ifb_mirred(ifc.index, *t.dp, *ifb);
        value |= FL_IFB_BY_TC;
      }
      if (st.ok()) st = t.dp->set_ifb(static_cast<uint32_t>(ifc.index), value);
      if (!st.ok()) {
        (void)t.dp->delete_ifb(static_cast<uint32_t>(ifc.index));
        if (mode_ == kernel::AttachMode::tc) (void)port_->detach_ifb_mirred(ifc.index);
        (void)port_->delete_link(*ifb);
        if (journal_) (void)journal_->remove(je);
        return st.take_error().wrap(ifc.name + " ingress");
      }
    }
    tree.je = je;
    it = trees.emplace(ifc.index, std::move(tree)).first;
    spdlog::info("{}: shaping tree on {} {}", t.label, ifc.name, ingress ? "ingress (ifb)" : "egress");
  }
  it->second.refs++;
  (ingress ? part.ingress_trees : part.egress_trees).push_back(ifc.index);
  return {};
}

// Drops a reference; the last one puts the interface back as it was. In the target's namespace.
void Engine::release_tree(Target& t, int ifindex, bool ingress) {
  auto& trees = ingress ? t.ingress_trees : t.egress_trees;
  auto it = trees.find(ifindex);
  if (it == trees.end() || --it->second.refs > 0) return;
  ShapingTree& tree = it->second;
  Status st;
  // Only ENODEV means the device went with its tree. Any other failure of the lookup (EMFILE)
  // leaves it "present": the egress restore then finds out for itself (it only ever replaces a
  // root that is ours), and an ifb is not deleted blindly but kept in the journal.
  auto dev = port_->lookup_device(tree.dev);
  bool exists = dev.state != kernel::DeviceLookup::gone;
  if (ingress) {
    st = t.dp->delete_ifb(static_cast<uint32_t>(ifindex));
    if (st.ok() && mode_ == kernel::AttachMode::tc) st = port_->detach_ifb_mirred(ifindex);
    if (st.ok() && dev.state == kernel::DeviceLookup::unknown)
      st = Error::sys(Errc::internal, "look up " + tree.ifname, dev.err);
    // Deleting the ifb takes its tree with it. Packets a program run redirected a moment ago
    // are dropped with it; the slots were off before we got here.
    if (st.ok() && exists) st = port_->delete_link(tree.dev);
  } else if (exists) {
    st = port_->restore_root(tree.dev, tree.saved);
  }
  if (!st.ok()) {
    spdlog::error("{}: {} {}: {}; left in the journal for the next start", t.label, tree.ifname,
                  ingress ? "delete ifb" : "restore root qdisc", st.error().message);
    t.dirty = true;
  } else {
    if (!exists) spdlog::info("{}: {} is gone; nothing to put back", t.label, tree.ifname);
    if (journal_) {
      auto js = journal_->remove(tree.je);
      if (!js.ok()) spdlog::error("journal: {}", js.error().message);
    }
    spdlog::info("{}: {} {} restored", t.label, tree.ifname, ingress ? "ingress" : "egress");
  }
  trees.erase(it);
}

Status Engine::prepare(Fault& f, FaultPart& part) {
  Target& t = *part.t;
  const core::FaultSpec& spec = f.spec;

  {
    auto guard = port_->enter(*t.ns);
    if (!guard.ok()) return guard.take_error();
    for (const auto& ifc : part.ifaces) {
      auto at = t.attached.find(ifc.index);
      if (at != t.attached.end()) {
        at->second.refs++;
        part.attached.push_back(ifc.index);
        continue;
      }
      JournalEntry je{"attach", t.ns->path(), t.ns->id().dev, t.ns->id().ino, ifc.name, ifc.index,
                      kernel::attach_mode_name(mode_), false, ""};
      // Write-ahead: if we die between here and the attach, the next start looks and finds
      // nothing, which is harmless; the other order could leak a filter.
      if (journal_) FL_TRY_CTX(journal_->add(je), "journal");
      auto a = port_->attach(ifc, *t.dp, mode_);
      if (!a.ok()) {
        if (journal_) (void)journal_->remove(je);
        return a.take_error();
      }
      if ((*a)->created_clsact() && journal_) {
        JournalEntry updated = je;
        updated.created_clsact = true;
        auto js = journal_->replace(je, updated);
        if (js.ok())
          je = updated;  // else the entry stays as the journal holds it, so its removal finds it
        else
          spdlog::error("journal: {}", js.error().message);
      }
      t.attached.emplace(ifc.index, AttachedIface{std::move(*a), je, 1});
      part.attached.push_back(ifc.index);
    }
  }

  core::SlotBits bits;
  auto needs = core::set_needs(spec);
  auto ref_set = [&](const std::vector<Cidr>& cidrs) -> Result<uint64_t> {
    auto it = t.set_refs.find(cidrs);
    if (it != t.set_refs.end()) {
      it->second.refs++;
      part.sets.push_back(cidrs);
      return uint64_t{1} << it->second.bit;
    }
    for (uint8_t fam : {uint8_t{4}, uint8_t{6}}) {
      size_t hosts = 0, prefixes = 0;
      for (const auto& c : cidrs) {
        if (c.family != fam) continue;
        (c.prefix == (fam == 4 ? 32 : 128) ? hosts : prefixes)++;
      }
      if (t.sets.hosts(fam) + hosts > FL_MAX_HOSTS || t.sets.size(fam) - t.sets.hosts(fam) + prefixes > FL_MAX_CIDRS)
        return make_error(Errc::resource_exhausted,
                          "node sets in " + t.label + " would exceed " + std::to_string(FL_MAX_HOSTS) +
                              " IPv" + std::to_string(fam) + " hosts or " + std::to_string(FL_MAX_CIDRS) + " prefixes");
    }
    auto bit = acquire(t.set_bits, *port_, "node-set bit", t.label);
    if (!bit.ok()) return bit.take_error();
    uint64_t mask = uint64_t{1} << *bit;
    auto changes = t.sets.add(cidrs, mask);
    auto st = write_set_changes(*t.dp, changes, false);
    if (!st.ok()) {
      (void)write_set_changes(*t.dp, t.sets.remove(cidrs, mask), false);
      t.set_bits.release(*bit, port_->grace_current());
      return st.take_error();
    }
    t.set_refs[cidrs] = RefBit<Cidr>{*bit, 1};
    part.sets.push_back(cidrs);
    return mask;
  };
  FL_TRY(core::assign_set_bits(needs, ref_set, &bits));

  for (const auto& ex : core::exemptions_for(spec, opts_.exemptions)) {
    auto it = t.rule_refs.find(ex);
    if (it != t.rule_refs.end()) {
      it->second.refs++;
      part.rules.push_back(ex);
      bits.exempt |= uint64_t{1} << it->second.bit;
      continue;
    }
    auto bit = acquire(t.rule_bits, *port_, "exemption rule", t.label);
    if (!bit.ok()) return bit.take_error();
    uint64_t mask = uint64_t{1} << *bit;
    auto st = write_set_changes(*t.dp, t.exempt_cidrs.add({ex.cidr}, mask), true);
    uint32_t key = core::exempt_port_key(ex);
    if (st.ok()) st = t.dp->set_exempt_port(key, t.port_masks[key] | mask);
    if (!st.ok()) {
      (void)write_set_changes(*t.dp, t.exempt_cidrs.remove({ex.cidr}, mask), true);
      if (t.port_masks[key] == 0) {
        t.port_masks.erase(key);
        (void)t.dp->delete_exempt_port(key);
      }
      t.rule_bits.release(*bit, port_->grace_current());
      return st.take_error().wrap("exemption " + ex.str());
    }
    t.port_masks[key] |= mask;
    t.rule_refs[ex] = RefBit<Exemption>{*bit, 1};
    part.rules.push_back(ex);
    bits.exempt |= mask;
  }

  // Every fault names its interfaces by bit, also when it took the default list: otherwise an
  // interface attached later for another fault would widen it.
  {
    for (const auto& ifc : part.ifaces) {
      auto it = t.if_refs.find(ifc.index);
      if (it == t.if_refs.end()) {
        auto bit = acquire(t.if_bits, *port_, "interface bit", t.label);
        if (!bit.ok()) return bit.take_error();
        auto st = t.dp->set_iface_bit(static_cast<uint32_t>(ifc.index), uint64_t{1} << *bit);
        if (!st.ok()) {
          t.if_bits.release(*bit, port_->grace_current());
          return st.take_error();
        }
        it = t.if_refs.emplace(ifc.index, RefBit<int>{*bit, 0}).first;
      }
      it->second.refs++;
      part.if_bits.push_back(ifc.index);
      bits.ifaces |= uint64_t{1} << it->second.bit;
    }
  }

  auto planned = core::plan_slots(spec, bits);
  for (size_t i = 0; i < planned.size(); i++) {
    auto slot = acquire(t.slots, *port_, "fault slot", t.label);
    if (!slot.ok()) return slot.take_error();
    part.slots.push_back(*slot);
  }

  // Shaping: the trees, then one class per slot that needs one, all before any slot is written,
  // so a packet never meets a class id whose class is not there yet.
  bool egress = needs_egress_tree(spec), ingress = needs_ingress_tree(spec);
  bool any_class = std::any_of(planned.begin(), planned.end(),
                               [](auto& p) { return p.profile && p.profile->needs_class(); });
  if (any_class && (egress || ingress)) {
    auto guard = port_->enter(*t.ns);
    if (!guard.ok()) return guard.take_error();
    for (const auto& ifc : part.ifaces) {
      for (bool in : {false, true}) {
        if (!(in ? ingress : egress)) continue;
        FL_TRY(hold_tree(t, part, ifc, in, spec.replace_root));
        int dev = (in ? t.ingress_trees : t.egress_trees).at(ifc.index).dev;
        for (size_t i = 0; i < planned.size(); i++) {
          if (!planned[i].profile || !planned[i].profile->needs_class()) continue;
          uint16_t minor = kernel::slot_minor(part.slots[i]);
          auto st = port_->add_class(dev, minor, *planned[i].profile);
          if (!st.ok())
            return st.take_error().wrap(ifc.name + (in ? " ingress" : " egress") + " class " + class_str(minor));
          part.classes.emplace_back(dev, minor);
        }
      }
    }
  }

  for (const auto& pl : planned) {
    if (!pl.profile || !pl.profile->needs_netem()) continue;
    bool dup = pl.profile->duplicate_percent > 0;
    (dup ? t.netem_dup_classes : t.netem_classes)++;
    (dup ? part.netem_dup_slots : part.netem_slots)++;
  }

  uint32_t seq_base = next_shape_seq_;
  next_shape_seq_ += static_cast<uint32_t>(planned.size());
  for (size_t i = 0; i < planned.size(); i++) {
    fl_slot s = planned[i].slot;
    s.gen = next_gen_++;
    if (s.flags & FL_F_SHAPE) {
      s.prio = kernel::class_id(kernel::slot_minor(part.slots[i]));
      // Later applies get higher numbers; within a matrix the pair listed last wins.
      s.shape_seq = seq_base + static_cast<uint32_t>(i);
    }
    FL_TRY_CTX(t.dp->reset_slot_state(part.slots[i]), "reset counters");
    FL_TRY_CTX(t.dp->write_slot(part.slots[i], s), "write slot");
  }
  return {};
}

Result<json> Engine::apply(core::FaultSpec spec, std::optional<Caller> caller) {
  const uint64_t started_ns = monotonic_ns();
  if (!spec.name.empty() && find(spec.name))
    return make_error(Errc::already_exists, "a fault named " + spec.name + " is already active");
  FL_TRY(check_kernel_can(spec));

  auto f = std::make_unique<Fault>();
  f->spec = std::move(spec);
  f->created_unix_ms = opts_.wall_clock_ms();
  // Until the fault is registered, any way out of here (an error, an exception) gives back what
  // it took in every target: nothing switched on stays on, nothing attached stays attached.
  core::ScopeExit rollback([&] {
    if (f) undo_apply(*f);
  });

  Status failed;
  // First every target is found and looked at, then changed: a target that refuses (no such
  // interface, a root qdisc we must not replace) stops the apply before any kernel change.
  for (const auto& target : f->spec.targets) {
    auto t = target_for(target);
    if (!t.ok()) {
      failed = t.take_error().wrap("target " + target.str());
      break;
    }
    bool dup = std::any_of(f->parts.begin(), f->parts.end(), [&](auto& p) { return p.t == *t; });
    if (dup) {
      failed = make_error(Errc::invalid_argument,
                          "targets: " + target.str() + " is the same network namespace as another target");
      break;
    }
    f->parts.push_back(Fault::Part{});
    f->parts.back().t = *t;
    f->parts.back().spec = target;
    f->parts.back().label = target.str();
    auto st = resolve(*f, f->parts.back());
    if (!st.ok()) {
      failed = st.take_error().wrap("target " + target.str());
      break;
    }
  }
  for (size_t i = 0; failed.ok() && i < f->parts.size(); i++) {
    auto st = prepare(*f, f->parts[i]);
    if (!st.ok()) failed = st.take_error().wrap("target " + f->parts[i].t->spec.str());
  }
  if (!failed.ok()) return failed.take_error();  // rolled back by `rollback`

  f->id = next_id_++;
  f->expires_ns = opts_.clock() + static_cast<uint64_t>(f->spec.duration.count()) * 1000000ull;
  // With --reset, the slots first act on ingress only: the resets the target's stack sends
  // must leave through its egress, while new connections from its clients are already cut.
  std::vector<std::vector<uint8_t>> full_dir(f->parts.size());
  if (f->spec.reset)
    for (size_t i = 0; i < f->parts.size(); i++)
      for (uint32_t idx : f->parts[i].slots) {
        uint8_t dir = f->parts[i].t->dp->slot(idx).dir;
        full_dir[i].push_back(dir);
        f->parts[i].t->dp->set_slot_dir(idx, dir & FL_DIR_INGRESS);
      }
  // Switch on: one store per slot. Before this point no packet could see the fault.
  for (auto& p : f->parts) {
    p.t->dp->set_nslots(p.t->slots.high_water());
    for (uint32_t idx : p.slots)
      if (core::slot_unscoped(p.t->dp->slot(idx))) p.t->dp->set_unscoped(true);
    for (uint32_t idx : p.slots) p.t->dp->activate_slot(idx, f->expires_ns);
    p.active = true;
    p.t->faults += static_cast<int>(p.slots.size());
  }
  if (f->spec.reset) {
    reset_connections(*f, f->reset);
    for (size_t i = 0; i < f->parts.size(); i++)
      for (size_t k = 0; k < f->parts[i].slots.size(); k++)
        f->parts[i].t->dp->set_slot_dir(f->parts[i].slots[k], full_dir[i][k]);
  }
  uint64_t id = f->id;
  faults_[id] = std::move(f);
  active_.store(faults_.size(), std::memory_order_relaxed);
  rollback.release();
  spdlog::info("fault {} ({} {}) applied on {} target(s) for {} ms", id, core::kind_name(faults_[id]->spec.kind),
               faults_[id]->spec.name, faults_[id]->parts.size(), faults_[id]->spec.duration.count());
  json status = status_of(*faults_[id], FaultState::active);
  if (events_) {
    Event e;
    e.type = EventType::applied;
    e.fault_id = id;
    e.name = faults_[id]->spec.name;
    e.kind = core::kind_name(faults_[id]->spec.kind);
    for (const auto& p : faults_[id]->parts) e.targets.push_back(p.label);
    e.caller = caller;
    e.duration_ns = monotonic_ns() - started_ns;
    events_->emit(std::move(e));
  }
  return status;
}

// Destroys, in every target, the established TCP connections the fault cuts (exempt ones
// survive). A target where that fails keeps its fault; the report says what happened where.
void Engine::reset_connections(Fault& f, json& report) {
  const uint64_t start = monotonic_ns();
  size_t matched = 0, destroyed = 0, gone = 0;
  json per_target = json::array();
  for (auto& p : f.parts) {
    json pt = {{"target", p.label}};
    auto g = port_->enter(*p.t->ns);
    Result<kernel::DestroyResult> r =
        g.ok() ? port_->destroy_cut_connections(f.spec, opts_.exemptions) : Result<kernel::DestroyResult>(g.take_error());
    if (r.ok()) {
      matched += r->matched;
      destroyed += r->destroyed;
      gone += r->gone;
      pt.update(destroy_result_json(*r));
    } else {
      spdlog::error("fault {}: reset in {}: {}", f.id, p.label, r.error().message);
      pt["error"] = r.error().message;
    }
    per_target.push_back(pt);
  }
  uint64_t took_us = (monotonic_ns() - start) / 1000;
  report = {{"matched", matched},   {"destroyed", destroyed},   {"gone", gone},
            {"took_us", took_us},   {"per_target", per_target}};
  spdlog::info("fault {}: reset {} of {} matching TCP connection(s) in {} us", f.id, destroyed, matched, took_us);
}

// ---- ending faults ----

void Engine::release_part(Fault& f, size_t i, uint64_t stamp) {
  Fault::Part& part = f.parts[i];
  if (part.gone) return;  // released when it went
  Target& t = *part.t;
  for (uint32_t idx : part.slots) t.slots.release(idx, stamp);
  part.slots.clear();
  t.netem_classes -= part.netem_slots;
  t.netem_dup_classes -= part.netem_dup_slots;
  part.netem_slots = part.netem_dup_slots = 0;
  // Classes first (their slots are off or were never on), then the trees they hang from.
  if (!part.classes.empty() || !part.egress_trees.empty() || !part.ingress_trees.empty()) {
    auto g = port_->enter(*t.ns);
    if (!g.ok()) {
      spdlog::error("{}: cannot enter to remove shaping: {}", t.label, g.error().message);
      t.dirty = true;
    } else {
      for (auto [dev, minor] : part.classes) {
        // Device gone, class with it. If the lookup cannot tell (EMFILE), the delete finds out.
        if (port_->lookup_device(dev).state == kernel::DeviceLookup::gone) continue;
        auto st = port_->delete_class(dev, minor);
        if (!st.ok()) {
          spdlog::error("{}: delete class {}: {}", t.label, class_str(minor), st.error().message);
          t.dirty = true;
        }
      }
      for (int ifindex : part.egress_trees) release_tree(t, ifindex, false);
      for (int ifindex : part.ingress_trees) release_tree(t, ifindex, true);
    }
    part.classes.clear();
    part.egress_trees.clear();
    part.ingress_trees.clear();
  }
  for (const auto& cidrs : part.sets) {
    auto it = t.set_refs.find(cidrs);
    if (it == t.set_refs.end() || --it->second.refs > 0) continue;
    uint64_t mask = uint64_t{1} << it->second.bit;
    auto st = write_set_changes(*t.dp, t.sets.remove(cidrs, mask), false);
    if (st.ok()) {
      t.set_bits.release(it->second.bit, stamp);
    } else {
      spdlog::error("{}: remove node set: {}; its bit stays retired", t.label, st.error().message);
      t.dirty = true;
    }
    t.set_refs.erase(it);
  }
  part.sets.clear();
  for (const auto& ex : part.rules) {
    auto it = t.rule_refs.find(ex);
    if (it == t.rule_refs.end() || --it->second.refs > 0) continue;
    uint64_t mask = uint64_t{1} << it->second.bit;
    auto st = write_set_changes(*t.dp, t.exempt_cidrs.remove({ex.cidr}, mask), true);
    uint32_t key = core::exempt_port_key(ex);
    uint64_t left = t.port_masks[key] & ~mask;
    if (st.ok()) st = left ? t.dp->set_exempt_port(key, left) : t.dp->delete_exempt_port(key);
    if (left)
      t.port_masks[key] = left;
    else
      t.port_masks.erase(key);
    if (st.ok()) {
      t.rule_bits.release(it->second.bit, stamp);
    } else {
      spdlog::error("{}: remove exemption {}: {}; its bit stays retired", t.label, ex.str(), st.error().message);
      t.dirty = true;
    }
    t.rule_refs.erase(it);
  }
  part.rules.clear();
  for (int ifindex : part.if_bits) {
    auto it = t.if_refs.find(ifindex);
    if (it == t.if_refs.end() || --it->second.refs > 0) continue;
    auto st = t.dp->delete_iface(static_cast<uint32_t>(ifindex));
    if (st.ok()) {
      t.if_bits.release(it->second.bit, stamp);
    } else {
      spdlog::error("{}: remove interface bit: {}; the bit stays retired", t.label, st.error().message);
      t.dirty = true;
    }
    t.if_refs.erase(it);
  }
  part.if_bits.clear();
  for (uint32_t bit : part.dead_if_bits) {
    auto it = t.dead_if_bits.find(bit);
    if (it == t.dead_if_bits.end() || --it->second > 0) continue;
    t.if_bits.release(bit, stamp);
    t.dead_if_bits.erase(it);
  }
  part.dead_if_bits.clear();
  std::vector<int> detach;
  for (int ifindex : part.attached) {
    auto it = t.attached.find(ifindex);
    if (it != t.attached.end() && --it->second.refs == 0) detach.push_back(ifindex);
  }
  part.attached.clear();
  if (!detach.empty()) {
    auto g = port_->enter(*t.ns);
    if (!g.ok()) spdlog::error("{}: cannot enter to detach: {}", t.label, g.error().message);
    for (int ifindex : detach) {
      auto it = t.attached.find(ifindex);
      detach_one(t, it->second, g.ok());
      t.attached.erase(it);
    }
  }
}

void Engine::undo_apply(Fault& f) noexcept {
  no_throw("roll back apply", [&] {
    // Off first where --reset had already switched it on, then everything it took.
    for (auto& p : f.parts) {
      if (p.gone || !p.active) continue;
      for (uint32_t idx : p.slots) p.t->dp->deactivate_slot(idx);
      p.t->faults -= static_cast<int>(p.slots.size());
      p.active = false;
    }
    uint64_t stamp = port_->grace_current();
    std::vector<Target*> touched;
    for (size_t i = 0; i < f.parts.size(); i++) {
      if (f.parts[i].gone || !f.parts[i].t) continue;
      touched.push_back(f.parts[i].t);
      no_throw("roll back apply in " + f.parts[i].label, [&] { release_part(f, i, stamp); });
    }
    f.parts.clear();
    // Targets loaded for this fault alone go again.
    for (auto* t : touched) no_throw("roll back apply", [&] { settle_target(t); });
    for (size_t i = targets_.size(); i > 0; i--)
      no_throw("roll back apply", [&] { drop_target_if_idle(*targets_[i - 1]); });
    port_->grace_request();
  });
}

void Engine::settle_target(Target* t) {
  if (!std::any_of(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == t; })) return;
  t->dp->set_nslots(t->slots.high_water());
  bool any = false;
  for (uint32_t i = 0; i < t->slots.size(); i++)
    if (t->slots.used(i) && core::slot_unscoped(t->dp->slot(i))) any = true;
  t->dp->set_unscoped(any);
  drop_target_if_idle(*t);
}

void Engine::end_fault(Fault& f, FaultState why, std::optional<Caller> caller) {
  // Off everywhere first (one store each), then the bookkeeping.
  for (auto& p : f.parts)
    if (p.active)
      for (uint32_t idx : p.slots) p.t->dp->deactivate_slot(idx);
  const uint64_t stamp = port_->grace_current();
  const uint64_t fault_id = f.id;
  // The report below is the only part that could throw; what the fault holds in the kernel is
  // given back whatever it does.
  core::ScopeExit release([&] {
    no_throw("fault " + std::to_string(fault_id) + ": release", [&] { release_ended(fault_id, why, stamp); });
  });
  f.last_counters.clear();
  for (auto& p : f.parts) {
    if (p.gone) {
      f.last_counters.push_back(p.final_counters);
      continue;
    }
    f.last_counters.emplace_back();
    for (uint32_t idx : p.slots) {
      auto c = p.t->dp->counters(idx);
      f.last_counters.back().push_back(c.ok() ? *c : kernel::Counters{});
    }
  }
  ended_.push_front(status_of(f, why));
  ended_.front()["ended_unix_ms"] = opts_.wall_clock_ms();
  while (ended_.size() > 64) ended_.pop_back();
  if (events_) {
    Event e;
    e.type = why == FaultState::expired ? EventType::expired
             : why == FaultState::gone  ? EventType::gone
                                        : EventType::healed;
    e.fault_id = f.id;
    e.name = f.spec.name;
    e.kind = core::kind_name(f.spec.kind);
    for (const auto& p : f.parts) {
      e.targets.push_back(p.label);
      if (why == FaultState::gone && p.gone) e.detail += (e.detail.empty() ? "" : "; ") + p.label + " " + p.gone_reason;
    }
    e.caller = caller;
    e.fault = ended_.front();
    events_->emit(std::move(e));
  }
}

void Engine::release_ended(uint64_t id, FaultState why, uint64_t stamp) {
  auto it = faults_.find(id);
  if (it == faults_.end()) return;
  Fault& f = *it->second;
  std::vector<Target*> touched;
  for (size_t i = 0; i < f.parts.size(); i++) {
    if (f.parts[i].gone) continue;
    touched.push_back(f.parts[i].t);
    if (f.parts[i].active) f.parts[i].t->faults -= static_cast<int>(f.parts[i].slots.size());
    f.parts[i].active = false;
    no_throw("fault " + std::to_string(id) + ": release " + f.parts[i].label, [&] { release_part(f, i, stamp); });
  }
  f.parts.clear();
  faults_.erase(it);  // f is gone from here on
  active_.store(faults_.size(), std::memory_order_relaxed);
  for (auto* t : touched) no_throw("fault " + std::to_string(id), [&] { settle_target(t); });
  port_->grace_request();
  spdlog::info("fault {} {}", id, fault_state_name(why));
}

void Engine::restore_history(uint64_t next_id, const std::vector<json>& ended) {
  next_id_ = std::max(next_id_, next_id);
  for (const auto& j : ended) {
    if (ended_.size() >= 64) break;
    if (j.is_object() && j.contains("id") && j.contains("name")) ended_.push_back(j);
  }
}

Engine::Fault* Engine::find(const std::string& ref) {
  bool numeric = !ref.empty() && std::all_of(ref.begin(), ref.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (numeric) {
    auto it = faults_.find(std::strtoull(ref.c_str(), nullptr, 10));
    return it == faults_.end() ? nullptr : it->second.get();
  }
  for (auto& [id, f] : faults_)
    if (f->spec.name == ref) return f.get();
  return nullptr;
}

Result<std::vector<uint64_t>> Engine::heal(const std::string& ref, std::optional<Caller> caller) {
  Fault* f = find(ref);
  if (!f) return make_error(Errc::not_found, "no active fault " + ref);
  uint64_t id = f->id;
  end_fault(*f, FaultState::healed, caller);
  return std::vector<uint64_t>{id};
}

std::vector<uint64_t> Engine::heal_all(std::optional<Caller> caller) {
  std::vector<uint64_t> ids;
  for (auto& [id, f] : faults_) ids.push_back(id);
  // One heal that fails must not stop the others (this is also how SIGTERM heals).
  for (uint64_t id : ids)
    no_throw("heal fault " + std::to_string(id), [&] {
      if (auto it = faults_.find(id); it != faults_.end()) end_fault(*it->second, FaultState::healed, caller);
    });
  return ids;
}

size_t Engine::expire_due() {
  uint64_t now = opts_.clock();
  std::vector<uint64_t> due;
  for (auto& [id, f] : faults_)
    if (f->expires_ns <= now) due.push_back(id);
  for (uint64_t id : due)
    no_throw("expire fault " + std::to_string(id), [&] {
      if (auto it = faults_.find(id); it != faults_.end()) end_fault(*it->second, FaultState::expired);
    });
  return due.size();
}

std::optional<uint64_t> Engine::next_expiry() const {
  std::optional<uint64_t> best;
  for (auto& [id, f] : faults_)
    if (!best || f->expires_ns < *best) best = f->expires_ns;
  return best;
}

Status Engine::shutdown() {
  heal_all();
  std::vector<Target*> left;
  for (auto& t : targets_) left.push_back(t.get());
  for (auto* t : left)
    no_throw("shutdown: detach", [&] {
      if (std::any_of(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == t; }))
        drop_target_if_idle(*t);
    });
  if (targets_.empty()) return {};
  // Only when a heal failed: closing the data paths still ends tcx links; legacy filters and
  // shaping trees stay journalled for the next start.
  const size_t n = targets_.size();
  // Out of the keeper first: its thread writes through every data path it holds.
  for (auto& t : targets_)
    if (auto* l = t->dp->leased()) lease_->remove(l);
  no_throw("shutdown: close data paths", [&] { targets_.clear(); });
  return make_error(Errc::internal, std::to_string(n) + " target(s) could not be detached cleanly");
}

// ---- reporting ----

json Engine::status_of(const Fault& f, FaultState state) const {
  kernel::Counters total;
  json per_target = json::array(), targets = json::array(), ifaces = json::array();
  size_t nslots = f.spec.kind == core::FaultKind::matrix ? f.spec.pairs.size() : 1;
  std::vector<kernel::Counters> per_slot(nslots);
  for (size_t i = 0; i < f.parts.size(); i++) {
    const auto& p = f.parts[i];
    kernel::Counters c;
    for (size_t k = 0; k < nslots; k++) {
      kernel::Counters sc;
      if (p.gone) {
        if (k < p.final_counters.size()) sc = p.final_counters[k];
      } else if (state == FaultState::active && k < p.slots.size()) {
        auto r = p.t->dp->counters(p.slots[k]);
        if (r.ok()) sc = *r;
      } else if (i < f.last_counters.size() && k < f.last_counters[i].size()) {
        sc = f.last_counters[i][k];
      }
      c += sc;
      per_slot[k] += sc;
    }
    total += c;
    targets.push_back(p.label);
    json pt = {{"target", p.label}, {"counters", counters_json(c)}};
    if (p.gone) {
      pt["state"] = "gone";
      pt["reason"] = p.label + " " + p.gone_reason;
    }
    // Where the fault's packets are queued: proof that the tree and class exist.
    if (state == FaultState::active && !p.gone && !p.classes.empty()) {
      json classes = json::array();
      for (auto [dev, minor] : p.classes) {
        std::string dev_name = std::to_string(dev);
        for (const auto* trees : {&p.t->egress_trees, &p.t->ingress_trees})
          for (const auto& [ifindex, tree] : *trees)
            if (tree.dev == dev)
              dev_name = trees == &p.t->egress_trees ? tree.ifname : kernel::ifb_name(ifindex);
        classes.push_back({{"dev", dev_name}, {"class", class_str(minor)}});
      }
      pt["classes"] = classes;
    }
    per_target.push_back(pt);
    for (const auto& ifc : p.ifaces)
      ifaces.push_back({{"target", p.label}, {"dev", ifc.name}, {"ifindex", ifc.index},
                        {"mode", kernel::attach_mode_name(mode_)}});
  }
  uint64_t now = opts_.clock();
  int64_t left = state == FaultState::active && f.expires_ns > now
                     ? static_cast<int64_t>((f.expires_ns - now) / 1000000ull) : 0;
  json out = {{"id", f.id},
          {"name", f.spec.name},
          {"kind", core::kind_name(f.spec.kind)},
          {"state", fault_state_name(state)},
          {"created_unix_ms", f.created_unix_ms},
          {"expires_in_ms", left},
          {"duration_ms", f.spec.duration.count()},
          {"targets", targets},
          {"interfaces", ifaces},
          {"counters", counters_json(total)},
          {"per_target", per_target},
          {"pairs", pairs_json(f.spec, per_slot)},
          {"spec", proto::fault_spec_to_json(f.spec)}};
  if (!f.reset.is_null()) out["reset"] = f.reset;
  return out;
}

std::array<uint64_t, FL_STAT_MAX> Engine::program_stats() const {
  auto out = retired_stats_;
  for (const auto& t : targets_)
    if (auto st = t->dp->stats(); st.ok())
      for (size_t i = 0; i < FL_STAT_MAX; i++) out[i] += (*st)[i] - t->stats_base[i];
  return out;
}

Result<json> Engine::get(const std::string& ref) {
  if (Fault* f = find(ref)) return status_of(*f, FaultState::active);
  for (const auto& j : ended_)
    if (std::to_string(j.at("id").get<uint64_t>()) == ref || j.at("name").get<std::string>() == ref) return j;
  return make_error(Errc::not_found, "no fault " + ref);
}

json Engine::list() {
  json arr = json::array();
  for (auto& [id, f] : faults_) arr.push_back(status_of(*f, FaultState::active));
  return arr;
}

EngineUsage Engine::usage() const {
  EngineUsage u;
  u.targets = targets_.size();
  u.recycled = recycled_.size();
  for (const auto& t : targets_) {
    u.slots += t->slots.in_use();
    u.set_bits += t->set_bits.in_use();
    u.rule_bits += t->rule_bits.in_use();
    u.if_bits += t->if_bits.in_use();
    u.attached += t->attached.size();
    u.egress_trees += t->egress_trees.size();
    u.ingress_trees += t->ingress_trees.size();
  }
  return u;
}

}  // namespace fl::daemon
