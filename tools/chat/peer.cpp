#include "peer.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cstdio>

#include "endpoint.h"

namespace fl::chat {

namespace {

std::string line_of(const json& j) { return j.dump() + "\n"; }

}  // namespace

PeerConn::PeerConn(Server& srv, tcp::socket sock, LineFn on_line, ClosedFn on_closed)
    : srv_(srv), sock_(std::move(sock)), hb_(srv.io()), on_line_(std::move(on_line)),
      on_closed_(std::move(on_closed)) {}

void PeerConn::start() {
  boost::system::error_code ec;
  sock_.set_option(tcp::no_delay(true), ec);
  // Unacknowledged data for longer than the peer timeout fails the socket too.
  unsigned ms = static_cast<unsigned>(srv_.config().peer_timeout.count());
  setsockopt(sock_.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
  last_rx_ = std::chrono::steady_clock::now();
  send(std::make_shared<const std::string>(line_of({{"type", "hello"}, {"node", srv_.config().node}})));
  read();
  tick();
}

void PeerConn::tick() {
  hb_.expires_after(srv_.config().peer_heartbeat);
  hb_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_rx_ > self->srv_.config().peer_timeout) {
      self->srv_.counters().peer_timeouts++;
      return self->close();
    }
    static const Frame hb = std::make_shared<const std::string>(line_of({{"type", "hb"}}));
    // A heartbeat is not queued behind a backlog: the backlog itself shows the link is alive
    // or will time out in the kernel (TCP_USER_TIMEOUT).
    if (self->queue_.empty()) self->send(hb);
    self->tick();
  });
}

void PeerConn::read() {
  auto chunk = std::make_shared<std::array<char, 16384>>();
  sock_.async_read_some(net::buffer(*chunk), [self = shared_from_this(), chunk](boost::system::error_code ec,
                                                                                 size_t n) {
    if (ec || self->closed_) return self->close();
    self->last_rx_ = std::chrono::steady_clock::now();
    self->rbuf_.append(chunk->data(), n);
    size_t start = 0;
    for (size_t nl; (nl = self->rbuf_.find('\n', start)) != std::string::npos; start = nl + 1) {
      json j = json::parse(self->rbuf_.begin() + static_cast<std::ptrdiff_t>(start),
                           self->rbuf_.begin() + static_cast<std::ptrdiff_t>(nl), nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string()) {
        self->srv_.counters().protocol_errors++;
        return self->close();
      }
      const auto& type = j["type"].get_ref<const std::string&>();
      if (type == "hello") {
        if (j.contains("node") && j["node"].is_string()) self->remote_node = j["node"].get<std::string>().substr(0, 64);
      } else if (type != "hb") {
        self->on_line_(j);
      }
      if (self->closed_) return;
    }
    self->rbuf_.erase(0, start);
    if (self->rbuf_.size() > self->srv_.config().max_message_bytes + 4096) {
      self->srv_.counters().protocol_errors++;
      return self->close();
    }
    self->read();
  });
}

void PeerConn::send(const Frame& line) {
  if (closed_ || queued_bytes_ + line->size() > srv_.config().peer_queue_bytes) {
    srv_.counters().peer_dropped++;
    return;
  }
  queue_.push_back(line);
  queued_bytes_ += line->size();
  if (!writing_) write();
}

void PeerConn::write() {
  writing_ = true;
  net::async_write(sock_, net::buffer(*queue_.front()), [self = shared_from_this()](boost::system::error_code ec, size_t) {
    self->writing_ = false;
    if (ec || self->closed_) return self->close();
    self->queued_bytes_ -= self->queue_.front()->size();
    self->queue_.pop_front();
    if (!self->queue_.empty()) self->write();
  });
}

void PeerConn::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  sock_.close(ec);
  hb_.cancel();
  srv_.counters().peer_dropped += queue_.size();
  queue_.clear();
  queued_bytes_ = 0;
  auto fn = std::move(on_closed_);
  if (fn) fn();
}

PeerOut::PeerOut(Server& srv, tcp::endpoint ep, uint64_t seed)
    : srv_(srv), ep_(ep), backoff_(srv.config().peer_backoff_base, srv.config().peer_backoff_cap, seed),
      timer_(srv.io()) {}

void PeerOut::start() { dial(); }

void PeerOut::stop() {
  stopped_ = true;
  timer_.cancel();
  boost::system::error_code ec;
  if (dialling_) dialling_->close(ec);
  if (conn_) conn_->close();
}

void PeerOut::dial() {
  if (stopped_) return;
  auto sock = std::make_shared<tcp::socket>(srv_.io());
  dialling_ = sock;
  timer_.expires_after(srv_.config().peer_timeout);
  timer_.async_wait([sock](boost::system::error_code ec) {
    if (!ec) sock->close(ec);  // connect timed out: fails the async_connect below
  });
  sock->async_connect(ep_, [self = shared_from_this(), sock](boost::system::error_code ec) {
    self->timer_.cancel();
    self->dialling_.reset();
    if (self->stopped_) return;
    if (ec) {
      self->srv_.counters().peer_connect_failures++;
      return self->retry();
    }
    self->srv_.counters().peer_connects++;
    self->backoff_.reset();
    std::fprintf(stderr, "fl-chat-server %s: peer %s up\n", self->srv_.config().node.c_str(),
                 to_string(self->ep_).c_str());
    std::weak_ptr<PeerOut> weak = self;
    self->conn_ = std::make_shared<PeerConn>(
        self->srv_, std::move(*sock), [](const json&) {},
        [weak] {
          auto me = weak.lock();
          if (!me) return;
          me->srv_.counters().peer_disconnects++;
          std::fprintf(stderr, "fl-chat-server %s: peer %s down\n", me->srv_.config().node.c_str(),
                       to_string(me->ep_).c_str());
          // Reset before retry(): close() is called from inside the connection.
          net::post(me->srv_.io(), [me] {
            me->conn_.reset();
            me->retry();
          });
        });
    self->conn_->start();
  });
}

void PeerOut::retry() {
  if (stopped_) return;
  timer_.expires_after(backoff_.next());
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->dial();
  });
}

void PeerOut::send(const Frame& line) {
  if (!conn_) {
    srv_.counters().peer_dropped++;
    return;
  }
  srv_.counters().messages_relayed_out++;
  conn_->send(line);
}

}  // namespace fl::chat
