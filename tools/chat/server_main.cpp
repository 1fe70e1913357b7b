// fl-chat-server: one node of the chat cluster. See tools/chat/README.md.
#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "endpoint.h"
#include "server.h"

namespace po = boost::program_options;
using namespace fl::chat;

namespace {

tcp::endpoint endpoint_option(const std::string& name, const std::string& v) {
  auto ep = parse_endpoint(v);
  if (!ep) throw po::error("--" + name + ": '" + v + "' is not ADDR:PORT (numeric, [v6]:port for IPv6)");
  return *ep;
}

template <class T>
T positive(const std::string& name, T v) {
  if (v <= 0) throw po::error("--" + name + " must be greater than 0");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  ServerConfig cfg;
  std::string listen, metrics, peer_listen;
  std::vector<std::string> peers;
  long long sndbuf, max_msgs, max_bytes, max_msg_bytes, max_clients, peer_queue, pb_base, pb_cap, p_hb, p_to;
  po::options_description d("usage: fl-chat-server --node NAME --listen ADDR:PORT --metrics ADDR:PORT "
                            "--peer-listen ADDR:PORT [--peer ADDR:PORT]...\noptions");
  d.add_options()("help,h", "this text")
      ("node", po::value(&cfg.node)->required(), "this server's name, the origin of its clients' messages ([A-Za-z0-9_.-], 1-64)")
      ("listen", po::value(&listen)->required(), "WebSocket clients: ws://ADDR:PORT/ROOM")
      ("metrics", po::value(&metrics)->required(), "Prometheus text at http://ADDR:PORT/metrics")
      ("peer-listen", po::value(&peer_listen)->required(), "links from peer servers (TCP)")
      ("peer", po::value(&peers)->composing(), "a peer server's --peer-listen address (repeat; a full mesh)")
      ("max-queue-messages", po::value(&max_msgs)->default_value(256), "per-client queue bound in messages")
      ("max-queue-bytes", po::value(&max_bytes)->default_value(1 << 20), "per-client queue bound in bytes")
      ("max-message-bytes", po::value(&max_msg_bytes)->default_value(16 << 10), "largest frame a client may send")
      ("client-sndbuf", po::value(&sndbuf)->default_value(0), "SO_SNDBUF of client sockets in bytes (0: kernel autotuning)")
      ("max-clients", po::value(&max_clients)->default_value(10000), "connections beyond this are refused")
      ("peer-queue-bytes", po::value(&peer_queue)->default_value(8 << 20), "per-peer send queue bound; beyond it messages are dropped")
      ("peer-backoff-base-ms", po::value(&pb_base)->default_value(100), "peer reconnect: first backoff ceiling")
      ("peer-backoff-cap-ms", po::value(&pb_cap)->default_value(5000), "peer reconnect: largest backoff ceiling")
      ("peer-heartbeat-ms", po::value(&p_hb)->default_value(500), "heartbeat interval on peer links")
      ("peer-timeout-ms", po::value(&p_to)->default_value(2000), "a peer link silent this long is closed");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, d), vm);
    if (vm.count("help")) {
      std::cout << d;
      return 0;
    }
    po::notify(vm);
    if (!Server::valid_room(cfg.node)) throw po::error("--node: 1-64 characters of [A-Za-z0-9_.-]");
    cfg.listen = endpoint_option("listen", listen);
    cfg.metrics = endpoint_option("metrics", metrics);
    cfg.peer_listen = endpoint_option("peer-listen", peer_listen);
    for (const auto& p : peers) cfg.peers.push_back(endpoint_option("peer", p));
    cfg.max_queue_messages = static_cast<size_t>(positive("max-queue-messages", max_msgs));
    cfg.max_queue_bytes = static_cast<size_t>(positive("max-queue-bytes", max_bytes));
    cfg.max_message_bytes = static_cast<size_t>(positive("max-message-bytes", max_msg_bytes));
    if (sndbuf < 0 || sndbuf > (64 << 20)) throw po::error("--client-sndbuf must be 0..67108864");
    cfg.client_sndbuf = static_cast<int>(sndbuf);
    cfg.max_clients = static_cast<size_t>(positive("max-clients", max_clients));
    cfg.peer_queue_bytes = static_cast<size_t>(positive("peer-queue-bytes", peer_queue));
    cfg.peer_backoff_base = std::chrono::milliseconds(positive("peer-backoff-base-ms", pb_base));
    cfg.peer_backoff_cap = std::chrono::milliseconds(positive("peer-backoff-cap-ms", pb_cap));
    cfg.peer_heartbeat = std::chrono::milliseconds(positive("peer-heartbeat-ms", p_hb));
    cfg.peer_timeout = std::chrono::milliseconds(positive("peer-timeout-ms", p_to));
    if (cfg.peer_backoff_cap < cfg.peer_backoff_base)
      throw po::error("--peer-backoff-cap-ms must be at least --peer-backoff-base-ms");
    if (cfg.peer_timeout <= cfg.peer_heartbeat)
      throw po::error("--peer-timeout-ms must be greater than --peer-heartbeat-ms");
  } catch (const po::error& e) {
    std::cerr << "fl-chat-server: " << e.what() << "\n" << d;
    return 2;
  }

  std::signal(SIGPIPE, SIG_IGN);
  net::io_context io(1);
  Server srv(io, cfg);
  try {
    srv.start();
  } catch (const std::exception& e) {
    std::cerr << "fl-chat-server: " << e.what() << "\n";
    return 1;
  }
  net::signal_set sig(io, SIGTERM, SIGINT);
  net::steady_timer grace(io);
  sig.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    std::fprintf(stderr, "fl-chat-server %s: stopping\n", cfg.node.c_str());
    srv.stop();
    // Clients get a second to answer the close; then whatever is left is dropped.
    grace.expires_after(std::chrono::seconds(1));
    grace.async_wait([&](boost::system::error_code) { io.stop(); });
  });
  std::fprintf(stderr, "fl-chat-server %s: clients on %s, metrics on %s, peers on %s, %zu peer(s)\n", cfg.node.c_str(),
               listen.c_str(), metrics.c_str(), peer_listen.c_str(), cfg.peers.size());
  io.run();
  return 0;
}
