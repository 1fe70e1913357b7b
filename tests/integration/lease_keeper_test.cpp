// The lease keeper (daemon/lease_keeper.h) on a real data path: it renews the kernel lease
// while the event loop beats, whatever the loop is busy with, and lets the lease lapse once the
// loop has been silent for its stall limit, so a wedged daemon still turns every fault off.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "daemon/engine.h"
#include "daemon/lease_keeper.h"
#include "integration/lab_util.h"
#include "kernel/datapath.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

TEST(LeaseKeeper, ASilentLoopLetsTheLeaseLapseAndABeatingOneKeepsIt) {
  if (!require_root()) GTEST_SKIP() << "needs root (loads the data path)";
  auto dp = kernel::Datapath::load();
  ASSERT_TRUE(dp.ok()) << dp.error().message;
  daemon::LeaseKeeper keeper(300ms, nullptr, 1000ms);
  keeper.add(dp->get());
  // Beating for 1.5 s, five stall limits' worth of leases: the lease in the map stays ahead.
  for (int i = 0; i < 15; i++) {
    keeper.alive();
    std::this_thread::sleep_for(100ms);
    EXPECT_GT((*dp)->lease(), daemon::monotonic_ns()) << "after " << (i + 1) * 100 << " ms of beats";
  }
  // Silent: past the stall limit (1 s) and one lease (0.3 s) more, the lease in the kernel is
  // behind the clock, which is what makes the program ignore every slot.
  std::this_thread::sleep_for(2000ms);
  EXPECT_LT((*dp)->lease(), daemon::monotonic_ns()) << "a loop silent for 2 s kept the lease renewed";
  // Beating again: renewed within a period (a third of the lease).
  keeper.alive();
  std::this_thread::sleep_for(250ms);
  EXPECT_GT((*dp)->lease(), daemon::monotonic_ns()) << "the lease did not come back with the loop";
  keeper.remove(dp->get());
}

}  // namespace
}  // namespace fl::test
