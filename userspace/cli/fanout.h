// faultctl --host/--hosts: one request sent to the daemons of many hosts, each reached through
// its own ssh process that forwards a private local Unix socket to the remote daemon's socket.
// The parsing and the partition narrowing are pure (unit-tested); the ssh tunnel is in
// tunnel.h, and the transaction across hosts in transaction.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "core/model.h"
#include "core/result.h"

namespace fl::cli {

// More hosts than this are served in waves; each one costs an ssh process.
inline constexpr size_t kMaxParallelHosts = 32;
// An apply holds one ssh per host open until every host has answered.
inline constexpr size_t kMaxHosts = 1024;

// The options faultctl takes before the command to fan out, and the arguments left for
// parse_args (--socket, -o, the command and its options), in their order.
struct HostOptions {
  std::vector<std::string> hosts;       // --host SPEC, as given
  std::vector<std::string> host_files;  // --hosts FILE, as given
  std::string ssh_config;               // --ssh-config FILE; empty: ssh's default
  bool narrow = true;                   // false: --no-narrow (every host gets the whole partition)
  bool any() const { return !hosts.empty() || !host_files.empty(); }
};
struct ExtractedArgs {
  HostOptions hosts;
  std::vector<std::string> rest;
};
// args excludes argv[0]. Only options before the command (the first argument that is not an
// option, or "--") are taken, so a command's own arguments are never mistaken for them.
// Errors are usage errors (exit 2).
Result<ExtractedArgs> extract_host_options(const std::vector<std::string>& args);

// One host: [ssh://][USER@]HOST[:PORT], HOST a DNS name (or ssh_config alias), an IPv4
// address, or an IPv6 address ("[fd00::1]:2222" in brackets when a port follows).
struct Host {
  std::string user;    // empty: ssh's choice (ssh_config, then the local user)
  std::string host;    // IPv6 without brackets
  uint16_t port = 0;   // 0: ssh's choice
  std::string socket;  // the daemon's socket there; empty: the command's --socket
  // How faultctl names the host in its output: [USER@]HOST[:PORT], brackets around an IPv6
  // address only when a port follows.
  std::string name() const;
};
Result<Host> parse_host_spec(std::string_view spec);

// A hosts file: one "SPEC [socket=PATH]" per line; blank lines and '#' comments (to the end of
// the line) are ignored. Errors say "FILE:LINE: ...". A file that names no host is an error.
Result<std::vector<Host>> parse_hosts_file(std::string_view text, const std::string& file);

// The hosts of --host and then of every --hosts file, in order; a host named twice (same HOST
// and PORT, whatever the user) is refused, since both would drive the same daemon.
Result<std::vector<Host>> collect_hosts(const HostOptions& opts, const ReadFile& read_file);

// Fault ids are per daemon: "7" names a different fault (or none) on each host. With more than
// one host, a get, heal or stats by id is a usage error (exit 2) that says to use the fault's
// name (or heal --all); names, --all and single hosts pass.
Status check_fan_out_ref(const Invocation& inv, size_t hosts);

// A remote daemon socket must be absolute (ssh resolves a relative one against the login
// directory, which the user cannot see) and free of ':' (ssh's -L separator).
Status check_remote_socket(std::string_view path, std::string_view what);

// The daemon's own addresses, from the "addresses" member of a status reply; nullopt when the
// daemon is too old to report them.
Result<std::optional<std::vector<core::Cidr>>> status_addresses(const nlohmann::json& status);

// Whether narrow_for_host may cut the spec down: a partition whose every target is `host` (the
// default). A partition installed in a pod's, container's or other namespace sees that
// namespace's addresses, not the ones the daemon reports for the host, so it is sent whole.
bool narrowable(const core::FaultSpec& spec);

// The part of a partition that concerns a host with the addresses `own` (its host-namespace
// addresses): every side holding at least one of them is reduced to those of them it holds;
// other sides are kept whole. A host that only sees packets from or to its own addresses drops
// exactly what the whole partition would, with far fewer addresses in its maps; one that
// forwards other machines' traffic (a router, a node routing pod traffic without NAT) does not,
// which is what --no-narrow is for. nullopt: no side holds any of them, and the host has
// nothing to do. Specs that are not narrowable() come back unchanged.
std::optional<core::FaultSpec> narrow_for_host(const core::FaultSpec& spec, const std::vector<core::Cidr>& own);

}  // namespace fl::cli
