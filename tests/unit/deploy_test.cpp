// deploy/ and vagrant/: the Kubernetes manifests, the image recipe, the systemd files and the
// kubectl plugin say what the daemon needs. These tests read them as their consumers would
// (YAML documents, unit keys, a shell run against a stand-in API server).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace fs = std::filesystem;

namespace {

const fs::path kSrc = FL_SOURCE_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Ran {
  int status = -1;  // exit status, or -1 if it did not exit normally
  std::string out;  // stdout and stderr together
};

Ran run_shell(const std::string& cmd) {
  Ran r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool have(const std::string& tool) { return run_shell("command -v " + quote(tool) + " >/dev/null").status == 0; }

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "fl-deploy-XXXXXX").string();
    if (mkdtemp(t.data()) != nullptr) path = t;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

// ---------------------------------------------------------------------------------------------
// Kubernetes manifests

std::vector<YAML::Node> k8s_documents() {
  std::vector<YAML::Node> docs;
  for (const auto& e : fs::directory_iterator(kSrc / "deploy/kubernetes")) {
    if (e.path().extension() != ".yaml") continue;
    for (auto& d : YAML::LoadAllFromFile(e.path().string()))
      if (d.IsMap()) docs.push_back(d);
  }
  return docs;
}

YAML::Node find_kind(const std::vector<YAML::Node>& docs, const std::string& kind) {
  for (const auto& d : docs)
    if (d["kind"] && d["kind"].as<std::string>() == kind) return d;
  return YAML::Node();
}

TEST(DeployKubernetes, ManifestsParseAndDeclareTheFaultlineNamespace) {
  std::vector<YAML::Node> docs;
  ASSERT_NO_THROW(docs = k8s_documents());
  ASSERT_GE(docs.size(), 2u);
  for (const auto& d : docs) {
    EXPECT_TRUE(d["apiVersion"]) << YAML::Dump(d);
    EXPECT_TRUE(d["kind"]) << YAML::Dump(d);
  }
  auto ns = find_kind(docs, "Namespace");
  ASSERT_TRUE(ns) << "no Namespace in deploy/kubernetes";
  EXPECT_EQ(ns["metadata"]["name"].as<std::string>(), "faultline");
}

class DaemonSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ds = find_kind(k8s_documents(), "DaemonSet");
    ASSERT_TRUE(ds) << "no DaemonSet in deploy/kubernetes";
    pod = ds["spec"]["template"]["spec"];
    ASSERT_TRUE(pod.IsMap());
    ASSERT_TRUE(pod["containers"].IsSequence());
    ASSERT_EQ(pod["containers"].size(), 1u);
    c = pod["containers"][0];
  }
  // The container's mount of the hostPath volume for `host_path`; null if there is none.
  YAML::Node mount_of(const std::string& host_path) {
    for (const auto& v : pod["volumes"]) {
      if (!v["hostPath"] || v["hostPath"]["path"].as<std::string>() != host_path) continue;
      for (const auto& m : c["volumeMounts"])
        if (m["name"].as<std::string>() == v["name"].as<std::string>()) return m;
    }
    return YAML::Node();
  }
  YAML::Node ds, pod, c;
};

