#include "daemon/engine.h"

#include <time.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "core/plan.h"
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

namespace {

int64_t unix_ms_now() {
  struct timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

json counters_json(const kernel::Counters& c) {
  return {{"matched", c.matched}, {"dropped", c.dropped}, {"exempted", c.exempted}};
}

constexpr auto kGraceWait = std::chrono::milliseconds(500);  // keeps the loop (and the lease) live


}  // namespace

const char* fault_state_name(FaultState s) {
  switch (s) {
    case FaultState::active: return "active";
    case FaultState::expired: return "expired";
    case FaultState::healed: return "healed";
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
  kernel::InterfaceAttachment a;
  JournalEntry je;
  int refs = 0;
};

struct Engine::Target {
  core::Target spec;
  std::string label;
  kernel::Netns ns;
  std::unique_ptr<kernel::Datapath> dp;

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

  core::IndexPool slots{FL_MAX_SLOTS};
  int faults = 0;
  // A kernel removal failed: some map entry may still carry a released meaning, or a filter
  // may still be attached. Its bits stay taken and its data path is never reused.
  bool dirty = false;
};

struct Engine::Fault {
  uint64_t id = 0;
  core::FaultSpec spec;
  int64_t created_unix_ms = 0;
  uint64_t expires_ns = 0;

  struct Part {
    Target* t = nullptr;
    uint32_t slot = UINT32_MAX;
    bool active = false;
    std::vector<std::vector<Cidr>> sets;
    std::vector<Exemption> rules;
    std::vector<int> attached;  // ifindexes holding an attachment ref
    std::vector<int> if_bits;   // ifindexes holding an interface-bit ref
    std::vector<kernel::Interface> ifaces;
  };
  std::vector<Part> parts;
  std::vector<kernel::Counters> last_counters;
};

namespace {

// Pool acquisition that waits out quarantine when it is the only thing in the way.
Result<uint32_t> acquire(core::IndexPool& pool, kernel::GracePeriod& grace, const char* what,
                         const std::string& label) {
  auto id = pool.acquire(grace.completed());
  if (!id && pool.waiting(grace.completed())) {
    grace.wait(grace.current(), kGraceWait);
    id = pool.acquire(grace.completed());
  }
  if (!id)
    return make_error(Errc::resource_exhausted,
                      std::string("no free ") + what + " in " + label + " (" +
                          std::to_string(pool.size()) + " in use)");
  return *id;
}

Status write_set_changes(kernel::Datapath& dp, const std::vector<core::SetMap::Change>& ch, bool exempt) {
  return exempt ? dp.apply_exempt_changes(ch) : dp.apply_set_changes(ch);
}

}  // namespace

// ---- creation and targets ----

Result<std::unique_ptr<Engine>> Engine::create(EngineOptions opts, kernel::Features features,
                                               Journal* journal) {
  std::unique_ptr<Engine> e(new Engine());
  e->opts_ = std::move(opts);
  e->features_ = features;
  e->journal_ = journal;
  if (e->opts_.force_mode) {
    e->mode_ = *e->opts_.force_mode;
    if (e->mode_ == kernel::AttachMode::tcx && features.tcx == kernel::Tri::no)
      return make_error(Errc::kernel_unsupported, "--attach-mode tcx: this kernel has no tcx (needs 6.6+)");
  } else {
    e->mode_ = features.tcx == kernel::Tri::yes ? kernel::AttachMode::tcx : kernel::AttachMode::tc;
  }
  auto grace = kernel::GracePeriod::create();
  if (!grace.ok()) return grace.take_error();
  e->grace_ = std::move(*grace);
  auto host = kernel::Netns::self();
  if (!host.ok()) return host.take_error();
  e->host_ = std::make_unique<kernel::Netns>(std::move(*host));
  e->pool_ = std::make_unique<kernel::DatapathPool>(e->opts_.spare_datapaths);
  e->renew_lease();
  return e;
}

Engine::~Engine() {
  auto st = shutdown();
  if (!st.ok()) spdlog::error("shutdown: {}", st.error().message);
}

Result<Engine::Target*> Engine::target_for(const core::Target& spec) {
  auto ns = kernel::Netns::open(spec, *host_);
  if (!ns.ok()) return ns.take_error();
  for (auto& t : targets_)
    if (t->ns.id() == ns->id()) return t.get();
  Result<std::unique_ptr<kernel::Datapath>> dp = make_error(Errc::internal, "no data path");
  if (!recycled_.empty()) {
    auto& [old, stamp] = recycled_.back();
    // The grace period asked for at detach is usually over by now (~10 ms); waiting for it
    // beats loading a new one.
    if (grace_->wait(stamp, std::chrono::milliseconds(200))) dp = std::move(old);
    recycled_.pop_back();
  }
  if (!dp.ok()) dp = pool_->take();
  if (!dp.ok()) return dp.take_error();
  auto t = std::make_unique<Target>();
  t->spec = spec;
  t->label = spec.str();
  t->ns = std::move(*ns);
  t->dp = std::move(*dp);
  t->dp->set_lease(lease_expires_);
  targets_.push_back(std::move(t));
  spdlog::info("{}: data path ready ({})", targets_.back()->label, targets_.back()->ns.id().str());
  return targets_.back().get();
}

// Detaches one interface. Its journal entry goes only once the kernel said yes: if detaching
// failed, the entry stays for the next start and the data path is never reused.
void Engine::detach_one(Target& t, AttachedIface& att, bool in_netns) {
  Status st = in_netns ? att.a.detach() : make_error(Errc::internal, "not in the namespace");
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
    auto g = kernel::NetnsGuard::enter(t.ns);
    for (auto& [idx, att] : t.attached) detach_one(t, att, g.ok());
    t.attached.clear();
  }
  std::string label = t.label;
  // A data path whose maps are back to empty is kept, detached, for the next namespace: loading
  // costs the verifier 0.1-0.2 s. It is reused only after a grace period, when no program run
  // from its old attachment can still be reading its slots.
  bool clean = !t.dirty && t.sets.size() == 0 && t.exempt_cidrs.size() == 0 && t.port_masks.empty() &&
               t.if_refs.empty();
  if (clean && recycled_.size() < kMaxRecycled) {
    t.dp->set_nslots(0);
    recycled_.push_back({std::move(t.dp), grace_->current()});
    grace_->request();
  }
  targets_.erase(std::remove_if(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == &t; }),
                 targets_.end());
  spdlog::info("{}: detached", label);
}

