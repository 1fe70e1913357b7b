// The HTTP side of `faultlined --metrics ADDR:PORT`: GET /metrics on the daemon's own event loop.
// The loop also renews the kernel lease, so nothing here may block it: non-blocking sockets, a
// cap on connections, on a request's size and on a connection's whole life (a client that
// trickles a byte at a time cannot keep its slot), one request per connection.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/result.h"
#include "daemon/event_loop.h"

namespace fl::daemon {

// IPV4:PORT or [IPV6]:PORT, numeric only (a name would need a resolver at start), port 1-65535.
struct ListenAddress {
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string str() const;  // as given, normalised: 127.0.0.1:9464, [::1]:9464
};
Result<ListenAddress> parse_listen_address(std::string_view s);

struct MetricsHttpOptions {
  size_t max_request = 8192;  // request line and headers; above: 431 and close
  std::chrono::milliseconds timeout{10000};  // a connection's whole life, read and write
  size_t max_connections = 16;  // beyond: accepted and closed at once
};

// The bound, listening socket, made at start before anything touches the kernel, so a taken
// port or a bad address stops the daemon before it changes anything.
class MetricsListener {
 public:
  static Result<MetricsListener> bind(const ListenAddress& addr);
  MetricsListener(MetricsListener&& o) noexcept : fd_(std::exchange(o.fd_, -1)), addr_(std::move(o.addr_)) {}
  MetricsListener& operator=(MetricsListener&&) = delete;
  ~MetricsListener();
  const std::string& address() const { return addr_; }

 private:
  friend class MetricsHttp;
  MetricsListener(int fd, std::string addr) : fd_(fd), addr_(std::move(addr)) {}
  int fd_ = -1;
  std::string addr_;
};

class MetricsHttp {
 public:
  using Render = std::function<std::string()>;
  // Asked for a body on the loop; calls reply with it on the loop, now or later (after work on
  // another thread). A reply for a connection closed meanwhile is dropped.
  using Reply = std::function<void(std::string body)>;
  using AsyncRender = std::function<void(Reply reply)>;

  // Serves the listener on loop until destroyed (before the loop). render is asked on the loop
  // for every GET /metrics.
  static Result<std::unique_ptr<MetricsHttp>> start(EventLoop& loop, MetricsListener listener, Render render,
                                                    MetricsHttpOptions opts = {});
  static Result<std::unique_ptr<MetricsHttp>> start(EventLoop& loop, MetricsListener listener, AsyncRender render,
                                                    MetricsHttpOptions opts = {});
  ~MetricsHttp();
  MetricsHttp(const MetricsHttp&) = delete;
  MetricsHttp& operator=(const MetricsHttp&) = delete;

  const std::string& address() const { return listener_.address(); }
  size_t connections() const { return conns_.size(); }

 private:
  struct Conn {
    int fd = -1;
    std::string in, out;
    size_t sent = 0;
    size_t drained = 0;
    bool draining = false;  // reply written, write side shut: reading until EOF before closing
    bool rendering = false;  // a whole request read, its body not yet rendered: input ignored
    uint64_t serial = 0;     // tells a reply for this connection from one for a reused fd
    std::chrono::steady_clock::time_point deadline;
  };

  MetricsHttp(EventLoop& loop, MetricsListener l, AsyncRender r, MetricsHttpOptions o)
      : loop_(loop), render_(std::move(r)), opts_(o), listener_(std::move(l)) {}
  void on_accept();
  void on_conn(int fd, uint32_t events);
  void on_request(Conn& c);
  void reply(Conn& c, int code, std::string_view reason, std::string_view extra_headers, std::string body,
             bool head = false);
  bool flush(Conn& c);  // false: closed
  void close_conn(int fd);
  void sweep();

  EventLoop& loop_;
  AsyncRender render_;
  uint64_t next_serial_ = 1;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // replies check it: we may be gone
  MetricsHttpOptions opts_;
  MetricsListener listener_;
  bool watching_ = false;
  EventLoop::TimerId resume_timer_ = 0;
  EventLoop::TimerId sweep_timer_ = 0;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  size_t refused_in_burst_ = 0;
};

}  // namespace fl::daemon