// Without an API server to validate against, a misspelt optional field (mountPropogation)
// would be dropped silently by a real one: every key must be one the Kubernetes API has.
TEST_F(DaemonSetTest, UsesOnlyFieldsTheApiKnows) {
  auto check = [](const YAML::Node& n, const std::set<std::string>& known, const std::string& where) {
    ASSERT_TRUE(n.IsMap()) << where;
    for (const auto& kv : n) EXPECT_TRUE(known.count(kv.first.as<std::string>())) << where << "." << kv.first.as<std::string>();
  };
  check(ds["spec"], {"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"}, "spec");
  check(pod,
        {"hostPID", "hostNetwork", "hostIPC", "dnsPolicy", "priorityClassName", "terminationGracePeriodSeconds",
         "tolerations", "automountServiceAccountToken", "serviceAccountName", "containers", "initContainers", "volumes",
         "nodeSelector", "affinity", "securityContext"},
        "pod");
  check(c,
        {"name", "image", "imagePullPolicy", "command", "args", "env", "securityContext", "readinessProbe",
         "livenessProbe", "startupProbe", "resources", "volumeMounts", "lifecycle", "ports"},
        "container");
  for (const char* probe : {"readinessProbe", "livenessProbe"})
    check(c[probe], {"exec", "initialDelaySeconds", "periodSeconds", "timeoutSeconds", "failureThreshold",
                     "successThreshold"}, probe);
  for (const auto& m : c["volumeMounts"])
    check(m, {"name", "mountPath", "readOnly", "mountPropagation", "subPath"}, "volumeMount");
  for (const auto& v : pod["volumes"]) {
    check(v, {"name", "hostPath", "emptyDir", "configMap"}, "volume");
    if (v["hostPath"]) {
      check(v["hostPath"], {"path", "type"}, "hostPath");
      static const std::set<std::string> types = {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                                                  "CharDevice", "BlockDevice"};
      EXPECT_TRUE(types.count(v["hostPath"]["type"].as<std::string>(""))) << v["hostPath"]["type"];
    }
  }
  for (const auto& m : c["volumeMounts"]) {
    static const std::set<std::string> props = {"", "None", "HostToContainer", "Bidirectional"};
    EXPECT_TRUE(props.count(m["mountPropagation"].as<std::string>(""))) << m["mountPropagation"];
  }
}

TEST_F(DaemonSetTest, LivesInTheFaultlineNamespace) {
  EXPECT_EQ(ds["apiVersion"].as<std::string>(), "apps/v1");
  EXPECT_EQ(ds["metadata"]["namespace"].as<std::string>(), "faultline");
}

TEST_F(DaemonSetTest, SelectorMatchesThePodLabels) {
  auto sel = ds["spec"]["selector"]["matchLabels"];
  ASSERT_TRUE(sel.IsMap());
  auto labels = ds["spec"]["template"]["metadata"]["labels"];
  for (const auto& kv : sel)
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(""), kv.second.as<std::string>())
        << kv.first.as<std::string>();
}

TEST_F(DaemonSetTest, RunsPrivilegedInTheHostsPidAndNetworkNamespaces) {
  EXPECT_TRUE(pod["hostPID"].as<bool>(false));
  EXPECT_TRUE(pod["hostNetwork"].as<bool>(false));
  EXPECT_EQ(pod["dnsPolicy"].as<std::string>(""), "ClusterFirstWithHostNet");
  EXPECT_TRUE(c["securityContext"]["privileged"].as<bool>(false));
  EXPECT_EQ(c["image"].as<std::string>(""), "faultline:0.1.0");
  // kubectl-faultline execs into the container by this name.
  EXPECT_EQ(c["name"].as<std::string>(""), "faultlined");
}

TEST_F(DaemonSetTest, RunsOnEveryNodeAndIsNotEvicted) {
  bool all = false;
  for (const auto& t : pod["tolerations"])
    // operator Exists without a key tolerates every taint.
    if (t["operator"].as<std::string>("") == "Exists" && !t["key"] && !t["effect"]) all = true;
  EXPECT_TRUE(all) << "no toleration for every taint";
  EXPECT_EQ(pod["priorityClassName"].as<std::string>(""), "system-node-critical");
  auto us = ds["spec"]["updateStrategy"];
  EXPECT_EQ(us["type"].as<std::string>(""), "RollingUpdate");
  EXPECT_TRUE(us["rollingUpdate"]["maxUnavailable"]);
  // Long enough to heal (SIGTERM) before the kubelet's SIGKILL.
  EXPECT_GE(pod["terminationGracePeriodSeconds"].as<int>(0), 30);
}

TEST_F(DaemonSetTest, ProbesRunFaultctlStatus) {
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    auto cmd = c[probe]["exec"]["command"];
    ASSERT_TRUE(cmd.IsSequence()) << probe;
    ASSERT_EQ(cmd.size(), 2u) << probe;
    EXPECT_EQ(cmd[0].as<std::string>(), "faultctl") << probe;
    EXPECT_EQ(cmd[1].as<std::string>(), "status") << probe;
  }
}

