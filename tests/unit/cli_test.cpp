// faultctl without a daemon: command line -> FaultSpec and requests, every usage error, the
// output formats, and the socket client against an in-process fake peer.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cli/args.h"
#include "cli/client.h"
#include "cli/format.h"
#include "core/model.h"
#include "core/parse.h"
#include "protocol/protocol.h"

namespace fl::cli {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

Invocation parse_ok(std::vector<std::string> args, const char* env = nullptr) {
  auto r = parse_args(args, env);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Invocation{};
}

std::string parse_err(std::vector<std::string> args, const char* env = nullptr) {
  auto r = parse_args(args, env);
  std::string joined;
  for (const auto& a : args) joined += a + " ";
  EXPECT_FALSE(r.ok()) << "accepted: " << joined;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::invalid_argument) << joined;
  return r.error().message;
}

core::Cidr cidr(std::string_view s) {
  auto r = core::parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : core::Cidr{};
}

// ---------------------------------------------------------------- global options

TEST(CliGlobal, SocketPrecedence) {
  EXPECT_EQ(parse_ok({"list"}).socket, "/run/faultline/faultline.sock");
  EXPECT_EQ(parse_ok({"list"}, "").socket, "/run/faultline/faultline.sock");  // empty env: unset
  EXPECT_EQ(parse_ok({"list"}, "/tmp/env.sock").socket, "/tmp/env.sock");
  EXPECT_EQ(parse_ok({"--socket", "/tmp/opt.sock", "list"}, "/tmp/env.sock").socket, "/tmp/opt.sock");
  EXPECT_EQ(parse_ok({"--socket=/tmp/eq.sock", "list"}, "/tmp/env.sock").socket, "/tmp/eq.sock");
}

TEST(CliGlobal, OutputFormats) {
  EXPECT_EQ(parse_ok({"list"}).output, Output::table);
  EXPECT_EQ(parse_ok({"-o", "json", "list"}).output, Output::json);
  EXPECT_EQ(parse_ok({"-ojson", "list"}).output, Output::json);
  EXPECT_EQ(parse_ok({"--output", "json", "list"}).output, Output::json);
  EXPECT_EQ(parse_ok({"--output=table", "list"}).output, Output::table);
  EXPECT_EQ(parse_ok({"-o", "json", "-o", "table", "list"}).output, Output::table);  // last wins
}

TEST(CliGlobal, DoubleDashEndsGlobalOptions) {
  auto inv = parse_ok({"-o", "json", "--", "status"});
  EXPECT_EQ(inv.command, "status");
  EXPECT_EQ(inv.output, Output::json);
}

TEST(CliGlobal, Errors) {
  EXPECT_EQ(parse_err({}), "missing command\nTry 'faultctl --help'.");
  EXPECT_EQ(parse_err({"-o", "json"}), "missing command\nTry 'faultctl --help'.");
  EXPECT_EQ(parse_err({"frob"}), "unknown command \"frob\"\nTry 'faultctl --help'.");
  EXPECT_EQ(parse_err({"--frob", "list"}),
            "unrecognised option '--frob' (the global options, before the command, are --socket PATH, "
            "-o/--output FMT, --host SPEC, --hosts FILE, --ssh-config FILE, --no-narrow, --version, -h/--help; "
            "a command's own options go after it)\nTry 'faultctl --help'.");
  EXPECT_TRUE(starts_with(parse_err({"--sokcet", "/x", "list"}), "unrecognised option '--sokcet'; did you mean '--socket'?"));
  EXPECT_TRUE(starts_with(parse_err({"--verison"}), "unrecognised option '--verison'; did you mean '--version'?"));
  // A command option before the command is not silently accepted.
  EXPECT_TRUE(starts_with(parse_err({"--for", "5m", "loss", "30"}), "unrecognised option '--for'"));
  EXPECT_EQ(parse_err({"-o", "yaml", "list"}),
            "--output: expected table or json, got \"yaml\"\nTry 'faultctl --help'.");
  EXPECT_EQ(parse_err({"--socket"}), "option '--socket' needs a value\nTry 'faultctl --help'.");
  EXPECT_EQ(parse_err({"-o"}), "option '-o' needs a value\nTry 'faultctl --help'.");
  EXPECT_EQ(parse_err({"--socket=", "list"}), "--socket: empty path");
  EXPECT_EQ(parse_err({"--socket", std::string(108, 'x'), "list"}),
            "--socket: path is 108 bytes; a Unix socket path has at most 107");
  EXPECT_EQ(parse_err({"list"}, std::string(200, 'y').c_str()),
            "FAULTLINE_SOCKET: path is 200 bytes; a Unix socket path has at most 107");
  EXPECT_TRUE(parse_args({"--socket", std::string(107, 'x'), "list"}, nullptr).ok());
}

TEST(CliGlobal, Help) {
  for (auto args : {std::vector<std::string>{"--help"}, {"-h"}, {"-o", "json", "--help", "frob"}}) {
    auto inv = parse_ok(args);
    EXPECT_TRUE(inv.help);
    EXPECT_TRUE(starts_with(inv.help_text, "Usage: faultctl [GLOBAL OPTIONS] COMMAND"));
    for (const char* cmd : {"partition", "loss", "isolate", "delay", "rate", "corrupt", "duplicate", "reorder",
                            "shape", "matrix", "reset", "list", "get", "heal", "stats", "status"}) {
      EXPECT_TRUE(contains(inv.help_text, std::string("\n  ") + cmd + " ")) << cmd;
    }
    EXPECT_TRUE(contains(inv.help_text, "3 daemon unreachable"));
  }
}

TEST(CliCommand, HelpOnEveryCommand) {
  for (const char* cmd : {"partition", "loss", "isolate", "delay", "rate", "corrupt", "duplicate", "reorder",
                          "shape", "matrix", "reset", "list", "get", "heal", "stats", "status"}) {
    for (const char* flag : {"--help", "-h"}) {
      auto inv = parse_ok({cmd, flag});
      EXPECT_TRUE(inv.help) << cmd;
      EXPECT_TRUE(starts_with(inv.help_text, std::string("Usage: faultctl [--socket PATH] [-o table|json] ") + cmd))
          << inv.help_text;
      EXPECT_TRUE(contains(inv.help_text, "--help")) << cmd;
    }
  }
  // Help wins over errors elsewhere on the line: someone asking for help is lost already.
  auto inv = parse_ok({"loss", "--frob", "--help"});
  EXPECT_TRUE(inv.help);
  EXPECT_TRUE(contains(inv.help_text, "--correlation PERCENT"));
  EXPECT_TRUE(contains(inv.help_text, "--no-default-exempt"));
  EXPECT_TRUE(contains(parse_ok({"partition", "-h"}).help_text, "--side [NAME=]CIDRS"));
  EXPECT_TRUE(contains(parse_ok({"heal", "-h"}).help_text, "--all"));
  EXPECT_FALSE(contains(parse_ok({"list", "-h"}).help_text, "--target"));
}

