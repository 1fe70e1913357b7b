#include "server.h"

#include <cstdio>
#include <random>
#include <sstream>

#include "client_session.h"
#include "endpoint.h"
#include "metrics_http.h"
#include "peer.h"

namespace fl::chat {

namespace {

void bind(tcp::acceptor& acc, const tcp::endpoint& ep, const char* what) {
  boost::system::error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(std::string(what) + " " + to_string(ep) + ": " + ec.message());
}

}  // namespace

Server::Server(net::io_context& io, ServerConfig cfg)
    : io_(io), cfg_(std::move(cfg)), client_acc_(io), peer_acc_(io), metrics_acc_(io) {}

Server::~Server() = default;

bool Server::valid_room(const std::string& r) {
  if (r.empty() || r.size() > 64) return false;
  for (char c : r)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  return true;
}

void Server::start() {
  bind(client_acc_, cfg_.listen, "listen");
  bind(metrics_acc_, cfg_.metrics, "metrics");
  bind(peer_acc_, cfg_.peer_listen, "peer-listen");
  accept_clients();
  accept_metrics();
  accept_peers();
  std::random_device rd;
  for (const auto& ep : cfg_.peers) {
    auto p = std::make_shared<PeerOut>(*this, ep, (uint64_t{rd()} << 32) | rd());
    peers_out_.push_back(p);
    p->start();
  }
}

void Server::stop() {
  if (stopping_) return;
  stopping_ = true;
  boost::system::error_code ec;
  client_acc_.close(ec);
  peer_acc_.close(ec);
  metrics_acc_.close(ec);
  for (auto& p : peers_out_) p->stop();
  auto in = peers_in_;
  for (auto& c : in) c->close();
  auto cl = clients_;
  for (auto& c : cl) c->shutdown();
}

void Server::accept_clients() {
  client_acc_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
    if (ec == net::error::operation_aborted || stopping_) return;
    if (!ec) {
      if (!admit()) {
        ctr_.rejected_full++;
        sock.close(ec);
      } else {
        auto s = std::make_shared<ClientSession>(*this, std::move(sock));
        clients_.insert(s);
        s->run();
      }
    }
    accept_clients();
  });
}

void Server::accept_metrics() {
  metrics_acc_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
    if (ec == net::error::operation_aborted || stopping_) return;
    if (!ec) serve_metrics(*this, std::move(sock));
    accept_metrics();
  });
}

void Server::accept_peers() {
  peer_acc_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
    if (ec == net::error::operation_aborted || stopping_) return;
    if (!ec) {
      auto holder = std::make_shared<std::weak_ptr<PeerConn>>();
      auto c = std::make_shared<PeerConn>(
          *this, std::move(sock),
          [this](const json& j) {
            if (j["type"] == "msg") on_peer_message(j);
          },
          [this, holder] {
            if (auto me = holder->lock()) net::post(io_, [this, me] { inbound_closed(me); });
          });
      *holder = c;
      peers_in_.insert(c);
      c->start();
    }
    accept_peers();
  });
}

bool Server::admit() { return clients_.size() < cfg_.max_clients; }

void Server::client_closed(const std::shared_ptr<ClientSession>& s) { clients_.erase(s); }

void Server::inbound_closed(const std::shared_ptr<PeerConn>& c) { peers_in_.erase(c); }

bool Server::join(const std::string& room, const std::shared_ptr<ClientSession>& s) {
  rooms_[room].insert(s);
  return true;
}

void Server::leave(const std::string& room, const std::shared_ptr<ClientSession>& s) {
  auto it = rooms_.find(room);
  if (it == rooms_.end()) return;
  it->second.erase(s);
  if (it->second.empty()) rooms_.erase(it);
}

void Server::publish_local(const std::string& room, json body) {
  json msg = {{"type", "msg"}, {"room", room}, {"origin", cfg_.node}, {"seq", ++seq_}, {"body", std::move(body)}};
  std::string text = msg.dump();
  deliver(room, std::make_shared<const std::string>(text));
  if (peers_out_.empty()) return;
  auto line = std::make_shared<const std::string>(text + "\n");
  for (auto& p : peers_out_) p->send(line);
}

void Server::on_peer_message(const json& j) {
  if (!j.contains("room") || !j["room"].is_string() || !valid_room(j["room"].get<std::string>()) ||
      !j.contains("origin") || !j["origin"].is_string() || !j.contains("body")) {
    ctr_.protocol_errors++;
    return;
  }
  // Our own message coming back means a peer relays (a mis-built mesh): never deliver it twice.
  if (j["origin"] == cfg_.node) return;
  ctr_.messages_relayed_in++;
  json msg = {{"type", "msg"}, {"room", j["room"]}, {"origin", j["origin"]}, {"seq", j.value("seq", 0)},
              {"body", j["body"]}};
  deliver(j["room"].get<std::string>(), std::make_shared<const std::string>(msg.dump()));
}

void Server::deliver(const std::string& room, const Frame& f) {
  auto it = rooms_.find(room);
  if (it == rooms_.end()) return;
  for (auto& s : it->second) {
    s->send(f);
    ctr_.messages_delivered++;
  }
}

