#include "kernel/datapath.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstring>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include "faultline.skel.h"

namespace fl::kernel {

namespace {

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, args);
  if (n <= 0) return 0;
  std::string_view msg(buf, std::min<size_t>(n, sizeof buf - 1));
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  switch (level) {
    case LIBBPF_WARN: spdlog::warn("libbpf: {}", msg); break;
    case LIBBPF_INFO: spdlog::debug("libbpf: {}", msg); break;
    default: spdlog::trace("libbpf: {}", msg); break;
  }
  return n;
}

template <typename Key>
Key lpm_key(const core::Cidr& c) {
  Key k{};
  k.prefixlen = c.prefix;
  std::memcpy(k.addr, c.addr.data(), sizeof k.addr);
  return k;
}

Status map_update(int fd, const void* key, const void* val, const char* what) {
  if (bpf_map_update_elem(fd, key, val, BPF_ANY) != 0)
    return Error::sys(Errc::kernel_error, std::string("update ") + what, errno);
  return {};
}

Status map_delete(int fd, const void* key, const char* what) {
  if (bpf_map_delete_elem(fd, key) != 0 && errno != ENOENT)
    return Error::sys(Errc::kernel_error, std::string("delete from ") + what, errno);
  return {};
}

}  // namespace

void install_libbpf_logger() { libbpf_set_print(libbpf_print); }

