// Every kernel call the engine makes, behind one narrow interface: the data path's maps, the
// interface hooks, the shaping trees and ifb devices, grace periods, socket destroy, interface
// listing and namespaces. The daemon uses one implementation only (real_kernel_port.h, a thin
// wrapper of kernel/); tests/unit/fake_kernel_util.h records state in memory instead, so the
// engine's transaction logic (apply, rollback on every failing step, expiry, reconciliation) is
// unit-tested without root.
//
// Calls marked "in the entered namespace" act on the namespace the last live enter() entered,
// as the kernel calls they wrap act on the calling thread's namespace.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "abi.h"
#include "core/model.h"
#include "core/result.h"
#include "core/set_map.h"
#include "kernel/attach.h"
#include "kernel/datapath.h"
#include "kernel/netns.h"
#include "kernel/shaping.h"
#include "kernel/sockdiag.h"

namespace fl::daemon {

// One target's loaded data path (kernel/datapath.h has what each call means).
class DataPath {
 public:
  virtual ~DataPath() = default;
  virtual void set_nslots(uint32_t n) = 0;
  virtual void set_unscoped(bool on) = 0;
  virtual Status write_slot(uint32_t idx, const fl_slot& s) = 0;
  virtual void activate_slot(uint32_t idx, uint64_t expires_ns) = 0;
  virtual void deactivate_slot(uint32_t idx) = 0;
  virtual void set_slot_dir(uint32_t idx, uint8_t dir) = 0;
  virtual const fl_slot& slot(uint32_t idx) const = 0;
  virtual Status apply_set_changes(const std::vector<core::SetMap::Change>& changes) = 0;
  virtual Status apply_exempt_changes(const std::vector<core::SetMap::Change>& changes) = 0;
  virtual Status set_exempt_port(uint32_t key, uint64_t rules) = 0;
  virtual Status delete_exempt_port(uint32_t key) = 0;
  virtual Status set_iface_bit(uint32_t ifindex, uint64_t bit) = 0;
  virtual Status delete_iface(uint32_t ifindex) = 0;
  virtual Status set_ifb(uint32_t ifindex, uint32_t value) = 0;
  virtual Status delete_ifb(uint32_t ifindex) = 0;
  virtual Status reset_slot_state(uint32_t idx) = 0;
  virtual Result<kernel::Counters> counters(uint32_t idx) const = 0;
  virtual Result<std::array<uint64_t, FL_STAT_MAX>> stats() const = 0;
  // What the lease keeper renews (daemon/lease_keeper.h); null where there is no kernel.
  virtual kernel::Datapath* leased() { return nullptr; }
};

// An open target namespace, held for as long as the engine uses it.
class TargetNs {
 public:
  virtual ~TargetNs() = default;
  virtual const kernel::NetnsId& id() const = 0;
  virtual const std::string& path() const = 0;  // for the journal
};

// Both hooks of one interface (kernel/attach.h InterfaceAttachment).
class Attachment {
 public:
  virtual ~Attachment() = default;
  virtual Status detach() = 0;              // in the entered namespace
  virtual Result<bool> alive() const = 0;   // in the entered namespace
  virtual void forget() = 0;
  virtual const kernel::Interface& interface() const = 0;
  virtual bool created_clsact() const = 0;
};

// Back in the namespace before enter() when destroyed.
class NsScope {
 public:
  virtual ~NsScope() = default;
};

class KernelPort {
 public:
  virtual ~KernelPort() = default;

  // Namespaces (kernel/netns.h).
  virtual Result<std::unique_ptr<TargetNs>> open_target(const core::Target& t) = 0;
  virtual bool target_still_there(const core::Target& spec, const TargetNs& held) = 0;
  virtual Result<std::unique_ptr<NsScope>> enter(const TargetNs& ns) = 0;

  // A loaded, unattached data path (from the pool of spares, else a fresh load).
  virtual Result<std::unique_ptr<DataPath>> take_datapath() = 0;

  // Grace periods (kernel/grace.h).
  virtual uint64_t grace_current() = 0;
  virtual uint64_t grace_completed() = 0;
  virtual void grace_request() = 0;
  virtual bool grace_wait(uint64_t stamp, std::chrono::milliseconds timeout) = 0;

  // In the entered namespace.
  virtual Result<std::vector<kernel::Interface>> list_interfaces() = 0;
  virtual kernel::DeviceLookup lookup_device(int ifindex) = 0;
  virtual std::optional<bool> same_device(const kernel::Interface& was) = 0;
  virtual Result<std::unique_ptr<Attachment>> attach(const kernel::Interface& ifc, DataPath& dp,
                                                     kernel::AttachMode mode) = 0;
  virtual Result<kernel::SavedQdisc> read_root_qdisc(int ifindex) = 0;
  virtual Status check_replaceable(const kernel::SavedQdisc& q, int ifindex, const std::string& ifname,
                                   bool replace_root) = 0;
  virtual Status install_root(int ifindex) = 0;
  virtual Status restore_root(int ifindex, const kernel::SavedQdisc& saved) = 0;
  virtual Status add_class(int ifindex, uint16_t minor, const core::ShapeProfile& p) = 0;
  virtual Status delete_class(int ifindex, uint16_t minor) = 0;
  virtual Result<int> create_ifb(int for_ifindex) = 0;
  virtual Status delete_link(int ifindex) = 0;
  virtual Status attach_ifb_mirred(int ifindex, DataPath& dp, int ifb_ifindex) = 0;
  virtual Status detach_ifb_mirred(int ifindex) = 0;
  // The TCP connections the fault cuts (daemon/reset.h reset_cut_connections).
  virtual Result<kernel::DestroyResult> destroy_cut_connections(const core::FaultSpec& spec,
                                                                const std::vector<core::Exemption>& daemon_exempt) = 0;

  // Whether SOCK_DESTROY works here (kernel/sockdiag.h).
  virtual Status probe_sock_destroy() = 0;
};

}  // namespace fl::daemon