// ---- apply ----

Status Engine::prepare(Fault& f, Target& t) {
  Fault::Part& part = f.parts.back();
  const core::FaultSpec& spec = f.spec;
  if (t.faults >= FL_MAX_ACTIVE_FAULTS)
    return make_error(Errc::resource_exhausted,
                      "too many faults in " + t.label + " (limit " + std::to_string(FL_MAX_ACTIVE_FAULTS) + ")");

  {
    auto guard = kernel::NetnsGuard::enter(t.ns);
    if (!guard.ok()) return guard.take_error();
    auto all = kernel::list_interfaces();
    if (!all.ok()) return all.take_error();
    if (spec.devs.empty()) {
      for (auto& i : *all) {
        if (i.loopback) continue;
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
        if (!it->ethernet)
          return make_error(Errc::kernel_unsupported,
                            "interface " + name + " in " + t.label + " is not an Ethernet interface (link type " +
                                std::to_string(it->arphrd) + "); faults apply to Ethernet-framed interfaces only");
        part.ifaces.push_back(*it);
      }
    }
    for (const auto& ifc : part.ifaces) {
      auto at = t.attached.find(ifc.index);
      if (at != t.attached.end()) {
        at->second.refs++;
        part.attached.push_back(ifc.index);
        continue;
      }
      JournalEntry je{t.ns.path(), t.ns.id().dev, t.ns.id().ino, ifc.name, ifc.index,
                      kernel::attach_mode_name(mode_), false};
      // Write-ahead: if we die between here and the attach, the next start looks and finds
      // nothing, which is harmless; the other order could leak a filter.
      if (journal_) FL_TRY_CTX(journal_->add(je), "journal");
      auto a = kernel::InterfaceAttachment::attach(ifc, t.dp->ingress_fd(), t.dp->egress_fd(), mode_);
      if (!a.ok()) {
        if (journal_) (void)journal_->remove(je);
        return a.take_error();
      }
      if (a->created_clsact() && journal_) {
        JournalEntry updated = je;
        updated.created_clsact = true;
        auto js = journal_->replace(je, updated);
        if (!js.ok()) spdlog::error("journal: {}", js.error().message);
        je = updated;
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
    auto bit = acquire(t.set_bits, *grace_, "node-set bit", t.label);
    if (!bit.ok()) return bit.take_error();
    uint64_t mask = uint64_t{1} << *bit;
    auto changes = t.sets.add(cidrs, mask);
    auto st = write_set_changes(*t.dp, changes, false);
    if (!st.ok()) {
      (void)write_set_changes(*t.dp, t.sets.remove(cidrs, mask), false);
      t.set_bits.release(*bit, grace_->current());
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
    auto bit = acquire(t.rule_bits, *grace_, "exemption rule", t.label);
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
      t.rule_bits.release(*bit, grace_->current());
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
        auto bit = acquire(t.if_bits, *grace_, "interface bit", t.label);
        if (!bit.ok()) return bit.take_error();
        auto st = t.dp->set_iface_bit(static_cast<uint32_t>(ifc.index), uint64_t{1} << *bit);
        if (!st.ok()) {
          t.if_bits.release(*bit, grace_->current());
          return st.take_error();
        }
        it = t.if_refs.emplace(ifc.index, RefBit<int>{*bit, 0}).first;
      }
      it->second.refs++;
      part.if_bits.push_back(ifc.index);
      bits.ifaces |= uint64_t{1} << it->second.bit;
    }
  }

  auto slot = acquire(t.slots, *grace_, "fault slot", t.label);
  if (!slot.ok()) return slot.take_error();
  part.slot = *slot;
  fl_slot s = core::plan_slot(spec, bits);
  s.gen = next_gen_++;
  FL_TRY_CTX(t.dp->reset_slot_state(part.slot), "reset counters");
  FL_TRY_CTX(t.dp->write_slot(part.slot, s), "write slot");
  return {};
}

Result<json> Engine::apply(core::FaultSpec spec) {
  if (!spec.name.empty() && find(spec.name))
    return make_error(Errc::already_exists, "a fault named " + spec.name + " is already active");

  auto f = std::make_unique<Fault>();
  f->spec = std::move(spec);
  f->created_unix_ms = unix_ms_now();

  Status failed;
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
    auto st = prepare(*f, **t);
    if (!st.ok()) {
      failed = st.take_error().wrap("target " + target.str());
      break;
    }
  }
  if (!failed.ok()) {
    // Nothing was switched on; give back everything the prepared parts took.
    uint64_t stamp = grace_->current();
    for (size_t i = 0; i < f->parts.size(); i++) release_part(*f, i, stamp);
    f->parts.clear();
    // Targets loaded for this fault alone go again.
    for (size_t i = targets_.size(); i > 0; i--) drop_target_if_idle(*targets_[i - 1]);
    grace_->request();
    return failed.take_error();
  }

  f->id = next_id_++;
  f->expires_ns = monotonic_ns() + static_cast<uint64_t>(f->spec.duration.count()) * 1000000ull;
  // Switch on: one store per target. Before this point no packet could see the fault.
  for (auto& p : f->parts) {
    p.t->dp->set_nslots(p.t->slots.high_water());
    if (core::slot_unscoped(p.t->dp->slot(p.slot))) p.t->dp->set_unscoped(true);
    p.t->dp->activate_slot(p.slot, f->expires_ns);
    p.active = true;
    p.t->faults++;
  }
  uint64_t id = f->id;
  faults_[id] = std::move(f);
  spdlog::info("fault {} ({} {}) applied on {} target(s) for {} ms", id, core::kind_name(faults_[id]->spec.kind),
               faults_[id]->spec.name, faults_[id]->parts.size(), faults_[id]->spec.duration.count());
  return status_of(*faults_[id], FaultState::active);
}

