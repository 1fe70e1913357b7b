#include "core/set_map.h"

namespace fl::core {

namespace {

std::array<uint8_t, 16> masked(const std::array<uint8_t, 16>& a, unsigned prefix) {
  std::array<uint8_t, 16> out{};
  for (unsigned i = 0; i < 16 && prefix > 0; i++) {
    unsigned take = prefix >= 8 ? 8 : prefix;
    out[i] = a[i] & static_cast<uint8_t>(0xff00u >> take);
    prefix -= take;
  }
  return out;
}

// Highest address inside c, as a key address.
std::array<uint8_t, 16> last_of(const Cidr& c) {
  std::array<uint8_t, 16> out = c.addr;
  unsigned bits = c.family == 4 ? 32 : 128;
  for (unsigned b = c.prefix; b < bits; b++) out[b / 8] |= static_cast<uint8_t>(0x80u >> (b % 8));
  return out;
}

int fam_idx(uint8_t family) { return family == 4 ? 0 : 1; }

}  // namespace

Cidr SetMap::cidr_of(const Key& k) {
  Cidr c;
  c.family = k.family;
  c.prefix = k.prefix;
  c.addr = k.addr;
  return c;
}

uint64_t SetMap::covering_bits(const Cidr& c) const {
  uint64_t bits = 0;
  const auto& counts = prefix_count_[fam_idx(c.family)];
  for (unsigned p = 0; p < c.prefix; p++) {
    if (counts[p] == 0) continue;
    auto it = entries_.find(Key{c.family, masked(c.addr, p), static_cast<uint8_t>(p)});
    if (it != entries_.end()) bits |= it->second.own;
  }
  return bits;
}

template <typename F>
void SetMap::for_each_within(const Cidr& c, F&& f) {
  auto lo = entries_.lower_bound(Key{c.family, c.addr, 0});
  auto hi = entries_.upper_bound(Key{c.family, last_of(c), 255});
  for (auto it = lo; it != hi; ++it)
    if (it->first.prefix >= c.prefix) f(it);
}

std::vector<SetMap::Change> SetMap::add(const std::vector<Cidr>& cidrs, uint64_t bit) {
  // First every CIDR gets its entry, so that the pass below sees the final shape.
  std::vector<std::map<Key, Entry>::iterator> hosts;
  for (const auto& c : cidrs) {
    auto [it, inserted] = entries_.try_emplace(key_of(c));
    if (inserted) {
      it->second.effective = covering_bits(c);
      prefix_count_[fam_idx(c.family)][c.prefix]++;
    }
    it->second.own |= bit;
    if (c.prefix == (c.family == 4 ? 32 : 128)) hosts.push_back(it);
  }
  // A host covers only itself: no range scan. Prefixes update every entry inside them.
  std::map<Key, uint64_t> changed;
  for (const auto& c : cidrs) {
    if (c.prefix == (c.family == 4 ? 32 : 128)) continue;
    for_each_within(c, [&](auto it) {
      it->second.effective |= bit;
      changed[it->first] = it->second.effective;
    });
  }
  std::vector<Change> out;
  out.reserve(hosts.size() + changed.size());
  for (auto it : hosts) {
    it->second.effective |= bit;
    if (!changed.count(it->first)) out.push_back(Change{cidr_of(it->first), it->second.effective, false});
  }
  for (auto& [k, v] : changed) out.push_back(Change{cidr_of(k), v, false});
  return out;
}

std::vector<SetMap::Change> SetMap::remove(const std::vector<Cidr>& cidrs, uint64_t bit) {
  std::map<Key, uint64_t> changed;
  for (const auto& c : cidrs) {
    if (entries_.find(key_of(c)) == entries_.end()) continue;
    for_each_within(c, [&](auto it) {
      it->second.effective &= ~bit;
      changed[it->first] = it->second.effective;
    });
  }
  std::vector<Change> out;
  for (const auto& c : cidrs) {
    auto it = entries_.find(key_of(c));
    if (it == entries_.end()) continue;
    it->second.own &= ~bit;
    if (it->second.own == 0) {
      // Nothing lists this CIDR any more; lookups fall through to the covering entries.
      prefix_count_[fam_idx(c.family)][c.prefix]--;
      entries_.erase(it);
      changed.erase(key_of(c));
      out.push_back(Change{c, 0, true});
    }
  }
  for (auto& [k, v] : changed) out.push_back(Change{cidr_of(k), v, false});
  return out;
}

uint64_t SetMap::lookup(const Cidr& addr) const {
  const auto& counts = prefix_count_[fam_idx(addr.family)];
  for (int p = addr.prefix; p >= 0; p--) {
    if (counts[p] == 0) continue;
    auto it = entries_.find(Key{addr.family, masked(addr.addr, p), static_cast<uint8_t>(p)});
    if (it != entries_.end()) return it->second.effective;
  }
  return 0;
}

size_t SetMap::size(uint8_t family) const {
  size_t n = 0;
  for (auto c : prefix_count_[fam_idx(family)]) n += c;
  return n;
}

}  // namespace fl::core
