// Reference-counted bits keyed by what they stand for: a node set (its CIDR list), an exemption
// rule, an interface. Faults that name the same thing share its bit; the first takes a bit from
// the pool and writes it into the data path, the last takes it out again. A bit whose removal
// failed is retired (never handed out again): packets may still see it. The kernel writes are
// the caller's (functions passed in); the bookkeeping is here once, pure and unit-tested,
// instead of written out for each kind of bit.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "core/index_pool.h"
#include "core/result.h"

namespace fl::core {

template <typename Key>
class RefBitPool {
 public:
  explicit RefBitPool(uint32_t size) : pool_(size) {}

  // One more reference to key's bit. A key not yet held gets a bit from acquire(pool) (which
  // may wait out a quarantine), then write(bit) puts it in the kernel; if write fails it must
  // have undone its own partial writes, and the bit goes back with fail_stamp() (taken after
  // that undo, so packets that saw the bit are older than the stamp).
  template <typename Acquire, typename Write, typename Stamp>
  Result<uint32_t> take(const Key& key, Acquire&& acquire, Write&& write, Stamp&& fail_stamp) {
    if (auto it = refs_.find(key); it != refs_.end()) {
      it->second.refs++;
      return it->second.bit;
    }
    Result<uint32_t> bit = acquire(pool_);
    if (!bit.ok()) return bit.take_error();
    if (Status st = write(*bit); !st.ok()) {
      pool_.release(*bit, fail_stamp());
      return st.take_error();
    }
    refs_.emplace(key, Entry{*bit, 1});
    return *bit;
  }

  // One reference fewer. With the last, erase(bit) takes the bit out of the kernel: on success
  // it is quarantined with stamp, on failure retired. Returns erase's status (ok when other
  // references remain or the key was not held).
  template <typename Erase>
  Status give_back(const Key& key, uint64_t stamp, Erase&& erase) {
    auto it = refs_.find(key);
    if (it == refs_.end() || --it->second.refs > 0) return {};
    const uint32_t bit = it->second.bit;
    refs_.erase(it);
    Status st = erase(bit);
    if (st.ok()) pool_.release(bit, stamp);
    return st;
  }

  // The key's bit and its references, taken out of the bookkeeping without giving the bit back
  // (an interface that is gone: the faults naming it keep its bit until they end).
  std::optional<std::pair<uint32_t, int>> forget(const Key& key) {
    auto it = refs_.find(key);
    if (it == refs_.end()) return std::nullopt;
    auto out = std::make_pair(it->second.bit, it->second.refs);
    refs_.erase(it);
    return out;
  }

  std::optional<uint32_t> bit_of(const Key& key) const {
    auto it = refs_.find(key);
    if (it == refs_.end()) return std::nullopt;
    return it->second.bit;
  }
  int refs_of(const Key& key) const {
    auto it = refs_.find(key);
    return it == refs_.end() ? 0 : it->second.refs;
  }
  bool empty() const { return refs_.empty(); }
  size_t keys() const { return refs_.size(); }
  IndexPool& pool() { return pool_; }
  const IndexPool& pool() const { return pool_; }

 private:
  struct Entry {
    uint32_t bit = 0;
    int refs = 0;
  };
  IndexPool pool_;
  std::map<Key, Entry> refs_;
};

}  // namespace fl::core
