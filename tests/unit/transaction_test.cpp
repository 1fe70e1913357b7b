// The all-or-nothing apply across hosts (cli/transaction.h), driven through fake connections:
// one host fails at each step in turn, and the rollback is checked host by host.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/fanout.h"
#include "cli/transaction.h"

namespace fl::cli {
namespace {

using json = nlohmann::json;

// Where a fake host fails, and how: refused (the daemon answers with an error) or lost (the
// connection breaks; for an apply, after the daemon has installed the fault).
enum class Step { none, connect, hello, status, apply, heal };
enum class How { refused, lost, malformed };

void PrintTo(How how, std::ostream* os) {
  *os << (how == How::refused ? "refused" : how == How::lost ? "lost" : "malformed");
}

struct Script {
  Step fail_at = Step::none;
  How how = How::refused;
  std::vector<std::string> addresses;  // what status reports; empty: no "addresses" member
};

struct Request {
  std::string host, op;
  json params;
};

// Every host's daemon, as seen through its connections: the requests each got, and the faults
// each holds afterwards.
class FakeNet {
 public:
  void script(const std::string& host, Script s) { scripts_[host] = std::move(s); }

  Connector connector() {
    return [this](const Host& host, const std::string& socket) -> std::unique_ptr<HostConnection> {
      return std::make_unique<Conn>(*this, host.name(), socket);
    };
  }

  std::vector<Request> requests(const std::string& host, const std::string& op) const {
    std::lock_guard lock(mu_);
    std::vector<Request> out;
    for (const auto& r : log_) {
      if (r.host == host && r.op == op) out.push_back(r);
    }
    return out;
  }
  std::set<uint64_t> faults(const std::string& host) const {
    std::lock_guard lock(mu_);
    auto it = faults_.find(host);
    return it == faults_.end() ? std::set<uint64_t>{} : it->second;
  }
  std::string socket(const std::string& host) const {
    std::lock_guard lock(mu_);
    return sockets_.at(host);
  }
  // Each host numbers its own faults, from a base of its own, so an id healed on the wrong host
  // shows.
  static uint64_t id_base(const std::string& host) { return 100 * std::stoull(host.substr(host.rfind('.') + 1)); }

 private:
  class Conn : public HostConnection {
   public:
    Conn(FakeNet& net, std::string host, std::string socket)
        : net_(net), host_(std::move(host)) {
      std::lock_guard lock(net_.mu_);
      if (auto it = net_.scripts_.find(host_); it != net_.scripts_.end()) script_ = it->second;
      net_.sockets_[host_] = std::move(socket);
    }
    Status connect() override {
      if (script_.fail_at == Step::connect) return make_error(Errc::target_unavailable, "ssh: connection refused");
      connected_ = true;
      return {};
    }
    Result<json> call(const std::string& op, const json& params) override {
      EXPECT_TRUE(connected_) << host_ << ": " << op << " before connect";
      {
        std::lock_guard lock(net_.mu_);
        net_.log_.push_back({host_, op, params});
      }
      const Step step = op == "hello"    ? Step::hello
                        : op == "status" ? Step::status
                        : op == "apply"  ? Step::apply
                        : op == "heal"   ? Step::heal
                                         : Step::none;
      const bool fails = step != Step::none && step == script_.fail_at;
      if (fails && script_.how == How::refused) {
        return make_error(step == Step::apply ? Errc::already_exists : Errc::internal, op + " refused on " + host_);
      }
      if (fails && script_.how == How::lost && step != Step::apply) return lose(op);
      if (fails && script_.how == How::malformed) {
        if (step == Step::status) return json{{"addresses", "10.0.0.1"}};
        if (step == Step::apply) return json{{"fault", {{"name", "p"}}}};  // installed, but no id
      }
      switch (step) {
        case Step::hello: return json{{"protocol", 1}};
        case Step::status: {
          json st = {{"daemon", "faultlined"}};
          if (!script_.addresses.empty()) st["addresses"] = script_.addresses;
          return st;
        }
        case Step::apply: {
          std::lock_guard lock(net_.mu_);
          auto& held = net_.faults_[host_];
          const uint64_t id = id_base(host_) + held.size() + 1;
          held.insert(id);
          if (fails) return lose(op);  // the reply is lost after the fault went in
          return json{{"fault", {{"id", id}, {"name", params["fault"].value("name", "")}}}};
        }
        case Step::heal: {
          std::lock_guard lock(net_.mu_);
          const uint64_t id = std::stoull(params["fault"].get<std::string>());
          if (net_.faults_[host_].erase(id) == 0) return make_error(Errc::not_found, "no fault " + params.dump());
          return json{{"healed", {id}}};
        }
        default: return make_error(Errc::invalid_argument, "unexpected op " + op);
      }
    }
    bool lost() const override { return lost_; }

