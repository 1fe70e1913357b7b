// The journal against hostile input on the real kernel: an interface name that is not UTF-8
// (anyone with a namespace of their own can make one), and a journal with entries that cannot be
// read. Neither may wedge the daemon or leave anything of ours in the kernel.
#include <dirent.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "integration/lab_util.h"
#include "kernel/features.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

const std::string kWeird("\xff\xfe", 2);
const std::string kWeirdShell = "\"$(printf '\\377\\376')\"";

json partition(const json& targets) {
  return {{"kind", "partition"},
          {"sides", {{{"name", "a"}, {"cidrs", {Lab::ip4(0)}}}, {{"name", "b"}, {"cidrs", {Lab::ip4(1)}}}}},
          {"targets", targets},
          {"duration_ms", 60000}};
}

uint64_t apply_ok(Daemon& d, const json& fault) {
  json r = d.call("apply", {{"fault", fault}});
  return r.is_null() ? 0 : r["fault"]["id"].get<uint64_t>();
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int ours_on(const std::string& ns, const std::string& dev) {
  Hooks h = hooks_on(ns, dev);
  return h.tcx + h.tc_filters;
}

std::string root_qdisc(const std::string& ns, const std::string& dev = "eth0") {
  return sh("tc -n " + ns + " qdisc show dev " + dev + " root").out;
}

bool has_ifb(const std::string& ns) { return sh("ip -n " + ns + " -o link show").out.find("flifb") != std::string::npos; }

// ns gets a veth pair d0 <-> "\xff\xfe": three Ethernet interfaces for a fault without --dev.
void add_weird_veth(const std::string& ns) {
  Cmd c = sh("ip -n " + ns + " link add d0 type veth peer name " + kWeirdShell);
  ASSERT_EQ(c.status, 0) << c.out;
}

class HostileJournal : public AttachModeTest {};

TEST_P(HostileJournal, InterfaceNameThatIsNotUtf8BreaksNothing) {
  Lab lab(2);
  add_weird_veth(lab.ns(0));
  Daemon d(opts());
  json r = d.call("apply", {{"fault", partition({lab.target(0)})}});
  ASSERT_FALSE(r.is_null()) << read_file(d.log_path());
  const uint64_t first = r["fault"]["id"].get<uint64_t>();
  EXPECT_EQ(r["fault"]["interfaces"].size(), 3u) << r.dump(-1, ' ', false, json::error_handler_t::replace);
  EXPECT_FALSE(lab.ping(0, 1));
  EXPECT_EQ(ours_on(lab.ns(0), kWeird), 2) << "the fault is not on the interface with the odd name";
  // The journal holds the name exactly, in a file any JSON reader takes.
  std::string text = read_file(d.state_dir() + "/journal.json");
  EXPECT_FALSE(json::parse(text, nullptr, false).is_discarded()) << text;
  EXPECT_NE(text.find("\"ifname_hex\": \"fffe\""), std::string::npos) << text;
  // Every reply that names the interface can still be written.
  EXPECT_FALSE(d.call("get", {{"fault", std::to_string(first)}}).is_null());
  EXPECT_FALSE(d.call("list").is_null());

  // Another, clean namespace still takes faults: the journal is not wedged.
  const uint64_t second = apply_ok(d, partition({lab.target(1)}));
  ASSERT_NE(second, 0u) << read_file(d.log_path());
  ASSERT_FALSE(d.call("heal", {{"fault", std::to_string(first)}}).is_null());
  EXPECT_EQ(ours_on(lab.ns(0), kWeird), 0) << "heal left our hooks on the interface with the odd name";
  EXPECT_EQ(ours_on(lab.ns(0), "eth0"), 0);
  EXPECT_FALSE(lab.ping(0, 1)) << "the fault on the clean namespace ended with the other one";

  // SIGTERM heals everything, the odd name included, and exits 0.
  ASSERT_NE(apply_ok(d, partition({lab.target(0)})), 0u);
  EXPECT_EQ(d.terminate(), 0) << read_file(d.log_path());
  for (const auto& [ns, dev] : std::vector<std::pair<std::string, std::string>>{
           {lab.ns(0), "eth0"}, {lab.ns(0), "d0"}, {lab.ns(0), kWeird}, {lab.ns(1), "eth0"}}) {
    Hooks h = hooks_on(ns, dev);
    EXPECT_EQ(h.tcx + h.tc_filters, 0) << ns << " " << dev;
    EXPECT_FALSE(h.clsact) << ns << " " << dev;
  }
  EXPECT_TRUE(lab.ping(0, 1));
  EXPECT_EQ(read_file(d.log_path()).find("terminate called"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Modes, HostileJournal, ::testing::Values("tcx", "tc"));

// What outlives a SIGKILL (legacy filters, shaping trees) on an interface with such a name is
// found again from the journal by the next start.
TEST(HostileJournalTc, RestartRemovesLeftoversOnAnInterfaceNamedInBytes) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  if (kernel::probe_features().htb != kernel::Tri::yes) GTEST_SKIP() << "this kernel has no HTB";
  Lab lab(2);
  add_weird_veth(lab.ns(0));
  Daemon::Options o;
  o.attach_mode = "tc";
  Daemon d(o);
  ASSERT_NE(apply_ok(d, partition({lab.target(0)})), 0u);
  Cmd c = faultctl(d, "rate 10mbit --dst " + Lab::ip4(1) + " --target " + lab.target(0) + " --for 60s");
  ASSERT_EQ(c.status, 0) << c.out;
  d.kill9();
  ASSERT_EQ(hooks_on(lab.ns(0), kWeird).tc_filters, 2);
  ASSERT_NE(root_qdisc(lab.ns(0), kWeirdShell).find("fa17:"), std::string::npos);
  d.start();
  EXPECT_TRUE(eventually([&] { return hooks_on(lab.ns(0), kWeird).tc_filters == 0; }, 2s));
  EXPECT_EQ(root_qdisc(lab.ns(0), kWeirdShell).find("fa17:"), std::string::npos) << root_qdisc(lab.ns(0), kWeirdShell);
  EXPECT_EQ(root_qdisc(lab.ns(0)).find("fa17:"), std::string::npos);
}

// A journal with entries that cannot be read: --cleanup removes what the good entries name, finds
// the rest by its marks (in its own namespace and the namespaces the journal names), keeps the
// file aside and says it failed.
TEST(HostileJournalTc, CleanupWithCorruptEntriesRemovesEverythingMarkedAndExitsNonZero) {
  if (!require_root()) GTEST_SKIP() << "needs root (network namespaces, BPF)";
  const bool shaping = kernel::probe_features().htb == kernel::Tri::yes;
  const bool ifb = kernel::probe_features().ifb == kernel::Tri::yes;
  Lab lab(2);
  Daemon::Options o;
  o.attach_mode = "tc";
  o.netns = lab.ns(1);  // "host" is ns(1): the sweep of the daemon's own namespace stays in the lab
  Daemon d(o);
  ASSERT_NE(apply_ok(d, partition({lab.target(0), "host"})), 0u) << read_file(d.log_path());
  if (shaping) {
    Cmd c = faultctl(d, std::string("rate 10mbit --direction ") + (ifb ? "both" : "egress") + " --dst " +
                            Lab::ip4(1) + " --target " + lab.target(0) + " --for 60s");
    ASSERT_EQ(c.status, 0) << c.out;
  }
  d.kill9();
  ASSERT_EQ(hooks_on(lab.ns(0), "eth0").tc_filters, 2);
  ASSERT_EQ(hooks_on(lab.ns(1), "eth0").tc_filters, 2);
  if (shaping) {
    ASSERT_NE(root_qdisc(lab.ns(0)).find("fa17:"), std::string::npos);
  }
  if (ifb) {
    ASSERT_TRUE(has_ifb(lab.ns(0)));
  }

  // Corrupt every entry but ns(0)'s attachment: the daemon's own namespace is then named by no
  // readable entry, and ns(0)'s tree and ifb by none of their own.
  const std::string path = d.state_dir() + "/journal.json";
  json j = json::parse(read_file(path));
  const std::string ns0 = "/run/netns/" + lab.ns(0);
  size_t corrupted = 0;
  for (auto& e : j["attachments"]) {
    bool keep = e["netns_path"] == ns0 && e.value("what", "attach") == "attach";
    if (keep) continue;
    if (e.value("what", "attach") == "ifb")
      e["netns_dev"] = "not a number";  // its namespace cannot be read either
    else if (e.value("what", "attach") == "root-qdisc")
      e["what"] = 42;
    else
      e["ifindex"] = "corrupt";
    corrupted++;
  }
  ASSERT_GE(corrupted, 1u);
  std::ofstream(path) << j.dump(1);

  Cmd c = sh("ip netns exec " + lab.ns(1) + " " FL_FAULTLINED_PATH " --cleanup --state-dir " + d.state_dir());
  EXPECT_NE(c.status, 0) << c.out;
  EXPECT_NE(c.out.find("entry "), std::string::npos) << c.out;
  EXPECT_EQ(hooks_on(lab.ns(0), "eth0").tc_filters, 0) << c.out;
  EXPECT_EQ(hooks_on(lab.ns(1), "eth0").tc_filters, 0) << c.out;
  EXPECT_EQ(root_qdisc(lab.ns(0)).find("fa17:"), std::string::npos) << root_qdisc(lab.ns(0));
  EXPECT_FALSE(has_ifb(lab.ns(0))) << sh("ip -n " + lab.ns(0) + " -o link show").out;
  // The file as it was is kept for inspection.
  std::string kept;
  if (DIR* dir = opendir(d.state_dir().c_str())) {
    while (dirent* de = readdir(dir))
      if (std::string(de->d_name).rfind("journal.json.bad-", 0) == 0) kept = d.state_dir() + "/" + de->d_name;
    closedir(dir);
  }
  ASSERT_FALSE(kept.empty()) << c.out;
  EXPECT_EQ(json::parse(read_file(kept), nullptr, false), j);
  // Nothing is left to fail on: the next cleanup succeeds.
  Cmd again = sh("ip netns exec " + lab.ns(1) + " " FL_FAULTLINED_PATH " --cleanup --state-dir " + d.state_dir());
  EXPECT_EQ(again.status, 0) << again.out;
}

}  // namespace
}  // namespace fl::test
