// What operators see of a fault's life: `faultctl events` (who applied what, what was refused,
// how each fault ended), `faultctl wait`, and the history a restarted daemon still has.
// Real daemon, real faults on a real lab, real packets.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "abi.h"
#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Bounds on how fast something happens, stretched where the CPU is emulated (the VM tier).
std::chrono::milliseconds scaled(std::chrono::milliseconds d) {
  const char* s = std::getenv("FL_TEST_TIME_SCALE");
  const long k = s ? std::max(1L, std::strtol(s, nullptr, 10)) : 1L;
  return d * k;
}

std::vector<json> json_lines(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') v.push_back(json::parse(line));
  return v;
}

std::vector<json> events(const Daemon& d, const std::string& extra = "") {
  Cmd c = faultctl(d, "-o json events" + extra);
  EXPECT_EQ(c.status, 0) << c.out;
  return json_lines(c.out);
}

uint64_t applied_id(const Daemon& d, const std::string& args) {
  Cmd c = faultctl(d, "-o json " + args);
  EXPECT_EQ(c.status, 0) << args << ": " << c.out;
  json f = json::parse(c.out, nullptr, false);
  return f.is_object() && f.contains("id") ? f["id"].get<uint64_t>() : 0;
}

TEST(Events, WhoAppliedWhatWasRefusedAndHowEachFaultEnded) {
  if (!require_root()) GTEST_SKIP() << "needs root";
  Lab lab(2);
  Daemon d;
  const std::string loss = "loss 10 --dst " + Lab::ip4(1) + " --target " + lab.target(0) + " --name ev-b";
  ASSERT_NE(applied_id(d, loss), 0u);
  Cmd dup = faultctl(d, loss);
  EXPECT_EQ(dup.status, 1) << dup.out;
  ASSERT_EQ(faultctl(d, "heal ev-b").status, 0);

  // A partition whose own time runs out; long enough to be seen in force first.
  const auto life = scaled(1500ms);
  ASSERT_NE(applied_id(d, "partition --side " + Lab::ip4(0) + " --side " + Lab::ip4(1) + " --target " +
                              lab.target(0) + " --for " + std::to_string(life.count()) + "ms --name ev-a"),
            0u);
  auto t0 = Clock::now();
  EXPECT_FALSE(lab.ping(0, 1));
  // wait returns when the partition's time is up, not before, and says how it ended.
  Cmd w = faultctl(d, "wait ev-a");
  auto waited = Clock::now() - t0;
  ASSERT_EQ(w.status, 0) << w.out;
  EXPECT_NE(w.out.find("expired"), std::string::npos) << w.out;
  EXPECT_LT(waited, life + scaled(5s));
  EXPECT_TRUE(lab.ping(0, 1)) << "the partition is over once wait returned";

  auto ev = events(d);
  ASSERT_EQ(ev.size(), 5u) << faultctl(d, "events").out;
  EXPECT_EQ(ev[0]["type"], "applied");
  EXPECT_EQ(ev[0]["name"], "ev-b");
  EXPECT_EQ(ev[0]["kind"], "loss");
  EXPECT_EQ(ev[0]["targets"], json::array({lab.target(0)}));
  EXPECT_EQ(ev[0]["caller"]["uid"], 0);
  EXPECT_GT(ev[0]["caller"]["pid"].get<int>(), 0);
  EXPECT_GT(ev[0]["duration_us"].get<uint64_t>(), 0u);
  EXPECT_EQ(ev[1]["type"], "refused");
  EXPECT_EQ(ev[1]["kind"], "apply");
  EXPECT_EQ(ev[1]["code"], "already_exists");
  EXPECT_EQ(ev[2]["type"], "healed");
  EXPECT_EQ(ev[2]["name"], "ev-b");
  EXPECT_TRUE(ev[2].contains("caller")) << "a heal is somebody's";
  EXPECT_EQ(ev[3]["type"], "applied");
  EXPECT_EQ(ev[3]["name"], "ev-a");
  EXPECT_EQ(ev[3]["kind"], "partition");
  EXPECT_EQ(ev[4]["type"], "expired");
  EXPECT_EQ(ev[4]["name"], "ev-a");
  EXPECT_FALSE(ev[4].contains("caller")) << "an expiry is nobody's";
  for (size_t i = 1; i < ev.size(); i++) EXPECT_EQ(ev[i]["seq"].get<uint64_t>(), ev[i - 1]["seq"].get<uint64_t>() + 1);

  // The same story as text, one line each.
  Cmd text = faultctl(d, "events --since " + ev[1]["seq"].dump());
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 3) << text.out;
  EXPECT_NE(text.out.find("healed fault"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("expired fault"), std::string::npos) << text.out;
}

