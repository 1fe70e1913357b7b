// Exponential backoff with full jitter (the AWS Architecture Blog's "full jitter"): the n-th
// retry waits uniform(0, min(cap, base * 2^n)). The jitter spreads a crowd of clients that lost
// the same server, so they do not come back in lockstep and knock it over again.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace fl::chat {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, uint64_t seed)
      : base_(base), cap_(cap), rng_(seed) {}

  // The delay before the next attempt; each call doubles the ceiling up to the cap.
  std::chrono::milliseconds next() {
    double ceiling = std::min(static_cast<double>(cap_.count()),
                              static_cast<double>(base_.count()) * std::ldexp(1.0, std::min(failures_, 40)));
    failures_++;
    std::uniform_real_distribution<double> d(0.0, ceiling);
    return std::chrono::milliseconds(static_cast<int64_t>(d(rng_)));
  }
  // After a successful connection the next failure starts from base again.
  void reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  std::chrono::milliseconds base_, cap_;
  std::mt19937_64 rng_;
  int failures_ = 0;
};

}  // namespace fl::chat
