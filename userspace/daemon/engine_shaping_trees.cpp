// The shaping trees: a root HTB per interface and direction (ingress through an ifb), shared by
// every shaping fault there, and the netem rule they all follow.
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

}  // namespace fl::daemon