   private:
    Error lose(const std::string& op) {
      lost_ = true;
      return make_error(Errc::target_unavailable, "connection closed while waiting for the reply to " + op);
    }
    FakeNet& net_;
    std::string host_;
    Script script_;
    bool connected_ = false;
    bool lost_ = false;
  };

  mutable std::mutex mu_;
  std::map<std::string, Script> scripts_;
  std::map<std::string, std::set<uint64_t>> faults_;
  std::map<std::string, std::string> sockets_;
  std::vector<Request> log_;
};

struct Line {
  int code;
  std::string message;
  bool foreign;
};

// What faultctl would print.
struct Printed {
  std::string out, notes;
  std::vector<Line> failures;

  FanOutOutput output() {
    FanOutOutput o;
    o.out = [this](const std::string& s) {
      out += s;
      return 0;
    };
    o.note = [this](const std::string& s) { notes += s; };
    o.fail = [this](int code, const std::string& m, bool foreign) {
      failures.push_back({code, m, foreign});
      return code;
    };
    o.shown_part = [](const std::string&, const json& r) -> Result<json> { return r; };
    o.render = [](const Invocation&, const std::string& op, const json& r) -> Result<std::string> {
      return op + ": " + r.dump() + "\n";
    };
    return o;
  }
  std::vector<std::string> messages() const {
    std::vector<std::string> m;
    for (const auto& l : failures) m.push_back(l.message);
    return m;
  }
  bool has(const std::string& message) const {
    for (const auto& l : failures) {
      if (l.message == message) return true;
    }
    return false;
  }
};

std::string dump(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "  " + x + "\n";
  return s;
}

Invocation invocation(const std::vector<std::string>& args) {
  auto r = parse_args(args, nullptr);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Invocation{};
}

std::vector<Host> hosts(size_t n) {
  std::vector<Host> out;
  for (size_t i = 1; i <= n; ++i) out.push_back({"", "10.200.0." + std::to_string(i), 0, ""});
  return out;
}

std::string name(size_t i) { return "10.200.0." + std::to_string(i); }

// A partition of the first two hosts from the other two; with narrowing each host needs its
// addresses, so the status step is taken.
const std::vector<std::string> kPartition = {"partition", "--side", "10.200.0.1,10.200.0.2", "--side",
                                             "10.200.0.3,10.200.0.4", "--name", "p", "--for", "2m"};
const std::vector<std::string> kLoss = {"loss", "10", "--dst", "10.200.9.9", "--name", "l", "--for", "90s"};

class Transaction : public ::testing::Test {
 protected:
  static constexpr size_t kHosts = 4;

  void SetUp() override {
    for (size_t i = 1; i <= kHosts; ++i) net_.script(name(i), Script{Step::none, How::refused, {name(i) + "/32"}});
  }
  int run(const std::vector<std::string>& args, bool narrow = true, size_t n = kHosts) {
    hosts_ = hosts(n);
    return fan_out(invocation(args), hosts_, narrow, net_.connector(), printed_.output());
  }
  void fail(size_t host, Step step, How how = How::refused) {
    Script s{step, how, {name(host) + "/32"}};
    net_.script(name(host), s);
  }
  size_t applies() const {
    size_t n = 0;
    for (size_t i = 1; i <= hosts_.size(); ++i) n += net_.requests(name(i), "apply").size();
    return n;
  }
  // Every host is back to no fault, and none was asked to heal one it never got.
  void expect_all_clear(size_t except = 0) const {
    for (size_t i = 1; i <= hosts_.size(); ++i) {
      if (i == except) continue;
      EXPECT_TRUE(net_.faults(name(i)).empty()) << name(i) << " still holds a fault\n" << dump(printed_.messages());
    }
  }

