#include "daemon/leftovers.h"

#include <algorithm>
#include <deque>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "kernel/attach.h"
#include "kernel/shaping.h"

namespace fl::daemon {

namespace {

// One journal entry's object, if it is still there and still ours. Runs in its namespace.
Status remove_entry(const JournalEntry& e, const std::vector<kernel::Interface>& ifs, bool* removed) {
  auto it = std::find_if(ifs.begin(), ifs.end(), [&](auto& i) { return i.index == e.ifindex && i.name == e.ifname; });
  if (e.what == "ifb" && e.ifindex == 0)
    // Died between the journal write and the device's creation: look it up by name.
    it = std::find_if(ifs.begin(), ifs.end(), [&](auto& i) { return i.name == e.ifname; });
  if (it == ifs.end()) {
    spdlog::info("leftover on {} in {}: interface is gone", e.ifname, e.netns_path);
    return {};
  }
  *removed = true;
  if (e.what == "ifb") return kernel::delete_link(it->index);
  if (e.what == "root-qdisc") {
    auto saved = kernel::SavedQdisc::from_json(nlohmann::json::parse(e.saved_qdisc, nullptr, false));
    if (!saved.ok()) return saved.take_error();
    auto now = kernel::read_root_qdisc(e.ifindex);
    if (now.ok() && !now->ours) {
      spdlog::info("leftover on {} in {}: root qdisc is no longer ours ({}); left alone", e.ifname, e.netns_path,
                   now->kind);
      *removed = false;
      return {};
    }
    return kernel::restore_root(e.ifindex, *saved);
  }
  return kernel::remove_tc_leftovers(e.ifindex, e.created_clsact);
}

}  // namespace

void sweep_marked(const std::string& label, size_t* removed, std::vector<std::string>* problems) {
  auto ifs = kernel::list_interfaces();
  if (!ifs.ok()) {
    problems->push_back(label + ": list interfaces: " + ifs.error().message);
    return;
  }
  const std::string ifb_prefix = kernel::kIfbPrefix;
  // Filters and roots first: the ifb redirect filter sits on the interface an ifb serves.
  for (const auto& i : *ifs) {
    if (i.loopback || i.name.rfind(ifb_prefix, 0) == 0) continue;
    int filters = 0;
    for (bool ingress : {true, false})
      if (auto p = kernel::tc_filter_present(i.index, ingress); p.ok() && *p) filters++;
    if (auto st = kernel::remove_tc_leftovers(i.index, false); !st.ok())
      problems->push_back(label + ": " + i.name + ": remove our tc filters: " + st.error().message);
    else
      *removed += static_cast<size_t>(filters);
    auto q = kernel::read_root_qdisc(i.index);
    if (!q.ok()) {
      problems->push_back(label + ": " + i.name + ": read root qdisc: " + q.error().message);
      continue;
    }
    if (!q->ours) continue;
    // What ours replaced is unknown without its entry: the kernel's default goes back.
    kernel::SavedQdisc unknown;
    unknown.kind = "the kernel's default";
    unknown.ours = true;
    if (auto st = kernel::restore_root(i.index, unknown); !st.ok()) {
      problems->push_back(label + ": " + i.name + ": remove our root htb fa17: " + st.error().message);
    } else {
      spdlog::info("{}: {}: removed a root htb fa17: found by its handle", label, i.name);
      (*removed)++;
    }
  }
  for (const auto& i : *ifs) {
    if (i.name.rfind(ifb_prefix, 0) != 0) continue;
    if (auto st = kernel::delete_link(i.index); !st.ok()) {
      problems->push_back(label + ": delete " + i.name + ": " + st.error().message);
    } else {
      spdlog::info("{}: deleted {} found by its name", label, i.name);
      (*removed)++;
    }
  }
}

CleanupReport clean_leftovers(Journal& journal, const kernel::Netns& host) {
  CleanupReport r;
  auto loaded = journal.load();
  JournalFile prev;
  if (loaded.ok()) {
    prev = std::move(*loaded);
  } else {
    r.problems.push_back(loaded.error().message);
  }
  for (const auto& p : prev.problems) r.problems.push_back(p);
  const bool unreadable = !r.problems.empty();
  for (const auto& p : r.problems) spdlog::error("{}", p);
  if (unreadable) {
    auto aside = journal.keep_aside();
    if (aside.ok()) {
      r.kept_aside = *aside;
      spdlog::error("the journal as it was is kept in {}; what could be read is cleaned, then whatever carries "
                    "faultline's marks", r.kept_aside);
    } else {
      r.problems.push_back("keep the journal aside: " + aside.error().message);
      spdlog::error("{}", r.problems.back());
    }
  }
  const size_t logged = r.problems.size();
  if (!prev.boot_id.empty() && prev.boot_id != current_boot_id()) {
    spdlog::info("journal is from an earlier boot; nothing of it can still be attached");
    if (auto st = journal.clear(); !st.ok()) r.problems.push_back(st.error().message);
    return r;
  }
  std::vector<JournalEntry> failed;
  // The namespaces to sweep if part of the journal could not be read: ours, and every one the
  // journal names that is still the one it named.
  std::deque<kernel::Netns> reach;  // stable addresses
  auto reachable = [&](const std::string& path, uint64_t dev, uint64_t ino) -> kernel::Netns* {
    for (auto& ns : reach)
      if (ns.id().dev == dev && ns.id().ino == ino) return &ns;
    auto ns = kernel::Netns::open_path(path);
    if (!ns.ok() || ns->id().dev != dev || ns->id().ino != ino) return nullptr;
    reach.push_back(std::move(*ns));
    return &reach.back();
  };
  if (unreadable)
    if (auto self = host.dup(); self.ok()) reach.push_back(std::move(*self));
  // ifb devices and root qdiscs outlive the process on every kernel; tc filters only on the
  // legacy path (tcx links died with the process that held them).
  for (const auto& e : prev.entries) {
    bool shaping = e.what == "root-qdisc" || e.what == "ifb";
    kernel::Netns* ns = reachable(e.netns_path, e.netns_dev, e.netns_ino);
    if (!shaping && e.mode != "tc") continue;
    if (!ns) {
      spdlog::info("leftover on {} in {}: namespace is gone", e.ifname, e.netns_path);
      continue;
    }
    const std::string where = "leftover " + e.what + " on " + e.ifname + " in " + e.netns_path;
    auto g = kernel::NetnsGuard::enter(*ns);
    if (!g.ok()) {
      r.problems.push_back(where + ": " + g.error().message);
      failed.push_back(e);
      continue;
    }
    auto ifs = kernel::list_interfaces();
    if (!ifs.ok()) {
      r.problems.push_back(where + ": " + ifs.error().message);
      failed.push_back(e);
      continue;
    }
    bool removed = false;
    auto st = remove_entry(e, *ifs, &removed);
    if (!st.ok()) {
      r.problems.push_back(where + ": " + st.error().message);
      failed.push_back(e);
    } else if (removed) {
      r.removed++;
    }
  }
  if (unreadable) {
    for (const auto& u : prev.unread_netns) reachable(u.path, u.dev, u.ino);
    for (auto& ns : reach) {
      auto g = kernel::NetnsGuard::enter(ns);
      if (!g.ok()) {
        r.problems.push_back("look for faultline's marks in " + ns.path() + ": " + g.error().message);
        continue;
      }
      sweep_marked(ns.path() + " (" + ns.id().str() + ")", &r.swept, &r.problems);
    }
  }
  for (size_t i = logged; i < r.problems.size(); i++)
    spdlog::error("{}", r.problems[i]);
  spdlog::info("removed leftovers of a previous instance (pid {}): {} by the journal, {} by their marks", prev.pid,
               r.removed, r.swept);
  // What could not be removed stays journalled, so the next start tries again.
  if (auto st = journal.clear(); !st.ok()) r.problems.push_back(st.error().message);
  for (const auto& e : failed)
    if (auto st = journal.add(e); !st.ok()) r.problems.push_back(st.error().message);
  return r;
}

}  // namespace fl::daemon
