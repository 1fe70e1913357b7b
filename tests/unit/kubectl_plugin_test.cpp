// deploy/kubernetes/kubectl-faultline, run against a stand-in for kubectl and the API server.
// The plugin runs faultctl as root in a hostNetwork pod, so what it lets through decides what a
// slip of the keyboard can hit: every command that changes something is checked here down to
// the faultctl argv it would run, and that argv is handed to faultctl's own parser to see where
// faultctl would aim it.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cli/args.h"
#include "cli/fanout.h"
#include "unit/shell_util.h"

namespace fs = std::filesystem;

namespace {

using fl::test::quote;
using fl::test::Ran;
using fl::test::run_shell;
using fl::test::slurp;
using fl::test::TempDir;
using Args = std::vector<std::string>;
using json = nlohmann::json;

const fs::path kSrc = FL_SOURCE_DIR;
const fs::path kPlugin = kSrc / "deploy/kubernetes/kubectl-faultline";

constexpr const char* kUid = "7d1c2f0e-3b5a-4c8e-9f21-6a0b1c2d3e4f";
const std::string kPodTarget = std::string("pod-uid:") + kUid;
// What `kubectl exec` gets before faultctl's own arguments.
const Args kExecPrefix = {"exec", "--namespace", "faultline", "faultline-x7k2p", "-c", "faultlined", "--", "faultctl"};

constexpr const char* kMatrix =
    "sides: {a: [10.0.1.0/24], b: [10.0.2.0/24]}\n"
    "pairs:\n"
    "  - {from: a, to: b, delay: 10ms}\n";

// A fake `kubectl`: records each call's arguments (one per line, calls ended by "--end--") and
// answers from environment variables the test sets, as an API server and faultctl would.
constexpr const char* kFakeKubectl = R"(#!/usr/bin/env bash
# Stand-in for kubectl and the API server, written by kubectl_plugin_test.cpp.
{ printf '%s\n' "$@"; printf -- '--end--\n'; } >>"$FAKE_LOG"
while [[ $1 == --context || $1 == --kubeconfig ]]; do shift 2; done
case "$1 $2" in
"get pod")
	if [[ -n ${FAKE_POD_MISSING:-} ]]; then
		echo "Error from server (NotFound): pods \"$3\" not found" >&2
		exit 1
	fi
	printf '%b' "$FAKE_POD_INFO" ;;
"get pods") printf '%b' "${FAKE_DS_PODS:-}" ;;
exec*)
	if [[ " $* " == *" -i "* ]]; then cat >"$FAKE_STDIN"; fi
	if [[ " $* " == *" faultctl -o json get "* ]]; then
		printf '%s' "${FAKE_GET_OUT:-}"
		printf '%s' "${FAKE_GET_ERR:-}" >&2
		exit "${FAKE_GET_STATUS:-0}"
	fi
	echo "fake faultctl ran" ;;
*) echo "fake kubectl: unexpected call: $*" >&2; exit 99 ;;
esac
)";

// `faultctl -o json get` of a fault aimed at `targets`, laid out as faultctl prints it (the
// targets appear twice: the fault's and its spec's).
std::string fault_json(uint64_t id, const std::string& name, const std::vector<std::string>& targets) {
  json per_target = json::array();
  for (const auto& t : targets) per_target.push_back({{"target", t}, {"matched", 0}});
  json f = {{"id", id},
            {"name", name},
            {"kind", "delay"},
            {"state", "active"},
            {"targets", targets},
            {"per_target", per_target},
            {"interfaces",
             json::array({{{"target", targets.empty() ? "" : targets[0]}, {"dev", "eth0"}, {"ifindex", 2}}})},
            {"counters", {{"matched", 12}, {"dropped", 0}}},
            {"spec", {{"kind", "delay"}, {"name", name}, {"targets", targets}}}};
  return f.dump(2) + "\n";
}

class KubectlPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp.path.empty());
    fs::create_directories(tmp.path / "bin");
    {
      std::ofstream f(tmp.path / "bin/kubectl");
      f << kFakeKubectl;
    }
    fs::permissions(tmp.path / "bin/kubectl", fs::perms::owner_all);
    env["FAKE_LOG"] = (tmp.path / "calls.log").string();
    env["FAKE_STDIN"] = (tmp.path / "stdin").string();
    // node, uid, hostNetwork, phase: the answer to the plugin's jsonpath.
    env["FAKE_POD_INFO"] = std::string("node-2|") + kUid + "||Running";
    env["FAKE_DS_PODS"] = "faultline-x7k2p\\tRunning\\n";
    env["FAKE_GET_OUT"] = fault_json(7, "slow-cart", {kPodTarget});
  }

  // Runs the plugin; calls() then holds only this run's kubectl calls.
  Ran plugin(const Args& args) {
    std::ofstream(tmp.path / "calls.log", std::ios::trunc).close();
    std::string cmd = "env PATH=" + quote((tmp.path / "bin").string() + ":" + std::getenv("PATH"));
    for (const auto& [k, v] : env) cmd += " " + k + "=" + quote(v);
    cmd += " bash " + quote(kPlugin.string());
    for (const auto& a : args) cmd += " " + quote(a);
    return run_shell(cmd + " </dev/null");
  }

  // Every kubectl call, each as its argument list.
  std::vector<Args> calls() {
    std::vector<Args> all(1);
    std::istringstream in(slurp(tmp.path / "calls.log"));
    for (std::string line; std::getline(in, line);) {
      if (line == "--end--") all.emplace_back();
      else all.back().push_back(line);
    }
    all.pop_back();
    return all;
  }

  std::vector<Args> exec_calls() {
    std::vector<Args> out;
    for (auto& c : calls())
      if (!c.empty() && c[0] == "exec") out.push_back(c);
    return out;
  }

  Args exec_call() {
    auto e = exec_calls();
    return e.empty() ? Args{} : e.back();
  }

  // The faultctl argv of the last exec, as it would run in the faultline pod.
  Args faultctl_argv() {
    Args e = exec_call();
    auto at = std::find(e.begin(), e.end(), "faultctl");
    return at == e.end() ? Args{} : Args(at + 1, e.end());
  }

  TempDir tmp;
  std::map<std::string, std::string> env;
};

// faultctl's own reading of an argv: which daemon it talks to and what it asks for. `stdin` is
// what "matrix -" reads.
struct FaultctlView {
  bool ok = false;
  std::string error;
  bool remote_hosts = false;
  std::string socket;
  fl::cli::Invocation inv;
};

FaultctlView faultctl_view(const Args& argv, const std::string& stdin_text = "") {
  FaultctlView v;
  auto ex = fl::cli::extract_host_options(argv);
  if (!ex) {
    v.error = ex.error().message;
    return v;
  }
  v.remote_hosts = ex->hosts.any();
  auto read = [&](const std::string& path) -> fl::Result<std::string> {
    if (path == "-") return stdin_text;
    return fl::Error{fl::Errc::invalid_argument, "the plugin passed a file name: " + path};
  };
  auto inv = fl::cli::parse_args(ex->rest, nullptr, read);
  if (!inv) {
    v.error = inv.error().message;
    return v;
  }
  v.ok = true;
  v.socket = inv->socket;
  v.inv = std::move(*inv);
  return v;
}

std::vector<std::string> target_strings(const std::vector<fl::core::Target>& ts) {
  std::vector<std::string> out;
  for (const auto& t : ts) out.push_back(t.str());
  return out;
}

// ---------------------------------------------------------------------------------------------
// What runs

