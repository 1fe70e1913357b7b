// faultctl: the command-line client of faultlined. It never touches the kernel itself; every
// change goes through the daemon, which owns the lifetime of what it installs.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/experiment.h"
#include "cli/experiment_run.h"
#include "cli/watch.h"
#include "cli/fanout.h"
#include "cli/transaction.h"
#include "cli/tunnel.h"
#include "cli/format.h"
#include "core/parse.h"
#include "core/printable.h"
#include "protocol/ops.h"

namespace {

using fl::cli::Output;
using json = nlohmann::json;

// The exit statuses are part of the interface: scripts tell "the daemon said no" from "there is
// no daemon" from "I typed it wrong".
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;
constexpr int kExitTimeout = 4;  // faultctl wait --timeout ran out; the fault is still active

// Under -o json a failure is also one JSON object on stdout (docs/PROTOCOL.md, "faultctl -o
// json"), so a script reads one stream: {"error": {"code", "message", "exit_status"}}. The
// first failure is the error; any later lines (a fan-out's per-host failures) are its
// "details". stderr keeps the plain lines for whoever watches.
struct JsonError {
  bool enabled = false;
  bool have = false;
  std::string code, message;
  std::vector<std::string> details;
  int exit_status = 0;
} g_json_error;

const char* default_code(int exit_status) {
  switch (exit_status) {
    case kExitUsage: return "usage";
    case kExitUnreachable: return "unreachable";
    default: return "internal";
  }
}

// stderr gets `shown`, -o json's error the exact `msg`.
int fail_shown(int code, const std::string& msg, const std::string& shown, const char* errc) {
  std::cerr << "faultctl: " << shown << "\n";
  if (g_json_error.enabled) {
    if (!g_json_error.have) {
      g_json_error.have = true;
      g_json_error.code = errc != nullptr ? errc : default_code(code);
      // The "Try 'faultctl --help'." line is for people at a terminal.
      const size_t try_line = msg.find("\nTry '");
      g_json_error.message = msg.substr(0, try_line);
      g_json_error.exit_status = code;
    } else {
      g_json_error.details.push_back(msg);
      g_json_error.exit_status = std::max(g_json_error.exit_status, code);
    }
  }
  return code;
}

// Our own messages may span lines ("...\nTry 'faultctl --help'."); what they quote of the
// user's input or a file is escaped all the same.
int fail(int code, const std::string& msg, const char* errc = nullptr) {
  return fail_shown(code, msg, fl::core::printable(msg, fl::core::Newlines::keep), errc);
}

// A daemon's message (or a line that carries one) quotes names of interfaces, namespaces and
// pods that other people chose: one line, nothing in it that drives the terminal.
int fail_foreign(int code, const std::string& msg, const char* errc = nullptr) {
  return fail_shown(code, msg, fl::core::printable(msg), errc);
}

int report(const fl::cli::Client& client, const fl::Error& e) {
  if (client.lost()) return fail_foreign(kExitUnreachable, e.message);
  if (g_json_error.enabled) {
    // The daemon's code is the error's code; the message need not repeat it.
    fail_foreign(kExitRefused, e.message, fl::errc_name(e.code));
    return kExitRefused;
  }
  return fail_foreign(kExitRefused, std::string(fl::errc_name(e.code)) + ": " + e.message);
}

// Whether the global options ask for JSON, read before parsing proper so that a usage error
// itself comes out as JSON. The last -o wins, as in parse_args.
bool wants_json(const std::vector<std::string>& args) {
  bool json_out = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--" || a.size() < 2 || a[0] != '-') break;
    std::string value;
    if ((a == "-o" || a == "--output") && i + 1 < args.size()) {
      value = args[++i];
    } else if (a.rfind("--output=", 0) == 0) {
      value = a.substr(9);
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2 && a[1] == 'o') {
      value = a.substr(2);
    } else if ((a == "--socket" || a == "--host" || a == "--hosts" || a == "--ssh-config") && i + 1 < args.size()) {
      ++i;
      continue;
    } else {
      continue;
    }
    if (value == "json") json_out = true;
    if (value == "table") json_out = false;
  }
  return json_out;
}

void print_json_error() {
  if (!g_json_error.enabled || !g_json_error.have) return;
  json err = {{"code", g_json_error.code}, {"message", g_json_error.message}, {"exit_status", g_json_error.exit_status}};
  if (!g_json_error.details.empty()) err["details"] = g_json_error.details;
  std::cout << fl::cli::format_json(json{{"error", std::move(err)}});
  std::cout.flush();
}

