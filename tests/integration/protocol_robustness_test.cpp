// The real faultlined under hostile or careless clients: it must keep serving a well-behaved one.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "integration/lab_util.h"
#include "protocol/protocol.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

int connect_to(const std::string& path) {
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(s);
    return -1;
  }
  return s;
}

// Reads one reply line within the timeout; empty on EOF/timeout.
std::string read_line(int s, std::chrono::milliseconds timeout) {
  std::string out;
  char c;
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, 50) != 1) continue;
    ssize_t n = read(s, &c, 1);
    if (n <= 0) return out;
    if (c == '\n') return out;
    out.push_back(c);
  }
  return out;
}

void send_all(int s, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(s, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the daemon may hang up on us; that is the point of some tests
    off += static_cast<size_t>(n);
  }
}

class Robustness : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!require_root()) GTEST_SKIP() << "needs root to run faultlined";
    Daemon::Options o;
    o.extra = {"--idle-timeout", "2s"};
    d_ = std::make_unique<Daemon>(o);
  }
  // A well-behaved client: status answers promptly. "Promptly" is 1 s on real hardware;
  // FL_TEST_TIME_SCALE stretches it where the CPU is emulated (the VM tier runs under TCG, some
  // 30 times slower).
  void expect_served(const char* when) {
    auto t0 = std::chrono::steady_clock::now();
    json r = d_->request({{"op", "status"}});
    auto dt = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(r.value("ok", false)) << when << ": " << r.dump();
    EXPECT_LT(dt, 1s * time_scale()) << when;
  }
  static int time_scale() {
    const char* s = std::getenv("FL_TEST_TIME_SCALE");
    int v = s ? std::atoi(s) : 1;
    return v >= 1 ? v : 1;
  }
  std::unique_ptr<Daemon> d_;
};

TEST_F(Robustness, EachMalformedRequestGetsItsOwnErrorAndTheConnectionStaysUsable) {
  int s = connect_to(d_->socket());
  ASSERT_GE(s, 0);
  struct Case {
    std::string line, code;
  } cases[] = {
      {"{not json", "invalid_request"},
      {"[1,2,3]", "invalid_request"},
      {R"({"op":"status"})", "invalid_request"},
      {R"({"id":-1,"op":"status"})", "invalid_request"},
      {R"({"id":1,"op":"frobnicate"})", "unknown_op"},
      {R"({"id":2,"op":7})", "invalid_request"},
      {R"({"id":3,"op":"apply","fault":{"kind":"partition","sides":"x"}})", "invalid_argument"},
      {R"({"id":4,"op":"apply","fault":{"kind":"loss","loss":{"percent":300}}})", "invalid_argument"},
      {R"({"id":5,"op":"hello","version":99})", "unsupported_version"},
      {R"({"id":6,"op":"get","fault":"nope"})", "not_found"},
      {"{\"id\":7,\"op\":\"st\xff\xfe\"}", "invalid_request"},
  };
  for (const auto& c : cases) {
    send_all(s, c.line + "\n");
    std::string reply = read_line(s, 2s);
    ASSERT_FALSE(reply.empty()) << "no reply to " << c.line;
    json j = json::parse(reply);
    EXPECT_FALSE(j["ok"].get<bool>()) << c.line;
    EXPECT_EQ(j["error"]["code"], c.code) << c.line << " -> " << reply;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  send_all(s, R"({"id":8,"op":"status"})" "\n");
  json ok = json::parse(read_line(s, 2s));
  EXPECT_TRUE(ok["ok"].get<bool>());
  EXPECT_EQ(ok["id"], 8);
  close(s);
}

TEST_F(Robustness, RandomBytesAndInvalidUtf8) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; round++) {
    int s = connect_to(d_->socket());
    ASSERT_GE(s, 0);
    std::string junk(4096, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng());
    send_all(s, junk + "\n");
    close(s);
  }
  expect_served("after random bytes");
}

// Twice the line limit (4 MiB, room for the largest valid fault).
TEST_F(Robustness, LineOfTwiceTheLimitIsRefusedAndDisconnected) {
  int s = connect_to(d_->socket());
  ASSERT_GE(s, 0);
  std::thread writer(
      [&] { send_all(s, "{\"id\":1,\"op\":\"status\",\"pad\":\"" + std::string(2 * proto::kMaxLine, 'a') + "\"}\n"); });
  std::string reply = read_line(s, 5s);
  writer.join();
  ASSERT_FALSE(reply.empty());
  json j = json::parse(reply);
  EXPECT_EQ(j["error"]["code"], "invalid_request");
  char c;
  pollfd p{s, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1);
  EXPECT_EQ(read(s, &c, 1), 0) << "expected the daemon to hang up";
  close(s);
  expect_served("after an 8 MiB line");
}

TEST_F(Robustness, ClientThatNeverReadsIsCutOffWithoutStallingOthers) {
  int s = connect_to(d_->socket());
  ASSERT_GE(s, 0);
  fcntl(s, F_SETFL, O_NONBLOCK);
  std::string req;
  for (int i = 0; i < 2000; i++) req += "{\"id\":" + std::to_string(i) + ",\"op\":\"status\"}\n";
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    while (!stop) {
      ssize_t n = send(s, req.data(), req.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) break;  // disconnected
      std::this_thread::sleep_for(1ms);
    }
  });
  for (int i = 0; i < 5; i++) {
    expect_served("while a client floods without reading");
    std::this_thread::sleep_for(100ms);
  }
  stop = true;
  flood.join();
  close(s);
}

TEST_F(Robustness, TwoHundredIdleConnections) {
  std::vector<int> idle;
  for (int i = 0; i < 200; i++) {
    int s = connect_to(d_->socket());
    ASSERT_GE(s, 0) << "connection " << i;
    idle.push_back(s);
  }
  expect_served("with 200 idle connections");
  // The idle timeout (2 s here) closes them.
  std::this_thread::sleep_for(3s);
  int closed = 0;
  for (int s : idle) {
    char c;
    pollfd p{s, POLLIN, 0};
    if (poll(&p, 1, 0) == 1 && read(s, &c, 1) == 0) closed++;
    close(s);
  }
  EXPECT_EQ(closed, 200);
  expect_served("after the idle connections were dropped");
}

TEST_F(Robustness, NonMembersMayReadButNotChange) {
  // A client that is neither root nor in the faultline group. The daemon makes the socket 0660;
  // an operator who wants read-only access for everyone opens it up, as we do here.
  ASSERT_EQ(chmod(d_->socket().c_str(), 0666), 0);
  int sv[2];
  ASSERT_EQ(pipe(sv), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    int s = connect_to(d_->socket());
    if (s < 0) _exit(11);
    std::string out;
    for (const char* line : {R"({"id":1,"op":"status"})" "\n",
                             R"({"id":2,"op":"heal","all":true})" "\n"}) {
      send_all(s, line);
      out += read_line(s, 2s) + "\n";
    }
    (void)!write(sv[1], out.data(), out.size());
    _exit(0);
  }
  close(sv[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(sv[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(sv[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st));
  ASSERT_EQ(WEXITSTATUS(st), 0) << "child could not drop privileges (10) or connect (11)";
  auto nl = out.find('\n');
  json status = json::parse(out.substr(0, nl));
  json heal = json::parse(out.substr(nl + 1, out.find('\n', nl + 1) - nl - 1));
  EXPECT_TRUE(status["ok"].get<bool>());
  EXPECT_FALSE(heal["ok"].get<bool>());
  EXPECT_EQ(heal["error"]["code"], "permission_denied");
}

}  // namespace
}  // namespace fl::test