// ---------------------------------------------------------------- apply commands

TEST(CliApply, PartitionWithEverything) {
  auto inv = parse_ok({"partition", "--side", "east=10.0.0.0/8,192.168.1.7", "--side", "fd00::/64", "--one-way",
                       "--src", "10.1.0.0/16", "--dst", "10.2.0.0/16,fd00:1::/48", "--proto", "tcp", "--sport", "80",
                       "--dport", "1000-2000", "--direction", "egress", "--new-only", "--exempt",
                       "10.9.0.0/16/tcp:6443",
                       "--exempt", "192.0.2.1", "--no-default-exempt", "--target", "netns:pod-a", "--target",
                       "pid:42", "--dev", "eth0", "--dev", "veth1", "--for", "1h30m", "--name", "split-1"});
  ASSERT_TRUE(inv.fault.has_value());
  const core::FaultSpec& f = *inv.fault;
  EXPECT_EQ(inv.command, "partition");
  EXPECT_EQ(f.kind, core::FaultKind::partition);
  ASSERT_EQ(f.sides.size(), 2u);
  EXPECT_EQ(f.sides[0].name, "east");
  EXPECT_EQ(f.sides[0].cidrs, (std::vector<core::Cidr>{cidr("10.0.0.0/8"), cidr("192.168.1.7/32")}));
  EXPECT_EQ(f.sides[1].name, "s2");
  EXPECT_EQ(f.sides[1].cidrs, std::vector<core::Cidr>{cidr("fd00::/64")});
  EXPECT_TRUE(f.one_way);
  EXPECT_EQ(f.match.src, std::vector<core::Cidr>{cidr("10.1.0.0/16")});
  EXPECT_EQ(f.match.dst, (std::vector<core::Cidr>{cidr("10.2.0.0/16"), cidr("fd00:1::/48")}));
  EXPECT_EQ(f.match.proto, core::Proto::tcp);
  EXPECT_EQ(f.match.sport, (core::PortRange{80, 80}));
  EXPECT_EQ(f.match.dport, (core::PortRange{1000, 2000}));
  EXPECT_EQ(f.match.direction, core::Direction::egress);
  EXPECT_TRUE(f.match.new_only);
  ASSERT_EQ(f.exempt.size(), 2u);
  EXPECT_EQ(f.exempt[0].str(), "10.9.0.0/16/tcp:6443");
  EXPECT_EQ(f.exempt[1].str(), "192.0.2.1/32");
  EXPECT_FALSE(f.default_exempt);
  ASSERT_EQ(f.targets.size(), 2u);
  EXPECT_EQ(f.targets[0].str(), "netns:pod-a");
  EXPECT_EQ(f.targets[1].str(), "pid:42");
  EXPECT_EQ(f.devs, (std::vector<std::string>{"eth0", "veth1"}));
  EXPECT_EQ(f.duration, 90min);
  EXPECT_EQ(f.name, "split-1");
}

TEST(CliApply, LossDefaults) {
  auto inv = parse_ok({"loss", "30%"});
  ASSERT_TRUE(inv.fault.has_value());
  const core::FaultSpec& f = *inv.fault;
  EXPECT_EQ(f.kind, core::FaultKind::loss);
  EXPECT_EQ(f.loss_percent, 30.0);
  EXPECT_EQ(f.correlation_percent, 0.0);
  EXPECT_FALSE(f.seed.has_value());
  EXPECT_TRUE(f.sides.empty());
  EXPECT_TRUE(f.default_exempt);
  EXPECT_EQ(f.duration, 5min);
  // validate() ran: the default target is filled in.
  ASSERT_EQ(f.targets.size(), 1u);
  EXPECT_EQ(f.targets[0].kind, core::Target::Kind::host);
  EXPECT_TRUE(f.devs.empty());
  EXPECT_TRUE(f.name.empty());
  EXPECT_EQ(f.match.proto, core::Proto::all);
  // Loss acts on egress unless told otherwise, so a fault on both ends of a path judges a packet
  // once; partition and isolate keep both.
  EXPECT_EQ(f.match.direction, core::Direction::egress);
  EXPECT_EQ(parse_ok({"loss", "30", "--direction", "both"}).fault->match.direction, core::Direction::both);
  EXPECT_EQ(parse_ok({"loss", "30", "--direction", "ingress"}).fault->match.direction, core::Direction::ingress);
  EXPECT_EQ(parse_ok({"partition", "--side", "10.0.0.1", "--side", "10.0.0.2"}).fault->match.direction,
            core::Direction::both);
  EXPECT_EQ(parse_ok({"isolate", "10.0.0.1"}).fault->match.direction, core::Direction::both);
}

TEST(CliApply, LossOptions) {
  auto inv = parse_ok({"loss", "12.5", "--correlation", "25%", "--seed", "0x10", "--for", "500ms"});
  ASSERT_TRUE(inv.fault.has_value());
  EXPECT_EQ(inv.fault->loss_percent, 12.5);
  EXPECT_EQ(inv.fault->correlation_percent, 25.0);
  EXPECT_EQ(inv.fault->seed, std::optional<uint64_t>(16));
  EXPECT_EQ(inv.fault->duration, 500ms);
}

TEST(CliApply, OptionsMayComeBeforeThePositional) {
  auto inv = parse_ok({"loss", "--for", "10m", "40"});
  ASSERT_TRUE(inv.fault.has_value());
  EXPECT_EQ(inv.fault->loss_percent, 40.0);
  EXPECT_EQ(inv.fault->duration, 10min);
  EXPECT_EQ(parse_ok({"loss", "--seed=7", "1"}).fault->seed, std::optional<uint64_t>(7));
}

TEST(CliApply, Isolate) {
  auto inv = parse_ok({"isolate", "10.0.0.7,fd00::7", "--target", "netns-path:/run/netns/x"});
  ASSERT_TRUE(inv.fault.has_value());
  EXPECT_EQ(inv.fault->kind, core::FaultKind::isolate);
  ASSERT_EQ(inv.fault->sides.size(), 1u);
  EXPECT_EQ(inv.fault->sides[0].cidrs, (std::vector<core::Cidr>{cidr("10.0.0.7"), cidr("fd00::7")}));
  EXPECT_EQ(inv.fault->targets.at(0).str(), "netns-path:/run/netns/x");
}

TEST(CliApply, NewOnlyImpliesTcp) {
  auto inv = parse_ok({"isolate", "10.0.0.7", "--new-only"});
  ASSERT_TRUE(inv.fault.has_value());
  EXPECT_EQ(inv.fault->match.proto, core::Proto::tcp);
}

