// faultctl's command line, turned into what to ask the daemon. Pure: no I/O, no environment
// access (the caller passes FAULTLINE_SOCKET in), so every usage error is unit-testable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/flow_match.h"
#include "core/model.h"
#include "core/result.h"

namespace fl::cli {

inline constexpr const char* kDefaultSocket = "/run/faultline/faultline.sock";
inline constexpr const char* kSocketEnv = "FAULTLINE_SOCKET";

enum class Output { table, json };

struct Invocation {
  std::string socket = kDefaultSocket;
  Output output = Output::table;
  std::string command;  // "partition", "list", ...; empty only with top-level --help

  // --help anywhere before "--": print help_text on stdout and exit 0, talk to nobody.
  bool help = false;
  std::string help_text;
  // --version before the command: print version_text() and exit 0.
  bool version = false;
  // Whether -o/--output was given (lab refuses -o json where it has no JSON to give).
  bool output_set = false;

  // lab: the arguments for faultline-lab (its command first), with what applies of the global
  // options already in them (-o json for `lab status`).
  std::vector<std::string> lab_args;

  std::optional<core::FaultSpec> fault;  // every apply command: already validated
  std::optional<core::ResetSpec> reset;  // reset: already validated
  std::string ref;                       // get, heal, stats, wait: "ID" or "NAME"; empty: none
  bool all = false;                      // heal --all

  // events
  std::optional<uint64_t> since, limit;
  bool follow = false;
  // wait
  std::optional<std::chrono::milliseconds> timeout;
  // run: the experiment file, --dry-run, --report-dir (empty: the default)
  std::string file;
  bool dry_run = false;
  std::string report_dir;
};

// Reads a file named on the command line (`faultctl matrix FILE`; "-" means stdin) and returns
// its contents, or an error that names it. The caller supplies it, so parsing stays free of I/O.
using ReadFile = std::function<Result<std::string>(const std::string& path)>;

// args excludes argv[0]. Every error is a usage or validation error (exit 2) whose message
// follows "faultctl: "; where it helps, a second line says where to get help. Without a
// read_file, `matrix`, @FILE and lab:NODE addresses are refused. read_file also reads the lab
// state files (/run/faultline/lab/LAB.json) that lab:[LAB/]NODE addresses come from.
Result<Invocation> parse_args(const std::vector<std::string>& args, const char* env_socket,
                              const ReadFile& read_file = {});

// The request for the command, without "id" (the client numbers requests).
struct Call {
  std::string op;
  nlohmann::json params = nlohmann::json::object();
};
Call command_call(const Invocation& inv);
Call hello_call();

// Errors in the user's terms: the option of `cmd` that sets the field an error blames
// (Error::field: "match.sport" from validate, "fault.match.sport" from the daemon) takes the
// field's place at the head of the message ("--sport: ..."). An error that blames no field, or a
// field no option of cmd sets, is returned as it is.
std::string_view option_for_field(std::string_view cmd, std::string_view field);
Error in_option_terms(std::string_view cmd, Error e);

std::string top_help();
// "faultctl 0.1.0 (protocol 1)\n", or under -o json {"faultctl": "0.1.0", "protocol": 1}.
std::string version_text(Output output);

// The global options, as the errors and "did you mean" name them.
inline constexpr const char* kGlobalOptions[] = {"--socket", "-o", "--output", "--host", "--hosts",
                                                 "--ssh-config", "--no-narrow", "--version", "-h", "--help"};

}  // namespace fl::cli
