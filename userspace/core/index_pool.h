// A pool of small integer ids (fault slots, set bits, exemption rule bits) whose released ids
// stay in quarantine until a stamp says a grace period has passed: a packet that read the old
// meaning of an id must be gone before the id gets a new one. The stamps come from the kernel
// layer; here they are plain numbers, so this is unit-testable.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace fl::core {

class IndexPool {
 public:
  explicit IndexPool(uint32_t size) : state_(size, kFree), stamp_(size, 0) {}

  // Lowest id that is free, or quarantined with stamp <= completed. Lowest first keeps the
  // data path's scan short.
  std::optional<uint32_t> acquire(uint64_t completed) {
    for (uint32_t i = 0; i < state_.size(); i++) {
      if (state_[i] == kFree || (state_[i] == kQuarantined && stamp_[i] <= completed)) {
        state_[i] = kUsed;
        return i;
      }
    }
    return std::nullopt;
  }
  void release(uint32_t id, uint64_t stamp) {
    state_[id] = kQuarantined;
    stamp_[id] = stamp;
  }
  bool used(uint32_t id) const { return state_[id] == kUsed; }
  uint32_t in_use() const {
    uint32_t n = 0;
    for (auto s : state_) n += s == kUsed;
    return n;
  }
  // Quarantined ids that `completed` does not release yet.
  bool waiting(uint64_t completed) const {
    for (uint32_t i = 0; i < state_.size(); i++)
      if (state_[i] == kQuarantined && stamp_[i] > completed) return true;
    return false;
  }
  // Highest used id + 1: the data path scans [0, high_water()).
  uint32_t high_water() const {
    for (uint32_t i = state_.size(); i > 0; i--)
      if (state_[i - 1] == kUsed) return i;
    return 0;
  }
  uint32_t size() const { return static_cast<uint32_t>(state_.size()); }

 private:
  enum State : uint8_t { kFree, kUsed, kQuarantined };
  std::vector<State> state_;
  std::vector<uint64_t> stamp_;
};

}  // namespace fl::core