// ---- ending faults ----

void Engine::release_part(Fault& f, size_t i, uint64_t stamp) {
  Fault::Part& part = f.parts[i];
  Target& t = *part.t;
  if (part.slot != UINT32_MAX) {
    t.slots.release(part.slot, stamp);
    part.slot = UINT32_MAX;
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
  std::vector<int> detach;
  for (int ifindex : part.attached) {
    auto it = t.attached.find(ifindex);
    if (it != t.attached.end() && --it->second.refs == 0) detach.push_back(ifindex);
  }
  part.attached.clear();
  if (!detach.empty()) {
    auto g = kernel::NetnsGuard::enter(t.ns);
    if (!g.ok()) spdlog::error("{}: cannot enter to detach: {}", t.label, g.error().message);
    for (int ifindex : detach) {
      auto it = t.attached.find(ifindex);
      detach_one(t, it->second, g.ok());
      t.attached.erase(it);
    }
  }
}

void Engine::end_fault(Fault& f, FaultState why) {
  // Off everywhere first (one store each), then the bookkeeping.
  for (auto& p : f.parts)
    if (p.active) p.t->dp->deactivate_slot(p.slot);
  uint64_t stamp = grace_->current();
  f.last_counters.clear();
  for (auto& p : f.parts) {
    auto c = p.t->dp->counters(p.slot);
    f.last_counters.push_back(c.ok() ? *c : kernel::Counters{});
  }
  ended_.push_front(status_of(f, why));
  while (ended_.size() > 64) ended_.pop_back();
  std::vector<Target*> touched;
  for (size_t i = 0; i < f.parts.size(); i++) {
    touched.push_back(f.parts[i].t);
    if (f.parts[i].active) f.parts[i].t->faults--;
    f.parts[i].active = false;
    release_part(f, i, stamp);
  }
  f.parts.clear();
  uint64_t id = f.id;
  faults_.erase(id);  // f is gone from here on
  for (auto* t : touched) {
    if (!std::any_of(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == t; })) continue;
    t->dp->set_nslots(t->slots.high_water());
    bool any = false;
    for (uint32_t i = 0; i < t->slots.size(); i++)
      if (t->slots.used(i) && core::slot_unscoped(t->dp->slot(i))) any = true;
    t->dp->set_unscoped(any);
    drop_target_if_idle(*t);
  }
  grace_->request();
  spdlog::info("fault {} {}", id, fault_state_name(why));
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

Result<std::vector<uint64_t>> Engine::heal(const std::string& ref) {
  Fault* f = find(ref);
  if (!f) return make_error(Errc::not_found, "no active fault " + ref);
  uint64_t id = f->id;
  end_fault(*f, FaultState::healed);
  return std::vector<uint64_t>{id};
}

std::vector<uint64_t> Engine::heal_all() {
  std::vector<uint64_t> ids;
  for (auto& [id, f] : faults_) ids.push_back(id);
  for (uint64_t id : ids) end_fault(*faults_.at(id), FaultState::healed);
  return ids;
}

size_t Engine::expire_due() {
  uint64_t now = monotonic_ns();
  std::vector<uint64_t> due;
  for (auto& [id, f] : faults_)
    if (f->expires_ns <= now) due.push_back(id);
  for (uint64_t id : due) end_fault(*faults_.at(id), FaultState::expired);
  return due.size();
}

std::optional<uint64_t> Engine::next_expiry() const {
  std::optional<uint64_t> best;
  for (auto& [id, f] : faults_)
    if (!best || f->expires_ns < *best) best = f->expires_ns;
  return best;
}

void Engine::renew_lease() {
  lease_expires_ = monotonic_ns() + static_cast<uint64_t>(opts_.lease.count()) * 1000000ull;
  for (auto& t : targets_) t->dp->set_lease(lease_expires_);
}

Status Engine::shutdown() {
  heal_all();
  while (!targets_.empty()) drop_target_if_idle(*targets_.back());
  return {};
}

// ---- reporting ----

json Engine::status_of(const Fault& f, FaultState state) const {
  kernel::Counters total;
  json per_target = json::array(), targets = json::array(), ifaces = json::array();
  for (size_t i = 0; i < f.parts.size(); i++) {
    const auto& p = f.parts[i];
    kernel::Counters c;
    if (state == FaultState::active && p.slot != UINT32_MAX) {
      auto r = p.t->dp->counters(p.slot);
      if (r.ok()) c = *r;
    } else if (i < f.last_counters.size()) {
      c = f.last_counters[i];
    }
    total += c;
    targets.push_back(p.t->label);
    per_target.push_back({{"target", p.t->label}, {"counters", counters_json(c)}});
    for (const auto& ifc : p.ifaces)
      ifaces.push_back({{"target", p.t->label}, {"dev", ifc.name}, {"ifindex", ifc.index},
                        {"mode", kernel::attach_mode_name(mode_)}});
  }
  uint64_t now = monotonic_ns();
  int64_t left = state == FaultState::active && f.expires_ns > now
                     ? static_cast<int64_t>((f.expires_ns - now) / 1000000ull) : 0;
  return {{"id", f.id},
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
          {"spec", proto::fault_spec_to_json(f.spec)}};
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

// ---- leftovers of a previous instance ----

Status Engine::clean_leftovers(Journal& journal, const kernel::Netns& host) {
  (void)host;
  auto prev = journal.load();
  if (!prev.ok()) {
    spdlog::warn("{}; starting with an empty journal", prev.error().message);
    return journal.clear();
  }
  if (prev->entries.empty()) return journal.clear();
  if (prev->boot_id != current_boot_id()) {
    spdlog::info("journal is from an earlier boot; nothing of it can still be attached");
    return journal.clear();
  }
  size_t cleaned = 0;
  std::vector<JournalEntry> failed;
  for (const auto& e : prev->entries) {
    if (e.mode != "tc") continue;  // tcx links died with the process that held them
    auto ns = kernel::Netns::open_path(e.netns_path);
    if (!ns.ok() || ns->id().dev != e.netns_dev || ns->id().ino != e.netns_ino) {
      spdlog::info("leftover on {} in {}: namespace is gone", e.ifname, e.netns_path);
      continue;
    }
    auto g = kernel::NetnsGuard::enter(*ns);
    if (!g.ok()) {
      spdlog::error("leftover on {} in {}: {}", e.ifname, e.netns_path, g.error().message);
      failed.push_back(e);
      continue;
    }
    auto ifs = kernel::list_interfaces();
    bool same = ifs.ok() && std::any_of(ifs->begin(), ifs->end(), [&](auto& i) {
                  return i.index == e.ifindex && i.name == e.ifname;
                });
    if (!same) {
      spdlog::info("leftover on {} in {}: interface is gone", e.ifname, e.netns_path);
      continue;
    }
    auto st = kernel::remove_tc_leftovers(e.ifindex, e.created_clsact);
    if (!st.ok()) {
      spdlog::error("leftover on {} in {}: {}", e.ifname, e.netns_path, st.error().message);
      failed.push_back(e);
    } else {
      cleaned++;
    }
  }
  spdlog::info("removed leftovers of a previous instance (pid {}) on {} interface(s)", prev->pid, cleaned);
  FL_TRY(journal.clear());
  // What could not be removed stays journalled, so the next start tries again.
  for (const auto& e : failed) FL_TRY(journal.add(e));
  return {};
}

}  // namespace fl::daemon