TEST_F(DaemonSetTest, HasResourceRequestsAndLimits) {
  for (const char* kind : {"requests", "limits"})
    for (const char* res : {"cpu", "memory"})
      EXPECT_TRUE(c["resources"][kind][res]) << "resources." << kind << "." << res;
}

TEST_F(DaemonSetTest, MountsEveryHostPathTheDaemonUses) {
  for (const char* p : {"/run/faultline", "/sys/fs/bpf", "/proc", "/var/run/netns", "/sys/fs/cgroup",
                        "/var/lib/faultline"}) {
    EXPECT_TRUE(mount_of(p)) << "no hostPath volume mounted for " << p;
  }
  // The socket and the journal must be where faultlined and faultctl look by default.
  if (auto m = mount_of("/run/faultline")) {
    EXPECT_EQ(m["mountPath"].as<std::string>(), "/run/faultline");
  }
  if (auto m = mount_of("/var/lib/faultline")) {
    EXPECT_EQ(m["mountPath"].as<std::string>(), "/var/lib/faultline");
  }
  if (auto m = mount_of("/sys/fs/cgroup")) {
    EXPECT_TRUE(m["readOnly"].as<bool>(false));
  }
  if (auto m = mount_of("/proc")) {
    EXPECT_TRUE(m["readOnly"].as<bool>(false));
  }
  // Namespaces named after the pod started must show up inside it.
  if (auto m = mount_of("/var/run/netns")) {
    auto prop = m["mountPropagation"].as<std::string>("");
    EXPECT_TRUE(prop == "HostToContainer" || prop == "Bidirectional") << prop;
  }
}

// ---------------------------------------------------------------------------------------------
// The kubectl plugin, against a stand-in for kubectl and the API server behind it

// A fake `kubectl`: records each call's arguments (one per line, calls ended by "--end--") and
// answers from environment variables the test sets, as an API server would.
constexpr const char* kFakeKubectl = R"(#!/usr/bin/env bash
# Stand-in for kubectl and the API server, written by deploy_test.cpp.
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
	echo "fake faultctl ran" ;;
*) echo "fake kubectl: unexpected call: $*" >&2; exit 99 ;;
esac
)";

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
    env["FAKE_POD_INFO"] = "node-2|0a1b2c3d-uid||Running";
    env["FAKE_DS_PODS"] = "faultline-x7k2p\\tRunning\\n";
  }

  // Runs the plugin; calls() then holds only this run's kubectl calls.
  Ran plugin(const std::vector<std::string>& args) {
    std::ofstream(tmp.path / "calls.log", std::ios::trunc).close();
    std::string cmd = "env PATH=" + quote((tmp.path / "bin").string() + ":" + std::getenv("PATH"));
    for (const auto& [k, v] : env) cmd += " " + k + "=" + quote(v);
    cmd += " bash " + quote((kSrc / "deploy/kubernetes/kubectl-faultline").string());
    for (const auto& a : args) cmd += " " + quote(a);
    return run_shell(cmd + " </dev/null");
  }

  // Every kubectl call, each as its argument list.
  std::vector<std::vector<std::string>> calls() {
    std::vector<std::vector<std::string>> all(1);
    std::istringstream in(slurp(tmp.path / "calls.log"));
    for (std::string line; std::getline(in, line);) {
      if (line == "--end--") all.emplace_back();
      else all.back().push_back(line);
    }
    all.pop_back();
    return all;
  }

  std::vector<std::string> exec_call() {
    for (auto& c : calls())
      if (!c.empty() && c[0] == "exec") return c;
    return {};
  }

  TempDir tmp;
  std::map<std::string, std::string> env;
};

using Args = std::vector<std::string>;