TEST_F(KubectlPluginTest, LooksUpThePodAndItsNodesFaultlinePod) {
  auto r = plugin({"-n", "shop", "cart-7d9f", "--", "loss", "20", "--proto", "tcp", "--dport", "6379", "--for", "2m"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("fake faultctl ran"), std::string::npos) << r.out;
  auto all = calls();
  ASSERT_EQ(all.size(), 3u);
  // The pod, in its namespace, with the fields the plugin needs.
  ASSERT_GE(all[0].size(), 6u);
  EXPECT_EQ(Args(all[0].begin(), all[0].begin() + 5), (Args{"get", "pod", "--namespace", "shop", "cart-7d9f"}));
  std::string jp = all[0].back();
  for (const char* field : {".spec.nodeName", ".metadata.uid", ".spec.hostNetwork", ".status.phase"})
    EXPECT_NE(jp.find(field), std::string::npos) << jp;
  // The faultline pod on that node, found with the DaemonSet's own selector.
  std::string selector;
  for (const auto& d : YAML::LoadAllFromFile((kSrc / "deploy/kubernetes/daemonset.yaml").string())) {
    if (!d.IsMap() || d["kind"].as<std::string>("") != "DaemonSet") continue;
    for (const auto& kv : d["spec"]["selector"]["matchLabels"])
      selector += (selector.empty() ? "" : ",") + kv.first.as<std::string>() + "=" + kv.second.as<std::string>();
  }
  ASSERT_FALSE(selector.empty());
  ASSERT_GE(all[1].size(), 8u);
  EXPECT_EQ(Args(all[1].begin(), all[1].begin() + 8),
            (Args{"get", "pods", "--namespace", "faultline", "--selector", selector, "--field-selector",
                  "spec.nodeName=node-2"}));
  Args want = kExecPrefix;
  for (const char* a : {"loss", "20", "--proto", "tcp", "--dport", "6379", "--for", "2m", "--target"})
    want.push_back(a);
  want.push_back(kPodTarget);
  EXPECT_EQ(all[2], want);
}

// Every fault kind and reset: the argv in the faultline pod is the user's plus the pod as the
// only target, and faultctl reads it as a request to the node's own daemon for that pod alone.
TEST_F(KubectlPluginTest, AimsEveryFaultAndResetAtThePodAlone) {
  {
    std::ofstream f(tmp.path / "wan.yaml");
    f << kMatrix;
  }
  const std::string wan = (tmp.path / "wan.yaml").string();
  struct Case {
    Args user;  // after "kubectl faultline -n shop cart-7d9f --"
    Args want;  // faultctl's argv in the faultline pod, before "--target pod-uid:UID"
  };
  const std::vector<Case> cases = {
      {{"partition", "--side", "db=10.0.1.0/24", "--side", "app=10.0.2.0/24", "--for", "30s"},
       {"partition", "--side", "db=10.0.1.0/24", "--side", "app=10.0.2.0/24", "--for", "30s"}},
      {{"loss", "20", "--proto", "tcp", "--dport", "6379"}, {"loss", "20", "--proto", "tcp", "--dport", "6379"}},
      {{"isolate", "10.0.2.7", "--reset", "--for", "1m"}, {"isolate", "10.0.2.7", "--reset", "--for", "1m"}},
      {{"delay", "100ms", "--jitter", "20ms", "--name", "slow-cart"},
       {"delay", "100ms", "--jitter", "20ms", "--name", "slow-cart"}},
      {{"rate", "1mbit", "--dst", "10.0.2.0/24"}, {"rate", "1mbit", "--dst", "10.0.2.0/24"}},
      {{"corrupt", "1", "--direction", "both"}, {"corrupt", "1", "--direction", "both"}},
      {{"duplicate", "5"}, {"duplicate", "5"}},
      {{"reorder", "25", "--delay", "10ms", "--gap", "5"}, {"reorder", "25", "--delay", "10ms", "--gap", "5"}},
      {{"shape", "--delay", "40ms", "--rate", "20mbit", "--loss", "0.5"},
       {"shape", "--delay", "40ms", "--rate", "20mbit", "--loss", "0.5"}},
      {{"matrix", wan, "--for", "1m"}, {"matrix", "-", "--for", "1m"}},
      {{"-o", "json", "loss", "5"}, {"-o", "json", "loss", "5"}},
      {{"--output=json", "duplicate", "1"}, {"--output=json", "duplicate", "1"}},
      {{"reset", "--dst", "10.0.2.7", "--dport", "5432"}, {"reset", "--dst", "10.0.2.7", "--dport", "5432"}},
      {{"reset", "--src=10.0.1.0/24"}, {"reset", "--src=10.0.1.0/24"}},
      {{"reset", "--all"}, {"reset", "--all"}},
  };
  for (const auto& c : cases) {
    Args args = {"-n", "shop", "cart-7d9f", "--"};
    args.insert(args.end(), c.user.begin(), c.user.end());
    auto r = plugin(args);
    ASSERT_EQ(r.status, 0) << ::testing::PrintToString(c.user) << "\n" << r.out;
    ASSERT_EQ(exec_calls().size(), 1u) << ::testing::PrintToString(c.user);
    Args want = c.want;
    want.push_back("--target");
    want.push_back(kPodTarget);
    EXPECT_EQ(faultctl_argv(), want);

    auto v = faultctl_view(faultctl_argv(), kMatrix);
    ASSERT_TRUE(v.ok) << ::testing::PrintToString(want) << ": " << v.error;
    EXPECT_FALSE(v.remote_hosts);
    EXPECT_EQ(v.socket, fl::cli::kDefaultSocket);
    if (c.user[0] == "reset") {
      ASSERT_TRUE(v.inv.reset.has_value());
      EXPECT_EQ(target_strings(v.inv.reset->targets), Args{kPodTarget});
    } else {
      ASSERT_TRUE(v.inv.fault.has_value()) << ::testing::PrintToString(want);
      EXPECT_EQ(target_strings(v.inv.fault->targets), Args{kPodTarget});
      EXPECT_TRUE(v.inv.fault->devs.empty());
    }
  }
}

TEST_F(KubectlPluginTest, SendsAMatrixFileOnStdinWhateverItsPath) {
  fs::create_directories(tmp.path / "my wan*");
  const fs::path file = tmp.path / "my wan*" / "it's.yaml";
  {
    std::ofstream f(file);
    f << kMatrix;
  }
  auto r = plugin({"cart", "--", "matrix", file.string(), "--for", "1m"});
  ASSERT_EQ(r.status, 0) << r.out;
  Args want = {"exec", "-i", "--namespace", "faultline", "faultline-x7k2p", "-c", "faultlined", "--", "faultctl",
               "matrix", "-", "--for", "1m", "--target", kPodTarget};
  EXPECT_EQ(exec_call(), want);
  EXPECT_EQ(slurp(tmp.path / "stdin"), kMatrix);
}

// heal takes no target: a name or id belongs to the node's daemon, which holds every pod's
// faults. With a POD it heals only a fault aimed at that pod alone, and by the id it checked.
TEST_F(KubectlPluginTest, HealsAFaultOfThePodByTheIdItChecked) {
  auto r = plugin({"-n", "shop", "cart-7d9f", "--", "heal", "slow-cart"});
  ASSERT_EQ(r.status, 0) << r.out;
  auto e = exec_calls();
  ASSERT_EQ(e.size(), 2u) << r.out;
  Args get = kExecPrefix;
  for (const char* a : {"-o", "json", "get", "slow-cart"}) get.push_back(a);
  EXPECT_EQ(e[0], get);
  Args heal = kExecPrefix;
  heal.push_back("heal");
  heal.push_back("7");
  EXPECT_EQ(e[1], heal);
  auto v = faultctl_view(Args(heal.begin() + kExecPrefix.size(), heal.end()));
  ASSERT_TRUE(v.ok) << v.error;
  EXPECT_EQ(v.inv.command, "heal");
  EXPECT_EQ(v.inv.ref, "7");
  EXPECT_FALSE(v.inv.all);
  EXPECT_FALSE(v.remote_hosts);

  // Global -o stays; compact JSON reads the same.
  env["FAKE_GET_OUT"] = json::parse(fault_json(12, "x", {kPodTarget})).dump();
  r = plugin({"cart-7d9f", "--", "-o", "json", "heal", "12"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(faultctl_argv(), (Args{"-o", "json", "heal", "12"}));
}

TEST_F(KubectlPluginTest, RefusesToHealAnotherPodsFault) {
  struct Case {
    std::vector<std::string> targets;
    std::string why;
  };
  for (const auto& c : std::vector<Case>{{{"pod-uid:11111111-2222-3333-4444-555555555555"}, "another pod"},
                                         {{kPodTarget, "netns:other"}, "this pod and another target"},
                                         {{"host"}, "the node"},
                                         {{}, "nothing"}}) {
    env["FAKE_GET_OUT"] = fault_json(7, "slow-cart", c.targets);
    auto r = plugin({"-n", "shop", "cart-7d9f", "--", "heal", "slow-cart"});
    EXPECT_EQ(r.status, 1) << c.why << ": " << r.out;
    EXPECT_NE(r.out.find("fault slow-cart on node node-2 is not aimed at pod shop/cart-7d9f alone"), std::string::npos)
        << c.why << ": " << r.out;
    EXPECT_NE(r.out.find("kubectl faultline --node node-2 -- heal slow-cart"), std::string::npos) << r.out;
    auto e = exec_calls();
    ASSERT_EQ(e.size(), 1u) << c.why;
    EXPECT_EQ(e[0].back(), "slow-cart");  // the get, never a heal
  }
  // An answer the plugin cannot read heals nothing.
  env["FAKE_GET_OUT"] = "ID 7 slow-cart delay\n";
  auto r = plugin({"cart-7d9f", "--", "heal", "slow-cart"});
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot read fault slow-cart's targets and id"), std::string::npos) << r.out;
  EXPECT_EQ(exec_calls().size(), 1u);
  // faultctl's own refusal (no such fault) comes through with its exit status.
  env["FAKE_GET_OUT"] = "";
  env["FAKE_GET_ERR"] = "faultctl: no fault \"slow-cart\"\n";
  env["FAKE_GET_STATUS"] = "1";
  r = plugin({"cart-7d9f", "--", "heal", "slow-cart"});
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("no fault \"slow-cart\""), std::string::npos) << r.out;
  EXPECT_EQ(exec_calls().size(), 1u);
}

TEST_F(KubectlPluginTest, HealsByNameOnANamedNode) {
  auto r = plugin({"--node", "worker-3", "--", "heal", "slow-cart"});
  ASSERT_EQ(r.status, 0) << r.out;
  auto e = exec_calls();
  ASSERT_EQ(e.size(), 1u);
  Args want = kExecPrefix;
  want.push_back("heal");
  want.push_back("slow-cart");
  EXPECT_EQ(e[0], want);
}

// Read-only commands (events and wait included) and any command's --help reach faultctl word for word.
TEST_F(KubectlPluginTest, PassesReadOnlyCommandsThroughUnchanged) {
  const std::vector<Args> cases = {
      {"list"},
      {"-o", "json", "list"},
      {"-ojson", "status"},
      {"get", "slow cart *"},  // a word with a space and a glob stays one word
      {"stats", "slow-cart"},
      {"status"},
      {"events", "--follow"},
      {"wait", "slow-cart", "--timeout", "30s"},
      {"--help"},
      {"loss", "--help"},
      {"heal", "--help"},
      {"reset", "-h"},
  };
  for (const auto& c : cases) {
    Args args = {"cart-7d9f", "--"};
    args.insert(args.end(), c.begin(), c.end());
    auto r = plugin(args);
    ASSERT_EQ(r.status, 0) << ::testing::PrintToString(c) << "\n" << r.out;
    EXPECT_EQ(faultctl_argv(), c);
    EXPECT_EQ(exec_calls().size(), 1u);
  }
  // Without -n, kubectl's context namespace applies: the plugin must not invent one.
  auto first = calls()[0];
  ASSERT_GE(first.size(), 3u);
  EXPECT_EQ(Args(first.begin(), first.begin() + 3), (Args{"get", "pod", "cart-7d9f"}));
}

TEST_F(KubectlPluginTest, NodeModeNeedsNoPodLookup) {
  auto r = plugin({"--node", "worker-3", "--context", "lab", "--", "status"});
  ASSERT_EQ(r.status, 0) << r.out;
  auto all = calls();
  ASSERT_EQ(all.size(), 2u);
  for (const auto& c : all) EXPECT_EQ(Args(c.begin(), c.begin() + 2), (Args{"--context", "lab"}));
  EXPECT_NE(std::find(all[0].begin(), all[0].end(), "spec.nodeName=worker-3"), all[0].end());
  EXPECT_EQ(all[1].back(), "status");
}

// ---------------------------------------------------------------------------------------------
// What is refused, before anything runs in the faultline pod

TEST_F(KubectlPluginTest, RefusesEveryFormThatCouldAimElsewhere) {
  struct Case {
    Args args;        // the plugin's whole command line
    std::string msg;  // part of the error
    bool host_network = false;
  };
  const std::string tgt = "it is or abbreviates --target): the plugin aims";
  const std::string dev = "it is or abbreviates --dev): through the plugin";
  const std::string global = "before the command: the plugin talks to the faultline daemon on the node it chose";
  const std::string unknown = "the plugin passes only the faults (partition loss isolate delay rate corrupt duplicate "
                              "reorder shape matrix), reset, heal and the read-only list get stats status events wait";
  const std::string heal_all = "it would heal every fault of the node's daemon, other pods' and other users' included";
  const std::vector<Case> cases = {
      // A target of the user's own, in every spelling faultctl or a more lenient parser takes.
      {{"cart", "--", "loss", "5", "--target", "host"}, "refusing '--target' (" + tgt + " 'loss' at the pod itself"},
      {{"cart", "--", "loss", "5", "--target=host"}, "refusing '--target=host' (" + tgt},
      {{"cart", "--", "loss", "5", "--target="}, "refusing '--target=' (" + tgt},
      {{"cart", "--", "loss", "5", "--targ", "host"}, "refusing '--targ' (" + tgt},
      {{"cart", "--", "loss", "5", "--t=netns:x"}, "refusing '--t=netns:x' (" + tgt},
      {{"cart", "--", "partition", "--side", "10.0.0.1", "--side", "10.0.0.2", "--target", "pod:kube-system/etcd"},
       "refusing '--target' (" + tgt + " 'partition'"},
      {{"cart", "--", "matrix", "wan.yaml", "--target", "lab:a"}, "refusing '--target' (" + tgt + " 'matrix'"},
      {{"cart", "--", "reset", "--dst", "10.0.2.7", "--target", "host"}, "refusing '--target' (" + tgt + " 'reset'"},
      {{"cart", "--", "reset", "--all", "--target=host"}, "refusing '--target=host' (" + tgt + " 'reset'"},
      {{"cart", "--", "delay", "10ms", "--dev", "eth0"}, "refusing '--dev' (" + dev + " 'delay' covers"},
      {{"cart", "--", "delay", "10ms", "--dev=eth0"}, "refusing '--dev=eth0' (" + dev},
      {{"cart", "--", "delay", "10ms", "--de", "eth0"}, "refusing '--de' (" + dev},
      {{"cart", "--", "loss", "5", "-t", "host"}, "refusing option '-t': faultctl's commands take no short options"},
      {{"cart", "--", "loss", "5", "--", "--target", "host"}, "refusing '--' in faultctl's arguments"},
      // Global options: another socket, other hosts over ssh.
      {{"cart", "--", "--socket", "/run/other.sock", "loss", "5"}, "refusing faultctl option '--socket' " + global},
      {{"cart", "--", "--socket=/run/other.sock", "list"},
       "refusing faultctl option '--socket=/run/other.sock' " + global},
      {{"cart", "--", "--host", "node-3", "loss", "5"}, "refusing faultctl option '--host' " + global},
      {{"cart", "--", "--host=root@node-3", "list"}, "refusing faultctl option '--host=root@node-3' " + global},
      {{"cart", "--", "--hosts", "nodes.txt", "reset", "--all"}, "refusing faultctl option '--hosts' " + global},
      {{"cart", "--", "--ssh-config", "cfg", "--host", "x", "status"},
       "refusing faultctl option '--ssh-config' " + global},
      {{"cart", "--", "--no-narrow", "partition", "--side", "a", "--side", "b"},
       "refusing faultctl option '--no-narrow' " + global},
      {{"cart", "--", "--", "loss", "5"}, "refusing faultctl option '--' " + global},
      {{"cart", "--", "-o"}, "faultctl option -o needs a value"},
      // Commands the plugin does not know.
      {{"cart", "--", "lab", "up"}, "unknown command 'lab': " + unknown},
      {{"cart", "--", "frobnicate"}, "unknown command 'frobnicate'"},
      {{"cart", "--", "-o", "json", "apply", "x"}, "unknown command 'apply'"},
      {{"--node", "worker-2", "--", "cleanup"}, "unknown command 'cleanup'"},
      // reset: a selector or --all, and never the node's own connections.
      {{"cart", "--", "reset"}, "reset needs a selector (--src, --dst, --sport or --dport) or --all"},
      {{"cart", "--", "reset", "--proto", "tcp"}, "reset needs a selector"},
      {{"--node", "worker-2", "--", "reset", "--all"}, "'reset' with --node would hit node worker-2's own network"},
      {{"--node", "worker-2", "--", "reset", "--dst", "10.0.2.7"}, "'reset' with --node would hit node worker-2"},
      {{"--node", "worker-2", "--", "loss", "5"}, "'loss' with --node would hit node worker-2's own network"},
      {{"cart", "--", "reset", "--all"},
       "refusing 'reset --all' on a hostNetwork pod: it would reset every TCP connection of node node-2", true},
      {{"--allow-host-network", "cart", "--", "reset", "--all"}, "refusing 'reset --all' on a hostNetwork pod", true},
      {{"cart", "--", "reset", "--dst", "10.0.2.7"}, "refusing 'reset' on a hostNetwork pod; add --allow-host-network",
       true},
      {{"cart", "--", "delay", "50ms"}, "refusing 'delay' on a hostNetwork pod; add --allow-host-network", true},
      // heal: one fault, never all of the node's.
      {{"cart", "--", "heal", "--all"}, "refusing 'heal --all': " + heal_all},
      {{"cart", "--", "-o", "json", "heal", "--all"}, "refusing 'heal --all': " + heal_all},
      {{"cart", "--", "heal", "--al"}, "refusing 'heal --al': " + heal_all},
      {{"--node", "worker-2", "--", "heal", "--all"}, "refusing 'heal --all': " + heal_all},
      {{"cart", "--", "heal"}, "heal needs the NAME or ID of a fault"},
      {{"cart", "--", "heal", "--target", "host", "x"}, "refusing '--target' (" + tgt + " 'heal'"},
  };
  for (const auto& c : cases) {
    env["FAKE_POD_INFO"] = std::string("node-2|") + kUid + (c.host_network ? "|true|Running" : "||Running");
    auto r = plugin(c.args);
    EXPECT_NE(r.status, 0) << ::testing::PrintToString(c.args);
    EXPECT_NE(r.out.find("kubectl-faultline: " + c.msg), std::string::npos)
        << ::testing::PrintToString(c.args) << "\nwant: " << c.msg << "\ngot:  " << r.out;
    EXPECT_TRUE(exec_calls().empty()) << ::testing::PrintToString(c.args);
    // A usage error is found before the API server is asked anything.
    if (!c.host_network) {
      EXPECT_EQ(r.status, 2) << ::testing::PrintToString(c.args);
      EXPECT_TRUE(calls().empty()) << ::testing::PrintToString(c.args);
    }
  }
}

TEST_F(KubectlPluginTest, AppliesToAHostNetworkPodOnlyWhenAllowed) {
  env["FAKE_POD_INFO"] = std::string("node-2|") + kUid + "|true|Running";
  auto r = plugin({"--allow-host-network", "node-exporter", "--", "delay", "50ms"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("warning: pod node-exporter uses the host's network"), std::string::npos) << r.out;
  EXPECT_EQ(faultctl_argv(), (Args{"delay", "50ms", "--target", kPodTarget}));
  r = plugin({"--allow-host-network", "node-exporter", "--", "reset", "--dport", "9100"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(faultctl_argv(), (Args{"reset", "--dport", "9100", "--target", kPodTarget}));
  // Reading and healing need no permission: they cannot hit the node.
  r = plugin({"node-exporter", "--", "list"});
  ASSERT_EQ(r.status, 0) << r.out;
  r = plugin({"node-exporter", "--", "heal", "slow-cart"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(faultctl_argv(), (Args{"heal", "7"}));
}

// ---------------------------------------------------------------------------------------------
// Errors on the way to the faultline pod

TEST_F(KubectlPluginTest, ExplainsAMissingPod) {
  env["FAKE_POD_MISSING"] = "1";
  auto r = plugin({"-n", "shop", "gone", "--", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("pod shop/gone not found"), std::string::npos) << r.out;
  EXPECT_TRUE(exec_calls().empty());
}

TEST_F(KubectlPluginTest, ExplainsAnUnscheduledPod) {
  env["FAKE_POD_INFO"] = std::string("|") + kUid + "||Pending";
  auto r = plugin({"-n", "shop", "cart", "--", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("not scheduled"), std::string::npos) << r.out;
  EXPECT_TRUE(exec_calls().empty());
}

TEST_F(KubectlPluginTest, ExplainsANodeWithoutAFaultlinePod) {
  env["FAKE_DS_PODS"] = "";
  auto r = plugin({"-n", "shop", "cart", "--", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("no faultline pod on node node-2"), std::string::npos) << r.out;
  EXPECT_TRUE(exec_calls().empty());
}

TEST_F(KubectlPluginTest, PrefersTheRunningPodDuringARollingUpdate) {
  env["FAKE_DS_PODS"] = "faultline-old\\tPending\\nfaultline-new\\tRunning\\n";
  auto r = plugin({"cart", "--", "status"});
  ASSERT_EQ(r.status, 0) << r.out;
  auto e = exec_call();
  ASSERT_GE(e.size(), 4u);
  EXPECT_EQ(e[3], "faultline-new");
}

TEST_F(KubectlPluginTest, RejectsMissingArguments) {
  EXPECT_EQ(plugin({}).status, 2);
  EXPECT_EQ(plugin({"cart"}).status, 2);
  EXPECT_EQ(plugin({"a", "b", "--", "list"}).status, 2);
  EXPECT_EQ(plugin({"--bogus", "cart", "--", "list"}).status, 2);
  EXPECT_EQ(plugin({"--help"}).status, 0);
}

// ---------------------------------------------------------------------------------------------
// Examples: every `kubectl faultline` command in deploy/README.md and in the plugin's --help
// runs as written, and faultctl accepts what reaches it.

std::vector<Args> example_lines(const std::string& text) {
  std::vector<Args> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto at = line.find("kubectl faultline ");
    // Synopses ("[OPTIONS] POD -- FAULTCTL-ARGS...") and prose mentions are not examples.
    if (at == std::string::npos || line.find(" -- ") == std::string::npos || line.find('[') != std::string::npos ||
        line.find('`') != std::string::npos || line.find("...") != std::string::npos)
      continue;
    if (line.find_first_not_of(' ') != at) continue;
    std::istringstream words(line.substr(at + 18));
    Args a;
    for (std::string w; words >> w;) {
      if (w[0] == '#') break;
      a.push_back(w);
    }
    out.push_back(a);
  }
  return out;
}

TEST_F(KubectlPluginTest, ExamplesRunAsWritten) {
  auto help = plugin({"--help"});
  ASSERT_EQ(help.status, 0);
  const std::vector<std::pair<std::string, std::vector<Args>>> sources = {
      {"deploy/README.md", example_lines(slurp(kSrc / "deploy/README.md"))},
      {"kubectl faultline --help", example_lines(help.out)},
  };
  for (const auto& [where, examples] : sources) {
    EXPECT_GE(examples.size(), 4u) << where;
    for (const auto& ex : examples) {
      auto r = plugin(ex);
      EXPECT_EQ(r.status, 0) << where << ": kubectl faultline " << ::testing::PrintToString(ex) << "\n" << r.out;
      auto v = faultctl_view(faultctl_argv(), kMatrix);
      EXPECT_TRUE(v.ok) << where << ": " << ::testing::PrintToString(ex) << " -> faultctl "
                        << ::testing::PrintToString(faultctl_argv()) << ": " << v.error;
      EXPECT_FALSE(v.remote_hosts);
    }
  }
}

}  // namespace
