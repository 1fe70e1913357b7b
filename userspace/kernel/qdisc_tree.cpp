#include "kernel/qdisc_tree.h"

#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/tc_options.h"
#include "kernel/rtnl.h"
#include "kernel/rtnl_link.h"
#include "kernel/tc_objects.h"

namespace fl::kernel {

namespace {

constexpr uint32_t kRootHandle = uint32_t{kHtbMajor} << 16;
constexpr uint32_t kPfifoLimit = 1000;  // the leaf of a rate-only class
constexpr int kEthHeaderLen = 14;

Result<SavedQdisc> root_qdisc(Rtnl& nl, int ifindex) {
  auto all = dump_qdiscs(nl, ifindex);
  if (!all.ok()) return all.take_error();
  SavedQdisc q;
  q.kind = "noqueue";  // a device the kernel reports nothing for (noop while down) queues nothing
  for (auto& o : *all) {
    if (o.parent != TC_H_ROOT) continue;
    q.kind = o.kind;
    q.handle = o.handle;
    q.options = std::move(o.options);
    q.stab = o.stab;
    q.ours = q.kind == "htb" && TC_H_MAJ(q.handle) == kRootHandle;
    break;
  }
  return q;
}

// parent X:0, the root qdisc: a root class that borrows from nobody. CREATE without EXCL also
// updates an existing class: the tree under 0xfa17: is ours alone and the engine's slot
// allocator is the only owner of minors, so a class already there is a leftover of ours (a
// daemon killed mid-apply) and re-applying over it must succeed.
Status put_class(Rtnl& nl, int ifindex, uint16_t minor, const std::vector<uint8_t>& options) {
  return put_htb_class(nl, ifindex, kRootHandle, class_id(minor), options, NLM_F_CREATE);
}

bool same_qdisc(const SavedQdisc& now, const SavedQdisc& want) {
  if (now.kind != want.kind) return false;
  if (want.handle != 0 && now.handle != want.handle) return false;  // 0: the kernel picks one
  if (!want.options.empty() && now.options != want.options) return false;
  return true;
}

std::string describe(const SavedQdisc& q) { return q.kind + " (handle " + hex_handle(q.handle) + ")"; }

}  // namespace

nlohmann::json SavedQdisc::to_json() const {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  hex.reserve(options.size() * 2);
  for (uint8_t b : options) {
    hex.push_back(digits[b >> 4]);
    hex.push_back(digits[b & 15]);
  }
  return {{"kind", kind}, {"handle", handle}, {"options", hex}, {"ours", ours}, {"stab", stab}};
}

Result<SavedQdisc> SavedQdisc::from_json(const nlohmann::json& j) {
  auto bad = [](const std::string& what) { return make_error(Errc::invalid_argument, "saved qdisc: " + what); };
  if (!j.is_object()) return bad("not an object");
  SavedQdisc q;
  if (!j.contains("kind") || !j["kind"].is_string() || j["kind"].get<std::string>().empty())
    return bad("kind missing or not a string");
  q.kind = j["kind"].get<std::string>();
  if (!j.contains("handle") || !j["handle"].is_number_unsigned() || j["handle"].get<uint64_t>() > UINT32_MAX)
    return bad("handle missing or not a 32-bit unsigned number");
  q.handle = j["handle"].get<uint32_t>();
  if (j.contains("options")) {
    if (!j["options"].is_string()) return bad("options not a string");
    const auto& hex = j["options"].get_ref<const std::string&>();
    if (hex.size() % 2) return bad("options: odd number of hex digits");
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (size_t i = 0; i < hex.size(); i += 2) {
      int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
      if (hi < 0 || lo < 0) return bad("options: not hex");
      q.options.push_back(static_cast<uint8_t>(hi << 4 | lo));
    }
  }
  if (j.contains("stab")) {
    if (!j["stab"].is_boolean()) return bad("stab not a boolean");
    q.stab = j["stab"].get<bool>();
  }
  if (j.contains("ours")) {
    if (!j["ours"].is_boolean()) return bad("ours not a boolean");
    q.ours = j["ours"].get<bool>();
  }
  return q;
}

Result<SavedQdisc> read_root_qdisc(int ifindex) {
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto q = root_qdisc(*nl, ifindex);
  if (!q.ok()) return q.take_error().wrap("read root qdisc of " + dev_name(ifindex));
  return q;
}

Status check_replaceable(const SavedQdisc& q, int ifindex, const std::string& ifname, bool replace_root) {
  if (replace_root || q.ours) return {};
  // The kernel dumps a size table's base but never its cells, so it cannot be put back exactly.
  if (q.stab)
    return make_error(Errc::already_exists,
                      ifname + " has root qdisc " + q.kind + " (handle " + hex_handle(q.handle) +
                          ") with a size table (stab) configured by someone else; faultline would replace "
                          "it. Pass --replace-root to replace it for the fault's duration (its kind and "
                          "parameters are restored afterwards; its size table, classes, filters and child "
                          "qdiscs are not)");
  if (q.kind == "noqueue" || q.kind == "pfifo_fast") return {};
  // mq only fans out to one child per tx queue; the children are the kernel's defaults unless
  // someone grafted their own, which we accept as-is rather than walk and compare.
  if (q.kind == "mq") return {};
  std::string why;
  if (q.kind == "fq_codel") {
    auto nl = Rtnl::open();
    if (!nl.ok()) return nl.take_error();
    auto link = must_get_link(*nl, ifindex);
    if (!link.ok()) return link.take_error().wrap("check root qdisc of " + ifname);
    why = core::fq_codel_non_default(q.options, link->mtu);
    if (why.empty()) return {};
    why = " with non-default parameters (" + why + ")";
  }
  return make_error(Errc::already_exists,
                    ifname + " has root qdisc " + q.kind + " (handle " + hex_handle(q.handle) + ")" + why +
                        " configured by someone else; faultline would replace it. Pass --replace-root to "
                        "replace it for the fault's duration (its kind and parameters are restored "
                        "afterwards; its classes, filters and child qdiscs are not)");
}

Status install_root(int ifindex) {
  std::string dev = dev_name(ifindex);
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto link = must_get_link(*nl, ifindex);
  if (!link.ok()) return link.take_error().wrap("install root htb on " + dev);
  auto cur = root_qdisc(*nl, ifindex);
  if (!cur.ok()) return cur.take_error().wrap("install root htb on " + dev);
  if (!cur->ours) {
    // CREATE|REPLACE with our own handle grafts a new root over whatever is there (noqueue,
    // pfifo_fast, mq, fq_codel or a user's qdisc the caller agreed to replace) in one step.
    // Rates count IP packets, not Ethernet frames: the size table takes the 14-byte header off
    // every packet. HTB alone counts frames (as tc does), which caps a bulk TCP transfer at
    // 1448/1514 = 95.6 % of the rate; without the header it gets 96.5 % or more (one set of
    // headers per GSO batch), which is what "rate 10mbit" means to whoever asks for it.
    FL_TRY_CTX(put_qdisc(*nl, ifindex, TC_H_ROOT, kRootHandle, "htb", core::htb_root_options(),
                         NLM_F_CREATE | NLM_F_REPLACE, -kEthHeaderLen),
               "add root htb " + hex_handle(kRootHandle) + " on " + dev);
  }
  // Also when ours is there already: a daemon killed mid-install may have left it without these.
  FL_TRY_CTX(put_class(*nl, ifindex, kDefaultMinor, core::unshaped_class_options()),
             "add htb class " + hex_handle(class_id(kDefaultMinor)) + " on " + dev);
  FL_TRY_CTX(put_qdisc(*nl, ifindex, class_id(kDefaultMinor), leaf_handle(kDefaultMinor), "pfifo",
                       core::fifo_options(std::max(link->txqlen, kPfifoLimit)), NLM_F_CREATE | NLM_F_REPLACE),
             "add pfifo leaf of " + hex_handle(class_id(kDefaultMinor)) + " on " + dev);
  return {};
}

Status restore_root(int ifindex, const SavedQdisc& saved) {
  std::string dev = dev_name(ifindex);
  std::string ctx = "restore root qdisc " + saved.kind + " on " + dev;
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto cur = root_qdisc(*nl, ifindex);
  if (!cur.ok()) return cur.take_error().wrap(ctx);
  if (!cur->ours) {
    if (same_qdisc(*cur, saved) || saved.ours) return {};  // restored already
    return make_error(Errc::already_exists, ctx + ": the root is now " + describe(*cur) +
                                                ", not ours; someone replaced it, so it is left in place");
  }
  // What the kernel attaches by itself when a root is deleted: noqueue (IFF_NO_QUEUE devices
  // such as veth), mq (multiqueue) or default_qdisc. A saved handle of 0 means the kernel had
  // attached it. Deleting ours lets it do that again, exactly as it would have.
  bool kernel_default = saved.ours || saved.handle == 0 || saved.kind == "noqueue" ||
                        saved.kind == "pfifo_fast" || saved.kind == "mq";
  if (kernel_default) {
    auto st = del_tc(*nl, RTM_DELQDISC, ifindex, TC_H_ROOT, kRootHandle);
    if (!st.ok() && st.error().sys_errno != ENOENT) return st.take_error().wrap(ctx + ": delete root htb");
    auto now = root_qdisc(*nl, ifindex);
    if (!now.ok()) return now.take_error().wrap(ctx);
    // saved.ours: the original is unknown (a leftover of a killed daemon); the default will do.
    if (saved.ours || same_qdisc(*now, saved)) return {};
    spdlog::info("{}: the kernel attached {} instead; adding {} back explicitly", ctx, describe(*now),
                 describe(saved));
  }
  // Same handle, kind and options as dumped. REPLACE grafts it over ours (or over the default
  // the kernel just attached), and our classes and leaves go with the old root.
  FL_TRY_CTX(put_qdisc(*nl, ifindex, TC_H_ROOT, saved.handle, saved.kind, saved.options,
                       NLM_F_CREATE | NLM_F_REPLACE),
             ctx);
  auto now = root_qdisc(*nl, ifindex);
  if (!now.ok()) return now.take_error().wrap(ctx);
  if (!same_qdisc(*now, saved))
    return make_error(Errc::kernel_error, ctx + ": it reads back as " + describe(*now) +
                                              (now->kind == saved.kind ? " with different parameters" : ""));
  return {};
}

Status add_class(int ifindex, uint16_t minor, const core::ShapeProfile& p) {
  std::string dev = dev_name(ifindex);
  std::string cls = hex_handle(class_id(minor));
  if (minor < kFirstSlotMinor || minor >= kHtbMajor)
    return make_error(Errc::internal, "htb class minor " + std::to_string(minor) + " out of range");
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto link = must_get_link(*nl, ifindex);
  if (!link.ok()) return link.take_error().wrap("add htb class " + cls);

  FL_TRY_CTX(put_class(*nl, ifindex, minor, core::shape_class_options(p, link->mtu)),
             "add htb class " + cls + " on " + dev);

  bool netem = p.needs_netem();
  std::string kind = netem ? "netem" : "pfifo";
  // A leftover leaf of ours with the other kind cannot be changed in place (same handle,
  // different kind is EINVAL): delete it, and HTB puts its default pfifo there meanwhile.
  Status st;
  auto qdiscs = dump_qdiscs(*nl, ifindex);
  if (!qdiscs.ok()) st = qdiscs.take_error().wrap("add leaf of " + cls + " on " + dev);
  for (size_t i = 0; st.ok() && i < qdiscs->size(); i++) {
    const auto& q = (*qdiscs)[i];
    if (q.parent == class_id(minor) && q.handle == leaf_handle(minor) && q.kind != kind) {
      auto del = del_tc(*nl, RTM_DELQDISC, ifindex, class_id(minor), leaf_handle(minor));
      if (!del.ok() && del.error().sys_errno != ENOENT)
        st = del.take_error().wrap("delete old " + q.kind + " leaf of " + cls + " on " + dev);
    }
  }
  if (st.ok())
    st = put_qdisc(*nl, ifindex, class_id(minor), leaf_handle(minor), kind,
                   netem ? core::netem_options(p) : core::fifo_options(kPfifoLimit), NLM_F_CREATE | NLM_F_REPLACE);
  if (st.ok()) return {};
  Error e = st.take_error();
  // A class without its leaf would shape with the wrong parameters: take it away again.
  auto undo = del_tc(*nl, RTM_DELTCLASS, ifindex, kRootHandle, class_id(minor));
  if (!undo.ok() && undo.error().sys_errno != ENOENT)
    spdlog::error("remove htb class {} on {} after its leaf failed: {}", cls, dev, undo.error().message);
  if (netem && e.sys_errno == ENOENT)
    return Error{Errc::kernel_unsupported,
                 "add netem leaf of " + cls + " on " + dev + ": this kernel has no netem qdisc (sch_netem); " +
                     "delay, jitter, corrupt, duplicate and reorder need it: " + e.message,
                 e.sys_errno};
  return std::move(e).wrap("add " + kind + " leaf " + hex_handle(leaf_handle(minor)) + " of " + cls + " on " + dev);
}

Status delete_class(int ifindex, uint16_t minor) {
  // The leaf goes with its class (htb_delete purges and frees it), so one message does both and
  // there is no moment where the class falls back to a default leaf.
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  auto st = del_tc(*nl, RTM_DELTCLASS, ifindex, kRootHandle, class_id(minor));
  if (!st.ok() && st.error().sys_errno != ENOENT)  // ENOENT: class (or our whole root) already gone
    return st.take_error().wrap("delete htb class " + hex_handle(class_id(minor)) + " on " + dev_name(ifindex));
  return {};
}

}  // namespace fl::kernel