TEST_F(KubectlPluginTest, AimsAnApplyCommandAtThePodThroughItsNodesFaultlinePod) {
  auto r = plugin({"-n", "shop", "cart-7d9f", "--", "loss", "20", "--dport", "6379", "--for", "2m"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("fake faultctl ran"), std::string::npos) << r.out;
  auto all = calls();
  ASSERT_EQ(all.size(), 3u);
  // The pod, in its namespace, with the fields the plugin needs.
  ASSERT_GE(all[0].size(), 6u);
  EXPECT_EQ(Args(all[0].begin(), all[0].begin() + 5), (Args{"get", "pod", "--namespace", "shop", "cart-7d9f"}));
  std::string jp = all[0].back();
  for (const char* field : {".spec.nodeName", ".metadata.uid", ".spec.hostNetwork"})
    EXPECT_NE(jp.find(field), std::string::npos) << jp;
  // The faultline pod on that node.
  auto ds = find_kind(k8s_documents(), "DaemonSet");
  std::string selector;
  for (const auto& kv : ds["spec"]["selector"]["matchLabels"])
    selector += (selector.empty() ? "" : ",") + kv.first.as<std::string>() + "=" + kv.second.as<std::string>();
  EXPECT_EQ(Args(all[1].begin(), all[1].begin() + 8),
            (Args{"get", "pods", "--namespace", "faultline", "--selector", selector, "--field-selector",
                  "spec.nodeName=node-2"}));
  EXPECT_EQ(all[2], (Args{"exec", "--namespace", "faultline", "faultline-x7k2p", "-c", "faultlined", "--", "faultctl",
                          "loss", "20", "--dport", "6379", "--for", "2m", "--target", "pod-uid:0a1b2c3d-uid"}));
}

TEST_F(KubectlPluginTest, PassesReadOnlyCommandsThroughWithoutATarget) {
  auto r = plugin({"cart-7d9f", "--", "-o", "json", "list"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(exec_call(), (Args{"exec", "--namespace", "faultline", "faultline-x7k2p", "-c", "faultlined", "--",
                               "faultctl", "-o", "json", "list"}));
  // Without -n, kubectl's context namespace applies: the plugin must not invent one.
  auto first = calls()[0];
  ASSERT_GE(first.size(), 3u);
  EXPECT_EQ(Args(first.begin(), first.begin() + 3), (Args{"get", "pod", "cart-7d9f"}));
  r = plugin({"cart-7d9f", "--", "heal", "slow-cart"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(exec_call().back(), "slow-cart");
}

TEST_F(KubectlPluginTest, NodeModeNeedsNoPodLookup) {
  auto r = plugin({"--node", "worker-3", "--context", "lab", "--", "status"});
  ASSERT_EQ(r.status, 0) << r.out;
  auto all = calls();
  ASSERT_EQ(all.size(), 2u);
  for (const auto& c : all) EXPECT_EQ(Args(c.begin(), c.begin() + 2), (Args{"--context", "lab"}));
  EXPECT_NE(std::find(all[0].begin(), all[0].end(), "spec.nodeName=worker-3"), all[0].end());
  EXPECT_EQ(all[1].back(), "status");
  // A fault with no pod would land on the node's own network.
  r = plugin({"--node", "worker-3", "--", "partition", "--side", "10.0.0.1", "--side", "10.0.0.2"});
  EXPECT_EQ(r.status, 2) << r.out;
}

TEST_F(KubectlPluginTest, ExplainsAMissingPod) {
  env["FAKE_POD_MISSING"] = "1";
  auto r = plugin({"-n", "shop", "gone", "--", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("pod shop/gone not found"), std::string::npos) << r.out;
  EXPECT_TRUE(exec_call().empty());
}

TEST_F(KubectlPluginTest, ExplainsAnUnscheduledPod) {
  env["FAKE_POD_INFO"] = "|0a1b2c3d-uid||Pending";
  auto r = plugin({"-n", "shop", "cart", "--", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("not scheduled"), std::string::npos) << r.out;
  EXPECT_TRUE(exec_call().empty());
}

TEST_F(KubectlPluginTest, ExplainsANodeWithoutAFaultlinePod) {
  env["FAKE_DS_PODS"] = "";
  auto r = plugin({"-n", "shop", "cart", "--", "list"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("no faultline pod on node node-2"), std::string::npos) << r.out;
  EXPECT_TRUE(exec_call().empty());
}

TEST_F(KubectlPluginTest, PrefersTheRunningPodDuringARollingUpdate) {
  env["FAKE_DS_PODS"] = "faultline-old\\tPending\\nfaultline-new\\tRunning\\n";
  auto r = plugin({"cart", "--", "status"});
  ASSERT_EQ(r.status, 0) << r.out;
  auto e = exec_call();
  ASSERT_GE(e.size(), 4u);
  EXPECT_EQ(e[3], "faultline-new");
}

TEST_F(KubectlPluginTest, WarnsAboutAndRefusesAHostNetworkPodUnlessAllowed) {
  env["FAKE_POD_INFO"] = "node-2|uid-h|true|Running";
  auto r = plugin({"node-exporter", "--", "delay", "50ms"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("would hit node node-2"), std::string::npos) << r.out;
  EXPECT_TRUE(exec_call().empty());
  r = plugin({"--allow-host-network", "node-exporter", "--", "delay", "50ms"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("warning"), std::string::npos) << r.out;
  EXPECT_EQ(exec_call().back(), "pod-uid:uid-h");
}

TEST_F(KubectlPluginTest, RefusesATargetOfTheUsersOwn) {
  auto r = plugin({"cart", "--", "loss", "5", "--target", "host"});
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(exec_call().empty());
}

TEST_F(KubectlPluginTest, SendsAMatrixFileOnStdin) {
  {
    std::ofstream f(tmp.path / "wan.yaml");
    f << "sides: {}\n";
  }
  auto r = plugin({"cart", "--", "matrix", (tmp.path / "wan.yaml").string(), "--for", "1m"});
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(exec_call(), (Args{"exec", "-i", "--namespace", "faultline", "faultline-x7k2p", "-c", "faultlined", "--",
                               "faultctl", "matrix", "-", "--for", "1m", "--target", "pod-uid:0a1b2c3d-uid"}));
  EXPECT_EQ(slurp(tmp.path / "stdin"), "sides: {}\n");
}

TEST_F(KubectlPluginTest, RejectsMissingArguments) {
  EXPECT_EQ(plugin({}).status, 2);
  EXPECT_EQ(plugin({"cart"}).status, 2);
  EXPECT_EQ(plugin({"a", "b", "--", "list"}).status, 2);
  EXPECT_EQ(plugin({"--bogus", "cart", "--", "list"}).status, 2);
  EXPECT_EQ(plugin({"--help"}).status, 0);
}

// ---------------------------------------------------------------------------------------------
// Scripts: they parse, and shellcheck (when present) has nothing to say

TEST(DeployScripts, ParseAndPassShellcheck) {
  const std::vector<std::pair<fs::path, std::string>> scripts = {
      {kSrc / "deploy/kubernetes/kubectl-faultline", "bash"}, {kSrc / "vagrant/provision.sh", "bash"},
      {kSrc / "deploy/debian/postinst", "sh"},                {kSrc / "deploy/debian/prerm", "sh"},
      {kSrc / "deploy/debian/postrm", "sh"}};
  bool shellcheck = have("shellcheck");
  for (const auto& [path, shell] : scripts) {
    ASSERT_TRUE(fs::exists(path)) << path;
    EXPECT_TRUE((fs::status(path).permissions() & fs::perms::owner_exec) != fs::perms::none) << path << " is not executable";
    auto r = run_shell(shell + " -n " + quote(path.string()));
    EXPECT_EQ(r.status, 0) << path << ": " << r.out;
    if (shellcheck) {
      r = run_shell("shellcheck -s " + shell + " " + quote(path.string()));
      EXPECT_EQ(r.status, 0) << path << ":\n" << r.out;
    }
  }
  if (!shellcheck) std::printf("note: shellcheck is not installed; only bash -n / sh -n checked the scripts\n");
}

// ---------------------------------------------------------------------------------------------
// deploy/Dockerfile

struct Instruction {
  std::string op, args;
};

// Instructions with continuation lines joined and comments dropped, as BuildKit reads them.
std::vector<Instruction> dockerfile() {
  std::vector<Instruction> out;
  std::istringstream in(slurp(kSrc / "deploy/Dockerfile"));
  std::string line, cur;
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    bool cont = !line.empty() && line.back() == '\\';
    cur += (cont ? line.substr(0, line.size() - 1) : line) + " ";
    if (cont) continue;
    auto s = cur.find_first_not_of(" \t");
    auto e = cur.find_first_of(" \t", s);
    std::string op = cur.substr(s, e - s);
    std::transform(op.begin(), op.end(), op.begin(), ::toupper);
    std::string args = cur.substr(cur.find_first_not_of(" \t", e));
    args.erase(args.find_last_not_of(" \t") + 1);
    out.push_back({op, args});
    cur.clear();
  }
  return out;
}

// Package names after `apt-get install` in one RUN's text.
std::set<std::string> apt_packages(const std::string& run) {
  std::set<std::string> pkgs;
  auto at = run.find("apt-get install");
  if (at == std::string::npos) return pkgs;
  std::istringstream in(run.substr(at + 15));
  for (std::string w; in >> w;) {
    if (w == "&&" || w == ";" || w == "|") break;
    if (w[0] != '-') pkgs.insert(w);
  }
  return pkgs;
}

// tools/setup's REQUIRED packages that building needs (the rest are for running tests).
std::set<std::string> setup_build_packages() {
  std::string s = slurp(kSrc / "tools/setup");
  auto b = s.find("readonly REQUIRED=(");
  auto e = s.find(')', b);
  std::istringstream in(s.substr(b + 19, e - b - 19));
  std::set<std::string> out;
  const std::set<std::string> tools = {"build-essential", "cmake", "pkg-config", "clang", "llvm", "bpftool"};
  for (std::string w; in >> w;)
    if (tools.count(w) || (w.size() > 4 && w.compare(w.size() - 4, 4, "-dev") == 0)) out.insert(w);
  return out;
}

TEST(DeployDockerfile, BuildsOnDebian12AndShipsOnlyTheTwoBinaries) {
  auto ins = dockerfile();
  std::vector<std::string> froms;
  for (const auto& i : ins)
    if (i.op == "FROM") froms.push_back(i.args);
  ASSERT_EQ(froms.size(), 2u);
  EXPECT_TRUE(std::regex_search(froms[0], std::regex(R"(^debian:12\S* +AS +build\b)", std::regex::icase))) << froms[0];
  EXPECT_TRUE(std::regex_search(froms[1], std::regex(R"(^debian:12-slim\b)"))) << froms[1];

  // Runtime stage: the two binaries from the build stage, the daemon as entry point.
  bool runtime = false;
  std::set<std::string> copied;
  std::string entry, user;
  std::set<std::string> build_pkgs, runtime_pkgs;
  for (const auto& i : ins) {
    if (i.op == "FROM") runtime = i.args.rfind("debian:12-slim", 0) == 0;
    if (i.op == "RUN") (runtime ? runtime_pkgs : build_pkgs).merge(apt_packages(i.args));
    if (runtime && i.op == "COPY") {
      EXPECT_EQ(i.args.rfind("--from=build ", 0), 0u) << "runtime COPY not from the build stage: " << i.args;
      copied.insert(i.args.substr(i.args.find_last_of(" \t") + 1));
    }
    if (runtime && i.op == "ENTRYPOINT") entry = i.args;
    if (runtime && i.op == "USER") user = i.args;
    // Everything comes from the Debian archive, checked by apt.
    EXPECT_FALSE(std::regex_search(i.args, std::regex(R"(\b(curl|wget)\b)"))) << i.op << " " << i.args;
    EXPECT_NE(i.op, "ADD") << "ADD fetches URLs and unpacks archives; use COPY";
  }
  EXPECT_EQ(copied, (std::set<std::string>{"/usr/sbin/faultlined", "/usr/bin/faultctl"}));
  EXPECT_GE(runtime_pkgs.size(), 5u) << "the runtime stage installs no shared libraries";
  EXPECT_TRUE(std::regex_search(entry, std::regex(R"(^\[\s*"/usr/sbin/faultlined"\s*\])"))) << entry;
  EXPECT_FALSE(user.empty()) << "say which user the image runs as";

  for (const auto& p : setup_build_packages())
    EXPECT_TRUE(build_pkgs.count(p)) << p << " (tools/setup REQUIRED) is missing from the build stage";
  for (const auto& p : runtime_pkgs)
    EXPECT_TRUE(p.size() < 4 || p.compare(p.size() - 4, 4, "-dev") != 0) << "runtime stage installs " << p;
  // Names that do not exist in Debian 12 would only show when someone builds the image.
  // apt-cache answers only where package lists exist: not in the VM tier, whose /var/lib is an
  // empty tmpfs. A package every Debian system has tells the two apart.
  const bool lists =
      have("apt-cache") &&
      ("\n" + run_shell("apt-cache show --no-all-versions bash").out).find("\nPackage: bash\n") != std::string::npos;
  if (lists) {
    std::string cmd = "apt-cache show --no-all-versions";
    for (const auto& p : runtime_pkgs) cmd += " " + quote(p);
    auto r = run_shell(cmd);
    r.out.insert(0, "\n");
    for (const auto& p : runtime_pkgs)
      EXPECT_NE(r.out.find("\nPackage: " + p + "\n"), std::string::npos) << "apt-cache does not know " << p;
  } else {
    std::printf("note: apt has no package lists here; the runtime package names were not checked against Debian\n");
  }
}

// ---------------------------------------------------------------------------------------------
// systemd unit, sysusers, tmpfiles

// section -> key -> values (a key may repeat).
using Unit = std::map<std::string, std::map<std::string, std::vector<std::string>>>;

Unit parse_unit(const fs::path& p) {
  Unit u;
  std::istringstream in(slurp(p));
  std::string section;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    u[section][line.substr(0, eq)].push_back(line.substr(eq + 1));
  }
  return u;
}

TEST(DeploySystemd, ServiceRestartsHealsAndKeepsTheSocketForTheGroup) {
  auto u = parse_unit(kSrc / "deploy/systemd/faultlined.service");
  auto& s = u["Service"];
  auto one = [&](const std::string& k) { return s[k].size() == 1 ? s[k][0] : std::string("<missing or repeated>"); };
  EXPECT_EQ(one("Type"), "simple");
  EXPECT_EQ(one("ExecStart"), "/usr/sbin/faultlined");
  EXPECT_EQ(one("ExecStopPost"), "/usr/sbin/faultlined --cleanup");
  EXPECT_EQ(one("Restart"), "on-failure");
  EXPECT_FALSE(one("RestartSec").empty());
  EXPECT_EQ(one("RuntimeDirectory"), "faultline");
  EXPECT_EQ(one("RuntimeDirectoryMode"), "0750");
  EXPECT_EQ(one("StateDirectory"), "faultline");
  // Makes the runtime directory root:faultline, so group members reach the socket.
  EXPECT_EQ(one("Group"), "faultline");
  std::string caps = one("CapabilityBoundingSet");
  for (const char* cap : {"CAP_BPF", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"})
    EXPECT_NE(caps.find(cap), std::string::npos) << cap;
  EXPECT_EQ(u["Install"]["WantedBy"], std::vector<std::string>{"multi-user.target"});
}

TEST(DeploySystemd, HardeningLeavesNamespacesAndBpfAlone) {
  auto u = parse_unit(kSrc / "deploy/systemd/faultlined.service");
  auto& s = u["Service"];
  // Each of these would stop faultlined from entering other namespaces, loading programs,
  // or reading what pod targets need.
  for (const char* k : {"PrivateNetwork", "PrivateUsers", "RestrictNamespaces", "ProtectKernelTunables",
                        "ProtectKernelModules", "ProtectControlGroups", "SystemCallFilter", "ProtectProc",
                        "NetworkNamespacePath", "PrivateDevices", "MemoryDenyWriteExecute", "IPAddressDeny"}) {
    for (const auto& v : s[k]) EXPECT_EQ(v, "no") << k << "=" << v;
  }
  for (const auto& v : s["RestrictAddressFamilies"]) {
    EXPECT_NE(v.find("AF_NETLINK"), std::string::npos) << v;
    EXPECT_NE(v.find("AF_UNIX"), std::string::npos) << v;
  }
  // ProtectSystem=strict makes everything read-only but the unit's own directories.
  if (!s["ProtectSystem"].empty() && s["ProtectSystem"][0] == "strict") {
    EXPECT_FALSE(s["RuntimeDirectory"].empty());
    EXPECT_FALSE(s["StateDirectory"].empty());
  }
}

TEST(DeploySystemd, SysusersAndTmpfilesMakeTheGroupAndDirectories) {
  auto lines = [](const fs::path& p) {
    std::vector<std::vector<std::string>> out;
    std::istringstream in(slurp(p));
    for (std::string l; std::getline(in, l);) {
      if (l.empty() || l[0] == '#') continue;
      std::istringstream w(l);
      std::vector<std::string> f;
      for (std::string x; w >> x;) f.push_back(x);
      out.push_back(f);
    }
    return out;
  };
  auto su = lines(kSrc / "deploy/systemd/faultline.sysusers");
  ASSERT_EQ(su.size(), 1u);
  EXPECT_EQ(su[0], (std::vector<std::string>{"g", "faultline", "-"}));
  auto tf = lines(kSrc / "deploy/systemd/faultline.tmpfiles");
  std::set<std::vector<std::string>> got(tf.begin(), tf.end());
  EXPECT_TRUE(got.count({"d", "/run/faultline", "0750", "root", "faultline", "-"}));
  EXPECT_TRUE(got.count({"d", "/var/lib/faultline", "0700", "root", "root", "-"}));
}

// ---------------------------------------------------------------------------------------------
// vagrant/

TEST(DeployVagrant, HostsFileNamesTheSixLabVms) {
  std::string vf = slurp(kSrc / "vagrant/Vagrantfile");
  EXPECT_NE(vf.find("%w[a b c d e f]"), std::string::npos);
  EXPECT_NE(vf.find("SUBNET = \"192.168.56\""), std::string::npos);
  EXPECT_NE(vf.find("FIRST_HOST = 11"), std::string::npos);
  EXPECT_NE(vf.find("config.vm.provider \"libvirt\""), std::string::npos);
  EXPECT_NE(vf.find("config.vm.provider \"virtualbox\""), std::string::npos);
  EXPECT_NE(vf.find("debian/bookworm64"), std::string::npos);
  std::vector<std::string> hosts;
  std::istringstream in(slurp(kSrc / "vagrant/hosts"));
  for (std::string l; std::getline(in, l);)
    if (!l.empty() && l[0] != '#') hosts.push_back(l);
  std::vector<std::string> want;
  for (int i = 11; i <= 16; ++i) want.push_back("vagrant@192.168.56." + std::to_string(i));
  EXPECT_EQ(hosts, want);
}

TEST(DeployVagrant, ProvisioningInstallsWhatTheBuildNeeds) {
  std::string p = slurp(kSrc / "vagrant/provision.sh");
  for (const auto& pkg : setup_build_packages())
    EXPECT_TRUE(std::regex_search(p, std::regex("[\\s(]" + std::regex_replace(pkg, std::regex(R"([.+])"), R"(\$&)") +
                                                "[\\s)]")))
        << pkg << " (tools/setup REQUIRED) is not installed by vagrant/provision.sh";
  EXPECT_NE(p.find("systemctl enable --now faultlined.service"), std::string::npos);
  EXPECT_NE(p.find("usermod -a -G faultline vagrant"), std::string::npos);
}

}  // namespace
