// One target namespace's state: its data path (loaded, reused, recycled), its hooks, and what
// a fault's part gives back when it ends.
#include "daemon/engine.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/plan.h"
#include "core/scope_exit.h"
#include "daemon/engine_state.h"

namespace fl::daemon {

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
               t.if_bits.empty() && t.dead_if_bits.empty();
  if (clean && recycled_.size() < kMaxRecycled) {
    t.dp->set_nslots(0);
    recycled_.push_back({std::move(t.dp), port_->grace_current()});
    port_->grace_request();
  }
  targets_.erase(std::remove_if(targets_.begin(), targets_.end(), [&](auto& p) { return p.get() == &t; }),
                 targets_.end());
  spdlog::info("{}: detached", label);
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
    auto st = t.set_bits.give_back(cidrs, stamp, [&](uint32_t b) {
      return write_set_changes(*t.dp, t.sets.remove(cidrs, uint64_t{1} << b), false);
    });
    if (!st.ok()) {
      spdlog::error("{}: remove node set: {}; its bit stays retired", t.label, st.error().message);
      t.dirty = true;
    }
  }
  part.sets.clear();
  for (const auto& ex : part.rules) {
    auto st = t.rule_bits.give_back(ex, stamp, [&](uint32_t b) {
      const uint64_t mask = uint64_t{1} << b;
      auto st = write_set_changes(*t.dp, t.exempt_cidrs.remove({ex.cidr}, mask), true);
      uint32_t key = core::exempt_port_key(ex);
      uint64_t left = t.port_masks[key] & ~mask;
      if (st.ok()) st = left ? t.dp->set_exempt_port(key, left) : t.dp->delete_exempt_port(key);
      if (left)
        t.port_masks[key] = left;
      else
        t.port_masks.erase(key);
      return st;
    });
    if (!st.ok()) {
      spdlog::error("{}: remove exemption {}: {}; its bit stays retired", t.label, ex.str(), st.error().message);
      t.dirty = true;
    }
  }
  part.rules.clear();
  for (int ifindex : part.if_bits) {
    auto st = t.if_bits.give_back(ifindex, stamp,
                                  [&](uint32_t) { return t.dp->delete_iface(static_cast<uint32_t>(ifindex)); });
    if (!st.ok()) {
      spdlog::error("{}: remove interface bit: {}; the bit stays retired", t.label, st.error().message);
      t.dirty = true;
    }
  }
  part.if_bits.clear();
  for (uint32_t bit : part.dead_if_bits) {
    auto it = t.dead_if_bits.find(bit);
    if (it == t.dead_if_bits.end() || --it->second > 0) continue;
    t.if_bits.pool().release(bit, stamp);
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

}  // namespace fl::daemon
