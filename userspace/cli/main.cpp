// faultctl: the command-line client of faultlined. It never touches the kernel itself; every
// change goes through the daemon, which owns the lifetime of what it installs.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/format.h"

namespace {

using fl::cli::Output;
using json = nlohmann::json;

// The exit statuses are part of the interface: scripts tell "the daemon said no" from "there is
// no daemon" from "I typed it wrong".
constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

int fail(int code, const std::string& msg) {
  std::cerr << "faultctl: " << msg << "\n";
  return code;
}

int report(const fl::cli::Client& client, const fl::Error& e) {
  if (client.lost()) return fail(kExitUnreachable, e.message);
  return fail(kExitRefused, std::string(fl::errc_name(e.code)) + ": " + e.message);
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

int malformed(const char* key) {
  return fail(kExitRefused, std::string("malformed reply from faultlined: no \"") + key + "\" of the expected type");
}

int print_result(const fl::cli::Invocation& inv, const std::string& op, const json& result) {
  const bool as_json = inv.output == Output::json;
  if (op == "apply" || op == "get") {
    const json* f = member(result, "fault", json::value_t::object);
    if (f == nullptr) return malformed("fault");
    if (as_json) return emit(fl::cli::format_json(*f));
    if (op == "get") return emit(fl::cli::format_fault_detail(*f));
    // The id alone, so that `id=$(faultctl loss 10)` works.
    auto id = f->find("id");
    if (id == f->end() || !id->is_number_unsigned()) return malformed("fault.id");
    return emit(std::to_string(id->get<uint64_t>()) + "\n");
  }
  if (op == "list" || op == "stats") {
    const json* fs = member(result, "faults", json::value_t::array);
    if (fs == nullptr) return malformed("faults");
    return emit(as_json ? fl::cli::format_json(*fs) : fl::cli::format_fault_table(*fs));
  }
  if (op == "heal") {
    const json* ids = member(result, "healed", json::value_t::array);
    if (ids == nullptr) return malformed("healed");
    if (as_json) return emit(fl::cli::format_json(result));
    std::string out;
    for (const auto& id : *ids) out += id.dump() + "\n";
    return emit(out);
  }
  // status
  return emit(as_json ? fl::cli::format_json(result) : fl::cli::format_status(result));
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

  const fl::cli::Call call = fl::cli::command_call(inv);
  auto result = client->call(call.op, call.params);
  if (!result) return report(*client, result.error());
  return print_result(inv, call.op, *result);
}

// A matrix file is a few MB at most (65,536 addresses); the bound stops "faultctl matrix
// /dev/zero" from eating memory.
constexpr size_t kMaxFileBytes = 64 << 20;

fl::Result<std::string> read_file(const std::string& path) {
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
    if (out.size() > kMaxFileBytes) {
      return fl::make_error(fl::Errc::invalid_argument, name + ": larger than 64 MiB; not a matrix file");
    }
  }
  if (in.bad()) return fl::Error::sys(fl::Errc::invalid_argument, "cannot read " + name, errno);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto inv = fl::cli::parse_args(args, std::getenv(fl::cli::kSocketEnv), read_file);
    if (!inv) return fail(kExitUsage, inv.error().message);
    if (inv->help) return emit(inv->help_text);
    return run(*inv);
  } catch (const std::exception& e) {
    return fail(kExitRefused, std::string("internal error: ") + e.what());
  }
}
