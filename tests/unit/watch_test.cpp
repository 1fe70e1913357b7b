// Waits and followers: what a client can make the daemon hold for it is bounded, and what a
// client can make the daemon record is too.
#include "daemon/watch.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "daemon/event_loop.h"
#include "daemon/events.h"

namespace fl::daemon {
namespace {

using namespace std::chrono_literals;

struct Fixture {
  std::unique_ptr<EventLoop> loop = EventLoop::create().value();
  Watch watch{*loop};
  std::vector<std::pair<uint64_t, std::string>> sent;
  std::map<uint64_t, bool> held;
  Fixture() {
    watch.set_io({[this](uint64_t c, std::string line) {
                    sent.emplace_back(c, std::move(line));
                    return true;
                  },
                  [this](uint64_t c, bool h) { held[c] = h; }});
  }
};

TEST(Watch, WaitsPerConnectionAndInAllAreBounded) {
  Fixture f;
  for (size_t i = 0; i < Watch::kMaxWaitsPerClient; i++) ASSERT_TRUE(f.watch.wait(1, i, 7, 1h).ok());
  auto over = f.watch.wait(1, 99, 7, 1h);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::resource_exhausted);
  EXPECT_TRUE(f.held[1]);
  // Other connections still may, up to the daemon's bound.
  size_t ok = Watch::kMaxWaitsPerClient;
  for (uint64_t c = 2; ok < Watch::kMaxWaits; c++)
    for (size_t i = 0; i < Watch::kMaxWaitsPerClient && ok < Watch::kMaxWaits; i++, ok++)
      ASSERT_TRUE(f.watch.wait(c, i, 7, 0ms).ok());
  EXPECT_EQ(f.watch.waiters(), Watch::kMaxWaits);
  EXPECT_EQ(f.watch.wait(1000, 1, 7, 0ms).error().code, Errc::resource_exhausted);
  // The fault ends: every waiter is answered and let go, and room is back.
  Event e;
  e.type = EventType::expired;
  e.fault_id = 7;
  e.fault = {{"id", 7}, {"state", "expired"}};
  f.watch.on_event(e);
  EXPECT_EQ(f.watch.waiters(), 0u);
  EXPECT_EQ(f.sent.size(), Watch::kMaxWaits);
  EXPECT_FALSE(f.held[1]);
  EXPECT_TRUE(f.watch.wait(1000, 1, 8, 0ms).ok());
}

TEST(Watch, FollowersAreBoundedAndForgottenWithTheirConnection) {
  Fixture f;
  for (uint64_t c = 1; c <= Watch::kMaxFollowers; c++) ASSERT_TRUE(f.watch.follow(c, 5).ok());
  EXPECT_EQ(f.watch.follow(999, 5).error().code, Errc::resource_exhausted);
  EXPECT_TRUE(f.watch.follow(1, 6).ok()) << "following again on the same connection is no new follower";
  f.watch.forget(3);
  EXPECT_TRUE(f.watch.follow(999, 5).ok());
  Event e;
  e.type = EventType::applied;
  e.fault_id = 1;
  f.watch.on_event(e);
  EXPECT_EQ(f.sent.size(), Watch::kMaxFollowers);
}

TEST(EventBus, TextsFromClientsAreBounded) {
  EventBus bus;
  Event seen;
  bus.listen([&](const Event& e) { seen = e; });
  Event e;
  e.type = EventType::refused;
  e.kind = "heal";
  e.detail = "no active fault " + std::string(1 << 20, 'x');
  e.name = std::string(5000, 'n');
  e.targets.assign(1000, std::string(1000, 't'));
  bus.emit(e);
  EXPECT_LE(seen.detail.size(), 1024u + 3);
  EXPECT_LE(seen.name.size(), 256u + 3);
  EXPECT_EQ(seen.targets.size(), 65u);
  EXPECT_EQ(seen.targets.back(), "(936 more)");
  EXPECT_LE(seen.targets.front().size(), 256u + 3);
  EXPECT_EQ(seen.seq, 1u);
}

}  // namespace
}  // namespace fl::daemon
