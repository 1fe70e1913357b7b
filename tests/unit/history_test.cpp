// The event history on disk: what a restarted daemon remembers, and what it survives (a line cut
// short by a crash, a file grown past its bound, names that are not UTF-8).
#include "daemon/history.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace fl::daemon {
namespace {

using json = nlohmann::json;

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fl-history-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::unique_ptr<History> open(HistoryLimits l = {}) {
    auto h = History::open(dir_, l);
    EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
    return h.ok() ? std::move(*h) : nullptr;
  }
  // Emits through a bus as the daemon does, so seq and time are stamped the real way.
  static void feed(History& h, EventBus& bus, Event e) {
    bus.emit(std::move(e));
    (void)h;
  }
  static Event applied(uint64_t id, const std::string& name) {
    Event e;
    e.type = EventType::applied;
    e.fault_id = id;
    e.name = name;
    e.kind = "loss";
    e.targets = {"host"};
    e.caller = Caller{0, 4242};
    e.duration_ns = 3'500'000;
    return e;
  }
  static Event ended(uint64_t id, const std::string& name, EventType how) {
    Event e;
    e.type = how;
    e.fault_id = id;
    e.name = name;
    e.kind = "loss";
    e.fault = json{{"id", id}, {"name", name}, {"state", event_type_name(how)}, {"spec", {{"kind", "loss"}}}};
    return e;
  }
  std::string dir_;
};

TEST_F(HistoryTest, ARestartedDaemonContinuesIdsAndSeqAndRemembersEndedFaults) {
  {
    auto h = open();
    ASSERT_TRUE(h);
    EXPECT_EQ(h->next_seq(), 1u);
    EXPECT_EQ(h->next_fault_id(), 1u);
    EventBus bus;
    bus.listen([&](const Event& e) { h->record(e); });
    bus.emit(applied(1, "a"));
    bus.emit(applied(2, "b"));
    bus.emit(ended(1, "a", EventType::expired));
    Event refused;
    refused.type = EventType::refused;
    refused.kind = "apply";
    refused.code = "invalid_argument";
    refused.detail = "bad CIDR";
    bus.emit(refused);
  }
  auto h = open();
  ASSERT_TRUE(h);
  EXPECT_EQ(h->next_seq(), 5u);
  EXPECT_EQ(h->next_fault_id(), 3u);  // id 2 is still active somewhere: never handed out again
  ASSERT_EQ(h->ended().size(), 1u);
  EXPECT_EQ(h->ended()[0]["name"], "a");
  EXPECT_EQ(h->ended()[0]["state"], "expired");
  json all = h->since(0, 100);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0]["type"], "applied");
  EXPECT_EQ(all[0]["caller"]["pid"], 4242);
  EXPECT_EQ(all[0]["duration_us"], 3500);
  EXPECT_EQ(all[3]["type"], "refused");
  EXPECT_EQ(all[3]["code"], "invalid_argument");
  // since and limit
  EXPECT_EQ(h->since(2, 100).size(), 2u);
  EXPECT_EQ(h->since(0, 1)[0]["seq"], 4u);
}

TEST_F(HistoryTest, ALineCutShortByACrashIsSkippedAndTheRestKept) {
  {
    auto h = open();
    EventBus bus;
    bus.listen([&](const Event& e) { h->record(e); });
    bus.emit(applied(7, "x"));
    bus.emit(ended(7, "x", EventType::healed));
  }
  {
    std::ofstream f(dir_ + "/history.jsonl", std::ios::app);
    f << "{\"event\":{\"seq\":3,\"ty";  // no newline, no end: a write cut short
  }
  auto h = open();
  ASSERT_TRUE(h);
  EXPECT_EQ(h->skipped_lines(), 1u);
  EXPECT_EQ(h->next_fault_id(), 8u);
  EXPECT_EQ(h->since(0, 100).size(), 2u);
  // And it appends after the bad line without harm: the next start reads the new event.
  EventBus bus;
  bus.set_next_seq(h->next_seq());
  bus.listen([&](const Event& e) { h->record(e); });
  bus.emit(applied(8, "y"));
  h.reset();
  auto again = open();
  EXPECT_EQ(again->next_fault_id(), 9u);
}

TEST_F(HistoryTest, AFileOverItsBoundIsRewrittenWithWhatIsKept) {
  HistoryLimits l;
  l.events = 20;
  l.ended = 5;
  l.max_file = 8 * 1024;
  auto h = open(l);
  EventBus bus;
  bus.listen([&](const Event& e) { h->record(e); });
  for (uint64_t id = 1; id <= 200; id++) {
    bus.emit(applied(id, "f" + std::to_string(id)));
    bus.emit(ended(id, "f" + std::to_string(id), EventType::expired));
  }
  struct stat st{};
  ASSERT_EQ(stat((dir_ + "/history.jsonl").c_str(), &st), 0);
  EXPECT_LE(static_cast<size_t>(st.st_size), 2 * l.max_file + 2048);  // compactions have hysteresis
  h.reset();
  auto back = open(l);
  EXPECT_EQ(back->next_fault_id(), 201u);
  EXPECT_EQ(back->next_seq(), 401u);
  ASSERT_EQ(back->ended().size(), 5u);
  EXPECT_EQ(back->ended()[0]["id"], 200u);
  EXPECT_EQ(back->since(0, 1000).size(), 20u);
}

TEST_F(HistoryTest, AHugeSpecIsLeftOutAndANameThatIsNotUtf8CannotBreakTheRecord) {
  HistoryLimits l;
  l.max_fault_spec = 1024;
  auto h = open(l);
  EventBus bus;
  bus.listen([&](const Event& e) { h->record(e); });
  Event e = ended(3, std::string("bad\xff\xfe", 5), EventType::gone);
  e.targets = {std::string("netns:\xff", 7)};
  e.fault["spec"] = {{"cidrs", std::vector<std::string>(500, "10.200.0.0/24")}};
  bus.emit(std::move(e));
  h.reset();
  auto back = open(l);
  ASSERT_EQ(back->ended().size(), 1u);
  EXPECT_FALSE(back->ended()[0].contains("spec"));
  EXPECT_TRUE(back->ended()[0]["spec_omitted"].get<bool>());
  EXPECT_EQ(back->since(0, 10).size(), 1u);
}

}  // namespace
}  // namespace fl::daemon