TEST(CliApply, UsageErrors) {
  const std::pair<std::vector<std::string>, std::string> exact[] = {
      {{"loss"}, "loss: missing PERCENT\nTry 'faultctl loss --help'."},
      {{"loss", "30", "40"}, "loss: unexpected argument \"40\"\nTry 'faultctl loss --help'."},
      {{"isolate"}, "isolate: missing CIDR[,CIDR...]\nTry 'faultctl isolate --help'."},
      {{"isolate", "10.0.0.1", "10.0.0.2"},
       "isolate: unexpected argument \"10.0.0.2\" (separate addresses with commas)\nTry 'faultctl isolate --help'."},
      {{"partition", "10.0.0.0/8"},
       "partition: unexpected argument \"10.0.0.0/8\" (sides are given with --side)\nTry 'faultctl partition --help'."},
      {{"loss", "30", "--frob"}, "loss: unrecognised option '--frob'\nTry 'faultctl loss --help'."},
      // No prefix guessing: --corr is not --correlation.
      {{"loss", "30", "--corr", "5"},
       "loss: unrecognised option '--corr'; did you mean '--correlation'?\nTry 'faultctl loss --help'."},
      {{"loss", "30", "--dprot", "80"}, "loss: unrecognised option '--dprot'; did you mean '--dport'?\nTry 'faultctl loss --help'."},
      // Options of one kind are not accepted by another.
      {{"loss", "30", "--one-way"}, "loss: unrecognised option '--one-way'\nTry 'faultctl loss --help'."},
      {{"partition", "--side", "10.0.0.1", "--side", "10.0.0.2", "--seed", "1"},
       "partition: unrecognised option '--seed'\nTry 'faultctl partition --help'."},
      {{"loss", "30", "--positional-args", "x"},
       "loss: unrecognised option '--positional-args'\nTry 'faultctl loss --help'."},
      {{"loss", "30", "--proto", "tcp", "--proto", "udp"},
       "loss: option '--proto' cannot be specified more than once\nTry 'faultctl loss --help'."},
      {{"loss", "30", "--proto"},
       "loss: the required argument for option '--proto' is missing\nTry 'faultctl loss --help'."},
      {{"loss", "30", "--new-only=yes"},
       "loss: option '--new-only' does not take any arguments\nTry 'faultctl loss --help'."},
  };
  for (const auto& [args, msg] : exact) EXPECT_EQ(parse_err(args), msg);
}

// Value errors come from core/parse.h and core/validate.h (their wording is theirs); faultctl
// must put the option that carried the value in front.
TEST(CliApply, ValueErrorsNameTheOption) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"loss", "abc"}, "PERCENT: "},
      {{"loss", "101"}, "PERCENT: "},
      {{"loss", "30", "--correlation", "x"}, "--correlation: "},
      {{"loss", "30", "--correlation", "100"}, "--correlation: "},
      {{"loss", "30", "--seed", "-1"}, "--seed: "},
      {{"loss", "30", "--src", "10.0.0.300"}, "--src: "},
      {{"loss", "30", "--dst", "10.0.0.0/8,"}, "--dst: "},
      {{"loss", "30", "--proto", "sctp"}, "--proto: "},
      {{"loss", "30", "--proto", "tcp", "--sport", "99999"}, "--sport: "},
      {{"loss", "30", "--proto", "tcp", "--dport", "20-10"}, "--dport: "},
      {{"loss", "30", "--proto", "icmp", "--sport", "80"}, "--sport: "},  // ICMP has no ports: validate's rule
      {{"loss", "30", "--direction", "up"}, "--direction: "},
      {{"loss", "30", "--proto", "udp", "--new-only"}, "--new-only: "},
      {{"loss", "30", "--exempt", "nope"}, "--exempt: "},
      {{"loss", "30", "--target", "docker:x"}, "--target: "},
      {{"loss", "30", "--target", "host", "--target", "host"}, "--target: "},
      {{"loss", "30", "--dev", "a/b"}, "--dev: "},
      {{"loss", "30", "--dev", "eth0", "--dev", "eth0"}, "--dev: "},
      {{"loss", "30", "--for", "5"}, "--for: "},
      {{"loss", "30", "--for", "1ms"}, "--for: "},
      {{"loss", "30", "--for", "8d"}, "--for: "},
      {{"loss", "30", "--name", "123"}, "--name: "},
      {{"loss", "30", "--name", "a b"}, "--name: "},
      {{"partition", "--side", "10.0.0.0/8"}, "--side: "},
      {{"partition"}, "--side: "},
      {{"partition", "--side", "a=10.0.0.1", "--side", "a=10.0.0.2"}, "--side: "},
      {{"partition", "--side", "a=10.0.0.1/8", "--side", "10.0.0.2"}, "--side: "},
      {{"partition", "--side", "=10.0.0.1", "--side", "10.0.0.2"}, "--side: "},
      {{"isolate", "10.0.0.1/8"}, "CIDRS: "},
      {{"isolate", "10.0.0.1", "--one-way"}, "isolate: unrecognised option '--one-way'"},
  };
  for (const auto& [args, prefix] : cases) {
    const std::string msg = parse_err(args);
    EXPECT_TRUE(starts_with(msg, prefix)) << "got: " << msg << "\nwanted prefix: " << prefix;
  }
  // The bad input is quoted back.
  EXPECT_TRUE(contains(parse_err({"loss", "30", "--src", "10.0.0.300"}), "10.0.0.300"));
  EXPECT_TRUE(contains(parse_err({"loss", "30", "--target", "docker:x"}), "docker:x"));
}

// ---------------------------------------------------------------- read commands

TEST(CliRead, Refs) {
  EXPECT_EQ(parse_ok({"get", "web-1"}).ref, "web-1");
  EXPECT_EQ(parse_ok({"get", "7"}).ref, "7");
  EXPECT_EQ(parse_ok({"get", "007"}).ref, "7");  // ids are sent canonical
  EXPECT_EQ(parse_ok({"heal", "web"}).ref, "web");
  EXPECT_FALSE(parse_ok({"heal", "web"}).all);
  auto all = parse_ok({"heal", "--all"});
  EXPECT_TRUE(all.all);
  EXPECT_TRUE(all.ref.empty());
  EXPECT_TRUE(parse_ok({"stats"}).ref.empty());
  EXPECT_EQ(parse_ok({"stats", "9"}).ref, "9");
  EXPECT_FALSE(parse_ok({"list"}).fault.has_value());
  EXPECT_EQ(parse_ok({"status"}).command, "status");
}

