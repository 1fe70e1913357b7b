// The loop keeps answering while the kernel worker is in a slow apply: a fake kernel blocks the
// apply half-way (in its attach), and status and list sent meanwhile are answered within 50 ms,
// list from what the worker published after its last job, saying how old its counters are.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "daemon/dispatch.h"
#include "daemon/event_loop.h"
#include "daemon/kernel_worker.h"
#include "daemon/server.h"
#include "unit/engine_rig_util.h"
#include "unit/unix_client_util.h"

namespace fl::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

json req(uint64_t id, const std::string& op, json body = json::object()) {
  body["op"] = op;
  body["id"] = id;
  return body;
}

class DispatchBusy : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fl-dispatch-busy.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto l = daemon::EventLoop::create();
    ASSERT_TRUE(l.ok()) << l.error().message;
    loop_ = std::move(*l);
    worker_ = std::make_unique<daemon::KernelWorker>(*loop_);
    daemon::ServerOptions so;
    so.socket_path = dir_ + "/fl.sock";
    so.group = std::to_string(getgid());  // our own group may apply, root or not
    auto s = daemon::Server::start(*loop_, so, [this](const daemon::Peer& p, std::string_view line) {
      return dispatcher_->handle(p, line);
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
    daemon::Server* srv = server_.get();
    dispatcher_ = std::make_unique<daemon::Dispatcher>(
        *rig_.engine, *worker_,
        daemon::Dispatcher::Later{[srv](uint64_t c) { srv->defer(c); },
                                  [srv](uint64_t c, std::string r) { return srv->deliver(c, std::move(r)); },
                                  [srv](uint64_t c) { return srv->connected(c); },
                                  [srv](uint64_t c) { srv->resume(c); }},
        nullptr, nullptr, [](std::optional<uint64_t>) {});
    dispatcher_->publish_faults(json::array(), rig_.engine->changes());
    thread_ = std::thread([this] { loop_->run(); });
    path_ = so.socket_path;
  }
  void TearDown() override {
    rig_.k.release();
    if (worker_) worker_->stop();
    if (thread_.joinable()) {
      loop_->post([this] { loop_->stop(); });
      thread_.join();
    }
    server_.reset();
    dispatcher_.reset();
    worker_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  json ask(LineClient& c, const json& r, std::chrono::milliseconds timeout, std::chrono::milliseconds* took = nullptr) {
    auto t0 = Clock::now();
    EXPECT_TRUE(c.send_line(r.dump()));
    auto line = c.read_line(timeout);
    if (took) *took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    if (!line) return json{{"timeout", true}};
    return json::parse(*line);
  }

  EngineRig rig_;
  std::string dir_, path_;
  std::unique_ptr<daemon::EventLoop> loop_;
  std::unique_ptr<daemon::KernelWorker> worker_;
  std::unique_ptr<daemon::Server> server_;
  std::unique_ptr<daemon::Dispatcher> dispatcher_;
  std::thread thread_;
};

json loss(const std::string& name, const std::string& dev) {
  return {{"kind", "loss"}, {"name", name}, {"loss", {{"percent", 10}}}, {"targets", {"netns:a"}},
          {"devs", {dev}}, {"duration_ms", 60000}};
}

TEST_F(DispatchBusy, StatusAndListAreAnsweredWithin50msDuringASlowApply) {
  LineClient applier(path_), other(path_);
  ASSERT_TRUE(applier.connected() && other.connected());
  // A first fault, applied normally: the list during the second apply must show it.
  json first = ask(applier, req(1, "apply", {{"fault", loss("first", "eth0")}}), 5s);
  ASSERT_TRUE(first.value("ok", false)) << first.dump();

  rig_.k.block_on("attach");  // eth1 is not attached yet: the second apply stops there
  ASSERT_TRUE(applier.send_line(req(2, "apply", {{"fault", loss("second", "eth1")}}).dump()));
  ASSERT_TRUE(rig_.k.wait_blocked(5s)) << "the second apply never reached its attach";
  std::this_thread::sleep_for(20ms);  // counters_age_ms is then at least 20

  std::chrono::milliseconds took{};
  json status = ask(other, req(3, "status"), 1s, &took);
  ASSERT_TRUE(status.value("ok", false)) << status.dump();
  EXPECT_LT(took.count(), 50) << "status took " << took.count() << " ms during an apply";
  EXPECT_EQ(status["result"]["faults_active"], 1);
  EXPECT_GE(status["result"]["kernel_worker_busy_ms"].get<uint64_t>(), 20u);

  json list = ask(other, req(4, "list"), 1s, &took);
  ASSERT_TRUE(list.value("ok", false)) << list.dump();
  EXPECT_LT(took.count(), 50) << "list took " << took.count() << " ms during an apply";
  ASSERT_EQ(list["result"]["faults"].size(), 1u) << list.dump();
  EXPECT_EQ(list["result"]["faults"][0]["name"], "first");
  EXPECT_GE(list["result"]["counters_age_ms"].get<uint64_t>(), 20u);

  // The apply was held, not lost: let it go and it completes.
  rig_.k.release();
  auto second = applier.read_line(5s);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(json::parse(*second).value("ok", false)) << *second;

  // Idle again: list goes to the worker and reads fresh counters (no age given).
  json fresh = ask(other, req(5, "list"), 5s);
  ASSERT_TRUE(fresh.value("ok", false)) << fresh.dump();
  EXPECT_EQ(fresh["result"]["faults"].size(), 2u);
  EXPECT_FALSE(fresh["result"].contains("counters_age_ms"));
}

// A heal tells its event (what `wait` and `events --follow` answer from) before it has given
// back what the fault held; a list sent in between must not show the fault as still active
// from a snapshot taken before the heal: it waits for the worker instead.
TEST_F(DispatchBusy, AListAfterAFaultEndedNeverShowsItFromAnOlderSnapshot) {
  LineClient healer(path_), other(path_);
  ASSERT_TRUE(healer.connected() && other.connected());
  json first = ask(healer, req(1, "apply", {{"fault", loss("first", "eth0")}}), 5s);
  ASSERT_TRUE(first.value("ok", false)) << first.dump();

  rig_.k.block_on("detach");  // the last fault on eth0: its heal detaches, after the event
  ASSERT_TRUE(healer.send_line(req(2, "heal", {{"fault", "first"}}).dump()));
  ASSERT_TRUE(rig_.k.wait_blocked(5s)) << "the heal never reached its detach";
  ASSERT_TRUE(other.send_line(req(3, "list").dump()));
  // Answered from the old snapshot, the list would be here at once, showing "first".
  auto early = other.read_line(200ms);
  EXPECT_FALSE(early.has_value()) << "answered while the heal was half-way: " << *early;
  rig_.k.release();
  auto healed = healer.read_line(5s);
  ASSERT_TRUE(healed.has_value());
  EXPECT_TRUE(json::parse(*healed).value("ok", false)) << *healed;
  auto line = early ? early : other.read_line(5s);
  ASSERT_TRUE(line.has_value());
  json list = json::parse(*line);
  ASSERT_TRUE(list.value("ok", false)) << list.dump();
  EXPECT_TRUE(list["result"]["faults"].empty()) << list.dump();
}

// Without the snapshot a list waits behind the apply: the case above is what makes it fast.
TEST_F(DispatchBusy, GetStillWaitsForTheWorker) {
  LineClient applier(path_), other(path_);
  rig_.k.block_on("attach");
  ASSERT_TRUE(applier.send_line(req(1, "apply", {{"fault", loss("slow", "eth0")}}).dump()));
  ASSERT_TRUE(rig_.k.wait_blocked(5s));
  ASSERT_TRUE(other.send_line(req(2, "get", {{"fault", "slow"}}).dump()));
  EXPECT_FALSE(other.read_line(100ms).has_value()) << "get was answered while the worker was held";
  rig_.k.release();
  ASSERT_TRUE(applier.read_line(5s).has_value());
  auto got = other.read_line(5s);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(json::parse(*got).value("ok", false)) << *got;
}

}  // namespace
}  // namespace fl::test
