// Attaching our programs to interfaces: tcx links where the kernel has them, else clsact +
// cls_bpf in direct-action mode with our own handle and priority. We only ever remove what we
// created: our link, our filter (checked by handle, priority and program name), and a clsact
// qdisc only if we created it and nobody else's filter sits on it.
#pragma once

#include <cstdint>
#include <string>

#include "abi.h"
#include "core/result.h"
#include "kernel/netns.h"

namespace fl::kernel {

enum class AttachMode : uint8_t { tcx, tc };
const char* attach_mode_name(AttachMode m);

// Our cls_bpf filter identity on the legacy path. Priority 1 so we run before filters added at
// the default priority; return codes let the next filter run anyway. The handle is our HTB
// major too: one number marks everything of ours in tc (daemon/leftovers.h finds them by it).
inline constexpr uint32_t kTcHandle = FL_HTB_MAJOR;
inline constexpr uint32_t kTcPriority = 1;

// Both hooks of one interface. Create and detach() inside the target namespace.
class InterfaceAttachment {
 public:
  static Result<InterfaceAttachment> attach(const Interface& ifc, int ingress_fd, int egress_fd,
                                            AttachMode mode);
  InterfaceAttachment(InterfaceAttachment&& o) noexcept;
  InterfaceAttachment& operator=(InterfaceAttachment&& o) noexcept;
  InterfaceAttachment(const InterfaceAttachment&) = delete;
  ~InterfaceAttachment();

  // Removes our hooks; must run in the interface's namespace. Idempotent. An interface that is
  // gone counts as detached (the kernel removed everything with it).
  Status detach();

  // Whether our hooks still sit on the interface we attached to. False once that device was
  // deleted, also when a new device has taken its name or its index since: a tcx link reports
  // ifindex 0 once its device is gone, and a new device never has our legacy filter. Must run in
  // the interface's namespace (the legacy path asks rtnetlink).
  Result<bool> alive() const;
  // For an interface that is gone: drops our handles without asking the kernel anything, since
  // everything we had there went with the device, and a device now carrying its index or name
  // (and any clsact on it) is not ours to touch.
  void forget();

  const Interface& interface() const { return ifc_; }
  AttachMode mode() const { return mode_; }
  bool created_clsact() const { return created_clsact_; }

 private:
  InterfaceAttachment() = default;
  Interface ifc_;
  AttachMode mode_ = AttachMode::tcx;
  int ingress_link_ = -1, egress_link_ = -1;  // tcx
  bool tc_ingress_ = false, tc_egress_ = false, created_clsact_ = false;
};

// Legacy-path cleanup of what a previous instance left (from the journal): removes our filter
// from both hooks of ifindex if it is still ours, and the clsact qdisc if created_clsact and it
// holds no other filter. Runs in the namespace already entered.
Status remove_tc_leftovers(int ifindex, bool created_clsact);

// True if a cls_bpf filter with our handle/priority and an fl_ program sits on the hook.
Result<bool> tc_filter_present(int ifindex, bool ingress);

// Raw tcx attach/detach-by-close, exposed for the feature probe.
Result<int> tcx_attach(int ifindex, int prog_fd, bool ingress);

}  // namespace fl::kernel
