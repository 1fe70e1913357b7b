// One WebSocket client of fl-chat-server, with its bounded outgoing queue.
//
// The queue is the server's defence against a slow consumer: a client that reads slower than
// its room talks would otherwise make the server buffer without limit. When a new message would
// take the queue past max_queue_messages or max_queue_bytes, the client is disconnected at once
// (TCP reset, so the kernel's send buffer for it is freed too) and the overflow is counted.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <memory>
#include <string>

#include "server.h"

namespace fl::chat {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(Server& srv, tcp::socket sock);
  void run();
  // Queues one frame; on overflow disconnects this client instead.
  void send(const Frame& f);
  // SIGTERM: a WebSocket close, then the socket.
  void shutdown();

  const std::string& room() const { return room_; }
  size_t queued_messages() const { return queue_.size(); }
  size_t queued_bytes() const { return queued_bytes_; }

 private:
  void on_request(beast::error_code ec);
  void on_accept(beast::error_code ec);
  void read();
  void on_read(beast::error_code ec, size_t n);
  void handle(const std::string& text);
  void protocol_error(const std::string& why);
  void write();
  void on_write(beast::error_code ec);
  void enter(const std::string& room);
  void abort();   // reset the connection now
  void finish();  // leave the room and the server, once

  Server& srv_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::request_parser<http::string_body> parser_;
  std::deque<Frame> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false, open_ = false, done_ = false, closing_ = false;
  std::string room_;
};

}  // namespace fl::chat
