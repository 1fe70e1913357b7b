// faultctl's way to a remote daemon: an ssh process that forwards a private local Unix socket to
// the daemon's socket on the host, and the HostConnection that talks through it. The only part
// of the fan-out that starts processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cli/client.h"
#include "cli/fanout.h"
#include "cli/host_connection.h"
#include "core/result.h"

namespace fl::cli {

// How long ssh gets to connect, authenticate and set up the forwarding. Generous: a loaded
// machine (or a VM under emulation) needs seconds for the key exchange alone.
inline constexpr auto kTunnelTimeout = std::chrono::seconds(30);

// ssh -N -L LOCAL:REMOTE to one host, LOCAL a socket in a private (0700) temporary directory.
// Move-only; the destructor stops ssh and removes the directory.
struct SshOptions {
  std::string config;  // ssh -F; empty: none
  std::chrono::milliseconds timeout = kTunnelTimeout;
};
class Tunnel {
 public:
  // From now on SIGINT, SIGTERM, SIGHUP and SIGPIPE stop every open tunnel's ssh and remove
  // its directory before faultctl dies of the signal (signals the caller ignores stay
  // ignored). Call once, before opening tunnels.
  static void clean_up_on_signals();

  static Result<Tunnel> open(const Host& host, const std::string& remote_socket, const SshOptions& opts);

  Tunnel(Tunnel&& other) noexcept;
  Tunnel& operator=(Tunnel&& other) noexcept;
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;
  ~Tunnel();

  // Waits (up to the timeout given to open) until the forwarded socket accepts a connection,
  // and returns that connection. Errors carry what ssh printed; the caller names the host.
  Result<Client> connect();
  // What ssh wrote on stderr so far, on one line ("" if nothing): why a forwarded connection
  // was closed ("open failed: connect failed: No such file or directory").
  std::string ssh_errors() const;
  const std::string& local_socket() const { return local_; }

 private:
  Tunnel() = default;
  void close();

  std::string dir_, local_, err_path_;
  pid_t pid_ = -1;
  int slot_ = -1;  // in the table the signal handler cleans up; -1: none
  std::chrono::milliseconds timeout_{0};
};

// A HostConnection through a Tunnel: connect() starts ssh and waits for the forwarding, and
// errors speak of the remote socket and say what ssh said.
class SshConnection final : public HostConnection {
 public:
  SshConnection(const Host& host, std::string remote_socket, SshOptions opts)
      : host_(host), socket_(std::move(remote_socket)), opts_(std::move(opts)) {}

  Status connect() override;
  Result<nlohmann::json> call(const std::string& op, const nlohmann::json& params) override;
  bool lost() const override { return client_ && client_->lost(); }

 private:
  Host host_;
  std::string socket_;
  SshOptions opts_;
  std::optional<Tunnel> tunnel_;
  std::optional<Client> client_;  // declared after the tunnel: closed before ssh stops
};

// The Connector faultctl uses: one SshConnection per host.
Connector ssh_connector(SshOptions opts);

}  // namespace fl::cli
