// Our shaping tree on one device: the root HTB on an interface (egress) or on an ifb device
// (ingress), one class per shaping slot with a netem or pfifo leaf, and the root qdisc it
// replaced, saved and put back. All calls act on the calling thread's network namespace (enter
// it with NetnsGuard first) over kernel/rtnl.h; none forks tc. The option bytes come from
// core/tc_options.h.
//
// The tree (handle 0xfa17:):
//   root htb 0xfa17:  default 1
//     class 0xfa17:1     unshaped traffic (rate = ceil = kUnshapedRateBps), pfifo leaf
//     class 0xfa17:N     one per shaping slot (N = slot + kFirstSlotMinor); rate = ceil = the
//                        profile's rate or kUnshapedRateBps; netem leaf when the profile needs
//                        netem, else the default pfifo leaf
// The BPF program picks the class by writing skb->priority = class_id(N); HTB looks the
// priority up as a class id before any filter, so there is no tc filter at all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "abi.h"
#include "core/model.h"
#include "core/result.h"
#include "core/tc_options.h"

namespace fl::kernel {

using core::kDefaultMinor;
using core::kHtbMajor;
using core::kNetemLimit;
using core::kUnshapedRateBps;
inline constexpr uint16_t kFirstSlotMinor = 2;

constexpr uint32_t class_id(uint16_t minor) { return (uint32_t{kHtbMajor} << 16) | minor; }
constexpr uint16_t slot_minor(uint32_t slot) { return static_cast<uint16_t>(slot + kFirstSlotMinor); }
// The leaf qdisc of class 0xfa17:N has handle N: ("qdisc netem 2: parent fa17:2" in tc). Qdisc
// handles only need to be unique per device, and once our root is there the device holds no
// qdisc but ours and ingress/clsact (ffff:), so any major other than 0xfa17 and 0xffff is free;
// minors stay below 0xfa17 (add_class checks).
constexpr uint32_t leaf_handle(uint16_t minor) { return uint32_t{minor} << 16; }

// A root qdisc as the kernel reported it, enough to put it back exactly.
struct SavedQdisc {
  std::string kind;              // "noqueue", "pfifo_fast", "mq", "fq_codel", "tbf", ...
  uint32_t handle = 0;
  std::vector<uint8_t> options;  // TCA_OPTIONS payload as dumped (empty: none)
  bool ours = false;             // our own HTB (handle 0xfa17:), e.g. left by a killed daemon
  bool stab = false;             // it has a size table; only --replace-root replaces it (not restored)

  nlohmann::json to_json() const;  // for the journal; options as hex
  static Result<SavedQdisc> from_json(const nlohmann::json& j);
};

// The root qdisc of ifindex. A device without a root qdisc entry reports kind "noqueue".
Result<SavedQdisc> read_root_qdisc(int ifindex);

// Whether replacing q loses nothing a user configured: noqueue, pfifo_fast, mq (accepted as-is,
// its children are not compared), fq_codel with its default parameters, and our own HTB are
// safe. Otherwise an error of code already_exists (the closed list has no "conflict") that names
// the qdisc and says --replace-root would replace it (and what is lost). Always ok when
// replace_root. ifindex is used only to read the MTU that fq_codel's default quantum follows.
Status check_replaceable(const SavedQdisc& q, int ifindex, const std::string& ifname, bool replace_root);

// Replaces the root qdisc with our HTB and its default class. Idempotent when ours is there.
Status install_root(int ifindex);

// Puts saved back as the root qdisc (kind, handle, parameters) and removes ours with it. For the
// kernel's default qdiscs (noqueue, pfifo_fast, mq, or any saved with handle 0) it deletes ours
// and lets the kernel attach its default, and adds saved explicitly only if what came back
// differs. Checks the result reads back as saved (kind; handle unless 0; raw options unless
// none were saved). Ok if saved is already the root; an error (already_exists) if the root is
// neither ours nor saved: someone else replaced ours, and theirs is left in place. A saved.ours
// (original unknown, left by a killed daemon) is restored as the kernel's default.
Status restore_root(int ifindex, const SavedQdisc& saved);

// The class for one shaping slot and its leaf (handle leaf_handle(minor)). Refuses a profile
// that needs netem when the kernel has none (the caller checks earlier; this is the last line):
// kernel_unsupported, and the class is removed again. Idempotent: an existing class and leaf
// of that minor (ours by construction) are updated in place, a leaf of the other kind replaced.
// A missing class or root is ok for delete_class (already gone); the leaf goes with the class.
Status add_class(int ifindex, uint16_t minor, const core::ShapeProfile& p);
Status delete_class(int ifindex, uint16_t minor);

}  // namespace fl::kernel
