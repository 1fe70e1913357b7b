#include "bpf/datapath_util.h"

#include "kernel/shaping.h"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cstring>
#include <stdexcept>

#include <bpf/bpf.h>

#include "core/parse.h"
#include "core/plan.h"
#include "core/validate.h"

namespace fl::test {

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // the base of bpf_ktime_get_coarse_ns(), which the program reads
  return static_cast<uint64_t>(ts.tv_sec) * kSecond + static_cast<uint64_t>(ts.tv_nsec);
}

std::optional<std::string> bpf_skip_reason() {
  if (geteuid() != 0)
    return std::string("needs root: loading tc programs and BPF_PROG_TEST_RUN need CAP_BPF and CAP_NET_ADMIN");
  return std::nullopt;
}

namespace {

// Loading the object costs about 150 ms here, nearly all of it the verifier walking the two
// programs, and it is CPU-bound. Every test still gets a Datapath nobody used before; this only
// loads the next ones on the other cores while the current test runs, which keeps the tier
// within its time budget. Threads start on first use and are joined at exit.
class Prefetcher {
 public:
  static Prefetcher& get() {
    static Prefetcher p;
    return p;
  }

  Result<std::unique_ptr<kernel::Datapath>> take() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !ready_.empty(); });
    auto dp = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();
    return dp;
  }

  ~Prefetcher() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  Prefetcher() {
    unsigned n = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    depth_ = n + 1;
    for (unsigned i = 0; i < n; i++) threads_.emplace_back([this] { work(); });
  }

  void work() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || ready_.size() + loading_ < depth_; });
      if (stop_) return;
      loading_++;
      lk.unlock();
      auto dp = kernel::Datapath::load();
      lk.lock();
      loading_--;
      ready_.push_back(std::move(dp));
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result<std::unique_ptr<kernel::Datapath>>> ready_;
  size_t loading_ = 0, depth_ = 1;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

Result<std::unique_ptr<BpfEnv>> BpfEnv::create() {
  auto dp = Prefetcher::get().take();
  if (!dp.ok()) return dp.take_error();
  std::unique_ptr<BpfEnv> env(new BpfEnv());
  env->dp_ = std::move(*dp);
  env->dp_->set_lease(monotonic_ns() + 60 * kSecond);
  return env;
}

namespace {

// The daemon's writers, so the fixture fills the maps exactly as faultlined does.
Status write_changes(kernel::Datapath& dp, const std::vector<core::SetMap::Change>& ch, bool exempt) {
  return exempt ? dp.apply_exempt_changes(ch) : dp.apply_set_changes(ch);
}

}  // namespace