TEST(CliRead, UsageErrors) {
  const std::pair<std::vector<std::string>, std::string> exact[] = {
      {{"get"}, "get: missing ID or NAME\nTry 'faultctl get --help'."},
      {{"get", "a", "b"}, "get: unexpected argument \"b\"\nTry 'faultctl get --help'."},
      {{"heal"}, "heal: missing ID or NAME (or --all)\nTry 'faultctl heal --help'."},
      {{"heal", "3", "--all"},
       "heal: give ID|NAME or --all, not both (got \"3\" and --all)\nTry 'faultctl heal --help'."},
      {{"heal", "a", "b"}, "heal: unexpected argument \"b\"\nTry 'faultctl heal --help'."},
      {{"stats", "1", "2"}, "stats: unexpected argument \"2\"\nTry 'faultctl stats --help'."},
      {{"list", "extra"}, "list: unexpected argument \"extra\"\nTry 'faultctl list --help'."},
      {{"status", "--all"}, "status: unrecognised option '--all'\nTry 'faultctl status --help'."},
      {{"list", "--for", "5m"}, "list: unrecognised option '--for'\nTry 'faultctl list --help'."},
  };
  for (const auto& [args, msg] : exact) EXPECT_EQ(parse_err(args), msg);
  EXPECT_TRUE(starts_with(parse_err({"get", "bad name"}), "get: "));
  EXPECT_TRUE(starts_with(parse_err({"get", "99999999999999999999999"}), "get: fault id: "));
  EXPECT_TRUE(starts_with(parse_err({"heal", "-x"}), "heal: unrecognised option '-x'"));
}

// ---------------------------------------------------------------- requests

TEST(CliRequest, ApplyCarriesTheValidatedSpec) {
  auto inv = parse_ok({"loss", "30", "--name", "web"});
  Call c = command_call(inv);
  EXPECT_EQ(c.op, "apply");
  EXPECT_EQ(c.params, (json{{"fault", proto::fault_spec_to_json(*inv.fault)}}));
  EXPECT_EQ(c.params.at("fault").at("targets"), json({"host"}));
  // What the daemon will decode is what the user asked for.
  auto back = proto::fault_spec_from_json(c.params.at("fault"));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->loss_percent, 30.0);
  EXPECT_EQ(back->name, "web");
}

TEST(CliRequest, ReadOps) {
  EXPECT_EQ(command_call(parse_ok({"list"})).op, "list");
  EXPECT_EQ(command_call(parse_ok({"list"})).params, json::object());
  EXPECT_EQ(command_call(parse_ok({"get", "web"})).params, (json{{"fault", "web"}}));
  EXPECT_EQ(command_call(parse_ok({"heal", "12"})).params, (json{{"fault", "12"}}));
  EXPECT_EQ(command_call(parse_ok({"heal", "--all"})).params, (json{{"all", true}}));
  EXPECT_EQ(command_call(parse_ok({"stats"})).params, json::object());
  EXPECT_EQ(command_call(parse_ok({"stats", "web"})).params, (json{{"fault", "web"}}));
  EXPECT_EQ(command_call(parse_ok({"status"})).op, "status");
  EXPECT_EQ(hello_call().op, "hello");
  EXPECT_EQ(hello_call().params, (json{{"version", 1}}));
}

TEST(CliRequest, EncodedLineIsAValidRequest) {
  const std::string line = encode_request(5, "get", json{{"fault", "web"}, {"id", 99}, {"op", "heal"}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto r = proto::parse_request(line, nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, 5u);
  EXPECT_EQ(r->op, "get");
  EXPECT_EQ(r->body.at("fault"), "web");
}

// ---------------------------------------------------------------- formatting

TEST(CliFormat, HumanDuration) {
  EXPECT_EQ(human_duration(0), "0s");
  EXPECT_EQ(human_duration(-5), "0s");
  EXPECT_EQ(human_duration(850), "850ms");
  EXPECT_EQ(human_duration(1000), "1s");
  EXPECT_EQ(human_duration(1999), "1s");  // truncated: never promise more time than is left
  EXPECT_EQ(human_duration(299999), "4m59s");
  EXPECT_EQ(human_duration(300000), "5m");
  EXPECT_EQ(human_duration(3600000), "1h");
  EXPECT_EQ(human_duration(3601000), "1h0m1s");
  EXPECT_EQ(human_duration(5400000), "1h30m");
  EXPECT_EQ(human_duration(7 * 24 * 3600000LL), "168h");
}

json sample_status() {
  return json::parse(R"({
    "id": 7, "name": "web", "kind": "partition", "state": "active",
    "created_unix_ms": 1700000000123, "expires_in_ms": 299500, "duration_ms": 300000,
    "targets": ["netns:a", "host"],
    "interfaces": [{"target": "netns:a", "dev": "veth0", "ifindex": 3, "mode": "tcx"},
                   {"target": "host", "dev": "eth0", "ifindex": 2, "mode": "tc"}],
    "counters": {"matched": 123456, "dropped": 120000, "exempted": 17},
    "spec": {"kind": "partition", "name": "web",
             "sides": [{"name": "a", "cidrs": ["10.0.0.0/8"]}, {"name": "b", "cidrs": ["10.1.0.0/16", "fd00::/64"]}],
             "one_way": false,
             "loss": {"percent": 0.0, "correlation": 0.0, "seed": null},
             "match": {"src": [], "dst": ["10.9.0.0/16"], "proto": "tcp", "sport": "any", "dport": "5432",
                       "direction": "both", "new_only": true},
             "exempt": ["10.0.0.5/32/tcp:22"], "default_exempt": true, "targets": ["netns:a", "host"],
             "devs": [], "duration_ms": 300000}
  })");
}

TEST(CliFormat, FaultTable) {
  json healed = sample_status();
  healed["id"] = 12;
  healed["name"] = "";
  healed["kind"] = "loss";
  healed["state"] = "healed";
  healed["targets"] = json{"host"};
  healed["counters"] = json{{"matched", 5}, {"dropped", 0}, {"exempted", 0}};
  EXPECT_EQ(format_fault_table(json{sample_status(), healed}),
            "ID  NAME  KIND       TARGETS       EXPIRES  MATCHED  DROPPED  EXEMPT\n"
            " 7  web   partition  netns:a,host  4m59s     123456   120000      17\n"
            "12  -     loss       host          healed         5        0       0\n");
}

TEST(CliFormat, EmptyTableIsHeaderOnly) {
  EXPECT_EQ(format_fault_table(json::array()), "ID  NAME  KIND  TARGETS  EXPIRES  MATCHED  DROPPED  EXEMPT\n");
}

TEST(CliFormat, TableSurvivesMalformedEntries) {
  std::string out;
  ASSERT_NO_THROW(out = format_fault_table(json{42, json::object(), json{{"id", "x"}, {"counters", 5}}}));
  EXPECT_EQ(out,
            "ID  NAME  KIND  TARGETS  EXPIRES  MATCHED  DROPPED  EXEMPT\n"
            " -  -     -     -        -              -        -       -\n"
            " -  -     -     -        -              -        -       -\n"
            " x  -     -     -        -              -        -       -\n");
  ASSERT_NO_THROW(format_fault_table(json("not an array")));
}

TEST(CliFormat, Detail) {
  const std::string out = format_fault_detail(sample_status());
  // Keys are aligned: the longest key is "default exempt".
  for (const char* line : {"id:              7\n", "name:            web\n", "kind:            partition\n",
                           "state:           active\n", "created:         2023-11-14 22:13:20 UTC\n",
                           "expires in:      4m59s\n", "duration:        5m\n", "targets:         netns:a, host\n",
                           "interfaces:      netns:a veth0 (ifindex 3, tcx)\n"
                           "                 host eth0 (ifindex 2, tc)\n",
                           "matched:         123456\n", "dropped:         120000\n", "exempted:        17\n",
                           "sides:           a = 10.0.0.0/8\n"
                           "                 b = 10.1.0.0/16,fd00::/64\n",
                           "one way:         no\n", "src:             any\n", "dst:             10.9.0.0/16\n",
                           "proto:           tcp\n", "dport:           5432\n", "new only:        yes\n",
                           "exempt:          10.0.0.5/32/tcp:22\n", "default exempt:  yes\n",
                           "devs:            all non-loopback\n"}) {
    EXPECT_TRUE(contains(out, line)) << "missing:\n" << line << "in:\n" << out;
  }
  EXPECT_FALSE(contains(out, "loss:")) << "loss settings shown for a partition:\n" << out;
}

TEST(CliFormat, DetailOfLossFault) {
  json f = sample_status();
  f["kind"] = "loss";
  f["spec"]["kind"] = "loss";
  f["spec"]["sides"] = json::array();
  f["spec"]["loss"] = json{{"percent", 12.5}, {"correlation", 0.0}, {"seed", 42}};
  const std::string out = format_fault_detail(f);
  EXPECT_TRUE(contains(out, "\nloss:            12.5%\n")) << out;
  EXPECT_TRUE(contains(out, "\ncorrelation:     0%\n")) << out;
  EXPECT_TRUE(contains(out, "\nseed:            42\n")) << out;
  EXPECT_FALSE(contains(out, "sides:")) << out;
}

TEST(CliFormat, DetailOfEndedFaultHasNoCountdown) {
  json f = sample_status();
  f["state"] = "expired";
  EXPECT_FALSE(contains(format_fault_detail(f), "expires in"));
  ASSERT_NO_THROW(format_fault_detail(json::array()));
}

TEST(CliFormat, StatusShowsTheDaemonsPolicy) {
  json st = json::parse(R"({"daemon":"0.1.0","protocol":1,"faults_active":0,"exemptions":[],
    "policy":{"require_default_exempt":true,"max_duration_ms":3600000}})");
  EXPECT_TRUE(contains(format_status(st), "\npolicy:         default exemptions required, longest fault 1h\n"))
      << format_status(st);
  st["policy"] = json::parse(R"({"require_default_exempt":false,"max_duration_ms":null})");
  EXPECT_TRUE(contains(format_status(st),
                       "\npolicy:         default exemptions may be turned off, longest fault 7d (protocol limit)\n"))
      << format_status(st);
}

