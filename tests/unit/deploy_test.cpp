// deploy/ and vagrant/: the Kubernetes manifests, the image recipe, the systemd files and the
// kubectl plugin say what the daemon needs. These tests read them as their consumers would
// (YAML documents, unit keys, shell syntax). The kubectl plugin has kubectl_plugin_test.cpp.
#include <algorithm>
#include <cstdio>
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

#include "kernel/capabilities.h"
#include "unit/shell_util.h"

namespace fs = std::filesystem;

namespace {

const fs::path kSrc = FL_SOURCE_DIR;

using fl::test::have;
using fl::test::quote;
using fl::test::run_shell;
using fl::test::slurp;

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
  check(c["securityContext"],
        {"privileged", "allowPrivilegeEscalation", "runAsUser", "runAsGroup", "capabilities", "seccompProfile",
         "appArmorProfile", "readOnlyRootFilesystem"},
        "securityContext");
  check(c["securityContext"]["capabilities"], {"add", "drop"}, "capabilities");
  check(c["securityContext"]["seccompProfile"], {"type", "localhostProfile"}, "seccompProfile");
  check(c["securityContext"]["appArmorProfile"], {"type", "localhostProfile"}, "appArmorProfile");
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

TEST_F(DaemonSetTest, RunsInTheHostsPidAndNetworkNamespaces) {
  EXPECT_TRUE(pod["hostPID"].as<bool>(false));
  EXPECT_TRUE(pod["hostNetwork"].as<bool>(false));
  EXPECT_EQ(pod["dnsPolicy"].as<std::string>(""), "ClusterFirstWithHostNet");
  EXPECT_EQ(c["image"].as<std::string>(""), "faultline:0.1.0");
  // kubectl-faultline execs into the container by this name.
  EXPECT_EQ(c["name"].as<std::string>(""), "faultlined");
}

// The manifest grants what kernel::kRequiredCapabilities lists, the list the daemon checks at
// start, and nothing more: no privileged, every other capability dropped (issue 10 item 10).
TEST_F(DaemonSetTest, GrantsExactlyTheCapabilitiesTheDaemonNeeds) {
  auto sc = c["securityContext"];
  ASSERT_TRUE(sc.IsMap());
  EXPECT_FALSE(sc["privileged"].as<bool>(false)) << "privileged grants every capability and device";
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true));
  std::vector<std::string> drop;
  for (const auto& d : sc["capabilities"]["drop"]) drop.push_back(d.as<std::string>());
  EXPECT_EQ(drop, std::vector<std::string>{"ALL"});
  std::set<std::string> added, needed;
  for (const auto& a : sc["capabilities"]["add"]) added.insert(a.as<std::string>());
  for (const auto& cap : fl::kernel::kRequiredCapabilities) needed.insert(std::string(cap.name.substr(4)));
  EXPECT_EQ(added, needed);
  EXPECT_EQ(sc["capabilities"]["add"].size(), needed.size()) << "a capability is listed twice";
  // No pod-level securityContext may hand out more.
  if (pod["securityContext"]) EXPECT_FALSE(pod["securityContext"]["privileged"]);
}

// Anyone in the socket's group controls the node's network; by default nobody but root is
// (issue 10 item 8).
TEST_F(DaemonSetTest, SocketIsRootOnlyByDefault) {
  std::vector<std::string> args;
  for (const auto& a : c["args"]) args.push_back(a.as<std::string>());
  auto g = std::find(args.begin(), args.end(), "--group");
  ASSERT_NE(g, args.end()) << "no --group: the image's group name decides who controls the node";
  ASSERT_NE(g + 1, args.end());
  EXPECT_EQ(*(g + 1), "") << "--group other than root only by default";
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
  for (const char* p : {"/run/faultline", "/var/run/netns", "/sys/fs/cgroup", "/var/lib/faultline"}) {
    EXPECT_TRUE(mount_of(p)) << "no hostPath volume mounted for " << p;
  }
  // And nothing else: faultline pins nothing in bpffs, and reads the host's processes through
  // the container's own /proc (hostPID). A host mount nobody reads is only exposure.
  std::set<std::string> paths;
  for (const auto& v : pod["volumes"])
    if (v["hostPath"]) paths.insert(v["hostPath"]["path"].as<std::string>());
  EXPECT_EQ(paths, (std::set<std::string>{"/run/faultline", "/var/run/netns", "/sys/fs/cgroup", "/var/lib/faultline"}));
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
  // Namespaces named after the pod started must show up inside it.
  if (auto m = mount_of("/var/run/netns")) {
    auto prop = m["mountPropagation"].as<std::string>("");
    EXPECT_TRUE(prop == "HostToContainer" || prop == "Bidirectional") << prop;
  }
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
  // The socket's group has a pinned, documented gid: groupadd without one takes the next free
  // system gid, which on a node names some unrelated group (issue 10 item 8).
  std::string groupadd, gid_default;
  for (const auto& i : ins) {
    std::smatch m;
    if (std::regex_search(i.args, m, std::regex(R"(groupadd[^&;]*)"))) groupadd = m.str();
    if (i.op == "ARG" && std::regex_match(i.args, m, std::regex(R"(FAULTLINE_GID=(\d+))"))) gid_default = m[1];
  }
  EXPECT_TRUE(std::regex_search(groupadd, std::regex(R"(--gid +\S*FAULTLINE_GID)"))) << groupadd;
  EXPECT_EQ(groupadd.find("--system"), std::string::npos) << groupadd;
  ASSERT_FALSE(gid_default.empty()) << "no numeric ARG FAULTLINE_GID default";
  EXPECT_NE(slurp(kSrc / "deploy/README.md").find("gid " + gid_default), std::string::npos)
      << "deploy/README.md does not document gid " << gid_default;

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
  // The bounding set is kernel::kRequiredCapabilities, the list the daemon checks at start.
  std::set<std::string> caps, needed;
  std::istringstream words(one("CapabilityBoundingSet"));
  for (std::string w; words >> w;) caps.insert(w);
  for (const auto& cap : fl::kernel::kRequiredCapabilities) needed.insert(std::string(cap.name));
  EXPECT_EQ(caps, needed);
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