Result<std::unique_ptr<Datapath>> Datapath::load() {
  std::unique_ptr<Datapath> dp(new Datapath());
  dp->ncpus_ = libbpf_num_possible_cpus();
  if (dp->ncpus_ <= 0) return Error::sys(Errc::kernel_error, "count possible CPUs", -dp->ncpus_);

  dp->skel_ = faultline__open();
  if (!dp->skel_) return Error::sys(Errc::kernel_error, "open BPF object faultline", errno);
  if (int err = faultline__load(dp->skel_); err != 0) {
    Errc code = (err == -EPERM || err == -EACCES) ? Errc::permission_denied : Errc::kernel_error;
    return Error::sys(code, "load BPF object faultline (verifier log at trace level)", -err);
  }

  auto mmap_map = [&](bpf_map* m, size_t count, size_t value_size, size_t* len) -> void* {
    *len = count * value_size;
    void* p = mmap(nullptr, *len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
    return p == MAP_FAILED ? nullptr : p;
  };
  dp->ctl_ = static_cast<fl_ctl*>(mmap_map(dp->skel_->maps.fl_ctl, 1, sizeof(fl_ctl), &dp->ctl_len_));
  if (!dp->ctl_) return Error::sys(Errc::kernel_error, "mmap fl_ctl", errno);
  dp->slots_ = static_cast<fl_slot*>(
      mmap_map(dp->skel_->maps.fl_slots, FL_MAX_SLOTS, sizeof(fl_slot), &dp->slots_len_));
  if (!dp->slots_) return Error::sys(Errc::kernel_error, "mmap fl_slots", errno);
  return dp;
}

Datapath::~Datapath() {
  if (ctl_) munmap(ctl_, ctl_len_);
  if (slots_) munmap(slots_, slots_len_);
  faultline__destroy(skel_);
}

int Datapath::ingress_fd() const { return bpf_program__fd(skel_->progs.fl_ingress); }
int Datapath::egress_fd() const { return bpf_program__fd(skel_->progs.fl_egress); }
int Datapath::ifb_match_fd() const { return bpf_program__fd(skel_->progs.fl_ifb_match); }

void Datapath::set_lease(uint64_t expires_ns) {
  __atomic_store_n(&ctl_->lease_expires_ns, expires_ns, __ATOMIC_RELEASE);
}
uint64_t Datapath::lease() const { return __atomic_load_n(&ctl_->lease_expires_ns, __ATOMIC_ACQUIRE); }
void Datapath::set_nslots(uint32_t n) { __atomic_store_n(&ctl_->nslots, n, __ATOMIC_RELEASE); }

void Datapath::set_unscoped(bool on) {
  if (unscoped_ == on) return;
  unscoped_ = on;
  update_ctl_flags();
}

Status Datapath::write_slot(uint32_t idx, const fl_slot& s) {
  if (idx >= FL_MAX_SLOTS) return make_error(Errc::internal, "slot index out of range");
  fl_slot& dst = slots_[idx];
  if (__atomic_load_n(&dst.expires_ns, __ATOMIC_ACQUIRE) != 0)
    return make_error(Errc::internal, "slot " + std::to_string(idx) + " is still active");
  // Copy everything but expires_ns, which stays 0 until activate_slot().
  constexpr size_t off = offsetof(fl_slot, expires_ns) + sizeof(dst.expires_ns);
  std::memcpy(reinterpret_cast<char*>(&dst) + off, reinterpret_cast<const char*>(&s) + off,
              sizeof(fl_slot) - off);
  return {};
}

void Datapath::activate_slot(uint32_t idx, uint64_t expires_ns) {
  // Release: every field written by write_slot is visible before the slot turns on.
  __atomic_store_n(&slots_[idx].expires_ns, expires_ns, __ATOMIC_RELEASE);
}

void Datapath::deactivate_slot(uint32_t idx) {
  __atomic_store_n(&slots_[idx].expires_ns, uint64_t{0}, __ATOMIC_SEQ_CST);
}

void Datapath::set_slot_dir(uint32_t idx, uint8_t dir) {
  __atomic_store_n(&slots_[idx].dir, dir, __ATOMIC_SEQ_CST);
}

const fl_slot& Datapath::slot(uint32_t idx) const { return slots_[idx]; }

namespace {

bool is_host(const core::Cidr& c) { return c.prefix == (c.family == 4 ? 32 : 128); }

}  // namespace

Status Datapath::set_cidr(const core::Cidr& c, uint64_t mask) {
  if (is_host(c)) {
    if (c.family == 4) {
      uint32_t k;
      std::memcpy(&k, c.addr.data(), 4);
      return map_update(bpf_map__fd(skel_->maps.fl_hosts4), &k, &mask, "fl_hosts4");
    }
    fl_host6_key k{};
    std::memcpy(k.addr, c.addr.data(), 16);
    return map_update(bpf_map__fd(skel_->maps.fl_hosts6), &k, &mask, "fl_hosts6");
  }
  // Whether the prefix is new comes from the kernel's own answer: a lookup on an LPM trie is a
  // longest-prefix match and would find a covering prefix instead.
  int fi = c.family == 4 ? 0 : 1;
  int fd = bpf_map__fd(c.family == 4 ? skel_->maps.fl_sets4 : skel_->maps.fl_sets6);
  fl_lpm6_key k6 = lpm_key<fl_lpm6_key>(c);
  fl_lpm4_key k4 = lpm_key<fl_lpm4_key>(c);
  const void* key = c.family == 4 ? static_cast<const void*>(&k4) : static_cast<const void*>(&k6);
  if (bpf_map_update_elem(fd, key, &mask, BPF_NOEXIST) == 0) {
    if (lpm_count_[fi]++ == 0) update_ctl_flags();
    return {};
  }
  if (errno != EEXIST) return Error::sys(Errc::kernel_error, "update fl_sets", errno);
  if (bpf_map_update_elem(fd, key, &mask, BPF_EXIST) != 0) return Error::sys(Errc::kernel_error, "update fl_sets", errno);
  return {};
}

Status Datapath::delete_cidr(const core::Cidr& c) {
  if (is_host(c)) {
    if (c.family == 4) {
      uint32_t k;
      std::memcpy(&k, c.addr.data(), 4);
      return map_delete(bpf_map__fd(skel_->maps.fl_hosts4), &k, "fl_hosts4");
    }
    fl_host6_key k{};
    std::memcpy(k.addr, c.addr.data(), 16);
    return map_delete(bpf_map__fd(skel_->maps.fl_hosts6), &k, "fl_hosts6");
  }
  int fi = c.family == 4 ? 0 : 1;
  int fd = bpf_map__fd(c.family == 4 ? skel_->maps.fl_sets4 : skel_->maps.fl_sets6);
  fl_lpm6_key k6 = lpm_key<fl_lpm6_key>(c);
  fl_lpm4_key k4 = lpm_key<fl_lpm4_key>(c);
  const void* key = c.family == 4 ? static_cast<const void*>(&k4) : static_cast<const void*>(&k6);
  // LPM delete is exact: ENOENT means this very prefix was not there.
  if (bpf_map_delete_elem(fd, key) != 0) {
    if (errno == ENOENT) return {};
    return Error::sys(Errc::kernel_error, "delete from fl_sets", errno);
  }
  if (lpm_count_[fi] > 0 && --lpm_count_[fi] == 0) update_ctl_flags();
  return {};
}

namespace {

// Batch ops since 5.6; per element where the kernel or the map type says no.
template <typename K>
Status batch_update(int fd, const std::vector<K>& keys, const std::vector<uint64_t>& vals, const char* what) {
  if (keys.empty()) return {};
  LIBBPF_OPTS(bpf_map_batch_opts, o);
  uint32_t count = static_cast<uint32_t>(keys.size());
  if (bpf_map_update_batch(fd, keys.data(), vals.data(), &count, &o) == 0) return {};
  // A batch refused as a whole may leave count untouched: redo every element, which is
  // idempotent, and let a real error surface from the single update.
  for (size_t i = 0; i < keys.size(); i++) FL_TRY(map_update(fd, &keys[i], &vals[i], what));
  return {};
}

template <typename K>
Status batch_delete(int fd, const std::vector<K>& keys, const char* what) {
  if (keys.empty()) return {};
  LIBBPF_OPTS(bpf_map_batch_opts, o);
  uint32_t count = static_cast<uint32_t>(keys.size());
  if (bpf_map_delete_batch(fd, keys.data(), &count, &o) == 0) return {};
  for (size_t i = 0; i < keys.size(); i++) FL_TRY(map_delete(fd, &keys[i], what));  // ENOENT is fine
  return {};
}

}  // namespace

Status Datapath::apply_set_changes(const std::vector<core::SetMap::Change>& changes) {
  std::vector<uint32_t> up4, del4;
  std::vector<uint64_t> val4, val6;
  std::vector<fl_host6_key> up6, del6;
  for (const auto& ch : changes) {
    if (!is_host(ch.cidr)) {
      FL_TRY_CTX(ch.erase ? delete_cidr(ch.cidr) : set_cidr(ch.cidr, ch.mask), ch.cidr.str());
      continue;
    }
    if (ch.cidr.family == 4) {
      uint32_t k;
      std::memcpy(&k, ch.cidr.addr.data(), 4);
      if (ch.erase) {
        del4.push_back(k);
      } else {
        up4.push_back(k);
        val4.push_back(ch.mask);
      }
    } else {
      fl_host6_key k{};
      std::memcpy(k.addr, ch.cidr.addr.data(), 16);
      if (ch.erase) {
        del6.push_back(k);
      } else {
        up6.push_back(k);
        val6.push_back(ch.mask);
      }
    }
  }
  FL_TRY(batch_update(bpf_map__fd(skel_->maps.fl_hosts4), up4, val4, "fl_hosts4"));
  FL_TRY(batch_update(bpf_map__fd(skel_->maps.fl_hosts6), up6, val6, "fl_hosts6"));
  FL_TRY(batch_delete(bpf_map__fd(skel_->maps.fl_hosts4), del4, "fl_hosts4"));
  return batch_delete(bpf_map__fd(skel_->maps.fl_hosts6), del6, "fl_hosts6");
}

Status Datapath::apply_exempt_changes(const std::vector<core::SetMap::Change>& changes) {
  for (const auto& c : changes)
    FL_TRY_CTX(c.erase ? delete_exempt_cidr(c.cidr) : set_exempt_cidr(c.cidr, c.mask), c.cidr.str());
  return {};
}

void Datapath::update_ctl_flags() {
  uint32_t f = (lpm_count_[0] ? FL_CTL_LPM4 : 0) | (lpm_count_[1] ? FL_CTL_LPM6 : 0) |
               (unscoped_ ? FL_CTL_UNSCOPED : 0);
  // Raising a flag after the entry is in, dropping it after the entry is gone: a packet never
  // skips a trie that holds one of its prefixes.
  __atomic_store_n(&ctl_->flags, f, __ATOMIC_RELEASE);
}

Result<uint64_t> Datapath::lookup_cidr(const core::Cidr& c) const {
  uint64_t v = 0;
  int rc;
  if (is_host(c) && c.family == 4) {
    uint32_t k;
    std::memcpy(&k, c.addr.data(), 4);
    rc = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.fl_hosts4), &k, &v);
  } else if (is_host(c)) {
    fl_host6_key k{};
    std::memcpy(k.addr, c.addr.data(), 16);
    rc = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.fl_hosts6), &k, &v);
  } else if (c.family == 4) {
    auto k = lpm_key<fl_lpm4_key>(c);
    rc = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.fl_sets4), &k, &v);
  } else {
    auto k = lpm_key<fl_lpm6_key>(c);
    rc = bpf_map_lookup_elem(bpf_map__fd(skel_->maps.fl_sets6), &k, &v);
  }
  if (rc != 0) return Error::sys(Errc::not_found, "lookup " + c.str(), errno);
  return v;
}

