// Runs a function when the scope ends, however it ends (return or exception), unless
// release()d first: for rollbacks that no early return or exception may skip.
#pragma once

#include <utility>

namespace fl::core {

template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;
  // A destructor may not throw: f must catch what it can throw (noexcept would terminate).
  ~ScopeExit() {
    if (armed_) f_();
  }
  void release() { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace fl::core
