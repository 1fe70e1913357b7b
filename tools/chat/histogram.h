// Latency histogram with bounded memory and < 1 % relative error (log-linear buckets, as in
// HdrHistogram): the load generator records every delivery of a long run without keeping the
// samples. Values are microseconds.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace fl::chat {

class Histogram {
 public:
  static constexpr int kSubBits = 7;  // 128 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = kSub + (64 - kSubBits) * kSub;

  void record(uint64_t us) {
    counts_[index(us)]++;
    total_++;
    if (us > max_) max_ = us;
  }
  void clear() {
    counts_.fill(0);
    total_ = 0;
    max_ = 0;
  }
  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }

  // The q-quantile (0 < q <= 1): the upper edge of the bucket holding it, capped at the max seen.
  uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_));
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; i++) {
      seen += counts_[i];
      if (seen >= rank) {
        uint64_t hi = upper(i);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

  static int index(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    int e = 63 - std::countl_zero(v);  // >= kSubBits
    int m = static_cast<int>((v >> (e - kSubBits)) & (kSub - 1));
    return kSub + (e - kSubBits) * kSub + m;
  }
  static uint64_t upper(int i) {
    if (i < kSub) return static_cast<uint64_t>(i);
    int e = (i - kSub) / kSub + kSubBits;
    uint64_t m = static_cast<uint64_t>((i - kSub) % kSub);
    return ((uint64_t{kSub} + m + 1) << (e - kSubBits)) - 1;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0, max_ = 0;
};

}  // namespace fl::chat