Status Datapath::set_exempt_cidr(const core::Cidr& c, uint64_t rules) {
  if (c.family == 4) {
    auto k = lpm_key<fl_lpm4_key>(c);
    return map_update(bpf_map__fd(skel_->maps.fl_exempt4), &k, &rules, "fl_exempt4");
  }
  auto k = lpm_key<fl_lpm6_key>(c);
  return map_update(bpf_map__fd(skel_->maps.fl_exempt6), &k, &rules, "fl_exempt6");
}

Status Datapath::delete_exempt_cidr(const core::Cidr& c) {
  if (c.family == 4) {
    auto k = lpm_key<fl_lpm4_key>(c);
    return map_delete(bpf_map__fd(skel_->maps.fl_exempt4), &k, "fl_exempt4");
  }
  auto k = lpm_key<fl_lpm6_key>(c);
  return map_delete(bpf_map__fd(skel_->maps.fl_exempt6), &k, "fl_exempt6");
}

Status Datapath::set_exempt_port(uint32_t key, uint64_t rules) {
  return map_update(bpf_map__fd(skel_->maps.fl_exempt_ports), &key, &rules, "fl_exempt_ports");
}

Status Datapath::delete_exempt_port(uint32_t key) {
  return map_delete(bpf_map__fd(skel_->maps.fl_exempt_ports), &key, "fl_exempt_ports");
}

