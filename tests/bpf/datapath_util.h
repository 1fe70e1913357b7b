// A loaded data path plus the planning state the daemon keeps for one target namespace, so that
// BPF tests install faults exactly as faultlined would: validate, node-set bits shared by equal
// CIDR lists (SetMap keeps the LPM closure), exemption rule bits per distinct Exemption (with a
// SetMap for their CIDRs and fl_exempt_ports masks by exempt_port_key), plan_slot, a fresh gen,
// reset_slot_state, write_slot, set_nslots, activate_slot. Nothing here is attached anywhere;
// packets go in through BPF_PROG_TEST_RUN.
#pragma once

#include <linux/bpf.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "abi.h"
#include "core/model.h"
#include "core/set_map.h"
#include "kernel/datapath.h"

namespace fl::test {

// Verdicts as the kernel sees them (bpf/verdict.bpf.h is kernel-only by convention).
inline constexpr int kNext = -1;  // TC_ACT_UNSPEC == TCX_NEXT: not ours, next program decides
inline constexpr int kRedirect = 7;  // TC_ACT_REDIRECT == TCX_REDIRECT: bpf_redirect() to the ifb
// A drop depends on the hook (fl_verdict_drop in bpf/verdict.bpf.h): on ingress TC_ACT_SHOT ==
// TCX_DROP; on egress a redirect to ifindex 0, which the kernel frees while telling the sender
// the packet went out (TC_ACT_SHOT there would reach the sender as ENOBUFS).
inline constexpr int kIngressDrop = 2;
inline constexpr int kEgressDrop = kRedirect;

uint64_t monotonic_ns();
inline constexpr uint64_t kSecond = 1'000'000'000ull;

// Empty when BPF tests can run here; otherwise why not (for GTEST_SKIP).
std::optional<std::string> bpf_skip_reason();

// How one fault is put in place, beyond its spec.
struct InstallOpts {
  bool validate = true;             // false: plan a spec validate() would refuse (e.g. loss 0 %)
  bool activate = true;             // false: written but never switched on
  int64_t expires_in_ns = 60 * static_cast<int64_t>(kSecond);  // <= 0: already expired
  std::optional<uint32_t> slot;     // default: the next free index 0, 1, 2...
  bool bump_nslots = true;          // false: leave fl_ctl.nslots alone
  std::vector<uint32_t> ifindexes;  // non-empty: only on these interfaces (FL_F_IFACES)
};

struct Fault {
  core::FaultSpec spec;
  InstallOpts opts;
};

class BpfEnv {
 public:
  // Loads a fresh Datapath; the lease runs until now + 60 s.
  static Result<std::unique_ptr<BpfEnv>> create();

  kernel::Datapath& dp() { return *dp_; }

  // Installs one fault; returns its slot index.
  Result<uint32_t> install(const Fault& f);
  Result<uint32_t> install(const core::FaultSpec& spec, const InstallOpts& o = {}) { return install(Fault{spec, o}); }

  // Rewrites slot `idx` (deactivate, write, activate) with a new gen, keeping counters and RNG
  // state: what reuse of a slot looks like to the program. `seed` replaces the slot's seed.
  Status rewrite_slot(uint32_t idx, std::optional<uint64_t> seed, bool new_gen);

  // One BPF_PROG_TEST_RUN (repeat 1); returns the program's return value. ctx (may be null)
  // sets __sk_buff fields the kernel lets a test choose (ifindex).
  // ctx_out (may be null) receives the __sk_buff fields the program may have changed (priority).
  Result<int> run(int prog_fd, const std::vector<uint8_t>& frame, const __sk_buff* ctx = nullptr,
                  __sk_buff* ctx_out = nullptr);

 private:
  std::unique_ptr<kernel::Datapath> dp_;
  core::SetMap sets_;
  std::map<std::vector<core::Cidr>, uint64_t> set_bits_;  // canonical CIDR list -> its bit
  core::SetMap exempt_cidrs_;
  std::map<core::Exemption, uint64_t> rule_bits_;
  std::map<uint32_t, uint64_t> port_masks_;
  std::map<uint32_t, uint64_t> if_bits_;
  uint32_t next_slot_ = 0;
  uint32_t nslots_ = 0;
  uint32_t next_gen_ = 1;
  uint32_t next_seq_ = 1;  // shape_seq: later installs win, as later applies do in the daemon
};

// Pins the calling thread to one CPU for its lifetime, restoring the old mask afterwards.
class CpuPin {
 public:
  explicit CpuPin(int cpu);
  ~CpuPin();
  bool ok() const { return ok_; }
  CpuPin(const CpuPin&) = delete;
  CpuPin& operator=(const CpuPin&) = delete;

 private:
  bool ok_ = false;
  std::vector<uint8_t> old_;  // cpu_set_t bytes
};

// Fault spec builders for tables. CIDR strings go through core::parse_cidr (bad input throws).
core::Cidr cidr(const std::string& s);
std::vector<core::Cidr> cidrs(const std::vector<std::string>& v);

class FaultBuilder {
 public:
  static FaultBuilder partition(const std::vector<std::vector<std::string>>& sides);
  static FaultBuilder one_way(const std::vector<std::vector<std::string>>& sides);
  static FaultBuilder isolate(const std::vector<std::string>& nodes);
  // A shaping fault (egress unless direction() says otherwise).
  static FaultBuilder shape(const core::ShapeProfile& p, core::FaultKind kind = core::FaultKind::shape);
  // Sides are named s1, s2...; pairs index them.
  static FaultBuilder matrix(const std::vector<std::vector<std::string>>& sides,
                             const std::vector<core::MatrixPair>& pairs);
  static FaultBuilder loss(double percent, double correlation = 0, std::optional<uint64_t> seed = {});

  FaultBuilder& proto(core::Proto p);
  FaultBuilder& sport(uint16_t lo, uint16_t hi);
  FaultBuilder& dport(uint16_t lo, uint16_t hi);
  FaultBuilder& dport(uint16_t p) { return dport(p, p); }
  FaultBuilder& direction(core::Direction d);
  FaultBuilder& new_only();
  FaultBuilder& src(const std::vector<std::string>& v);
  FaultBuilder& dst(const std::vector<std::string>& v);
  FaultBuilder& exempt(const std::string& e);  // core::parse_exemption syntax
  FaultBuilder& no_default_exempt();
  FaultBuilder& unvalidated();
  FaultBuilder& inactive();
  FaultBuilder& expires_in(int64_t ns);
  FaultBuilder& at_slot(uint32_t idx, bool bump_nslots = true);
  FaultBuilder& on_ifindex(uint32_t ifindex);

  operator Fault() const { return f_; }  // NOLINT: tables read better without a call
  const Fault& fault() const { return f_; }

 private:
  Fault f_;
};

}  // namespace fl::test