Result<uint32_t> BpfEnv::install(const Fault& f) {
  core::FaultSpec spec = f.spec;
  if (f.opts.validate) FL_TRY_CTX(core::validate(spec), "validate");

  // Node sets: one bit per distinct canonical CIDR list, as the daemon shares them.
  auto set_bit = [&](const std::vector<core::Cidr>& list) -> Result<uint64_t> {
    if (auto it = set_bits_.find(list); it != set_bits_.end()) return it->second;
    if (set_bits_.size() >= FL_SET_BITS) return make_error(Errc::resource_exhausted, "set bits");
    uint64_t bit = uint64_t{1} << set_bits_.size();
    FL_TRY(write_changes(*dp_, sets_.add(list, bit), false));
    set_bits_[list] = bit;
    return bit;
  };
  core::SlotBits bits;
  auto needs = core::set_needs(spec);
  FL_TRY(core::assign_set_bits(needs, set_bit, &bits));

  // Exemption rules: one bit per distinct rule; its CIDR in the exempt LPM (with closure) and its
  // bit in the port table under exempt_port_key.
  for (const auto& ex : core::exemptions_for(spec, {})) {
    auto it = rule_bits_.find(ex);
    if (it == rule_bits_.end()) {
      if (rule_bits_.size() >= FL_EXEMPT_BITS) return make_error(Errc::resource_exhausted, "rule bits");
      uint64_t bit = uint64_t{1} << rule_bits_.size();
      FL_TRY_CTX(write_changes(*dp_, exempt_cidrs_.add({ex.cidr}, bit), true), "exemption " + ex.str());
      uint32_t key = core::exempt_port_key(ex);
      port_masks_[key] |= bit;
      FL_TRY(dp_->set_exempt_port(key, port_masks_[key]));
      it = rule_bits_.emplace(ex, bit).first;
    }
    bits.exempt |= it->second;
  }

  for (uint32_t ifindex : f.opts.ifindexes) {
    auto it = if_bits_.find(ifindex);
    if (it == if_bits_.end()) {
      uint64_t bit = uint64_t{1} << if_bits_.size();
      FL_TRY(dp_->set_iface_bit(ifindex, bit));
      it = if_bits_.emplace(ifindex, bit).first;
    }
    bits.ifaces |= it->second;
  }

  // One slot per planned slot (a matrix has one per pair), in consecutive indexes from the
  // requested one. Shaping slots get their class and an order number as the daemon gives them.
  auto planned = core::plan_slots(spec, bits);
  uint32_t first = f.opts.slot.value_or(next_slot_);
  for (size_t i = 0; i < planned.size(); i++) {
    uint32_t idx = first + static_cast<uint32_t>(i);
    next_slot_ = std::max(next_slot_, idx + 1);
    fl_slot s = planned[i].slot;
    s.gen = next_gen_++;
    if (s.flags & FL_F_SHAPE) {
      s.prio = kernel::class_id(kernel::slot_minor(idx));
      s.shape_seq = next_seq_++;
    }
    FL_TRY_CTX(dp_->reset_slot_state(idx), "reset slot state");
    FL_TRY_CTX(dp_->write_slot(idx, s), "write slot");
    if (f.opts.bump_nslots) {
      nslots_ = std::max(nslots_, idx + 1);
      dp_->set_nslots(nslots_);
    }
    // As the daemon does: a slot with no address condition needs the scan for every packet.
    if (core::slot_unscoped(s)) dp_->set_unscoped(true);
    if (f.opts.activate) {
      int64_t exp = static_cast<int64_t>(monotonic_ns()) + f.opts.expires_in_ns;
      // An expiry in the past, but never 0 (0 means "never activated").
      dp_->activate_slot(idx, exp > 0 ? static_cast<uint64_t>(exp) : 1);
    }
  }
  return first;
}

Status BpfEnv::rewrite_slot(uint32_t idx, std::optional<uint64_t> seed, bool new_gen) {
  fl_slot s = dp_->slot(idx);
  uint64_t exp = s.expires_ns;
  dp_->deactivate_slot(idx);
  if (seed) s.seed = *seed;
  if (new_gen) s.gen = next_gen_++;
  FL_TRY(dp_->write_slot(idx, s));
  dp_->activate_slot(idx, exp);
  return {};
}

Result<int> BpfEnv::run(int prog_fd, const std::vector<uint8_t>& frame, const __sk_buff* ctx, __sk_buff* ctx_out) {
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<__u32>(frame.size());
  opts.repeat = 1;
  __sk_buff ctx_copy{};
  if (ctx) {
    ctx_copy = *ctx;
    opts.ctx_in = &ctx_copy;
    opts.ctx_size_in = sizeof(ctx_copy);
  }
  if (ctx_out) {
    *ctx_out = {};
    opts.ctx_out = ctx_out;
    opts.ctx_size_out = sizeof(*ctx_out);
    if (!ctx) {  // the kernel copies ctx back only when one went in
      opts.ctx_in = &ctx_copy;
      opts.ctx_size_in = sizeof(ctx_copy);
    }
  }
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
    return Error::sys(Errc::kernel_error, "BPF_PROG_TEST_RUN", errno);
  return static_cast<int>(opts.retval);
}

CpuPin::CpuPin(int cpu) {
  cpu_set_t old;
  CPU_ZERO(&old);
  if (sched_getaffinity(0, sizeof old, &old) != 0) return;
  old_.assign(reinterpret_cast<uint8_t*>(&old), reinterpret_cast<uint8_t*>(&old) + sizeof old);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ok_ = sched_setaffinity(0, sizeof one, &one) == 0 && sched_getcpu() == cpu;
}

CpuPin::~CpuPin() {
  if (old_.size() == sizeof(cpu_set_t)) {
    cpu_set_t old;
    std::memcpy(&old, old_.data(), sizeof old);
    sched_setaffinity(0, sizeof old, &old);
  }
}

core::Cidr cidr(const std::string& s) {
  auto c = core::parse_cidr(s);
  if (!c.ok()) throw std::invalid_argument(c.error().message);
  return *c;
}

std::vector<core::Cidr> cidrs(const std::vector<std::string>& v) {
  std::vector<core::Cidr> out;
  for (const auto& s : v) out.push_back(cidr(s));
  return out;
}