  FakeNet net_;
  Printed printed_;
  std::vector<Host> hosts_;
};

TEST_F(Transaction, EveryHostAppliesItsOwnPartAndNoneIsHealed) {
  ASSERT_EQ(run(kPartition), kFanOutOk) << dump(printed_.messages());
  EXPECT_TRUE(printed_.failures.empty()) << dump(printed_.messages());
  for (size_t i = 1; i <= kHosts; ++i) {
    const auto a = net_.requests(name(i), "apply");
    ASSERT_EQ(a.size(), 1u) << name(i);
    // Narrowed: the side that holds the host is cut down to the host's own address.
    EXPECT_EQ(a[0].params["fault"]["sides"][i <= 2 ? 0 : 1]["cidrs"], json::array({name(i) + "/32"})) << a[0].params;
    EXPECT_EQ(net_.faults(name(i)).size(), 1u);
    EXPECT_TRUE(net_.requests(name(i), "heal").empty());
    EXPECT_EQ(net_.socket(name(i)), kDefaultSocket);
  }
  EXPECT_NE(printed_.out.find("HOST"), std::string::npos) << printed_.out;
  EXPECT_NE(printed_.out.find(name(3) + "  " + std::to_string(FakeNet::id_base(name(3)) + 1)), std::string::npos)
      << printed_.out;
}

TEST_F(Transaction, AnUnreachableHostStopsEverythingBeforeAnyApply) {
  fail(3, Step::connect);
  EXPECT_EQ(run(kPartition), kFanOutUnreachable);
  EXPECT_EQ(applies(), 0u);
  EXPECT_TRUE(net_.requests(name(3), "hello").empty());
  EXPECT_TRUE(printed_.has(name(3) + ": ssh: connection refused")) << dump(printed_.messages());
  EXPECT_TRUE(printed_.has("nothing was applied")) << dump(printed_.messages());
  EXPECT_EQ(printed_.failures.size(), 2u) << dump(printed_.messages());
  EXPECT_TRUE(printed_.out.empty());
  // Each line carries the status faultctl exits with: -o json's error object reports the first
  // one's as its exit_status and code ("unreachable"), which must agree with the exit.
  for (const auto& l : printed_.failures) EXPECT_EQ(l.code, kFanOutUnreachable) << l.message;
}

TEST_F(Transaction, ARefusedHelloStopsEverythingBeforeAnyApply) {
  fail(2, Step::hello);
  EXPECT_EQ(run(kLoss), kFanOutRefused);
  EXPECT_EQ(applies(), 0u);
  EXPECT_TRUE(printed_.has(name(2) + ": internal: hello refused on " + name(2))) << dump(printed_.messages());
  EXPECT_TRUE(printed_.has("nothing was applied"));
}

class AddressQuery : public Transaction, public ::testing::WithParamInterface<How> {};

TEST_P(AddressQuery, FailingOnOneHostStopsEverythingBeforeAnyApply) {
  fail(4, Step::status, GetParam());
  EXPECT_EQ(run(kPartition), GetParam() == How::lost ? kFanOutUnreachable : kFanOutRefused);
  EXPECT_EQ(applies(), 0u);
  EXPECT_TRUE(printed_.has("nothing was applied")) << dump(printed_.messages());
  ASSERT_EQ(printed_.failures.size(), 2u) << dump(printed_.messages());
  EXPECT_EQ(printed_.failures[0].message.rfind(name(4) + ": ", 0), 0u) << dump(printed_.messages());
}

INSTANTIATE_TEST_SUITE_P(Transaction, AddressQuery, ::testing::Values(How::refused, How::lost, How::malformed),
                         [](const auto& info) {
                           return info.param == How::refused ? "Refused"
                                  : info.param == How::lost  ? "Lost"
                                                             : "Malformed";
                         });

TEST_F(Transaction, WithoutNarrowingNoHostIsAskedForItsAddresses) {
  ASSERT_EQ(run(kPartition, false), kFanOutOk);
  for (size_t i = 1; i <= kHosts; ++i) {
    EXPECT_TRUE(net_.requests(name(i), "status").empty());
    const auto a = net_.requests(name(i), "apply");
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].params["fault"]["sides"][0]["cidrs"], json::array({"10.200.0.1/32", "10.200.0.2/32"}));
  }
}

// Past the first wave of kMaxParallelHosts hosts, the last host failing still stops them all.
TEST_F(Transaction, TheLastHostOfManyFailingStopsEveryWave) {
  const size_t n = kMaxParallelHosts + 8;
  for (size_t i = 1; i <= n; ++i) net_.script(name(i), Script{});
  fail(n, Step::connect);
  EXPECT_EQ(run(kLoss, true, n), kFanOutUnreachable);
  EXPECT_EQ(applies(), 0u);
  for (size_t i = 1; i < n; ++i) EXPECT_EQ(net_.requests(name(i), "hello").size(), 1u) << name(i);
}

TEST_F(Transaction, ARefusedApplyIsRolledBackOnEveryOtherHostByItsOwnId) {
  fail(3, Step::apply);
  EXPECT_EQ(run(kPartition), kFanOutRefused);
  EXPECT_TRUE(printed_.has(name(3) + ": already_exists: apply refused on " + name(3))) << dump(printed_.messages());
  for (size_t i : {1, 2, 4}) {
    const std::string id = std::to_string(FakeNet::id_base(name(i)) + 1);
    const auto h = net_.requests(name(i), "heal");
    ASSERT_EQ(h.size(), 1u) << name(i);
    EXPECT_EQ(h[0].params, (json{{"fault", id}})) << name(i);
    EXPECT_TRUE(printed_.has("healed fault " + id + " on " + name(i) + ", where it had been applied"))
        << dump(printed_.messages());
  }
  EXPECT_TRUE(net_.requests(name(3), "heal").empty());
  expect_all_clear();
  for (const auto& l : printed_.failures) EXPECT_EQ(l.code, kFanOutRefused) << l.message;
  EXPECT_TRUE(printed_.out.empty()) << printed_.out;
}