// Output goes through here so a full disk or closed pipe shows up in the exit status instead
// of vanishing.
int emit(const std::string& s) {
  std::cout << s;
  std::cout.flush();
  if (!std::cout) return fail(kExitRefused, std::string("cannot write to stdout: ") + std::strerror(errno));
  return kExitOk;
}

const json* member(const json& result, const char* key, json::value_t type) {
  auto it = result.is_object() ? result.find(key) : result.end();
  if (!result.is_object() || it == result.end() || it->type() != type) return nullptr;
  return &*it;
}

fl::Error malformed(const char* key) {
  return fl::make_error(fl::Errc::internal,
                        std::string("malformed reply from faultlined: no \"") + key + "\" of the expected type");
}

// The part of a reply that faultctl shows: what -o json prints, and what the tables are made of.
// The switches on Op have no default: an op added to protocol/ops.h that faultctl does not show
// is a warning here (-Wswitch), and tests/unit/ops_test.cpp checks every verb sends its op.
fl::Result<json> shown_part(fl::proto::Op op, const json& result) {
  using fl::proto::Op;
  switch (op) {
    case Op::apply:
    case Op::get: {
      const json* f = member(result, "fault", json::value_t::object);
      if (f == nullptr) return malformed("fault");
      return *f;
    }
    case Op::list:
    case Op::stats: {
      const json* fs = member(result, "faults", json::value_t::array);
      if (fs == nullptr) return malformed("faults");
      return *fs;
    }
    case Op::heal:
      if (member(result, "healed", json::value_t::array) == nullptr) return malformed("healed");
      return result;
    case Op::hello:
    case Op::status:
    case Op::reset:
    case Op::events:
    case Op::wait:
      break;
  }
  return result;
}

// By the op's wire name, as a Call carries it.
fl::Result<fl::proto::Op> op_named(const std::string& name) {
  const fl::proto::OpInfo* info = fl::proto::find_op(name);
  if (info == nullptr) return fl::make_error(fl::Errc::internal, "no op named " + name);
  return info->op;
}

fl::Result<json> shown_part(const std::string& op_name, const json& result) {
  auto op = op_named(op_name);
  if (!op) return op.take_error();
  return shown_part(*op, result);
}

fl::Result<std::string> render(const fl::cli::Invocation& inv, fl::proto::Op op, const json& result) {
  using fl::proto::Op;
  auto part = shown_part(op, result);
  if (!part) return part.take_error();
  if (inv.output == Output::json) return fl::cli::format_json(*part);
  switch (op) {
    case Op::get:
      return fl::cli::format_fault_detail(*part);
    case Op::apply: {
      auto id = part->find("id");
      if (id == part->end() || !id->is_number_unsigned()) return malformed("fault.id");
      return fl::cli::format_applied(*part);
    }
    case Op::list:
    case Op::stats:
      return fl::cli::format_fault_table(*part);
    case Op::reset:
      return fl::cli::format_reset_result(*part);
    case Op::heal: {
      std::string out;
      // Ids are numbers; ensure_ascii keeps anything else a daemon might send printable.
      for (const auto& id : (*part)["healed"]) out += id.dump(-1, ' ', true, json::error_handler_t::replace) + "\n";
      return out;
    }
    case Op::hello:
    case Op::status:
    case Op::events:
    case Op::wait:
      break;
  }
  return fl::cli::format_status(*part);
}

fl::Result<std::string> render(const fl::cli::Invocation& inv, const std::string& op_name, const json& result) {
  auto op = op_named(op_name);
  if (!op) return op.take_error();
  return render(inv, *op, result);
}

int print_result(const fl::cli::Invocation& inv, const std::string& op_name, const json& result) {
  auto known = op_named(op_name);
  if (!known) return fail(kExitRefused, "internal error: " + known.error().message);
  const fl::proto::Op op = *known;
  auto text = render(inv, op, result);
  if (!text) return fail(kExitRefused, text.error().message);
  if (op == fl::proto::Op::apply && inv.output == Output::table) {
    if (const json* f = member(result, "fault", json::value_t::object)) std::cerr << fl::cli::format_apply_reset(*f);
  }
  return emit(*text);
}

