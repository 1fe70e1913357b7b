// Links between chat servers: plain TCP, one JSON object per line.
//
// Every server dials each peer on its list (PeerOut) and sends its own clients' messages on that
// link only; links it accepts (inbound) only receive. So a message crosses each pair of servers
// once, on its origin's link, and the peer list must be a full mesh. Both ends send a heartbeat
// line every peer_heartbeat and drop a link silent for peer_timeout: a partition without resets
// (packets silently dropped) is noticed, and the dialling side reconnects with backoff.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "backoff.h"
#include "server.h"

namespace fl::chat {

class PeerConn : public std::enable_shared_from_this<PeerConn> {
 public:
  using LineFn = std::function<void(const json&)>;  // every line but hello and heartbeat
  using ClosedFn = std::function<void()>;
  PeerConn(Server& srv, tcp::socket sock, LineFn on_line, ClosedFn on_closed);
  void start();
  void send(const Frame& line);  // bounded by peer_queue_bytes; dropped (counted) beyond it
  void close();
  std::string remote_node;  // from the hello line

 private:
  void read();
  void write();
  void tick();

  Server& srv_;
  tcp::socket sock_;
  net::steady_timer hb_;
  std::string rbuf_;
  std::deque<Frame> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false, closed_ = false;
  std::chrono::steady_clock::time_point last_rx_;
  LineFn on_line_;
  ClosedFn on_closed_;
};

class PeerOut : public std::enable_shared_from_this<PeerOut> {
 public:
  PeerOut(Server& srv, tcp::endpoint ep, uint64_t seed);
  void start();
  void stop();
  void send(const Frame& line);
  bool up() const { return conn_ != nullptr; }
  const tcp::endpoint& endpoint() const { return ep_; }
  std::string node() const { return conn_ ? conn_->remote_node : ""; }

 private:
  void dial();
  void retry();

  Server& srv_;
  tcp::endpoint ep_;
  Backoff backoff_;
  net::steady_timer timer_;
  std::shared_ptr<tcp::socket> dialling_;
  std::shared_ptr<PeerConn> conn_;
  bool stopped_ = false;
};

}  // namespace fl::chat
