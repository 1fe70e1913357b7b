// Loaded, unattached data paths kept ready, so that the first fault on a namespace does not wait
// for the verifier (about 0.1-0.2 s per load). A background thread refills the pool; a loaded
// program that is not attached anywhere touches no packet.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kernel/datapath.h"

namespace fl::kernel {

class DatapathPool {
 public:
  explicit DatapathPool(size_t spares);
  ~DatapathPool();
  DatapathPool(const DatapathPool&) = delete;
  DatapathPool& operator=(const DatapathPool&) = delete;

  // A ready data path, or a fresh load on the caller's thread when none is ready.
  Result<std::unique_ptr<Datapath>> take();

 private:
  void run();
  size_t want_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Datapath>> ready_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace fl::kernel