std::string Server::render_metrics() const {
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  auto node = "{node=\"" + cfg_.node + "\"}";
  metric("fl_chat_clients", "gauge", "WebSocket clients connected to this server.");
  o << "fl_chat_clients" << node << ' ' << clients_.size() << '\n';
  metric("fl_chat_room_clients", "gauge", "Clients in each room.");
  for (const auto& [r, set] : rooms_) o << "fl_chat_room_clients{room=\"" << r << "\"} " << set.size() << '\n';
  size_t total_msgs = 0, total_bytes = 0, max_msgs = 0, max_bytes = 0;
  std::map<std::string, std::pair<size_t, size_t>> per_room;
  for (const auto& c : clients_) {
    total_msgs += c->queued_messages();
    total_bytes += c->queued_bytes();
    max_msgs = std::max(max_msgs, c->queued_messages());
    max_bytes = std::max(max_bytes, c->queued_bytes());
    if (!c->room().empty()) {
      auto& p = per_room[c->room()];
      p.first += c->queued_messages();
      p.second += c->queued_bytes();
    }
  }
  metric("fl_chat_queue_messages", "gauge", "Messages queued to the clients of each room.");
  for (const auto& [r, p] : per_room) o << "fl_chat_queue_messages{room=\"" << r << "\"} " << p.first << '\n';
  metric("fl_chat_queue_bytes", "gauge", "Bytes queued to the clients of each room.");
  for (const auto& [r, p] : per_room) o << "fl_chat_queue_bytes{room=\"" << r << "\"} " << p.second << '\n';
  metric("fl_chat_queue_messages_all", "gauge", "Messages queued to all clients.");
  o << "fl_chat_queue_messages_all " << total_msgs << '\n';
  metric("fl_chat_queue_bytes_all", "gauge", "Bytes queued to all clients.");
  o << "fl_chat_queue_bytes_all " << total_bytes << '\n';
  metric("fl_chat_queue_messages_max", "gauge", "The longest client queue, in messages.");
  o << "fl_chat_queue_messages_max " << max_msgs << '\n';
  metric("fl_chat_queue_bytes_max", "gauge", "The largest client queue, in bytes.");
  o << "fl_chat_queue_bytes_max " << max_bytes << '\n';
  metric("fl_chat_queue_limit_messages", "gauge", "Per-client queue bound in messages (overflow disconnects).");
  o << "fl_chat_queue_limit_messages " << cfg_.max_queue_messages << '\n';
  metric("fl_chat_queue_limit_bytes", "gauge", "Per-client queue bound in bytes (overflow disconnects).");
  o << "fl_chat_queue_limit_bytes " << cfg_.max_queue_bytes << '\n';

  auto counter = [&](const char* name, const char* help, uint64_t v) {
    metric(name, "counter", help);
    o << name << ' ' << v << '\n';
  };
  counter("fl_chat_client_connects_total", "WebSocket handshakes completed.", ctr_.client_connects);
  counter("fl_chat_client_disconnects_total", "Clients gone, for any reason.", ctr_.client_disconnects);
  counter("fl_chat_overflow_disconnects_total", "Clients disconnected because their queue overflowed.",
          ctr_.overflow_disconnects);
  counter("fl_chat_protocol_errors_total", "Malformed frames or peer lines.", ctr_.protocol_errors);
  counter("fl_chat_rejected_clients_total", "Connections refused at the client limit.", ctr_.rejected_full);
  counter("fl_chat_messages_from_clients_total", "Messages sent by local clients.", ctr_.messages_from_clients);
  counter("fl_chat_messages_relayed_in_total", "Messages received from peer servers.", ctr_.messages_relayed_in);
  counter("fl_chat_messages_relayed_out_total", "Messages queued to peer servers (one per peer).",
          ctr_.messages_relayed_out);
  counter("fl_chat_messages_delivered_total", "Messages queued to local clients (one per client).",
          ctr_.messages_delivered);
  counter("fl_chat_peer_dropped_total", "Messages not sent to a peer: link down or its queue full.",
          ctr_.peer_dropped);
  counter("fl_chat_peer_connects_total", "Outgoing peer links established.", ctr_.peer_connects);
  counter("fl_chat_peer_connect_failures_total", "Outgoing peer connection attempts that failed.",
          ctr_.peer_connect_failures);
  counter("fl_chat_peer_disconnects_total", "Outgoing peer links lost.", ctr_.peer_disconnects);
  counter("fl_chat_peer_timeouts_total", "Peer links closed for silence (no heartbeat).", ctr_.peer_timeouts);

  size_t up = 0;
  for (const auto& p : peers_out_) up += p->up() ? 1 : 0;
  metric("fl_chat_peer_links_up", "gauge", "Outgoing peer links up.");
  o << "fl_chat_peer_links_up " << up << '\n';
  metric("fl_chat_peer_links_configured", "gauge", "Peers on the command line.");
  o << "fl_chat_peer_links_configured " << peers_out_.size() << '\n';
  metric("fl_chat_peer_inbound_links", "gauge", "Incoming peer links open.");
  o << "fl_chat_peer_inbound_links " << peers_in_.size() << '\n';
  metric("fl_chat_peer_up", "gauge", "Each outgoing peer link: 1 up, 0 down.");
  for (const auto& p : peers_out_) o << "fl_chat_peer_up{peer=\"" << to_string(p->endpoint()) << "\"} " << p->up() << '\n';
  metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes (/proc/self/statm).");
  o << "process_resident_memory_bytes " << resident_bytes() << '\n';
  return o.str();
}

}  // namespace fl::chat
