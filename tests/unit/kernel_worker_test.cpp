// The kernel worker: engine jobs in order on one thread, what they hand back run on the loop,
// a failing job not taking the others with it, a stop that finishes the job in progress and
// drops the rest, and the busy mark the lease heartbeat reads.
#include "daemon/kernel_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

namespace fl::daemon {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<EventLoop> make_loop() {
  auto loop = EventLoop::create();
  EXPECT_TRUE(loop.ok());
  return std::move(*loop);
}

TEST(KernelWorker, JobsRunInOrderOffTheLoopAndTheirThenRunsOnIt) {
  auto loop = make_loop();
  KernelWorker w(*loop);
  const auto loop_thread = std::this_thread::get_id();
  std::vector<int> order;  // written on the worker, read after stop
  std::vector<int> on_loop;
  std::atomic<bool> off_loop{true};
  for (int i = 0; i < 5; i++) {
    w.run([&, i]() -> KernelWorker::Then {
      if (std::this_thread::get_id() == loop_thread) off_loop = false;
      order.push_back(i);
      return [&, i] {
        EXPECT_EQ(std::this_thread::get_id(), loop_thread);
        on_loop.push_back(i);
        if (i == 4) loop->stop();
      };
    });
  }
  loop->run();
  w.stop();
  EXPECT_TRUE(off_loop);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(on_loop, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(KernelWorker, OnStartRunsOnTheWorkerThreadFirst) {
  auto loop = make_loop();
  std::promise<std::thread::id> started;
  std::promise<std::thread::id> ran;
  KernelWorker w(*loop, [&] { started.set_value(std::this_thread::get_id()); });
  w.run([&]() -> KernelWorker::Then {
    ran.set_value(std::this_thread::get_id());
    return {};
  });
  auto a = started.get_future(), b = ran.get_future();
  ASSERT_EQ(b.wait_for(5s), std::future_status::ready);
  const auto job_thread = b.get();
  EXPECT_EQ(a.get(), job_thread);
  EXPECT_NE(job_thread, std::this_thread::get_id());
}

TEST(KernelWorker, AThrowingJobIsLoggedAndTheNextOneStillRuns) {
  auto loop = make_loop();
  KernelWorker w(*loop);
  std::promise<void> second;
  w.run([]() -> KernelWorker::Then { throw std::runtime_error("netlink said no"); });
  w.run([&]() -> KernelWorker::Then {
    second.set_value();
    return {};
  });
  EXPECT_EQ(second.get_future().wait_for(5s), std::future_status::ready);
}

// The owner's "job pending" flag is cleared by the job's failed continuation, on the loop.
TEST(KernelWorker, AThrowingJobRunsItsFailedContinuationOnTheLoop) {
  auto loop = make_loop();
  KernelWorker w(*loop);
  const auto loop_thread = std::this_thread::get_id();
  bool failed_on_loop = false, then_ran = false;
  w.run([&]() -> KernelWorker::Then {
    throw std::runtime_error("out of memory, say");
  }, [&] { failed_on_loop = std::this_thread::get_id() == loop_thread; });
  // Jobs run and post in order, so the second's continuation comes after the first's failure;
  // stopping the loop there (not in the first) lets both arrive before w.stop() drops the queue.
  w.run([&]() -> KernelWorker::Then {
    return [&] {
      then_ran = true;
      loop->stop();
    };
  }, [&] { loop->stop(); });
  loop->run();
  w.stop();
  loop->drain_posted();
  EXPECT_TRUE(failed_on_loop);
  EXPECT_TRUE(then_ran) << "a job that succeeds gets its own continuation, not the failed one";
}

// The heartbeat vouches for the daemon only up to the start of the job in progress.
TEST(KernelWorker, BusySinceMarksTheJobInProgressAndIsZeroWhenIdle) {
  auto loop = make_loop();
  KernelWorker w(*loop);
  EXPECT_EQ(w.busy_since_ns(), 0u);
  std::promise<void> inside;
  std::promise<void> release;
  auto released = release.get_future().share();
  w.run([&]() -> KernelWorker::Then {
    inside.set_value();
    released.wait();
    return {};
  });
  ASSERT_EQ(inside.get_future().wait_for(5s), std::future_status::ready);
  const uint64_t busy = w.busy_since_ns();
  EXPECT_NE(busy, 0u);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(w.busy_since_ns(), busy) << "the mark is when the job started, not a heartbeat";
  release.set_value();
  for (int i = 0; i < 500 && w.busy_since_ns() != 0; i++) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(w.busy_since_ns(), 0u);
}

// Kernel work is never cut half-way: stop() waits for the job in progress; the queued ones
// never start, and what the finished job handed back is still posted, for drain_posted().
TEST(KernelWorker, StopFinishesTheJobInProgressAndDropsTheQueue) {
  auto loop = make_loop();
  KernelWorker w(*loop);
  std::promise<void> inside;
  std::atomic<bool> finished{false}, queued_ran{false}, then_ran{false};
  w.run([&]() -> KernelWorker::Then {
    inside.set_value();
    std::this_thread::sleep_for(200ms);
    finished = true;
    return [&] { then_ran = true; };
  });
  w.run([&]() -> KernelWorker::Then {
    queued_ran = true;
    return {};
  });
  ASSERT_EQ(inside.get_future().wait_for(5s), std::future_status::ready);
  w.stop();
  EXPECT_TRUE(finished);
  EXPECT_FALSE(queued_ran);
  EXPECT_FALSE(then_ran);
  loop->drain_posted();
  EXPECT_TRUE(then_ran);
  // After stop, run() queues nothing.
  w.run([&]() -> KernelWorker::Then {
    queued_ran = true;
    return {};
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(queued_ran);
}

}  // namespace
}  // namespace fl::daemon
