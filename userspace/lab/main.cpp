// faultline-lab: a local lab of network namespaces on one bridge, for trying faultline by hand,
// in the demo and in tests. `faultctl lab ARGS` runs this program with ARGS, so the CLI itself
// still never touches the kernel. See docs/LAB.md. Over 600 lines on purpose: the program's
// whole command line (up, down, exec, status, state file) as one readable sequence; what it does
// to the system is in system.cpp.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/parse.h"
#include "lab/lab.h"
#include "lab/system.h"

namespace {

using namespace fl::lab;
using json = nlohmann::json;
using fl::Errc;
using fl::Error;
using fl::Status;

// The exit statuses are part of the interface (docs/LAB.md). exec returns the command's own
// status, so its own failures use 125..127 as env(1) and the shells do.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // refused or failed: exists, not found, kernel said no, unhealthy
constexpr int kExitUsage = 2;
constexpr int kExitExecFailed = 125;
constexpr int kExitExecNoPerm = 126;
constexpr int kExitExecNotFound = 127;

const char* const kUsage =
    "usage: faultline-lab COMMAND [OPTIONS]   (also run as `faultctl lab COMMAND ...`)\n"
    "\n"
    "  up      [--name LAB] [--nodes N] [--ipv6] [--subnet CIDR4] [--subnet6 CIDR6]\n"
    "  down    [--name LAB]\n"
    "  exec    [--name LAB] NODE [--] CMD [ARGS...]\n"
    "  status  [--name LAB] [-o table|json]\n"
    "\n"
    "A lab is N network namespaces <LAB>-a, <LAB>-b, ... each with one veth eth0 on a bridge in\n"
    "the namespace <LAB>-hub; the host's own network is not touched. Use a node as a faultctl\n"
    "target with --target netns:<LAB>-<NODE>. `faultline-lab COMMAND --help` says more.\n";

const char* const kUpUsage =
    "usage: faultline-lab up [--name LAB] [--nodes N] [--ipv6] [--subnet CIDR4] [--subnet6 CIDR6]\n"
    "\n"
    "Creates the lab LAB (default fl-lab): nodes a, b, ... (N from 2 to 26, default 3), each the\n"
    "network namespace <LAB>-<NODE> with eth0 on a bridge in <LAB>-hub. Node i (from 0) gets host\n"
    "number 11+i in CIDR4 (default 10.200.0.0/24: a is 10.200.0.11) and, with --ipv6, in CIDR6\n"
    "(default fd00:200::/64: a is fd00:200::11). A lab of the same name, or any of its namespaces,\n"
    "already there is refused. If up fails it removes everything it made.\n";

const char* const kDownUsage =
    "usage: faultline-lab down [--name LAB]\n"
    "\n"
    "Stops the processes running in the lab's namespaces (SIGTERM, SIGKILL after 2 s), then\n"
    "removes every namespace of the lab and its state file. Only a process with all its threads\n"
    "inside is stopped. A namespace that is no longer the one `up` made (deleted and made again\n"
    "under the same name) is left alone with a warning, and so are its processes. Exit status 1,\n"
    "with nothing removed, if there is no such lab, if one of its names is bound to the host's\n"
    "(pid 1's) or the caller's own namespace, or if a process is still there after SIGKILL.\n";

const char* const kExecUsage =
    "usage: faultline-lab exec [--name LAB] NODE [--] CMD [ARGS...]\n"
    "\n"
    "Runs CMD in node NODE's network namespace (NODE may also be written LAB/NODE) and exits with\n"
    "its status; 125 if the lab or node is not there, 126 if CMD cannot run, 127 if it is not found.\n";

const char* const kStatusUsage =
    "usage: faultline-lab status [--name LAB] [-o table|json]\n"
    "\n"
    "Shows the lab's nodes, namespaces, addresses and faultctl targets, and checks that every\n"
    "namespace is there and its eth0 is up with its addresses. Exit status 0 if all is well, 1 if\n"
    "something is missing or there is no such lab.\n";

int usage_error(const std::string& msg, const char* usage) {
  std::cerr << "faultline-lab: " << msg << "\n\n" << usage;
  return kExitUsage;
}

int failed(const std::string& msg, int code = kExitFailed) {
  std::cerr << "faultline-lab: " << msg << "\n";
  return code;
}

int bad_input(const Error& e) {
  return failed(e.message, kExitUsage);
}

bool is_help(const std::string& a) { return a == "-h" || a == "--help"; }

// "--opt VALUE" or "--opt=VALUE". Returns true if args[i] is the option; advances i past it.
bool take_value(const std::vector<std::string>& args, size_t& i, const std::string& opt,
                std::optional<std::string>& out, std::string& err) {
  const std::string& a = args[i];
  if (a == opt) {
    if (i + 1 >= args.size()) {
      err = opt + " needs a value";
      return true;
    }
    out = args[++i];
    return true;
  }
  if (a.rfind(opt + "=", 0) == 0) {
    out = a.substr(opt.size() + 1);
    return true;
  }
  return false;
}

// The options every command shares.
struct Common {
  std::string name = kDefaultName;
};

void print_table(const Lab& lab, const std::vector<std::string>* states) {
  std::printf("lab %s: %zu nodes on bridge %s in namespace %s (%s%s%s)\n", lab.name.c_str(), lab.nodes.size(),
              kBridge, lab.hub.c_str(), lab.subnet4.c_str(), lab.subnet6.empty() ? "" : ", ",
              lab.subnet6.c_str());
  size_t wns = 9, w4 = 4, w6 = 4;
  for (const auto& n : lab.nodes) {
    wns = std::max(wns, n.netns.size());
    w4 = std::max(w4, n.ipv4.size());
    w6 = std::max(w6, n.ipv6.size());
  }
  auto row = [&](const std::string& node, const std::string& ns, const std::string& v4, const std::string& v6,
                 const std::string& target, const std::string& state) {
    std::printf("  %-4s  %-*s  %-*s  ", node.c_str(), static_cast<int>(wns), ns.c_str(), static_cast<int>(w4),
                v4.c_str());
    if (!lab.subnet6.empty()) std::printf("%-*s  ", static_cast<int>(w6), v6.c_str());
    if (states)
      std::printf("%-*s  %s\n", static_cast<int>(wns + 6), target.c_str(), state.c_str());
    else
      std::printf("%s\n", target.c_str());
  };
  row("node", "namespace", "IPv4", "IPv6", "target", "state");
  for (size_t i = 0; i < lab.nodes.size(); i++) {
    const Node& n = lab.nodes[i];
    row(n.name, n.netns, n.ipv4, n.ipv6, "netns:" + n.netns, states ? (*states)[i] : "");
  }
}

// ---- up ----

std::atomic<int> g_signal{0};

void on_signal(int sig) { g_signal = sig; }

// SIGINT, SIGTERM and SIGHUP only set a flag while `up` builds, so an interrupted `up` gets to
// remove what it made instead of leaving half a lab.
void catch_signals() {
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
}

Status check_interrupted() {
  if (int s = g_signal.load()) return fl::make_error(Errc::internal, std::string("interrupted by ") + strsignal(s));
  return {};
}

Status build(Lab& lab, const std::string& path, std::vector<std::string>& made) {
  auto make_ns = [&](const std::string& name) -> fl::Result<NsFd> {
    FL_TRY(check_interrupted());
    auto ns = create_netns(name);
    if (!ns.ok()) return ns;
    made.push_back(name);
    // Recorded before anything else is done in it: `down` deletes only a namespace whose
    // identity it finds in the state file, so one deleted and made again by someone else under
    // the same name is never taken for the lab's.
    auto id = netns_id(*ns, name);
    if (!id.ok()) return id.take_error();
    lab.record_id(name, *id);
    FL_TRY(replace_state(path, to_json(lab)));
    return ns;
  };
  auto hub = make_ns(lab.hub);
  if (!hub.ok()) return hub.take_error();
  auto hub_nl = Rtnl::in(*hub, lab.hub);
  if (!hub_nl.ok()) return hub_nl.take_error();
  FL_TRY(hub_nl->set_up("lo"));
  FL_TRY(hub_nl->add_bridge(kBridge));

  for (const Node& n : lab.nodes) {
    auto ns = make_ns(n.netns);
    if (!ns.ok()) return ns.take_error();
    auto nl = Rtnl::in(*ns, n.netns);
    if (!nl.ok()) return nl.take_error();
    FL_TRY(nl->set_up("lo"));
    FL_TRY(nl->add_veth(kNodeDev, n.peer, *hub));
    FL_TRY(hub_nl->set_up(n.peer, kBridge));
    FL_TRY(nl->add_address(kNodeDev, n.ipv4 + "/" + std::to_string(lab.prefix4)));
    if (!n.ipv6.empty()) FL_TRY(nl->add_address(kNodeDev, n.ipv6 + "/" + std::to_string(lab.prefix6)));
    FL_TRY(nl->set_up(kNodeDev));
  }

  // Carrier follows within microseconds of both ends being up; waiting for it means the first
  // `status` or ping after `up` already sees a working lab.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (const Node& n : lab.nodes) {
    auto ns = open_netns(n.netns);
    if (!ns.ok()) return ns.take_error();
    auto nl = Rtnl::in(*ns, n.netns);
    if (!nl.ok()) return nl.take_error();
    for (;;) {
      FL_TRY(check_interrupted());
      auto st = nl->link_state(kNodeDev);
      if (!st.ok()) return st.take_error();
      if (st->carrier) break;
      if (std::chrono::steady_clock::now() >= deadline)
        return fl::make_error(Errc::kernel_error, kNodeDev + std::string(" in ") + n.netns + " has no carrier after 3 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return {};
}

int cmd_up(const std::vector<std::string>& args) {
  std::optional<std::string> name, nodes, subnet, subnet6;
  bool ipv6 = false;
  for (size_t i = 0; i < args.size(); i++) {
    std::string err;
    if (is_help(args[i])) {
      std::cout << kUpUsage;
      return kExitOk;
    }
    if (args[i] == "--ipv6") {
      ipv6 = true;
      continue;
    }
    if (take_value(args, i, "--name", name, err) || take_value(args, i, "--nodes", nodes, err) ||
        take_value(args, i, "--subnet", subnet, err) || take_value(args, i, "--subnet6", subnet6, err)) {
      if (!err.empty()) return usage_error(err, kUpUsage);
      continue;
    }
    return usage_error("up: unexpected argument " + fl::core::quote(args[i]), kUpUsage);
  }

  Request r;
  if (name) r.name = *name;
  if (auto st = check_lab_name(r.name); !st.ok()) return bad_input(st.error());
  if (nodes) {
    auto n = parse_nodes(*nodes);
    if (!n.ok()) return bad_input(n.error());
    r.nodes = *n;
  }
  if (subnet6 && !ipv6) return usage_error("--subnet6 needs --ipv6", kUpUsage);
  r.ipv6 = ipv6;
  auto s4 = parse_subnet(subnet.value_or(kDefaultSubnet4), 4, r.nodes);
  if (!s4.ok()) return bad_input(s4.error());
  r.subnet4 = *s4;
  if (ipv6) {
    auto s6 = parse_subnet(subnet6.value_or(kDefaultSubnet6), 6, r.nodes);
    if (!s6.ok()) return bad_input(s6.error());
    r.subnet6 = *s6;
  }

  Lab lab = plan(r);
  const std::string path = state_path(lab.name);
  const std::string exists = "lab " + lab.name + " already exists (" + path +
                             "); `faultctl lab status --name " + lab.name + "` shows it, `faultctl lab down --name " +
                             lab.name + "` removes it";
  if (access(path.c_str(), F_OK) == 0) return failed(exists);
  // Never adopt a namespace we did not make: down would delete it.
  for (const auto& ns : lab.namespaces()) {
    if (netns_exists(ns))
      return failed("namespace " + ns + " already exists and is not part of a lab; choose another --name, or " +
                    "remove it with `ip netns delete " + ns + "` if it is a leftover");
  }

  catch_signals();
  // The state file comes first: it is the lock against a second `up` of the same name, and if
  // this process is killed halfway, `down` still finds the namespaces it made.
  if (auto st = create_state(path, to_json(lab)); !st.ok()) {
    if (st.error().code == Errc::already_exists) return failed(exists);
    return failed(st.error().message);
  }
  std::vector<std::string> made;
  Status st = build(lab, path, made);
  if (st.ok()) {
    lab.phase = "ready";
    st = replace_state(path, to_json(lab));
  }
  if (!st.ok()) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) {
      if (auto d = delete_netns(*it); !d.ok()) std::cerr << "faultline-lab: cleanup: " << d.error().message << "\n";
    }
    (void)remove_state(path);
    return failed("up " + lab.name + ": " + st.error().message + " (removed the " + std::to_string(made.size()) +
                  (made.size() == 1 ? " namespace" : " namespaces") + " it had made)");
  }
  print_table(lab, nullptr);
  std::fflush(stdout);
  return kExitOk;
}

// ---- the lab named on the command line ----

// Reads and checks the state file of lab `name`. On failure prints why and sets `code`.
std::optional<Lab> load(const std::string& name, int& code, int not_found_code = kExitFailed) {
  auto j = read_state(state_path(name));
  if (!j.ok()) {
    code = not_found_code;
    if (j.error().code == Errc::not_found)
      failed("no lab named " + name + " (no " + state_path(name) + "); `faultctl lab up --name " + name +
             "` makes one");
    else
      failed(j.error().message);
    return std::nullopt;
  }
  auto lab = from_json(*j);
  if (!lab.ok()) {
    code = not_found_code;
    failed(state_path(name) + ": " + lab.error().message);
    return std::nullopt;
  }
  return std::move(*lab);
}

// Commands other than up take only --name (and status -o); this parses them.
int parse_common(const std::vector<std::string>& args, size_t& i, Common& c, const char* usage, bool& help) {
  std::optional<std::string> name;
  std::string err;
  for (; i < args.size(); i++) {
    if (is_help(args[i])) {
      help = true;
      return kExitOk;
    }
    if (take_value(args, i, "--name", name, err)) {
      if (!err.empty()) return usage_error(err, usage);
      c.name = *name;
      continue;
    }
    break;
  }
  if (auto st = check_lab_name(c.name); !st.ok()) return bad_input(st.error());
  return kExitOk;
}

// ---- down ----

// Why the namespace now named `ns` is not the one `up` made for the lab, or nullopt if it is.
std::optional<std::string> not_the_labs(const Lab& lab, const std::string& ns, const NetnsId& now) {
  const auto recorded = lab.recorded_id(ns);
  if (!recorded)
    return "namespace " + ns + " was never recorded as made by lab " + lab.name +
           " (its `up` was killed before it could record it); left alone: " +
           "`ip netns delete " + ns + "` removes it if it is a leftover";
  if (!recorded->same_as(now))
    return "namespace " + ns + " is not the one lab " + lab.name + " made (" + recorded->str() + "; now " +
           now.str() + "): it was deleted and made again by someone else; left alone";
  return std::nullopt;
}

int cmd_down(const std::vector<std::string>& args) {
  Common c;
  size_t i = 0;
  bool help = false;
  if (int rc = parse_common(args, i, c, kDownUsage, help); rc != kExitOk || help) {
    if (help) std::cout << kDownUsage;
    return rc;
  }
  if (i < args.size()) return usage_error("down: unexpected argument " + fl::core::quote(args[i]), kDownUsage);
  int code = kExitOk;
  auto lab = load(c.name, code);
  if (!lab) return code;

  // Stop what runs inside first: a process in a namespace keeps it (and its veth) alive after
  // the name is gone, where nobody can find it any more.
  std::vector<NsFd> open;
  std::vector<std::string> open_names;
  std::vector<std::string> left_alone, stale;
  for (const auto& ns : lab->namespaces()) {
    auto fd = open_netns(ns);
    if (!fd.ok()) {
      if (fd.error().code == Errc::not_found) {
        if (netns_exists(ns)) stale.push_back(ns);
        continue;
      }
      // There but unreadable: its processes could not be found, so it is not removed either.
      return failed("down " + lab->name + ": " + fd.error().message + "; nothing was changed");
    }
    auto now = netns_id(*fd, ns);
    if (!now.ok()) return failed("down " + lab->name + ": " + now.error().message + "; nothing was changed");
    if (auto why = not_the_labs(*lab, ns, *now)) {
      // Someone else's namespace under the lab's name: neither its processes nor its name are
      // ours to touch. The rest of the lab still goes.
      std::cerr << "faultline-lab: warning: " << *why << "\n";
      left_alone.push_back(ns);
      continue;
    }
    open.push_back(std::move(*fd));
    open_names.push_back(ns);
  }
  std::vector<const NsFd*> ptrs;
  for (const auto& n : open) ptrs.push_back(&n);
  // A name bind-mounted from init's or our own namespace would make every process of the host
  // look like the lab's. Checked before anything is touched.
  if (auto st = check_not_host(ptrs, open_names); !st.ok()) return failed("down " + lab->name + ": " + st.error().message);
  auto stopped = stop_processes(ptrs, std::chrono::seconds(2));
  open.clear();
  if (!stopped.ok()) return failed("down " + lab->name + ": " + stopped.error().message + "; nothing was removed");
  for (pid_t p : stopped->partial)
    std::cerr << "faultline-lab: note: process " << p << " has a thread in the lab but others outside it; "
              << "left alone (a namespace it is in goes once the thread leaves)\n";
  if (!stopped->remaining.empty()) {
    // Removing the names now would leave namespaces with live processes (and their veths) that
    // no tool can find; keep them and the state file so another `down` can finish.
    std::string pids;
    for (pid_t p : stopped->remaining) pids += (pids.empty() ? "" : " ") + std::to_string(p);
    return failed("down " + lab->name + ": process" + (stopped->remaining.size() == 1 ? " " : "es ") + pids +
                  " still in the lab (after SIGKILL, or started meanwhile); kept its namespaces and " + state_path(lab->name) +
                  ", run down again once " + (stopped->remaining.size() == 1 ? "it has" : "they have") + " exited");
  }
  const size_t n_stopped = stopped->signalled;

  int errors = 0;
  size_t removed = 0;
  for (const auto& ns : open_names) {
    if (!netns_exists(ns)) continue;
    // Once more just before the unmount: the name may have been deleted and bound to another
    // namespace while the processes were being stopped.
    if (auto fd = open_netns(ns); fd.ok()) {
      auto now = netns_id(*fd, ns);
      auto why = now.ok() ? not_the_labs(*lab, ns, *now) : std::optional<std::string>(now.error().message);
      if (why) {
        std::cerr << "faultline-lab: warning: " << *why << "\n";
        left_alone.push_back(ns);
        continue;
      }
    }
    if (auto st = delete_netns(ns); !st.ok()) {
      std::cerr << "faultline-lab: " << st.error().message << "\n";
      errors++;
    } else {
      removed++;
    }
  }
  for (const auto& ns : stale) {
    if (auto st = remove_stale_netns_file(ns); !st.ok()) {
      std::cerr << "faultline-lab: " << st.error().message << "\n";
      errors++;
    }
  }
  // With a namespace left, keep the state file so a second `down` can finish the job.
  if (errors) return failed("down " + lab->name + ": " + std::to_string(errors) + " namespace(s) could not be removed");
  if (auto st = remove_state(state_path(lab->name)); !st.ok()) return failed(st.error().message);
  std::string kept;
  for (const auto& ns : left_alone) kept += (kept.empty() ? "; left alone (not the lab's): " : ", ") + ns;
  std::printf("lab %s removed: %zu namespace%s, %zu process%s stopped%s\n", lab->name.c_str(), removed,
              removed == 1 ? "" : "s", n_stopped, n_stopped == 1 ? "" : "es", kept.c_str());
  std::fflush(stdout);
  return kExitOk;
}

// ---- status ----

// Whether the open namespace named `name` is still the one `up` made (see not_the_labs).
bool is_the_labs(const Lab& lab, const std::string& name, const NsFd& ns) {
  auto now = netns_id(ns, name);
  return now.ok() && !not_the_labs(lab, name, *now);
}

// One node's health in a word or two, "up" when all is well.
std::string node_state(const Lab& lab, const Node& n) {
  auto ns = open_netns(n.netns);
  if (!ns.ok()) return "namespace missing";
  if (!is_the_labs(lab, n.netns, *ns)) return "namespace replaced";
  auto nl = Rtnl::in(*ns, n.netns);
  if (!nl.ok()) return "error: " + nl.error().message;
  auto st = nl->link_state(kNodeDev);
  if (!st.ok()) return "error: " + st.error().message;
  if (!st->exists) return std::string(kNodeDev) + " missing";
  if (!st->up) return std::string(kNodeDev) + " down";
  if (!st->carrier) return std::string(kNodeDev) + " no carrier";
  std::vector<std::string> want = {n.ipv4 + "/" + std::to_string(lab.prefix4)};
  if (!n.ipv6.empty()) want.push_back(n.ipv6 + "/" + std::to_string(lab.prefix6));
  for (const auto& w : want) {
    if (std::find(st->addresses.begin(), st->addresses.end(), w) == st->addresses.end()) return "address " + w + " missing";
  }
  return "up";
}

std::string hub_state(const Lab& lab) {
  auto ns = open_netns(lab.hub);
  if (!ns.ok()) return "namespace missing";
  if (!is_the_labs(lab, lab.hub, *ns)) return "namespace replaced";
  auto nl = Rtnl::in(*ns, lab.hub);
  if (!nl.ok()) return "error: " + nl.error().message;
  auto st = nl->link_state(kBridge);
  if (!st.ok()) return "error: " + st.error().message;
  if (!st->exists) return std::string(kBridge) + " missing";
  if (!st->up) return std::string(kBridge) + " down";
  return "up";
}

int cmd_status(const std::vector<std::string>& args) {
  Common c;
  bool as_json = false;
  std::optional<std::string> out;
  std::optional<std::string> name;
  for (size_t i = 0; i < args.size(); i++) {
    std::string err;
    if (is_help(args[i])) {
      std::cout << kStatusUsage;
      return kExitOk;
    }
    if (take_value(args, i, "--name", name, err) || take_value(args, i, "-o", out, err) ||
        take_value(args, i, "--output", out, err)) {
      if (!err.empty()) return usage_error(err, kStatusUsage);
      continue;
    }
    return usage_error("status: unexpected argument " + fl::core::quote(args[i]), kStatusUsage);
  }
  if (name) c.name = *name;
  if (auto st = check_lab_name(c.name); !st.ok()) return bad_input(st.error());
  if (out) {
    if (*out != "table" && *out != "json")
      return usage_error("invalid -o " + fl::core::quote(*out) + ": expected table or json", kStatusUsage);
    as_json = *out == "json";
  }
  int code = kExitOk;
  auto lab = load(c.name, code);
  if (!lab) return code;

  std::vector<std::string> states;
  bool healthy = lab->phase == "ready";
  for (const auto& n : lab->nodes) {
    states.push_back(node_state(*lab, n));
    healthy = healthy && states.back() == "up";
  }
  std::string hub = hub_state(*lab);
  healthy = healthy && hub == "up";

  if (as_json) {
    json j = to_json(*lab);
    j["hub_state"] = hub;
    for (size_t i = 0; i < states.size(); i++) j["nodes"][i]["state"] = states[i];
    j["healthy"] = healthy;
    std::cout << j.dump(2) << "\n";
  } else {
    print_table(*lab, &states);
    std::printf("  hub   %s: %s\n", lab->hub.c_str(), hub.c_str());
    if (lab->phase != "ready")
      std::printf("  phase %s: an `up` is still running or was killed; `faultctl lab down --name %s` cleans up\n",
                  lab->phase.c_str(), lab->name.c_str());
  }
  std::cout.flush();
  if (!std::cout) return failed(std::string("cannot write to stdout: ") + std::strerror(errno));
  return healthy ? kExitOk : kExitFailed;
}

// ---- exec ----

int cmd_exec(const std::vector<std::string>& args) {
  Common c;
  size_t i = 0;
  bool help = false;
  if (int rc = parse_common(args, i, c, kExecUsage, help); rc != kExitOk || help) {
    if (help) std::cout << kExecUsage;
    return rc == kExitOk ? rc : kExitExecFailed;
  }
  if (i >= args.size()) {
    usage_error("exec: missing NODE", kExecUsage);
    return kExitExecFailed;
  }
  std::string node = args[i++];
  // LAB/NODE, as in faultctl's lab:LAB/NODE targets.
  if (auto slash = node.find('/'); slash != std::string::npos) {
    std::string lab_name = node.substr(0, slash);
    if (auto st = check_lab_name(lab_name); !st.ok()) return failed(st.error().message, kExitExecFailed);
    if (c.name != kDefaultName && c.name != lab_name)
      return failed("exec: --name " + c.name + " and " + fl::core::quote(node) + " name different labs",
                    kExitExecFailed);
    c.name = lab_name;
    node = node.substr(slash + 1);
  }
  if (i < args.size() && args[i] == "--") i++;
  if (i >= args.size()) {
    usage_error("exec: missing the command to run", kExecUsage);
    return kExitExecFailed;
  }

  int code = kExitOk;
  auto lab = load(c.name, code, kExitExecFailed);
  if (!lab) return code;
  if (auto st = check_node_name(node, static_cast<int>(lab->nodes.size())); !st.ok())
    return failed("lab " + lab->name + ": " + st.error().message, kExitExecFailed);
  const Node* n = lab->node(node);
  if (!n)
    return failed("lab " + lab->name + ": no node " + node + " in " + state_path(lab->name) +
                      " (its nodes should be a to " + std::string(1, static_cast<char>('a' + lab->nodes.size() - 1)) +
                      " without gaps; was it edited?)",
                  kExitExecFailed);
  auto ns = open_netns(n->netns);
  if (!ns.ok()) return failed("lab " + lab->name + " node " + node + ": " + ns.error().message, kExitExecFailed);
  if (setns(ns->fd(), CLONE_NEWNET) < 0)
    return failed("enter namespace " + n->netns + ": " + std::strerror(errno), kExitExecFailed);
  // /sys/class/net should show the node's interfaces, not the host's, as under `ip netns exec`:
  // a private mount namespace with a fresh sysfs. Best effort: without it the network is still
  // the node's, which is what matters.
  if (unshare(CLONE_NEWNS) == 0 && mount("", "/", "none", MS_SLAVE | MS_REC, nullptr) == 0) {
    if (umount2("/sys", MNT_DETACH) == 0) (void)mount(n->netns.c_str(), "/sys", "sysfs", 0, nullptr);
  }

  std::vector<char*> argv;
  for (size_t k = i; k < args.size(); k++) argv.push_back(const_cast<char*>(args[k].c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  int e = errno;
  return failed("exec " + fl::core::quote(args[i]) + " in " + n->netns + ": " + std::strerror(e),
                e == ENOENT ? kExitExecNotFound : kExitExecNoPerm);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("missing COMMAND", kUsage);
  std::string cmd = args[0];
  args.erase(args.begin());
  if (is_help(cmd) || cmd == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  if (cmd != "up" && cmd != "down" && cmd != "exec" && cmd != "status")
    return usage_error("unknown command " + fl::core::quote(cmd), kUsage);
  // Everything past parsing needs CAP_SYS_ADMIN (namespaces, mounts, setns; status enters each
  // node to check it) and CAP_NET_ADMIN; say so plainly instead of failing halfway with EPERM,
  // or reporting a node as missing that we may only not see. --help works for everyone.
  bool help = false;
  for (const auto& a : args) {
    if (a == "--") break;
    help = help || is_help(a);
  }
  if (!help && geteuid() != 0)
    return failed("must run as root", cmd == "exec" ? kExitExecFailed : kExitFailed);
  if (cmd == "up") return cmd_up(args);
  if (cmd == "down") return cmd_down(args);
  if (cmd == "status") return cmd_status(args);
  return cmd_exec(args);
}
