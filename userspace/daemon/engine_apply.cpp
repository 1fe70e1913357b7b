// The apply transaction: resolve every target (nothing changes yet), prepare each (hooks, bits,
// slots, classes), switch on with one store per slot, or roll back everything it took.
#include "daemon/engine.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/plan.h"
#include "core/scope_exit.h"
#include "daemon/engine_state.h"
#include "daemon/reset.h"

namespace fl::daemon {

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
  auto acquire_a = [&](const char* what) {
    return [this, &t, what](core::IndexPool& pool) { return acquire(pool, *port_, what, t.label); };
  };
  auto stamp_now = [this] { return port_->grace_current(); };
  auto ref_set = [&](const std::vector<Cidr>& cidrs) -> Result<uint64_t> {
    // A set already held costs nothing more; a new one must fit the maps.
    for (uint8_t fam : {uint8_t{4}, uint8_t{6}}) {
      if (t.set_bits.bit_of(cidrs)) break;
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
    auto bit = t.set_bits.take(
        cidrs, acquire_a("node-set bit"),
        [&](uint32_t b) {
          const uint64_t mask = uint64_t{1} << b;
          auto st = write_set_changes(*t.dp, t.sets.add(cidrs, mask), false);
          if (!st.ok()) (void)write_set_changes(*t.dp, t.sets.remove(cidrs, mask), false);
          return st;
        },
        stamp_now);
    if (!bit.ok()) return bit.take_error();
    part.sets.push_back(cidrs);
    return uint64_t{1} << *bit;
  };
  FL_TRY(core::assign_set_bits(needs, ref_set, &bits));

  for (const auto& ex : core::exemptions_for(spec, opts_.exemptions)) {
    auto bit = t.rule_bits.take(
        ex, acquire_a("exemption rule"),
        [&](uint32_t b) -> Status {
          const uint64_t mask = uint64_t{1} << b;
          auto st = write_set_changes(*t.dp, t.exempt_cidrs.add({ex.cidr}, mask), true);
          uint32_t key = core::exempt_port_key(ex);
          if (st.ok()) st = t.dp->set_exempt_port(key, t.port_masks[key] | mask);
          if (!st.ok()) {
            (void)write_set_changes(*t.dp, t.exempt_cidrs.remove({ex.cidr}, mask), true);
            if (t.port_masks[key] == 0) {
              t.port_masks.erase(key);
              (void)t.dp->delete_exempt_port(key);
            }
            return st.take_error().wrap("exemption " + ex.str());
          }
          t.port_masks[key] |= mask;
          return {};
        },
        stamp_now);
    if (!bit.ok()) return bit.take_error();
    part.rules.push_back(ex);
    bits.exempt |= uint64_t{1} << *bit;
  }

  // Every fault names its interfaces by bit, also when it took the default list: otherwise an
  // interface attached later for another fault would widen it.
  {
    for (const auto& ifc : part.ifaces) {
      auto bit = t.if_bits.take(
          ifc.index, acquire_a("interface bit"),
          [&](uint32_t b) { return t.dp->set_iface_bit(static_cast<uint32_t>(ifc.index), uint64_t{1} << b); },
          stamp_now);
      if (!bit.ok()) return bit.take_error();
      part.if_bits.push_back(ifc.index);
      bits.ifaces |= uint64_t{1} << *bit;
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
  changes_.fetch_add(1, std::memory_order_acq_rel);
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

}  // namespace fl::daemon