// The data path's counters in the order of bpf/abi.h, whatever order the JSON object has, then
// a counter this faultctl does not know; a busy kernel worker is named.
TEST(CliFormat, StatusShowsTheDataPathCountersAndABusyWorker) {
  json st = json::parse(R"({"daemon":"0.1.0","protocol":1,"faults_active":1,"exemptions":[],
    "datapath":{"dropped":12,"seen":345,"lease_expired":0,"zz_new":7},"datapath_age_ms":400,
    "kernel_worker_busy_ms":2500})");
  const std::string out = format_status(st);
  EXPECT_TRUE(contains(out,
                       "\ndata path:      packets since start, read 400ms ago\n"
                       "                seen           345\n"
                       "                lease_expired  0\n"
                       "                dropped        12\n"
                       "                zz_new         7\n"))
      << out;
  EXPECT_TRUE(contains(out, "\nkernel worker:  busy with one request for 2s\n")) << out;
  st["kernel_worker_busy_ms"] = 0;
  EXPECT_FALSE(contains(format_status(st), "kernel worker")) << "an idle worker is not news";
}

TEST(CliFormat, Status) {
  json st = json::parse(R"({"daemon":"0.1.0","protocol":1,"pid":4242,"uptime_ms":7384000,"lease_ms":15000,
    "lease_remaining_ms":14200,"features":{"ifb":"no","tcx":"yes","clsact":"yes","btf":"unknown","zz_new":"yes"},
    "faults_active":2,"exemptions":[]})");
  const std::string out = format_status(st);
  EXPECT_TRUE(starts_with(out, "daemon:         faultlined 0.1.0 (pid 4242, up 2h3m4s)\n")) << out;
  EXPECT_TRUE(contains(out, "\nprotocol:       1\n")) << out;
  EXPECT_TRUE(contains(out, "\nlease:          14s left of 15s\n")) << out;
  EXPECT_TRUE(contains(out, "\nactive faults:  2\n")) << out;
  EXPECT_TRUE(contains(out, "\nexemptions:     none\n")) << out;
  // One feature per line, known ones in a fixed order, unknown ones after.
  EXPECT_TRUE(contains(out,
                       "\nfeatures:       tcx     yes\n"
                       "                clsact  yes\n"
                       "                btf     unknown\n"
                       "                ifb     no\n"
                       "                zz_new  yes\n"))
      << out;
}

TEST(CliFormat, JsonNeverThrowsOnBadUtf8) {
  std::string out;
  ASSERT_NO_THROW(out = format_json(json{{"name", "bad\xff"}}));
  EXPECT_FALSE(json::parse(out, nullptr, false).is_discarded()) << out;
  EXPECT_EQ(out.back(), '\n');
}

// ---------------------------------------------------------------- client

// A listening socket in a temp dir and a thread that plays the daemon.
class FakeDaemon {
 public:
  FakeDaemon() {
    char tmpl[] = "/tmp/faultctl-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/s.sock";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path_.copy(a.sun_path, path_.size());
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    EXPECT_EQ(listen(fd_, 4), 0);
  }
  ~FakeDaemon() {
    if (thread_.joinable()) thread_.join();
    close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  // Accepts one client and runs `serve` on its fd.
  template <typename F>
  void serve(F serve) {
    thread_ = std::thread([this, serve] {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      serve(c);
      close(c);
    });
  }
  const std::string& path() const { return path_; }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  static std::string read_line(int fd) {
    std::string s;
    char ch;
    while (read(fd, &ch, 1) == 1 && ch != '\n') s += ch;
    return s;
  }
  static void write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      // The client may hang up early on purpose; that must not SIGPIPE the test binary.
      ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
  std::thread thread_;
};

TEST(CliClient, ConnectFailureCarriesErrno) {
  auto c = Client::connect("/nonexistent/faultline.sock");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().sys_errno, ENOENT);
  EXPECT_EQ(c.error().message, "cannot connect to /nonexistent/faultline.sock: No such file or directory");
}

