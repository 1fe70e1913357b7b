// One loaded instance of bpf/faultline.bpf.c: its programs and maps, for one target namespace.
// Open, configure, load here; attaching is attach.h's job. Neither copied nor moved: owners hold
// it through unique_ptr. Destroying it closes every fd (programs stay only where something still
// attaches them).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "abi.h"
#include "core/model.h"
#include "core/set_map.h"
#include "core/result.h"

struct faultline;  // the bpftool skeleton

namespace fl::kernel {

struct Counters {
  uint64_t matched = 0, dropped = 0, exempted = 0, shaped = 0;
  Counters& operator+=(const Counters& o) {
    matched += o.matched;
    dropped += o.dropped;
    exempted += o.exempted;
    shaped += o.shaped;
    return *this;
  }
};

// Routes libbpf's messages through spdlog (warnings as warnings, debug output at trace).
void install_libbpf_logger();

class Datapath {
 public:
  static Result<std::unique_ptr<Datapath>> load();
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  int ingress_fd() const;
  int egress_fd() const;
  int ifb_match_fd() const;  // legacy path: the classic cls_bpf program of the ifb mirred filter

  // Lease and scan bound live in the mmap()ed control map; stores are single atomic writes.
  void set_lease(uint64_t expires_monotonic_ns);
  uint64_t lease() const;
  void set_nslots(uint32_t n);
  // Whether some active slot has no address condition (FL_CTL_UNSCOPED). Raise it before
  // activating such a slot; lower it only after the last one is deactivated.
  void set_unscoped(bool on);

  // A slot is written with expires_ns = 0, then activated by one atomic store (see abi.h).
  // write_slot refuses an active slot: the caller must deactivate and wait a grace period.
  Status write_slot(uint32_t idx, const fl_slot& s);
  void activate_slot(uint32_t idx, uint64_t expires_ns);
  void deactivate_slot(uint32_t idx);
  // Changes which directions an active slot acts on, with one byte store: a packet sees the old
  // or the new value, never a mix. `isolate --reset` holds back egress while the resets leave.
  void set_slot_dir(uint32_t idx, uint8_t dir);
  const fl_slot& slot(uint32_t idx) const;

  // Node-set entries: hosts go to the hash maps, other prefixes to the LPM tries.
  Status set_cidr(const core::Cidr& c, uint64_t mask);
  Status delete_cidr(const core::Cidr& c);
  // Writes a SetMap's changes in as few syscalls as the kernel allows: host entries in batches,
  // prefixes one by one (they are few, and their count drives FL_CTL_LPM*). Order within the
  // batch does not matter: no active slot uses the bits being added or removed.
  Status apply_set_changes(const std::vector<core::SetMap::Change>& changes);
  // The same for the exemption CIDR tries (few entries, one by one).
  Status apply_exempt_changes(const std::vector<core::SetMap::Change>& changes);
  Status set_exempt_cidr(const core::Cidr& c, uint64_t rules);
  Status delete_exempt_cidr(const core::Cidr& c);
  Status set_exempt_port(uint32_t key, uint64_t rules);  // key: FL_EXEMPT_PORT_KEY
  Status delete_exempt_port(uint32_t key);
  Status set_iface_bit(uint32_t ifindex, uint64_t bit);
  Status delete_iface(uint32_t ifindex);
  // Ingress shaping: packets arriving on ifindex that a shaping fault claims go to ifb_ifindex.
  Status set_ifb(uint32_t ifindex, uint32_t ifb_ifindex);
  Status delete_ifb(uint32_t ifindex);

  Status reset_slot_state(uint32_t idx);  // zero counters and RNG state on every CPU
  Result<Counters> counters(uint32_t idx) const;  // summed over CPUs
  Result<std::array<uint64_t, FL_STAT_MAX>> stats() const;

  // For tests and diagnostics.
  int map_fd(const char* name) const;
  Result<uint64_t> lookup_cidr(const core::Cidr& c) const;  // exact entry, not a match

 private:
  Datapath() = default;
  void update_ctl_flags();
  faultline* skel_ = nullptr;
  uint32_t lpm_count_[2] = {0, 0};  // prefixes in fl_sets4 / fl_sets6
  bool unscoped_ = false;
  fl_ctl* ctl_ = nullptr;
  fl_slot* slots_ = nullptr;
  size_t ctl_len_ = 0, slots_len_ = 0;
  int ncpus_ = 0;
};

}  // namespace fl::kernel