int run(const fl::cli::Invocation& inv) {
  auto client = fl::cli::Client::connect(inv.socket);
  if (!client) {
    const auto& e = client.error();
    std::string hint = " (is faultlined running?)";
    if (e.sys_errno == EACCES || e.sys_errno == EPERM) {
      hint = " (the socket admits root and the faultline group; is faultlined running?)";
    }
    return fail(kExitUnreachable, e.message + hint);
  }
  const fl::cli::Call hello_req = fl::cli::hello_call();
  auto hello = client->call(hello_req.op, hello_req.params);
  if (!hello) return report(*client, hello.error());

  if (inv.command == "events") {
    fl::cli::EventsOptions o;
    o.since = inv.since;
    o.limit = inv.limit;
    o.follow = inv.follow;
    o.json = inv.output == Output::json;
    auto st = fl::cli::run_events(*client, o, std::cout);
    if (!st) return report(*client, st.error());
    return kExitOk;
  }
  if (inv.command == "wait") {
    fl::cli::WaitOptions o;
    o.fault = inv.ref;
    o.timeout = inv.timeout;
    o.json = inv.output == Output::json;
    auto st = fl::cli::run_wait(*client, o, std::cout);
    if (!st) {
      int code = report(*client, st.error());
      return !client->lost() && st.error().code == fl::Errc::timeout ? kExitTimeout : code;
    }
    return kExitOk;
  }
  const fl::cli::Call call = fl::cli::command_call(inv);
  auto result = client->call(call.op, call.params);
  // A refusal that blames a field (the daemon's policy, or a check this faultctl does not make)
  // names the option that set it.
  if (!result) return report(*client, fl::cli::in_option_terms(inv.command, result.error()));
  return print_result(inv, call.op, *result);
}

// A matrix file is a few MB at most (65,536 addresses); the bound stops "faultctl matrix
// /dev/zero" from eating memory.
constexpr size_t kMaxFileBytes = 64 << 20;
constexpr size_t kMaxHostsFileBytes = 4 << 20;

fl::Result<std::string> read_bounded(const std::string& path, size_t limit, const std::string& too_big) {
  const bool is_stdin = path == "-";
  const std::string name = is_stdin ? "<stdin>" : path;
  std::ifstream file;
  if (!is_stdin) {
    file.open(path, std::ios::binary);
    if (!file) return fl::Error::sys(fl::Errc::invalid_argument, "cannot open " + name, errno);
  }
  std::istream& in = is_stdin ? std::cin : file;
  std::string out;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > limit) return fl::make_error(fl::Errc::invalid_argument, name + ": " + too_big);
  }
  if (in.bad()) return fl::Error::sys(fl::Errc::invalid_argument, "cannot read " + name, errno);
  return out;
}

fl::Result<std::string> read_file(const std::string& path) {
  return read_bounded(path, kMaxFileBytes, "larger than 64 MiB; not a matrix file");
}

fl::Result<std::string> read_hosts_file(const std::string& path) {
  return read_bounded(path, kMaxHostsFileBytes, "larger than 4 MiB; not a hosts file");
}

// ---------------------------------------------------------------- --host, --hosts

// The fan-out's exit statuses are faultctl's.
static_assert(fl::cli::kFanOutOk == kExitOk && fl::cli::kFanOutRefused == kExitRefused &&
              fl::cli::kFanOutUnreachable == kExitUnreachable);

int run_fan_out(const fl::cli::Invocation& inv, const fl::cli::HostOptions& opts) {
  auto hosts = fl::cli::collect_hosts(opts, read_hosts_file);
  if (!hosts) return fail(kExitUsage, hosts.error().message);
  if (auto st = fl::cli::check_fan_out_ref(inv, hosts->size()); !st) return fail(kExitUsage, st.error().message);
  if (auto st = fl::cli::check_remote_socket(inv.socket, "--socket"); !st) return fail(kExitUsage, st.error().message);
  fl::cli::SshOptions ssh;
  ssh.config = opts.ssh_config;
  if (!ssh.config.empty() && ::access(ssh.config.c_str(), R_OK) != 0) {
    return fail(kExitUsage, "--ssh-config: cannot read " + ssh.config + ": " + std::strerror(errno));
  }
  fl::cli::Tunnel::clean_up_on_signals();
  fl::cli::FanOutOutput output;
  output.out = emit;
  output.note = [](const std::string& text) { std::cerr << text; };
  output.fail = [](int code, const std::string& msg, bool foreign) {
    return foreign ? fail_foreign(code, msg) : fail(code, msg);
  };
  output.shown_part = [](const std::string& op, const json& r) { return shown_part(op, r); };
  output.render = [](const fl::cli::Invocation& i, const std::string& op, const json& r) { return render(i, op, r); };
  return fl::cli::fan_out(inv, *hosts, opts.narrow, fl::cli::ssh_connector(std::move(ssh)), output);
}

// ---------------------------------------------------------------- faultctl lab