TEST_F(Transaction, ALostApplyReplyIsNotHealedThereAndSaysWhenItEnds) {
  fail(2, Step::apply, How::lost);
  EXPECT_EQ(run(kPartition), kFanOutUnreachable);
  // The fault went in before the reply was lost; nobody can tell, so it ends with its duration.
  EXPECT_EQ(net_.faults(name(2)).size(), 1u);
  EXPECT_TRUE(net_.requests(name(2), "heal").empty());
  EXPECT_TRUE(printed_.has(name(2) + ": connection closed while waiting for the reply to apply; if the fault was "
                           "applied there before the connection broke, it ends by itself within 2m"))
      << dump(printed_.messages());
  expect_all_clear(2);
  for (size_t i : {1, 3, 4}) EXPECT_EQ(net_.requests(name(i), "heal").size(), 1u) << name(i);
  for (const auto& l : printed_.failures) EXPECT_EQ(l.code, kFanOutUnreachable) << l.message;
}

TEST_F(Transaction, AnApplyReplyWithoutAnIdIsAFailureAndNotHealed) {
  fail(1, Step::apply, How::malformed);
  EXPECT_EQ(run(kLoss), kFanOutRefused);
  EXPECT_TRUE(printed_.has(name(1) +
                           ": internal: malformed reply from faultlined: no fault id; the fault may be in place there"))
      << dump(printed_.messages());
  EXPECT_TRUE(net_.requests(name(1), "heal").empty());
  expect_all_clear(1);
}

TEST_F(Transaction, AHealThatFailsDuringTheRollbackIsReportedAndTheRestStillHealed) {
  fail(4, Step::apply);
  // Host 1 refuses the heal: its fault stays, with its end time named.
  net_.script(name(1), Script{Step::heal, How::refused, {name(1) + "/32"}});
  EXPECT_EQ(run(kLoss), kFanOutRefused);
  const std::string id1 = std::to_string(FakeNet::id_base(name(1)) + 1);
  EXPECT_TRUE(printed_.has("could not heal fault " + id1 + " on " + name(1) + ": internal: heal refused on " +
                           name(1) + "; it ends by itself within 1m30s"))
      << dump(printed_.messages());
  EXPECT_EQ(net_.faults(name(1)).size(), 1u);
  for (size_t i : {2, 3}) {
    EXPECT_TRUE(printed_.has("healed fault " + std::to_string(FakeNet::id_base(name(i)) + 1) + " on " + name(i) +
                             ", where it had been applied"))
        << dump(printed_.messages());
  }
  expect_all_clear(1);
}

TEST_F(Transaction, AHostOutsideThePartitionIsSkippedAndNeverHealed) {
  net_.script(name(4), Script{Step::none, How::refused, {"192.0.2.1/32"}});
  fail(3, Step::apply);
  EXPECT_EQ(run(kPartition), kFanOutRefused);
  EXPECT_TRUE(net_.requests(name(4), "apply").empty());
  EXPECT_TRUE(net_.requests(name(4), "heal").empty());
  expect_all_clear();
}

TEST_F(Transaction, EachHostUsesItsOwnSocketOrTheCommands) {
  hosts_ = hosts(2);
  hosts_[1].socket = "/srv/fl.sock";
  ASSERT_EQ(fan_out(invocation({"--socket", "/run/x.sock", "status"}), hosts_, true, net_.connector(),
                    printed_.output()),
            kFanOutOk);
  EXPECT_EQ(net_.socket(name(1)), "/run/x.sock");
  EXPECT_EQ(net_.socket(name(2)), "/srv/fl.sock");
}

TEST_F(Transaction, OtherCommandsAnswerHostByHost) {
  fail(2, Step::connect);
  EXPECT_EQ(run({"status"}), kFanOutUnreachable);
  EXPECT_EQ(printed_.out.rfind("== " + name(1) + "\nstatus: ", 0), 0u) << printed_.out;
  EXPECT_NE(printed_.out.find("\n== " + name(2) + "\n\n== " + name(3) + "\nstatus: "), std::string::npos)
      << printed_.out;
  ASSERT_EQ(printed_.failures.size(), 1u);
  EXPECT_EQ(printed_.failures[0].message, name(2) + ": ssh: connection refused");
  EXPECT_EQ(applies(), 0u);
}

}  // namespace
}  // namespace fl::cli