TEST(CliClient, IdsCountUpAndRepliesAreReassembledFromPieces) {
  FakeDaemon d;
  std::vector<std::string> seen;
  d.serve([&seen](int fd) {
    for (int i = 0; i < 2; ++i) {
      std::string line = FakeDaemon::read_line(fd);
      seen.push_back(line);
      auto req = json::parse(line);
      std::string reply = proto::reply_ok(req.at("id").get<uint64_t>(), json{{"echo", req.at("op")}}) + "\n";
      // One byte at a time: the client must not assume a reply arrives in one read.
      for (char ch : reply) FakeDaemon::write_all(fd, std::string(1, ch));
    }
  });
  auto c = Client::connect(d.path());
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto r1 = c->call("hello", json{{"version", 1}});
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_EQ(*r1, (json{{"echo", "hello"}}));
  auto r2 = c->call("list", json::object());
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(*r2, (json{{"echo", "list"}}));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(json::parse(seen[0]).at("id"), 1);
  EXPECT_EQ(json::parse(seen[1]).at("id"), 2);
}

// The largest fault validate() accepts, 65,536 IPv6 host CIDRs, fits one request line; one
// past the limit is refused before a byte is sent (the daemon would hang up mid-write).
TEST(CliClient, TheLargestValidFaultFitsAndALongerRequestIsRefusedBeforeSending) {
  json side = json::array();
  for (uint32_t i = 0; i < core::kMaxCidrsPerFault; i++) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "fd00:200:ffff:ffff:ffff:ffff:%x:%x/128", 0xf000 + (i >> 16), 0xf000 + (i & 0xffff));
    side.push_back(buf);
  }
  const std::string largest = encode_request(1, "apply", json{{"fault", {{"sides", {{{"cidrs", side}}}}}}});
  EXPECT_LT(largest.size(), proto::kMaxLine);

  FakeDaemon d;
  std::string received;
  d.serve([&received](int fd) { received = FakeDaemon::read_line(fd); });
  auto c = Client::connect(d.path());
  ASSERT_TRUE(c.ok());
  auto r = c->call("apply", json{{"pad", std::string(proto::kMaxLine, 'x')}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find("over faultlined's limit of 4194304"), std::string::npos) << r.error().message;
  EXPECT_FALSE(c->lost());
  c = Client::connect("/nonexistent");  // closes the connection: the fake saw no request
  d.join();
  EXPECT_EQ(received, "");
}

TEST(CliClient, DaemonErrorIsNotATransportFailure) {
  FakeDaemon d;
  d.serve([](int fd) {
    FakeDaemon::read_line(fd);
    FakeDaemon::write_all(fd, proto::reply_error(1, make_error(Errc::permission_denied, "apply needs root")) + "\n");
  });
  auto c = Client::connect(d.path());
  ASSERT_TRUE(c.ok());
  auto r = c->call("apply", json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::permission_denied);
  EXPECT_EQ(r.error().message, "apply needs root");
  EXPECT_FALSE(c->lost());
}

TEST(CliClient, CloseWithoutReplyIsLost) {
  FakeDaemon d;
  d.serve([](int fd) { FakeDaemon::read_line(fd); });
  auto c = Client::connect(d.path());
  ASSERT_TRUE(c.ok());
  auto r = c->call("list", json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(c->lost());
  EXPECT_EQ(r.error().message, "faultlined closed the connection without replying");
}

TEST(CliClient, SilentDaemonTimesOut) {
  FakeDaemon d;
  std::atomic<bool> done{false};
  d.serve([&done](int fd) {
    FakeDaemon::read_line(fd);
    while (!done) std::this_thread::sleep_for(10ms);
  });
  auto c = Client::connect(d.path(), 200ms);
  ASSERT_TRUE(c.ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = c->call("list", json::object());
  const auto took = std::chrono::steady_clock::now() - start;
  done = true;
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(c->lost());
  EXPECT_EQ(r.error().sys_errno, ETIMEDOUT);
  EXPECT_TRUE(contains(r.error().message, "within 200ms")) << r.error().message;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
}

TEST(CliClient, OversizedReplyIsRefused) {
  FakeDaemon d;
  d.serve([](int fd) {
    FakeDaemon::read_line(fd);
    FakeDaemon::write_all(fd, "{\"id\":1,\"ok\":true,\"result\":\"" + std::string(kMaxReply + 1024, 'x'));
  });
  auto c = Client::connect(d.path());
  ASSERT_TRUE(c.ok());
  auto r = c->call("list", json::object());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "reply from faultlined exceeds 16 MiB");
}

// ---------------------------------------------------------------- reset

TEST(CliReset, SelectorsBecomeAResetRequest) {
  auto inv = parse_ok({"reset", "--dst", "10.0.0.7,fd00::7", "--dport", "5432", "--target", "netns:app",
                       "--target", "pid:42", "--exempt", "10.9.0.0/16/tcp:6443", "--no-default-exempt"});
  ASSERT_TRUE(inv.reset.has_value());
  EXPECT_FALSE(inv.fault.has_value());
  const core::ResetSpec& r = *inv.reset;
  EXPECT_EQ(r.match.dst, (std::vector<core::Cidr>{cidr("10.0.0.7"), cidr("fd00::7")}));
  EXPECT_EQ(r.match.dport, (core::PortRange{5432, 5432}));
  EXPECT_EQ(r.match.proto, core::Proto::tcp);  // filled by validation
  EXPECT_FALSE(r.all);
  EXPECT_FALSE(r.default_exempt);
  ASSERT_EQ(r.exempt.size(), 1u);
  ASSERT_EQ(r.targets.size(), 2u);
  EXPECT_EQ(r.targets[0].str(), "netns:app");

  Call c = command_call(inv);
  EXPECT_EQ(c.op, "reset");
  ASSERT_TRUE(c.params.contains("reset"));
  EXPECT_EQ(c.params["reset"]["match"]["dst"], (json{"10.0.0.7/32", "fd00::7/128"}));
  EXPECT_EQ(c.params["reset"]["all"], false);
  EXPECT_EQ(c.params["reset"]["targets"], (json{"netns:app", "pid:42"}));
  auto back = proto::reset_spec_from_json(c.params["reset"]);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->match.dst, r.match.dst);
}

TEST(CliReset, AllAndDefaults) {
  auto inv = parse_ok({"reset", "--all"});
  ASSERT_TRUE(inv.reset.has_value());
  EXPECT_TRUE(inv.reset->all);
  EXPECT_TRUE(inv.reset->default_exempt);
  ASSERT_EQ(inv.reset->targets.size(), 1u);
  EXPECT_EQ(inv.reset->targets[0].str(), "host");
  EXPECT_EQ(command_call(inv).params["reset"]["all"], true);
  // Each selector alone is enough; --proto tcp is allowed, all is the default.
  for (auto args : {std::vector<std::string>{"reset", "--src", "10.0.0.0/24"},
                    {"reset", "--sport", "1000-2000"},
                    {"reset", "--dport", "80", "--proto", "tcp"},
                    {"reset", "--dport", "80", "--proto", "all"}}) {
    EXPECT_TRUE(parse_ok(args).reset.has_value());
  }
}