TEST(Events, WaitTimesOutOnAnActiveFaultAndKnowsEndedAndUnknownOnes) {
  if (!require_root()) GTEST_SKIP() << "needs root";
  Lab lab(2);
  Daemon d;
  ASSERT_NE(applied_id(d, "loss 5 --dst " + Lab::ip4(1) + " --target " + lab.target(0) + " --name w1 --for 1m"), 0u);
  auto t0 = Clock::now();
  Cmd w = faultctl(d, "wait w1 --timeout 400ms");
  auto took = Clock::now() - t0;
  EXPECT_EQ(w.status, 4) << "a wait that times out has its own exit status: " << w.out;
  EXPECT_NE(w.out.find("timeout"), std::string::npos) << w.out;
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, scaled(10s));
  Cmd still = faultctl(d, "-o json get w1");
  EXPECT_NE(still.out.find("\"active\""), std::string::npos) << "a wait changes nothing: " << still.out;

  ASSERT_EQ(faultctl(d, "heal w1").status, 0);
  Cmd after = faultctl(d, "wait w1");
  EXPECT_EQ(after.status, 0) << after.out;
  EXPECT_NE(after.out.find("healed"), std::string::npos) << after.out;

  Cmd unknown = faultctl(d, "wait no-such-fault");
  EXPECT_EQ(unknown.status, 1) << unknown.out;
  EXPECT_NE(unknown.out.find("not_found"), std::string::npos) << unknown.out;
}

TEST(Events, HistoryAndIdsSurviveARestartEvenAfterSigkill) {
  if (!require_root()) GTEST_SKIP() << "needs root";
  Lab lab(2);
  Daemon d;
  const std::string loss = "loss 5 --dst " + Lab::ip4(1) + " --target " + lab.target(0);
  EXPECT_EQ(applied_id(d, loss + " --name r1"), 1u);
  ASSERT_EQ(faultctl(d, "heal r1").status, 0);
  EXPECT_EQ(applied_id(d, loss + " --name r2"), 2u);
  ASSERT_EQ(d.terminate(), 0);  // r2 is healed at shutdown
  d.start();

  Cmd g1 = faultctl(d, "-o json get r1");
  ASSERT_EQ(g1.status, 0) << "an ended fault is still known after a restart: " << g1.out;
  json f1 = json::parse(g1.out);
  EXPECT_EQ(f1["state"], "healed");
  EXPECT_EQ(f1["id"], 1);
  EXPECT_GE(f1["ended_unix_ms"].get<int64_t>(), f1["created_unix_ms"].get<int64_t>()) << "and when it ended";
  Cmd text = faultctl(d, "get r1");
  EXPECT_NE(text.out.find("ended"), std::string::npos) << text.out;
  Cmd g2 = faultctl(d, "-o json get r2");
  ASSERT_EQ(g2.status, 0) << g2.out;
  EXPECT_EQ(json::parse(g2.out)["state"], "healed");

  EXPECT_EQ(applied_id(d, loss + " --name r3"), 3u) << "ids are never handed out twice";
  d.kill9();  // no shutdown: only what reached the history file counts
  d.start();
  EXPECT_EQ(applied_id(d, loss + " --name r4"), 4u) << "not even after SIGKILL";

  auto ev = events(d);
  ASSERT_GE(ev.size(), 6u);
  for (size_t i = 1; i < ev.size(); i++) EXPECT_GT(ev[i]["seq"].get<uint64_t>(), ev[i - 1]["seq"].get<uint64_t>());
  std::string names;
  for (const auto& e : ev)
    if (e["type"] == "applied") names += e["name"].get<std::string>() + " ";
  EXPECT_EQ(names, "r1 r2 r3 r4 ");
}

