// fl-chat-server: the rooms of one node, its WebSocket clients and its links to peer servers.
// Single-threaded: everything runs on one io_context, so no member needs a lock.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fl::chat {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Frame = std::shared_ptr<const std::string>;  // one message, shared by every queue it sits in

struct ServerConfig {
  std::string node;  // this server's name: the origin of the messages its clients send
  tcp::endpoint listen, metrics, peer_listen;
  std::vector<tcp::endpoint> peers;
  size_t max_queue_messages = 256;     // per client
  size_t max_queue_bytes = 1 << 20;    // per client
  size_t max_message_bytes = 16 << 10; // one frame from a client, one line from a peer
  size_t max_clients = 10000;
  int client_sndbuf = 0;               // SO_SNDBUF per client socket (0: the kernel's autotuning)
  size_t peer_queue_bytes = 8 << 20;   // per outgoing peer link; beyond it messages are dropped
  std::chrono::milliseconds peer_backoff_base{100}, peer_backoff_cap{5000};
  std::chrono::milliseconds peer_heartbeat{500}, peer_timeout{2000};
  std::chrono::milliseconds client_handshake_timeout{5000};
};

// Counters since start (the gauges are computed when the metrics are rendered).
struct Counters {
  uint64_t client_connects = 0;
  uint64_t client_disconnects = 0;
  uint64_t overflow_disconnects = 0;
  uint64_t protocol_errors = 0;
  uint64_t rejected_full = 0;       // refused: max clients reached
  uint64_t messages_from_clients = 0;
  uint64_t messages_relayed_in = 0;   // received from peers
  uint64_t messages_relayed_out = 0;  // queued to peers (one per peer)
  uint64_t messages_delivered = 0;    // queued to local clients (one per client)
  uint64_t peer_dropped = 0;          // not sent to a peer: link down or its queue full
  uint64_t peer_connects = 0;
  uint64_t peer_connect_failures = 0;
  uint64_t peer_disconnects = 0;
  uint64_t peer_timeouts = 0;
};

class ClientSession;
class PeerConn;
class PeerOut;

class Server {
 public:
  Server(net::io_context& io, ServerConfig cfg);
  ~Server();
  // Binds every listener; throws with the address on failure.
  void start();
  // Stops accepting, closes clients (WebSocket close "going away") and peers.
  void stop();

  // From a local client in `room`: stamp origin and sequence, deliver locally, send to peers.
  void publish_local(const std::string& room, json body);
  // A message line from a peer: deliver locally only (never relayed on: the origin server
  // sends to every peer itself, so a relay would duplicate it).
  void on_peer_message(const json& msg);

  bool join(const std::string& room, const std::shared_ptr<ClientSession>& s);
  void leave(const std::string& room, const std::shared_ptr<ClientSession>& s);
  bool admit();  // a new client may connect (max clients)
  void client_closed(const std::shared_ptr<ClientSession>& s);

  void inbound_closed(const std::shared_ptr<PeerConn>& c);
  std::string render_metrics() const;

  const ServerConfig& config() const { return cfg_; }
  Counters& counters() { return ctr_; }
  net::io_context& io() { return io_; }
  bool stopping() const { return stopping_; }

  static bool valid_room(const std::string& r);

 private:
  void accept_clients();
  void accept_peers();
  void accept_metrics();
  void deliver(const std::string& room, const Frame& f);

  net::io_context& io_;
  ServerConfig cfg_;
  Counters ctr_;
  tcp::acceptor client_acc_, peer_acc_, metrics_acc_;
  std::set<std::shared_ptr<ClientSession>> clients_;
  std::map<std::string, std::set<std::shared_ptr<ClientSession>>> rooms_;
  std::vector<std::shared_ptr<PeerOut>> peers_out_;
  std::set<std::shared_ptr<PeerConn>> peers_in_;
  uint64_t seq_ = 0;
  bool stopping_ = false;
};

}  // namespace fl::chat