TEST(CliReset, Errors) {
  EXPECT_EQ(parse_err({"reset"}),
            "reset: give a selector (--src, --dst, --sport or --dport), or --all to reset every TCP connection "
            "of the targets\nTry 'faultctl reset --help'.");
  EXPECT_TRUE(starts_with(parse_err({"reset", "--proto", "tcp", "--target", "netns:a"}), "reset: give a selector"));
  EXPECT_TRUE(starts_with(parse_err({"reset", "--all", "--dst", "10.0.0.7"}), "reset: --all resets every"));
  EXPECT_EQ(parse_err({"reset", "--dport", "80", "--proto", "udp"}),
            "--proto: a reset destroys TCP connections; proto must be tcp or all (got udp)");
  EXPECT_TRUE(starts_with(parse_err({"reset", "10.0.0.7"}), "reset: unexpected argument \"10.0.0.7\""));
  EXPECT_TRUE(starts_with(parse_err({"reset", "--dst", "10.0.0.0/33"}), "--dst: "));
  EXPECT_TRUE(starts_with(parse_err({"reset", "--dst", "10.0.0.7", "--target", "frob"}), "--target: "));
  EXPECT_TRUE(starts_with(parse_err({"reset", "--dst", "10.0.0.7", "--target", "netns:a", "--target", "netns:a"}),
                          "--target: duplicate target"));
  // Options of the apply commands that mean nothing for a reset.
  for (const char* opt : {"--for", "--name", "--direction", "--new-only", "--dev"}) {
    EXPECT_TRUE(contains(parse_err({"reset", "--all", opt, "x"}), "unrecognised option")) << opt;
  }
}

TEST(CliReset, HelpHasExamplesAndTheSafetyRule) {
  const std::string h = parse_ok({"reset", "--help"}).help_text;
  EXPECT_TRUE(starts_with(h, "Usage: faultctl [--socket PATH] [-o table|json] reset SELECTORS|--all")) << h;
  for (const char* s : {"--dst CIDRS", "--all", "--target TARGET", "--no-default-exempt", "ECONNRESET",
                        "faultctl reset --dst 10.0.2.7 --dport 5432 --target netns:app-1", "A selector or --all"}) {
    EXPECT_TRUE(contains(h, s)) << s << " missing from:\n" << h;
  }
}

TEST(CliReset, PartitionAndIsolateTakeReset) {
  auto iso = parse_ok({"isolate", "10.0.0.7", "--reset"});
  ASSERT_TRUE(iso.fault.has_value());
  EXPECT_TRUE(iso.fault->reset);
  EXPECT_EQ(command_call(iso).params["fault"]["reset"], true);
  EXPECT_FALSE(parse_ok({"isolate", "10.0.0.7"}).fault->reset);
  EXPECT_FALSE(command_call(parse_ok({"isolate", "10.0.0.7"})).params["fault"].contains("reset"));
  auto part = parse_ok({"partition", "--side", "10.0.0.1", "--side", "10.0.0.2", "--reset"});
  EXPECT_TRUE(part.fault->reset);
  EXPECT_EQ(parse_err({"isolate", "10.0.0.7", "--reset", "--new-only"}),
            "--reset: not with match.new_only, which spares the established connections that reset would destroy");
  EXPECT_TRUE(starts_with(parse_err({"isolate", "10.0.0.7", "--reset", "--proto", "udp"}), "--reset: destroys TCP"));
  EXPECT_TRUE(contains(parse_err({"loss", "30", "--reset"}), "unrecognised option '--reset'"));
  EXPECT_TRUE(contains(parse_ok({"isolate", "-h"}).help_text, "--reset"));
  EXPECT_TRUE(contains(parse_ok({"partition", "-h"}).help_text, "--reset"));
}

TEST(CliHelp, TargetKindsAndRemoteHosts) {
  const std::string top = top_help();
  for (const char* s : {"--host [ssh://][USER@]HOST[:PORT]", "send the command to faultlined on HOST over ssh (repeatable)",
                        "--hosts FILE", "one host per line, as for --host", "--ssh-config FILE",
                        "ssh configuration for --host/--hosts"}) {
    EXPECT_TRUE(contains(top, s)) << s;
  }
  for (const char* cmd : {"isolate", "rate", "reset"}) {
    const std::string h = parse_ok({cmd, "--help"}).help_text;
    // PO wraps long descriptions; compare with every run of white space as one space.
    std::string flat;
    for (char c : h) {
      const bool space = c == ' ' || c == '\n';
      if (!space) flat += c;
      else if (flat.empty() || flat.back() != ' ') flat += ' ';
    }
    EXPECT_TRUE(contains(flat, "host, netns:NAME, netns-path:PATH, pid:PID, pod-uid:UID, container:ID, "
                               "pod:NAMESPACE/NAME or lab:[LAB/]NODE (repeatable; default host)"))
        << cmd << ":\n" << h;
  }
}

TEST(CliFormat, ResetResult) {
  json one = json::parse(R"({"matched": 5, "destroyed": 4, "gone": 1,
                             "per_target": [{"target": "netns:a", "matched": 5, "destroyed": 4, "gone": 1}]})");
  EXPECT_EQ(format_reset_result(one),
            "TARGET   MATCHED  DESTROYED  GONE\n"
            "netns:a        5          4     1\n");
  json two = json::parse(R"({"matched": 12, "destroyed": 12, "gone": 0,
                             "per_target": [{"target": "netns:a", "matched": 2, "destroyed": 2, "gone": 0},
                                            {"target": "host", "matched": 10, "destroyed": 10, "gone": 0}]})");
  EXPECT_EQ(format_reset_result(two),
            "TARGET   MATCHED  DESTROYED  GONE\n"
            "netns:a        2          2     0\n"
            "host          10         10     0\n"
            "total         12         12     0\n");
  std::string out;
  ASSERT_NO_THROW(out = format_reset_result(json{{"per_target", 3}}));
  EXPECT_TRUE(starts_with(out, "TARGET")) << out;
  ASSERT_NO_THROW(format_reset_result(json::array()));
}