// `events --follow` as a user runs it: a process that prints each event as it happens.
TEST(Events, FollowPrintsEachEventAsItHappensAndALateLeaseIsReported) {
  if (!require_root()) GTEST_SKIP() << "needs root";
  Lab lab(2);
  Daemon::Options o;
  o.lease = "3s";  // renewed every second: a 2.5 s stop is a late renewal
  Daemon d(o);
  char tmpl[] = "/tmp/fl-follow.XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string out = tmpl;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int o2 = ::open(out.c_str(), O_WRONLY | O_TRUNC);
    dup2(o2, 1);
    dup2(o2, 2);
    execl(FL_FAULTCTL_PATH, "faultctl", "--socket", d.socket().c_str(), "-o", "json", "events", "--follow",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  auto read_out = [&] {
    std::ifstream f(out);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  auto types = [&] {
    std::string t;
    // An emulated CPU may renew the lease late on its own: only the stop below is asserted.
    for (const auto& e : json_lines(read_out()))
      if (e["type"] != "lease_late") t += e["type"].get<std::string>() + " ";
    return t;
  };
  auto late_by_stop = [&] {
    for (const auto& e : json_lines(read_out()))
      if (e["type"] == "lease_late" && e.value("duration_us", uint64_t{0}) >= 2'000'000u) return true;
    return false;
  };
  std::this_thread::sleep_for(300ms);  // connected and following
  ASSERT_NE(applied_id(d, "loss 5 --dst " + Lab::ip4(1) + " --target " + lab.target(0) + " --name f1"), 0u);
  EXPECT_TRUE(eventually([&] { return types() == "applied "; }, scaled(3s))) << read_out();
  ASSERT_EQ(faultctl(d, "heal f1").status, 0);
  EXPECT_TRUE(eventually([&] { return types() == "applied healed "; }, scaled(3s))) << read_out();

  // A daemon held up (here: stopped) past its renewal time tells its followers afterwards.
  ASSERT_EQ(kill(d.pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(2500ms);
  ASSERT_EQ(kill(d.pid(), SIGCONT), 0);
  EXPECT_TRUE(eventually(late_by_stop, scaled(5s))) << read_out();

  // The follower is still alive: it follows until interrupted.
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  unlink(out.c_str());
}

// Issue 12, section 4: what no fault's counters show is in `faultctl status`: the data path's
// own counters, read from the kernel. A stopped daemon lets the lease lapse; the packets that
// crossed the partition meanwhile (ping answered) are counted as lease_expired.
TEST(Events, StatusShowsTheDataPathsOwnCountersIncludingALapsedLease) {
  if (!require_root()) GTEST_SKIP() << "needs root";
  Lab lab(2);
  Daemon d(Daemon::Options{.lease = "1s"});
  auto datapath = [&] {
    Cmd c = faultctl(d, "-o json status");
    json st = json::parse(c.out, nullptr, false);
    return st.is_object() && st.contains("datapath") ? st["datapath"] : json::object();
  };
  auto counter = [&](const char* name) { return datapath().value(name, uint64_t{0}); };
  EXPECT_EQ(datapath().size(), static_cast<size_t>(FL_STAT_MAX)) << datapath().dump();
  ASSERT_NE(applied_id(d, "partition --side " + Lab::ip4(0) + " --side " + Lab::ip4(1) + " --target " +
                              lab.target(1) + " --for 2m"),
            0u);
  EXPECT_FALSE(lab.ping(0, 1));
  EXPECT_TRUE(eventually([&] { return counter("dropped") > 0 && counter("seen") > 0; }, scaled(3s)))
      << datapath().dump();
  EXPECT_EQ(counter("lease_expired"), 0u);

  ASSERT_EQ(kill(d.pid(), SIGSTOP), 0);
  std::this_thread::sleep_for(1500ms);  // past the 1 s lease: the kernel lets everything pass
  const bool crossed = lab.ping(0, 1, false, 1.0);
  ASSERT_EQ(kill(d.pid(), SIGCONT), 0);
  EXPECT_TRUE(crossed) << "the partition held with its lease run out";
  EXPECT_TRUE(eventually([&] { return counter("lease_expired") > 0; }, scaled(3s))) << datapath().dump();
  EXPECT_FALSE(lab.ping(0, 1)) << "the renewed lease switches the partition back on";
  Cmd human = faultctl(d, "status");
  EXPECT_NE(human.out.find("data path:"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("lease_expired"), std::string::npos) << human.out;
}

}  // namespace
}  // namespace fl::test
