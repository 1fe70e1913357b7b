// Shaping trees in the kernel: our root HTB on an interface (egress) or on an ifb device
// (ingress), one class per shaping slot with a netem leaf, the saved original root qdisc, and
// ifb devices. All calls act on the calling thread's network namespace (enter it with
// NetnsGuard first) over rtnetlink; none forks tc.
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
#include "kernel/features.h"

namespace fl::kernel {

inline constexpr uint16_t kHtbMajor = FL_HTB_MAJOR;
inline constexpr uint16_t kDefaultMinor = 1;
inline constexpr uint16_t kFirstSlotMinor = 2;
// "Unshaped" still passes through an HTB class: a rate far above any NIC's keeps it idle.
inline constexpr uint64_t kUnshapedRateBps = 400'000'000'000ull;
// netem's queue limit in packets (its default is 1000, which drops at ~120 Mbit/s with 100 ms).
inline constexpr uint32_t kNetemLimit = 10000;
// ifb devices are named kIfbPrefix + the ifindex of the interface they serve ("flifb12").
inline constexpr const char* kIfbPrefix = "flifb";

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

// netem's delay distribution table for d (not uniform), NETEM_DIST_SCALE fixed point, computed
// here rather than read from iproute2's files.
std::vector<int16_t> distribution_table(core::Distribution d);

// ifb device for the interface ifindex: created (or adopted if a leftover of ours has the name),
// txqueuelen 1000, up. Returns its ifindex.
Result<int> create_ifb(int for_ifindex);
Status delete_link(int ifindex);
std::string ifb_name(int for_ifindex);

// Legacy (clsact) path: kernels before 6.4 do not mark bpf_redirect()ed packets as redirected
// and ifb drops them, so there the ingress program only sets the class and this classic cls_bpf
// filter (priority 2, handle 0xfa18, program fl_ifb_match) redirects with act_mirred, which
// marks them. Needs the clsact qdisc our attachment created.
inline constexpr uint16_t kMirredPriority = 2;
inline constexpr uint32_t kMirredHandle = 0xfa18;
Status attach_ifb_mirred(int ifindex, int prog_fd, int ifb_ifindex);
Status detach_ifb_mirred(int ifindex);  // absent is fine

// HTB, TBF, netem, fq and ifb, probed in a scratch network namespace (a short-lived thread that
// unshares one), so nothing is left behind on the host. Tri::unknown when the probe itself failed.
struct ShapingFeatures {
  Tri netem = Tri::unknown, htb = Tri::unknown, tbf = Tri::unknown, fq = Tri::unknown, ifb = Tri::unknown;
};
ShapingFeatures probe_shaping();

}  // namespace fl::kernel
