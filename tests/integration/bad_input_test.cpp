// Every invalid request we can name (issue 13 §2), sent to one daemon that already has faults in
// force: each is refused with the expected code and a message that names the field, and the
// kernel state of both target namespaces, the daemon's own BPF objects and the pin directory are
// the same afterwards as before.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "integration/lab_util.h"

namespace fl::test {
namespace {

struct BadCase {
  const char* name;
  json fault;               // the "fault" member of an apply; null: `request` is sent instead
  std::string code;         // the error code expected
  std::string field;        // a substring the message must hold: the field it is about
  json request = nullptr;   // a whole request (without id), for envelope errors
};

json side(const std::string& name, std::vector<std::string> cidrs) {
  return json{{"name", name}, {"cidrs", cidrs}};
}

// The ids of the BPF programs, maps and links the daemon holds, from its fds' fdinfo (bpftool
// 7.1 cannot tell which process holds what; other daemons of other tests may run meanwhile).
std::set<uint32_t> daemon_bpf_ids(pid_t pid, const std::string& kind) {
  std::set<uint32_t> ids;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec).string();
    if (ec || target != "anon_inode:bpf-" + kind) continue;
    std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + e.path().filename().string());
    std::string line;
    while (std::getline(info, line)) {
      if (line.rfind(kind + "_id:", 0) == 0) ids.insert(static_cast<uint32_t>(std::stoul(line.substr(kind.size() + 4))));
    }
  }
  return ids;
}

// What the kernel holds on our behalf, as text to diff. tc's HTB line carries a packet counter
// (direct_packets_stat) that stray neighbour discovery may move; it is cut out.
std::string kernel_snapshot(const Lab& lab, pid_t daemon) {
  std::string out;
  for (int i = 0; i < lab.size(); ++i) {
    const std::string ns = lab.ns(i);
    out += "== " + ns + "\n";
    out += sh("tc -n " + ns + " qdisc show | sed 's/direct_packets_stat [0-9]*//'").out;
    for (const char* dir : {"ingress", "egress"}) out += sh("tc -n " + ns + " filter show dev eth0 " + dir).out;
    out += sh("tc -n " + ns + " class show dev eth0").out;
    out += sh("ip -n " + ns + " -br link show").out;
    const Hooks h = hooks_on(ns, "eth0");
    out += "hooks on eth0: tcx " + std::to_string(h.tcx) + ", cls_bpf " + std::to_string(h.tc_filters) +
           ", clsact " + std::to_string(h.clsact) + "\n";
  }
  for (const std::string kind : {"prog", "map", "link"}) {
    const auto ids = daemon_bpf_ids(daemon, kind);
    out += "== bpftool " + kind + " of faultlined\n";
    json all = json::parse(sh("bpftool -j " + kind + " show").out, nullptr, false);
    if (!all.is_array()) all = json::array();
    for (const auto& o : all) {
      if (ids.count(o.value("id", 0u)) == 0) continue;
      out += std::to_string(o.value("id", 0u)) + " " + o.value("name", o.value("type", std::string())) + "\n";
    }
  }
  out += "== pins\n" + sh("find /sys/fs/bpf/faultline 2>&1 | sort").out;
  return out;
}

