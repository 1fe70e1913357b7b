#include "client_session.h"

#include <cstdio>

namespace fl::chat {

ClientSession::ClientSession(Server& srv, tcp::socket sock) : srv_(srv), ws_(std::move(sock)) {
  // Small frames, latency measured: Nagle with delayed ACKs would add up to 40 ms.
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
  // The kernel's buffer for a slow client is memory too, and it hides the backlog from the
  // queue bound: a fixed size makes the bound count what the client really has not taken.
  if (srv.config().client_sndbuf > 0)
    beast::get_lowest_layer(ws_).socket().set_option(net::socket_base::send_buffer_size(srv.config().client_sndbuf), ec);
  parser_.header_limit(8 << 10);
  parser_.body_limit(0);  // an upgrade request has no body
}

void ClientSession::run() {
  beast::get_lowest_layer(ws_).expires_after(srv_.config().client_handshake_timeout);
  http::async_read(beast::get_lowest_layer(ws_), buf_, parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
}

void ClientSession::on_request(beast::error_code ec) {
  if (ec) return finish();
  req_ = parser_.release();
  buf_.consume(buf_.size());  // a client speaks only after the 101
  if (!websocket::is_upgrade(req_)) return abort();
  std::string target(req_.target());
  if (auto q = target.find('?'); q != std::string::npos) target.resize(q);
  std::string room = target.size() > 1 ? target.substr(1) : "";
  if (!room.empty() && !Server::valid_room(room)) return abort();
  // The handshake timer of the tcp_stream is replaced by the websocket's own timeouts: no idle
  // timeout, because a client that is merely quiet is not a fault; a dead one is found when its
  // queue overflows or its socket errors.
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout t{};
  t.handshake_timeout = srv_.config().client_handshake_timeout;
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws_.set_option(t);
  ws_.read_message_max(srv_.config().max_message_bytes);
  ws_.text(true);
  room_ = room;
  ws_.async_accept(req_, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
}

void ClientSession::on_accept(beast::error_code ec) {
  if (ec) return finish();
  open_ = true;
  srv_.counters().client_connects++;
  if (!room_.empty()) {
    std::string r = std::move(room_);
    room_.clear();
    enter(r);
  }
  read();
}

void ClientSession::enter(const std::string& room) {
  if (room == room_) return;
  if (!room_.empty()) srv_.leave(room_, shared_from_this());
  room_ = room;
  srv_.join(room_, shared_from_this());
  json j = {{"type", "joined"}, {"room", room_}, {"node", srv_.config().node}};
  send(std::make_shared<const std::string>(j.dump()));
}

void ClientSession::read() {
  ws_.async_read(buf_, [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_read(ec, n); });
}

void ClientSession::on_read(beast::error_code ec, size_t) {
  if (ec) return finish();
  std::string text = beast::buffers_to_string(buf_.data());
  buf_.consume(buf_.size());
  handle(text);
  if (!done_ && !closing_) read();
}

void ClientSession::handle(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string())
    return protocol_error("expected a JSON object with a string \"type\"");
  const std::string& type = j["type"].get_ref<const std::string&>();
  if (type == "join") {
    if (!j.contains("room") || !j["room"].is_string() || !Server::valid_room(j["room"].get<std::string>()))
      return protocol_error("join: \"room\" must be 1-64 characters of [A-Za-z0-9_.-]");
    return enter(j["room"].get<std::string>());
  }
  if (type == "msg") {
    if (room_.empty()) return protocol_error("msg before join");
    if (!j.contains("body")) return protocol_error("msg: missing \"body\"");
    srv_.counters().messages_from_clients++;
    return srv_.publish_local(room_, std::move(j["body"]));
  }
  protocol_error("unknown type \"" + type.substr(0, 32) + "\"");
}

void ClientSession::protocol_error(const std::string& why) {
  srv_.counters().protocol_errors++;
  json j = {{"type", "error"}, {"error", why}};
  send(std::make_shared<const std::string>(j.dump()));
  closing_ = true;  // the close follows the error frame (on_write)
  if (!writing_) shutdown();
}

void ClientSession::send(const Frame& f) {
  if (done_ || !open_ || closing_) return;
  const auto& cfg = srv_.config();
  if (queue_.size() + 1 > cfg.max_queue_messages || queued_bytes_ + f->size() > cfg.max_queue_bytes) {
    srv_.counters().overflow_disconnects++;
    // Not torn down here: send() runs inside the room's fan-out loop, which must not see its
    // set change under it.
    net::post(srv_.io(), [self = shared_from_this()] { self->abort(); });
    done_ = true;
    return;
  }
  queue_.push_back(f);
  queued_bytes_ += f->size();
  if (!writing_) write();
}

void ClientSession::write() {
  writing_ = true;
  ws_.async_write(net::buffer(*queue_.front()),
                  [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
}

void ClientSession::on_write(beast::error_code ec) {
  writing_ = false;
  if (ec) return finish();
  if (!queue_.empty()) {
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
  }
  if (done_) return;
  if (!queue_.empty()) return write();
  if (closing_) shutdown();
}

void ClientSession::shutdown() {
  // Beast allows one write at a time and a close is a write: a client still being written to
  // is reset instead.
  if (!open_ || done_ || writing_) return abort();
  closing_ = true;
  // A client that does not answer the close within a second is reset.
  beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(1));
  ws_.async_close(websocket::close_code::going_away,
                  [self = shared_from_this()](beast::error_code) { self->abort(); });
}

void ClientSession::abort() {
  beast::error_code ec;
  auto& sock = beast::get_lowest_layer(ws_).socket();
  if (sock.is_open()) {
    sock.set_option(net::socket_base::linger(true, 0), ec);
    sock.close(ec);
  }
  finish();
}

void ClientSession::finish() {
  bool was_done = done_;
  done_ = true;
  if (was_done && room_.empty() && !open_) return;
  if (!room_.empty()) {
    srv_.leave(room_, shared_from_this());
    room_.clear();
  }
  if (open_) {
    open_ = false;
    srv_.counters().client_disconnects++;
  }
  queue_.clear();
  queued_bytes_ = 0;
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().close(ec);
  srv_.client_closed(shared_from_this());
}

}  // namespace fl::chat