namespace {

std::vector<core::Side> sides_of(const std::vector<std::vector<std::string>>& sides) {
  std::vector<core::Side> out;
  for (const auto& s : sides) out.push_back(core::Side{"", cidrs(s)});
  return out;
}

}  // namespace

FaultBuilder FaultBuilder::partition(const std::vector<std::vector<std::string>>& sides) {
  FaultBuilder b;
  b.f_.spec.kind = core::FaultKind::partition;
  b.f_.spec.sides = sides_of(sides);
  return b;
}

FaultBuilder FaultBuilder::one_way(const std::vector<std::vector<std::string>>& sides) {
  FaultBuilder b = partition(sides);
  b.f_.spec.one_way = true;
  return b;
}

FaultBuilder FaultBuilder::isolate(const std::vector<std::string>& nodes) {
  FaultBuilder b;
  b.f_.spec.kind = core::FaultKind::isolate;
  b.f_.spec.sides = sides_of({nodes});
  return b;
}

FaultBuilder FaultBuilder::shape(const core::ShapeProfile& p, core::FaultKind kind) {
  FaultBuilder b;
  b.f_.spec.kind = kind;
  b.f_.spec.shape = p;
  b.f_.spec.match.direction = core::Direction::egress;
  return b;
}

FaultBuilder FaultBuilder::matrix(const std::vector<std::vector<std::string>>& sides,
                                  const std::vector<core::MatrixPair>& pairs) {
  FaultBuilder b;
  b.f_.spec.kind = core::FaultKind::matrix;
  for (size_t i = 0; i < sides.size(); i++)
    b.f_.spec.sides.push_back(core::Side{"s" + std::to_string(i + 1), cidrs(sides[i])});
  b.f_.spec.pairs = pairs;
  b.f_.spec.match.direction = core::Direction::egress;
  return b;
}

FaultBuilder FaultBuilder::loss(double percent, double correlation, std::optional<uint64_t> seed) {
  FaultBuilder b;
  b.f_.spec.kind = core::FaultKind::loss;
  b.f_.spec.loss_percent = percent;
  b.f_.spec.correlation_percent = correlation;
  b.f_.spec.seed = seed;
  return b;
}

FaultBuilder& FaultBuilder::proto(core::Proto p) {
  f_.spec.match.proto = p;
  return *this;
}
FaultBuilder& FaultBuilder::sport(uint16_t lo, uint16_t hi) {
  f_.spec.match.sport = core::PortRange{lo, hi};
  return *this;
}
FaultBuilder& FaultBuilder::dport(uint16_t lo, uint16_t hi) {
  f_.spec.match.dport = core::PortRange{lo, hi};
  return *this;
}
FaultBuilder& FaultBuilder::direction(core::Direction d) {
  f_.spec.match.direction = d;
  return *this;
}
FaultBuilder& FaultBuilder::new_only() {
  f_.spec.match.new_only = true;
  return *this;
}
FaultBuilder& FaultBuilder::src(const std::vector<std::string>& v) {
  f_.spec.match.src = cidrs(v);
  return *this;
}
FaultBuilder& FaultBuilder::dst(const std::vector<std::string>& v) {
  f_.spec.match.dst = cidrs(v);
  return *this;
}
FaultBuilder& FaultBuilder::exempt(const std::string& e) {
  auto x = core::parse_exemption(e);
  if (!x.ok()) throw std::invalid_argument(x.error().message);
  f_.spec.exempt.push_back(*x);
  return *this;
}
FaultBuilder& FaultBuilder::no_default_exempt() {
  f_.spec.default_exempt = false;
  return *this;
}
FaultBuilder& FaultBuilder::unvalidated() {
  f_.opts.validate = false;
  return *this;
}
FaultBuilder& FaultBuilder::inactive() {
  f_.opts.activate = false;
  return *this;
}
FaultBuilder& FaultBuilder::expires_in(int64_t ns) {
  f_.opts.expires_in_ns = ns;
  return *this;
}
FaultBuilder& FaultBuilder::at_slot(uint32_t idx, bool bump_nslots) {
  f_.opts.slot = idx;
  f_.opts.bump_nslots = bump_nslots;
  return *this;
}
FaultBuilder& FaultBuilder::on_ifindex(uint32_t ifindex) {
  f_.opts.ifindexes.push_back(ifindex);
  return *this;
}

}  // namespace fl::test
