// The contents of an LPM map from CIDR to a bitmask of the sets that hold it. An LPM lookup
// returns only the longest matching prefix, so each entry must also carry the bits of every
// shorter prefix that covers it (10.1.0.0/16 in set A inside 10.0.0.0/8 in set B -> A|B).
// This class keeps that closure and reports the minimal entry changes for each set added or
// removed; the kernel layer writes them.
#pragma once

#include <array>
#include <bitset>
#include <cstdint>
#include <map>
#include <vector>

#include "core/model.h"

namespace fl::core {

class SetMap {
 public:
  struct Change {
    Cidr cidr;
    uint64_t mask = 0;   // new value
    bool erase = false;  // remove the entry instead
  };

  // Adds `bit` to every CIDR of `cidrs` (which must not carry it yet).
  std::vector<Change> add(const std::vector<Cidr>& cidrs, uint64_t bit);
  // Removes `bit` from every CIDR of `cidrs`, which must be the whole set that carried it.
  std::vector<Change> remove(const std::vector<Cidr>& cidrs, uint64_t bit);

  // What the data path sees for an address (a /32 or /128): longest-prefix match.
  uint64_t lookup(const Cidr& addr) const;
  size_t size() const { return entries_.size(); }
  size_t size(uint8_t family) const;
  size_t hosts(uint8_t family) const {  // /32 or /128 entries
    return prefix_count_[family == 4 ? 0 : 1][family == 4 ? 32 : 128];
  }

 private:
  struct Key {
    uint8_t family;
    std::array<uint8_t, 16> addr;
    uint8_t prefix;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    uint64_t own = 0;        // bits of sets that list exactly this CIDR
    uint64_t effective = 0;  // own | bits of every covering entry: the map value
  };
  static Key key_of(const Cidr& c) { return Key{c.family, c.addr, c.prefix}; }
  static Cidr cidr_of(const Key& k);
  uint64_t covering_bits(const Cidr& c) const;  // own bits of strictly shorter covering entries
  template <typename F>
  void for_each_within(const Cidr& c, F&& f);

  std::map<Key, Entry> entries_;
  // How many entries use each prefix length, per family: closure walks only lengths in use.
  std::array<std::array<uint32_t, 129>, 2> prefix_count_{};
};

}  // namespace fl::core