Status Datapath::set_iface_bit(uint32_t ifindex, uint64_t bit) {
  return map_update(bpf_map__fd(skel_->maps.fl_ifaces), &ifindex, &bit, "fl_ifaces");
}

Status Datapath::delete_iface(uint32_t ifindex) {
  return map_delete(bpf_map__fd(skel_->maps.fl_ifaces), &ifindex, "fl_ifaces");
}

Status Datapath::set_ifb(uint32_t ifindex, uint32_t ifb_ifindex) {
  return map_update(bpf_map__fd(skel_->maps.fl_ifb), &ifindex, &ifb_ifindex, "fl_ifb");
}

Status Datapath::delete_ifb(uint32_t ifindex) {
  return map_delete(bpf_map__fd(skel_->maps.fl_ifb), &ifindex, "fl_ifb");
}

Status Datapath::reset_slot_state(uint32_t idx) {
  std::vector<fl_counters> zc(ncpus_);
  std::vector<fl_rng> zr(ncpus_);
  FL_TRY(map_update(bpf_map__fd(skel_->maps.fl_counters), &idx, zc.data(), "fl_counters"));
  return map_update(bpf_map__fd(skel_->maps.fl_rng), &idx, zr.data(), "fl_rng");
}

Result<Counters> Datapath::counters(uint32_t idx) const {
  std::vector<fl_counters> per_cpu(ncpus_);
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.fl_counters), &idx, per_cpu.data()) != 0)
    return Error::sys(Errc::kernel_error, "read fl_counters", errno);
  Counters sum;
  for (const auto& c : per_cpu) sum += Counters{c.matched, c.dropped, c.exempted, c.shaped};
  return sum;
}

Result<std::array<uint64_t, FL_STAT_MAX>> Datapath::stats() const {
  std::array<uint64_t, FL_STAT_MAX> out{};
  std::vector<uint64_t> per_cpu(ncpus_);
  for (uint32_t i = 0; i < FL_STAT_MAX; i++) {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.fl_stats), &i, per_cpu.data()) != 0)
      return Error::sys(Errc::kernel_error, "read fl_stats", errno);
    for (uint64_t v : per_cpu) out[i] += v;
  }
  return out;
}

int Datapath::map_fd(const char* name) const {
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name);
  return m ? bpf_map__fd(m) : -1;
}

}  // namespace fl::kernel