TEST(CliFormat, ApplyResetNoteAndDetail) {
  json f = sample_status();
  EXPECT_EQ(format_apply_reset(f), "");
  f["reset"] = json{{"matched", 6}, {"destroyed", 5}, {"gone", 1}};
  EXPECT_EQ(format_apply_reset(f), "reset 5 TCP connections (1 more closed on their own meanwhile)\n");
  f["reset"]["gone"] = 0;
  EXPECT_EQ(format_apply_reset(f), "reset 5 TCP connections\n");
  f["spec"]["reset"] = true;
  EXPECT_TRUE(contains(format_fault_detail(f), "\nreset:           yes (5 connections destroyed)\n"))
      << format_fault_detail(f);
  EXPECT_TRUE(contains(format_fault_detail(sample_status()), "\nreset:           no\n"));
  ASSERT_NO_THROW(format_apply_reset(json{{"reset", 7}}));
  EXPECT_EQ(format_apply_reset(json{{"reset", 7}}), "");
}

}  // namespace
}  // namespace fl::cli

namespace fl::cli {
namespace {

// ---------------------------------------------------------------- issue 9: CLI friction

// 7 days is the documented maximum, in whatever unit it is written; one millisecond more is
// refused with the maximum in the message.
TEST(CliLifetime, MaximumIsInclusiveInEveryUnit) {
  for (const char* d : {"7d", "168h", "10080m", "604800s", "604800000ms", "6d24h", "1d144h"}) {
    auto inv = parse_ok({"loss", "30", "--for", d});
    ASSERT_TRUE(inv.fault) << d;
    EXPECT_EQ(inv.fault->duration, std::chrono::milliseconds(604800000)) << d;
  }
  for (const char* d : {"7d1ms", "168h1ms", "10080m1ms", "604800s1ms", "604800001ms", "604800.001s"}) {
    EXPECT_EQ(parse_err({"loss", "30", "--for", d}), "--for: 7d1ms is above the maximum 7d") << d;
  }
  EXPECT_EQ(parse_ok({"loss", "30", "--for", "1d"}).fault->duration, std::chrono::hours(24));
  EXPECT_TRUE(contains(parse_ok({"loss", "--help"}).help_text, "1h30m, 7d (default 5m"));
}

// A port without --proto is TCP and UDP (the data path tests ports on both, and only on them).
TEST(CliPorts, PortWithoutProtoIsTcpAndUdp) {
  auto inv = parse_ok({"loss", "20", "--dst", "10.0.2.0/24", "--dport", "443"});
  EXPECT_EQ(inv.fault->match.proto, core::Proto::all);
  EXPECT_EQ(inv.fault->match.dport.str(), "443");
  inv = parse_ok({"partition", "--side", "10.0.0.1", "--side", "10.0.0.2", "--sport", "1000-2000", "--reset"});
  EXPECT_EQ(inv.fault->match.sport.str(), "1000-2000");
  EXPECT_EQ(parse_ok({"delay", "10ms", "--dport", "53"}).fault->match.proto, core::Proto::all);
  EXPECT_TRUE(starts_with(parse_err({"loss", "20", "--proto", "icmp", "--dport", "443"}),
                          "--dport: port 443 needs proto tcp, udp or all (proto is icmp)"));
  const std::string help = parse_ok({"loss", "--help"}).help_text;
  EXPECT_TRUE(contains(help, "destination port or range: TCP and UDP")) << help;
}

TEST(CliGlobal, Version) {
  auto inv = parse_ok({"--version"});
  EXPECT_TRUE(inv.version);
  EXPECT_TRUE(starts_with(version_text(Output::table), "faultctl ")) << version_text(Output::table);
  const json j = json::parse(version_text(Output::json));
  EXPECT_TRUE(j["faultctl"].is_string());
  EXPECT_EQ(j["protocol"], proto::kVersion);
  EXPECT_EQ(parse_ok({"-o", "json", "--version"}).output, Output::json);
  EXPECT_TRUE(starts_with(parse_err({"--version", "list"}), "--version takes no command"));
}

TEST(CliGlobal, DidYouMeanACommand) {
  EXPECT_EQ(parse_err({"partiton"}), "unknown command \"partiton\"; did you mean 'partition'?\nTry 'faultctl --help'.");
  EXPECT_TRUE(starts_with(parse_err({"lsit"}), "unknown command \"lsit\"; did you mean 'list'?"));
  EXPECT_TRUE(starts_with(parse_err({"stat"}), "unknown command \"stat\"; did you mean"));
  EXPECT_TRUE(starts_with(parse_err({"labb"}), "unknown command \"labb\"; did you mean 'lab'?"));
  EXPECT_EQ(parse_err({"frob"}), "unknown command \"frob\"\nTry 'faultctl --help'.");  // nothing close
}

// Global options work before `lab` too: what applies is passed to faultline-lab, the rest is
// refused with the reason.
TEST(CliGlobal, LabTakesTheGlobalOptions) {
  auto inv = parse_ok({"--socket", "/tmp/x.sock", "lab", "up", "--nodes", "4"});
  EXPECT_EQ(inv.command, "lab");
  EXPECT_EQ(inv.lab_args, (std::vector<std::string>{"up", "--nodes", "4"}));
  inv = parse_ok({"-o", "json", "lab", "status", "--name", "x"});
  EXPECT_EQ(inv.lab_args, (std::vector<std::string>{"status", "-o", "json", "--name", "x"}));
  inv = parse_ok({"lab", "exec", "a", "--", "ping", "-c1", "10.200.0.12"});
  EXPECT_EQ(inv.lab_args, (std::vector<std::string>{"exec", "a", "--", "ping", "-c1", "10.200.0.12"}));
  inv = parse_ok({"-o", "table", "lab", "down"});
  EXPECT_EQ(inv.lab_args, (std::vector<std::string>{"down"}));
  inv = parse_ok({"-o", "json", "lab", "up", "--help"});
  EXPECT_EQ(inv.lab_args, (std::vector<std::string>{"up", "--help"}));
  EXPECT_EQ(parse_err({"-o", "json", "lab", "up"}),
            "-o json: 'faultctl lab up' prints text only; of the lab commands only 'lab status' has JSON output\n"
            "Try 'faultctl --help'.");
  EXPECT_TRUE(parse_ok({"lab"}).lab_args.empty());  // faultline-lab says what is missing
}

TEST(CliFormat, AppliedSaysIdNameKindTargetsAndEnd) {
  const json f = {{"id", 7},
                  {"name", "split"},
                  {"kind", "partition"},
                  {"targets", {"host", "netns:fl-lab-a"}},
                  {"created_unix_ms", 1700000000123},
                  {"duration_ms", 120000},
                  {"expires_in_ms", 120000}};
  EXPECT_EQ(format_applied(f),
            "applied fault 7 \"split\": partition on host, netns:fl-lab-a, ends 2023-11-14 22:15:20 UTC (in 2m)\n");
  const json g = {{"id", 8}, {"name", ""}, {"kind", "loss"}, {"targets", {"host"}}, {"expires_in_ms", 5000}};
  EXPECT_EQ(format_applied(g), "applied fault 8: loss on host, ends in 5s\n");
}

}  // namespace
}  // namespace fl::cli
