// Reporting: a fault's status as the protocol shows it, the program-wide counters, usage.
#include "daemon/engine.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/plan.h"
#include "core/scope_exit.h"
#include "daemon/engine_state.h"
#include "protocol/protocol.h"

namespace fl::daemon {

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
    u.set_bits += t->set_bits.pool().in_use();
    u.rule_bits += t->rule_bits.pool().in_use();
    u.if_bits += t->if_bits.pool().in_use();
    u.attached += t->attached.size();
    u.egress_trees += t->egress_trees.size();
    u.ingress_trees += t->ingress_trees.size();
  }
  return u;
}

}  // namespace fl::daemon