// `faultctl lab ...` is faultline-lab, installed next to faultctl (or, in a build tree, in
// ../lab). Returns only when it could not be started.
int exec_lab(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"faultline-lab"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::cout.flush();

  std::string dir;
  char self[PATH_MAX];
  if (const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1); n > 0) {
    dir.assign(self, static_cast<size_t>(n));
    dir.erase(dir.rfind('/'));
  }
  std::vector<std::string> tried;
  if (!dir.empty()) {
    for (const std::string& path : {dir + "/faultline-lab", dir + "/../lab/faultline-lab"}) {
      tried.push_back(path);
      if (::access(path.c_str(), X_OK) != 0) continue;
      ::execv(path.c_str(), cargv.data());
      return fail(kExitUnreachable, "lab: cannot run " + path + ": " + std::strerror(errno));
    }
  }
  ::execvp("faultline-lab", cargv.data());
  if (errno != ENOENT) {
    return fail(kExitUnreachable, std::string("lab: cannot run faultline-lab: ") + std::strerror(errno));
  }
  std::string where;
  for (const auto& t : tried) where += t + ", ";
  return fail(kExitUnreachable, "lab: faultline-lab not found (looked at " + where + "and in PATH)");
}

// ---------------------------------------------------------------- faultctl run

std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) { g_signal.store(sig); }

int run_experiment_command(const fl::cli::Invocation& inv) {
  // An experiment file is a page of YAML; the bound is for "faultctl run /dev/zero".
  auto text = read_bounded(inv.file, 1 << 20, "larger than 1 MiB; not an experiment file");
  if (!text) return fail(kExitUsage, text.error().message);
  auto exp = fl::cli::parse_experiment(*text, inv.file == "-" ? "<stdin>" : inv.file, read_file);
  if (!exp) return fail(kExitUsage, exp.error().message);
  if (inv.dry_run) return emit(fl::cli::format_plan(*exp));

  // From here on a signal means "heal and stop", which the runner does itself.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  fl::cli::RunOptions o;
  o.socket = inv.socket;
  o.report_dir = inv.report_dir.empty() ? "faultline-report-" + exp->name : inv.report_dir;
  o.signal = &g_signal;
  const fl::cli::RunOutcome out = fl::cli::run_experiment(*exp, o, std::cerr);
  int code = out.verdict == "held" ? kExitOk : kExitRefused;
  if (inv.output == Output::json) {
    if (const int st = emit(fl::cli::format_json(out.report)); st != kExitOk) code = st;
  } else {
    std::string verdict = out.verdict == "held" ? "hypothesis held" : out.verdict == "refuted" ? "hypothesis refuted" : out.verdict;
    if (const int st = emit("verdict: " + verdict + "\nreason: " + fl::core::printable(out.reason) + "\n"); st != kExitOk) code = st;
  }
  if (!out.report_path.empty()) {
    std::cerr << "report: " << fl::core::printable(out.report_path) << "\n";
    if (!out.html_path.empty()) std::cerr << "report: " << fl::core::printable(out.html_path) << "\n";
    else code = fail(kExitRefused, out.report_error);
  } else {
    fail(kExitRefused, "report not written: " + out.report_error);
    code = kExitRefused;
  }
  return code;
}

int run_main(const std::vector<std::string>& args) {
  auto ex = fl::cli::extract_host_options(args);
  if (!ex) return fail(kExitUsage, ex.error().message);
  const bool fan_out = ex->hosts.any();
  // With hosts, --socket names the remote daemons' socket; FAULTLINE_SOCKET is about this
  // machine and does not apply there.
  const char* env_socket = fan_out ? nullptr : std::getenv(fl::cli::kSocketEnv);
  auto inv = fl::cli::parse_args(ex->rest, env_socket, read_file);
  if (!inv) return fail(kExitUsage, inv.error().message);
  if (inv->help) return emit(inv->help_text);
  if (inv->version) return emit(fl::cli::version_text(inv->output));
  if (inv->command == "lab") {
    if (fan_out) {
      return fail(kExitUsage, "--host/--hosts: 'faultctl lab' makes and drives a lab on this machine only; run it "
                              "on the host itself (ssh HOST faultctl lab ...)");
    }
    // faultline-lab prints its own errors, as text.
    g_json_error.enabled = false;
    return exec_lab(inv->lab_args);
  }
  if (inv->command == "run") {
    if (fan_out) return fail(kExitUsage, "--host/--hosts: 'faultctl run' drives the daemon of this machine only");
    return run_experiment_command(*inv);
  }
  if (fan_out) return run_fan_out(*inv, ex->hosts);
  return run(*inv);
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  g_json_error.enabled = wants_json(args);
  int code;
  try {
    code = run_main(args);
  } catch (const std::exception& e) {
    code = fail(kExitRefused, std::string("internal error: ") + e.what());
  }
  print_json_error();
  return code;
}
