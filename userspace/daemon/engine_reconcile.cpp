// Reconciliation: interfaces and namespaces that went away under active faults.
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

// In t's namespace. Takes the interface out of every fault on t. If the device is gone, its
// hooks, root qdisc and classes went with it, and whatever now has its name or index is not ours
// to touch: only our bookkeeping, its map entry and an ifb (which outlives the interface it
// served) remain. If the device is still there (someone removed our hooks), it is put back as
// it was, as when its last fault ends.
void Engine::forget_interface(Target& t, int ifindex, bool device_present) {
  changes_.fetch_add(1, std::memory_order_acq_rel);
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
  if (auto held = t.if_bits.forget(ifindex)) {
    // The entry goes now, so a device that gets this index never matches the faults.
    auto st = t.dp->delete_iface(static_cast<uint32_t>(ifindex));
    if (!st.ok()) {
      spdlog::error("{}: remove interface bit of {}: {}", t.label, ifname, st.error().message);
      t.dirty = true;
    }
    bit = held->first;
    t.dead_if_bits[held->first] += held->second;
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
  changes_.fetch_add(1, std::memory_order_acq_rel);
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

}  // namespace fl::daemon