TEST(BadInput, EveryInvalidRequestIsRefusedWithItsCodeAndLeavesTheKernelAlone) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  Lab lab(2);
  Daemon d;
  const json targets = {lab.target(0), lab.target(1)};

  // State worth disturbing: a partition (data path) and a rate fault (an HTB tree) on both nodes.
  json keep = {{"kind", "partition"}, {"name", "keep"}, {"targets", targets}, {"duration_ms", 300000},
               {"sides", {side("a", {Lab::ip4(0)}), side("b", {Lab::ip4(1)})}}};
  ASSERT_FALSE(d.call("apply", {{"fault", keep}}).is_null());
  json shaped = {{"kind", "rate"}, {"name", "shaped"}, {"targets", targets}, {"duration_ms", 300000},
                 {"shape", {{"rate_bps", 10000000}}}, {"match", {{"dst", {"10.200.9.0/24"}}}}};
  ASSERT_FALSE(d.call("apply", {{"fault", shaped}}).is_null());
  ASSERT_FALSE(lab.ping(0, 1)) << "the partition is on";

  // A valid partition to start each case from; each case breaks one thing.
  auto part = [&](json sides) {
    return json{{"kind", "partition"}, {"targets", targets}, {"duration_ms", 60000}, {"sides", sides}};
  };
  auto two = [&](std::vector<std::string> a, std::vector<std::string> b) {
    return part({side("x", std::move(a)), side("y", std::move(b))});
  };
  auto with = [](json f, const std::string& key, json v) {
    f[key] = std::move(v);
    return f;
  };
  auto shaping = [&](const std::string& kind, json shape) {
    return json{{"kind", kind}, {"targets", targets}, {"duration_ms", 60000}, {"shape", shape}};
  };
  const json ok2 = two({"10.200.0.1"}, {"10.200.0.2"});
  const std::string long_name(64, 'n');

  const std::vector<BadCase> cases = {
      // Addresses.
      {"octet above 255", two({"10.200.0.256"}, {"10.200.0.2"}), "invalid_argument", "fault.sides[0].cidrs[0]"},
      {"host bits set", two({"10.200.0.1/24"}, {"10.200.0.2"}), "invalid_argument", "fault.sides[0].cidrs[0]"},
      {"IPv4 prefix 33", two({"10.200.0.0/33"}, {"10.200.0.2"}), "invalid_argument", "fault.sides[0].cidrs[0]"},
      {"IPv6 prefix 129", two({"fd00:200::/129"}, {"10.200.0.2"}), "invalid_argument", "fault.sides[0].cidrs[0]"},
      {"not an address", two({"banana"}, {"10.200.0.2"}), "invalid_argument", "fault.sides[0].cidrs[0]"},
      {"empty CIDR string", two({""}, {"10.200.0.2"}), "invalid_argument", "fault.sides[0].cidrs[0]"},
      {"CIDR not a string", part({{{"name", "x"}, {"cidrs", {42}}}, side("y", {"10.200.0.2"})}), "invalid_argument",
       "fault.sides[0].cidrs[0]"},
      // Sides holding everything: every address of the family is then in that side, and a node
      // in two sides is cut from neither, so nothing of that family would be cut.
      {"side 0.0.0.0/0", two({"0.0.0.0/0"}, {"10.200.0.2"}), "invalid_argument", "sides[0].cidrs[0]"},
      {"side 0.0.0.0/0 + ::/0", two({"10.200.0.2"}, {"fd00:200::1", "0.0.0.0/0", "::/0"}), "invalid_argument",
       "sides[1].cidrs[1]"},
      {"side ::/0", two({"fd00:200::2"}, {"::/0"}), "invalid_argument", "sides[1].cidrs[0]"},
      {"side 0.0.0.0/0 against IPv6 only", two({"0.0.0.0/0"}, {"fd00:200::2"}), "invalid_argument",
       "sides[0].cidrs[0]"},
      {"isolate 0.0.0.0/0",
       json{{"kind", "isolate"}, {"targets", targets}, {"duration_ms", 60000}, {"sides", {side("all", {"0.0.0.0/0"})}}},
       "invalid_argument", "sides[0].cidrs[0]"},
      {"isolate 0.0.0.0/0 and ::/0",
       json{{"kind", "isolate"}, {"targets", targets}, {"duration_ms", 60000},
            {"sides", {side("all", {"10.200.0.1", "::/0"})}}},
       "invalid_argument", "sides[0].cidrs[1]"},
      {"identical sides", two({"10.200.0.2"}, {"10.200.0.2"}), "invalid_argument", "sides[1]"},
      // Empty sides.
      {"empty side", two({"10.200.0.1"}, {}), "invalid_argument", "sides[1].cidrs"},
      {"one side", part({side("x", {"10.200.0.1"})}), "invalid_argument", "sides"},
      {"no sides", part(json::array()), "invalid_argument", "sides"},
      {"isolate with no side", json{{"kind", "isolate"}, {"targets", targets}, {"duration_ms", 60000}}, "invalid_argument",
       "sides"},
      // Shaping values.
      {"jitter above delay", shaping("delay", {{"delay_us", 10000}, {"jitter_us", 20000}}), "invalid_argument", "jitter"},
      {"jitter without delay", shaping("shape", {{"jitter_us", 1000}}), "invalid_argument", "jitter"},
      {"delay above 60s", shaping("delay", {{"delay_us", 61000000}}), "invalid_argument", "delay"},
      {"delay 0", shaping("delay", {{"delay_us", 0}}), "invalid_argument", "delay"},
      {"rate 0", shaping("rate", {{"rate_bps", 0}}), "invalid_argument", "rate"},
      {"rate above 400gbit", shaping("rate", {{"rate_bps", 500000000000ull}}), "invalid_argument", "rate"},
      {"negative rate", shaping("rate", {{"rate_bps", -1}}), "invalid_argument", "fault.shape.rate_bps"},
      {"corrupt 101%", shaping("corrupt", {{"corrupt_percent", 101}}), "invalid_argument", "corrupt"},
      {"corrupt -1%", shaping("corrupt", {{"corrupt_percent", -1}}), "invalid_argument", "corrupt"},
      {"corrupt 0%", shaping("corrupt", {{"corrupt_percent", 0}}), "invalid_argument", "corrupt"},
      {"shape loss 150%", shaping("shape", {{"loss_percent", 150}}), "invalid_argument", "loss"},
      {"duplicate 1e308%", shaping("duplicate", {{"duplicate_percent", 1e308}}), "invalid_argument", "duplicate"},
      {"loss 0%",
       json{{"kind", "loss"}, {"targets", targets}, {"duration_ms", 60000}, {"loss", {{"percent", 0}}}},
       "invalid_argument", "loss"},
      {"loss -5%",
       json{{"kind", "loss"}, {"targets", targets}, {"duration_ms", 60000}, {"loss", {{"percent", -5}}}},
       "invalid_argument", "loss"},
      {"loss 100.5%",
       json{{"kind", "loss"}, {"targets", targets}, {"duration_ms", 60000}, {"loss", {{"percent", 100.5}}}},
       "invalid_argument", "loss"},
      {"loss correlation 100",
       json{{"kind", "loss"}, {"targets", targets}, {"duration_ms", 60000},
            {"loss", {{"percent", 10}, {"correlation", 100}}}},
       "invalid_argument", "correlation"},
      // Lifetimes.
      {"duration 0", with(ok2, "duration_ms", 0), "invalid_argument", "duration"},
      {"duration 8 days", with(ok2, "duration_ms", 8ull * 24 * 3600 * 1000), "invalid_argument", "duration"},
      {"duration 2^64-1", with(ok2, "duration_ms", UINT64_MAX), "invalid_argument", "duration"},
      {"duration 1e30", with(ok2, "duration_ms", 1e30), "invalid_argument", "fault.duration_ms"},
      {"duration negative", with(ok2, "duration_ms", -1), "invalid_argument", "fault.duration_ms"},
      // Ports and protocols.
      {"port 70000", with(ok2, "match", {{"proto", "tcp"}, {"dport", "70000"}}), "invalid_argument", "dport"},
      {"port range reversed", with(ok2, "match", {{"proto", "udp"}, {"sport", "2000-1000"}}), "invalid_argument",
       "sport"},
      {"port with icmp", with(ok2, "match", {{"proto", "icmp"}, {"dport", "80"}}), "invalid_argument", "dport"},
      {"unknown proto", with(ok2, "match", {{"proto", "sctp"}}), "invalid_argument", "proto"},
      // Interfaces and targets.
      {"unknown interface", with(ok2, "devs", {"nosuchdev0"}), "target_unavailable", "nosuchdev0"},
      {"interface name of 16", with(ok2, "devs", {std::string(16, 'e')}), "invalid_argument", "devs[0]"},
      {"interface name with '/'", with(ok2, "devs", {"eth0/1"}), "invalid_argument", "devs[0]"},
      {"duplicate interface", with(ok2, "devs", {"eth0", "eth0"}), "invalid_argument", "devs"},
      {"unknown namespace", with(ok2, "targets", {"netns:fltest-no-such-ns-" + std::to_string(getpid())}),
       "target_unavailable", "fltest-no-such-ns"},
      {"bad target", with(ok2, "targets", {"vm:1"}), "invalid_argument", "targets[0]"},
      {"duplicate target", with(ok2, "targets", {lab.target(1), lab.target(1)}), "invalid_argument", "targets"},
      // Names.
      {"fault name of 64", with(ok2, "name", long_name), "invalid_argument", "name"},
      {"fault name all digits", with(ok2, "name", "123"), "invalid_argument", "name"},
      {"fault name with space", with(ok2, "name", "a b"), "invalid_argument", "name"},
      {"side name of 64", part({side(long_name, {"10.200.0.1"}), side("y", {"10.200.0.2"})}), "invalid_argument",
       "sides[0].name"},
      {"duplicate side names", part({side("x", {"10.200.0.1"}), side("x", {"10.200.0.2"})}), "invalid_argument",
       "duplicate side name"},
      {"fault name in use", with(ok2, "name", "keep"), "already_exists", "keep"},
      {"fault name in use by a shaping fault", with(shaping("delay", {{"delay_us", 1000}}), "name", "shaped"),
       "already_exists", "shaped"},
      // The envelope and the spec's shape.
      {"unknown kind", with(ok2, "kind", "blackhole"), "invalid_argument", "fault.kind"},
      {"misspelt field", with(ok2, "sidez", 1), "invalid_argument", "sidez"},
      {"one_way on isolate",
       json{{"kind", "isolate"}, {"targets", targets}, {"duration_ms", 60000}, {"one_way", true},
            {"sides", {side("n", {"10.200.0.2"})}}},
       "invalid_argument", "one_way"},
      {"matrix pair to an unknown side",
       json{{"kind", "matrix"}, {"targets", targets}, {"duration_ms", 60000},
            {"sides", {side("eu", {"10.200.0.1"}), side("us", {"10.200.0.2"})}},
            {"pairs", {{{"from", "eu"}, {"to", "asia"}, {"shape", {{"delay_us", 1000}}}}}}},
       "invalid_argument", "pairs[0]"},
      {"no fault member", nullptr, "invalid_request", "fault", json{{"op", "apply"}}},
      {"fault not an object", nullptr, "invalid_request", "fault", json{{"op", "apply"}, {"fault", "keep"}}},
      {"unknown op", nullptr, "unknown_op", "bogus", json{{"op", "bogus"}}},
  };

  const std::string before = kernel_snapshot(lab, d.pid());
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json req = c.fault.is_null() ? c.request : json{{"op", "apply"}, {"fault", c.fault}};
    json reply = d.request(req);
    ASSERT_TRUE(reply.is_object()) << reply.dump();
    EXPECT_FALSE(reply.value("ok", true)) << "accepted: " << req.dump() << " -> " << reply.dump();
    if (reply.value("ok", true)) {
      // An accepted case must not leave a fault behind for the next one (or the snapshot).
      d.call_error("heal", {{"fault", reply["result"]["fault"]["id"].dump()}});
      continue;
    }
    const json& e = reply["error"];
    EXPECT_EQ(e.value("code", ""), c.code) << e.dump();
    EXPECT_NE(e.value("message", "").find(c.field), std::string::npos)
        << "the message does not name " << c.field << ": " << e.dump();
  }
  const std::string after = kernel_snapshot(lab, d.pid());
  EXPECT_EQ(before, after) << "the kernel state changed";
  // The snapshot must see what it guards: the rate fault's tree and the daemon's own programs.
  EXPECT_NE(before.find("htb"), std::string::npos) << before;
  const std::string head = "== bpftool prog of faultlined\n";
  const auto from = before.find(head), to = before.find("== bpftool map");
  ASSERT_TRUE(from != std::string::npos && to != std::string::npos) << before;
  EXPECT_GT(to, from + head.size()) << "no program of the daemon's pid in bpftool's list:\n" << before;

  // The faults in force before are the only ones, and still work.
  json list = d.call("list");
  ASSERT_TRUE(list["faults"].is_array()) << list.dump();
  std::vector<std::string> names;
  for (const auto& f : list["faults"]) names.push_back(f.value("name", ""));
  EXPECT_EQ(names, (std::vector<std::string>{"keep", "shaped"}));
  EXPECT_FALSE(lab.ping(0, 1)) << "the partition is still on";
  d.call("heal", {{"all", true}});
  EXPECT_TRUE(eventually([&] { return lab.ping(0, 1); }, std::chrono::seconds(3)));
}

}  // namespace
}  // namespace fl::test
