#include "daemon/metrics_http.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/metrics.h"

namespace fl::daemon {

using namespace std::chrono_literals;

namespace {

constexpr int kAcceptsPerWakeup = 64;
constexpr auto kAcceptPause = 100ms;
constexpr size_t kMaxDrain = 64 * 1024;  // request body bytes read (and ignored) before closing

const char* kUsage = "expected IPV4:PORT or [IPV6]:PORT, for example 127.0.0.1:9464 or [::1]:9464";

Result<uint16_t> parse_port(std::string_view p) {
  if (p.empty() || p.size() > 5) return make_error(Errc::invalid_argument, "port \"" + std::string(p) + "\" is not 1-65535");
  uint32_t v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return make_error(Errc::invalid_argument, "port \"" + std::string(p) + "\" is not 1-65535");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return make_error(Errc::invalid_argument, "port \"" + std::string(p) + "\" is not 1-65535");
  return static_cast<uint16_t>(v);
}

// Where the request line ends and where the headers end (past the blank line), if they have.
size_t headers_end(const std::string& in) {
  size_t a = in.find("\r\n\r\n");
  size_t b = in.find("\n\n");
  size_t ea = a == std::string::npos ? std::string::npos : a + 4;
  size_t eb = b == std::string::npos ? std::string::npos : b + 2;
  return std::min(ea, eb);
}

}  // namespace

// ---- address ----

Result<ListenAddress> parse_listen_address(std::string_view s) {
  const std::string given(s);
  ListenAddress out;
  std::string host;
  std::string_view port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return make_error(Errc::invalid_argument, "\"" + given + "\": no ']'; " + kUsage);
    host = std::string(s.substr(1, close - 1));
    if (close + 1 >= s.size() || s[close + 1] != ':')
      return make_error(Errc::invalid_argument, "\"" + given + "\": no :PORT after ']'; " + kUsage);
    port = s.substr(close + 2);
    if (host.find('%') != std::string::npos)
      return make_error(Errc::invalid_argument, "\"" + given + "\": IPv6 zone indices (%IFACE) are not supported");
    auto* a = reinterpret_cast<sockaddr_in6*>(&out.ss);
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1)
      return make_error(Errc::invalid_argument, "\"" + given + "\": \"" + host + "\" is not an IPv6 address");
    auto p = parse_port(port);
    if (!p.ok()) return p.take_error().wrap("\"" + given + "\"");
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(*p);
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return make_error(Errc::invalid_argument, "\"" + given + "\": no port; " + kUsage);
  host = std::string(s.substr(0, colon));
  port = s.substr(colon + 1);
  if (host.find(':') != std::string::npos)
    return make_error(Errc::invalid_argument, "\"" + given + "\": an IPv6 address needs brackets, [ADDR]:PORT");
  auto* a = reinterpret_cast<sockaddr_in*>(&out.ss);
  // inet_pton takes only the four-part dotted decimal form: no "127.1", no names.
  if (host.empty() || inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1)
    return make_error(Errc::invalid_argument, "\"" + given + "\": \"" + host +
                                                  "\" is not an IPv4 address (names are not resolved); " + kUsage);
  auto p = parse_port(port);
  if (!p.ok()) return p.take_error().wrap("\"" + given + "\"");
  a->sin_family = AF_INET;
  a->sin_port = htons(*p);
  out.len = sizeof(sockaddr_in);
  return out;
}

std::string ListenAddress::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
}

// ---- listener ----

Result<MetricsListener> MetricsListener::bind(const ListenAddress& addr) {
  const std::string where = "metrics listener on " + addr.str();
  int fd = ::socket(addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::sys(Errc::kernel_error, where + ": socket", errno);
  MetricsListener l(fd, addr.str());
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // [::]:PORT means IPv6 only, so it never takes the IPv4 port from under another program.
  if (addr.ss.ss_family == AF_INET6) (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr.ss), addr.len) != 0)
    return Error::sys(Errc::invalid_argument, where + ": bind", errno);
  if (::listen(fd, 64) != 0) return Error::sys(Errc::kernel_error, where + ": listen", errno);
  return l;
}

MetricsListener::~MetricsListener() {
  if (fd_ >= 0) ::close(fd_);
}

// ---- server ----

Result<std::unique_ptr<MetricsHttp>> MetricsHttp::start(EventLoop& loop, MetricsListener listener, Render render,
                                                        MetricsHttpOptions opts) {
  return start(loop, std::move(listener),
               AsyncRender([render = std::move(render)](Reply reply) { reply(render()); }), opts);
}

Result<std::unique_ptr<MetricsHttp>> MetricsHttp::start(EventLoop& loop, MetricsListener listener,
                                                        AsyncRender render, MetricsHttpOptions opts) {
  if (opts.max_request == 0 || opts.max_connections == 0 || opts.timeout.count() <= 0)
    return make_error(Errc::invalid_argument, "metrics: max_request, max_connections and timeout must be positive");
  std::unique_ptr<MetricsHttp> m(new MetricsHttp(loop, std::move(listener), std::move(render), opts));
  MetricsHttp* self = m.get();
  FL_TRY_CTX(loop.add(m->listener_.fd_, EPOLLIN, [self](uint32_t) { self->on_accept(); }), "metrics: watch listener");
  m->watching_ = true;
  auto period = std::clamp<std::chrono::milliseconds>(opts.timeout / 4, 50ms, 1000ms);
  auto t = loop.add_timer(period, period, [self] { self->sweep(); });
  if (!t.ok()) return t.take_error().wrap("metrics: timer");
  m->sweep_timer_ = *t;
  return m;
}

MetricsHttp::~MetricsHttp() {
  if (sweep_timer_) loop_.cancel_timer(sweep_timer_);
  if (resume_timer_) loop_.cancel_timer(resume_timer_);
  if (watching_) loop_.remove(listener_.fd_);
  for (auto& [fd, c] : conns_) {
    loop_.remove(fd);
    ::close(fd);
  }
}

void MetricsHttp::on_accept() {
  for (int i = 0; i < kAcceptsPerWakeup; ++i) {
    int fd = accept4(listener_.fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      // The connection stays queued and the listener readable: pause, or the loop would spin.
      spdlog::warn("metrics: accept on {}: {}; pausing accepts for {} ms", address(), std::strerror(err),
                   kAcceptPause.count());
      if (!loop_.modify(listener_.fd_, 0).ok()) return;
      auto t = loop_.add_timer(kAcceptPause, 0ms, [this] {
        resume_timer_ = 0;
        (void)loop_.modify(listener_.fd_, EPOLLIN);
      });
      if (t.ok()) resume_timer_ = *t;
      else (void)loop_.modify(listener_.fd_, EPOLLIN);
      return;
    }
    if (conns_.size() >= opts_.max_connections) {
      if (refused_in_burst_++ == 0)
        spdlog::warn("metrics: {} connections open (the maximum); closing new ones", conns_.size());
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->serial = next_serial_++;
    c->deadline = std::chrono::steady_clock::now() + opts_.timeout;
    if (!loop_.add(fd, EPOLLIN, [this, fd](uint32_t ev) { on_conn(fd, ev); }).ok()) {
      ::close(fd);
      continue;
    }
    conns_[fd] = std::move(c);
  }
}

void MetricsHttp::close_conn(int fd) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  loop_.remove(fd);
  ::close(fd);
  conns_.erase(it);
  if (refused_in_burst_ > 0 && conns_.size() < opts_.max_connections) {
    spdlog::warn("metrics: below the connection maximum again; closed {} meanwhile", refused_in_burst_);
    refused_in_burst_ = 0;
  }
}

void MetricsHttp::sweep() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<int> late;
  for (const auto& [fd, c] : conns_)
    if (now >= c->deadline) late.push_back(fd);
  for (int fd : late) {
    spdlog::debug("metrics: connection timed out after {} ms", opts_.timeout.count());
    close_conn(fd);
  }
}

void MetricsHttp::on_conn(int fd, uint32_t events) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.rendering) {
    if (events & (EPOLLERR | EPOLLHUP)) return close_conn(fd);
    return;
  }
  if (!c.out.empty() && !c.draining) {
    if (events & (EPOLLERR | EPOLLHUP)) return close_conn(fd);
    flush(c);
    return;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return close_conn(fd);  // the peer is done (or gave up before a whole request)
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return close_conn(fd);
    }
    if (c.draining) {
      c.drained += static_cast<size_t>(n);
      if (c.drained > kMaxDrain) return close_conn(fd);
      continue;
    }
    c.in.append(buf, static_cast<size_t>(n));
    if (headers_end(c.in) != std::string::npos) break;
    if (c.in.size() > opts_.max_request) {
      reply(c, 431, "Request Header Fields Too Large", "", "request line and headers exceed " +
                                                              std::to_string(opts_.max_request) + " bytes\n");
      return;
    }
  }
  if (c.draining) return;
  const size_t end = headers_end(c.in);
  if (end == std::string::npos) return;
  if (end > opts_.max_request)
    return reply(c, 431, "Request Header Fields Too Large", "",
                 "request line and headers exceed " + std::to_string(opts_.max_request) + " bytes\n");
  on_request(c);
}

void MetricsHttp::on_request(Conn& c) {
  size_t eol = c.in.find('\n');
  std::string line = c.in.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  // METHOD SP TARGET SP HTTP/1.x, single spaces (RFC 9112 section 3).
  size_t s1 = line.find(' '), s2 = s1 == std::string::npos ? s1 : line.find(' ', s1 + 1);
  if (s1 == std::string::npos || s2 == std::string::npos || line.find(' ', s2 + 1) != std::string::npos || s1 == 0 ||
      s2 == s1 + 1)
    return reply(c, 400, "Bad Request", "", "malformed request line\n");
  std::string method = line.substr(0, s1), target = line.substr(s1 + 1, s2 - s1 - 1), version = line.substr(s2 + 1);
  if (version.rfind("HTTP/", 0) != 0) return reply(c, 400, "Bad Request", "", "malformed request line\n");
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return reply(c, 505, "HTTP Version Not Supported", "", "HTTP/1.0 and HTTP/1.1 only\n");
  std::string path = target.substr(0, target.find('?'));
  if (path != "/metrics") return reply(c, 404, "Not Found", "", "metrics are at /metrics\n");
  const bool head = method == "HEAD";
  if (method != "GET" && !head)
    return reply(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "GET /metrics only\n");
  // Until the body is there, nothing more is read: a pipelined second request would otherwise be
  // taken for this one.
  c.rendering = true;
  (void)loop_.modify(c.fd, 0);
  const int fd = c.fd;
  const uint64_t serial = c.serial;
  try {
    render_([this, alive = std::weak_ptr<char>(alive_), fd, serial, head](std::string body) {
      if (alive.expired()) return;
      auto it = conns_.find(fd);
      if (it == conns_.end() || it->second->serial != serial || !it->second->rendering) return;
      it->second->rendering = false;
      reply(*it->second, 200, "OK", "", std::move(body), head);
    });
  } catch (const std::exception& e) {
    spdlog::error("metrics: rendering failed: {}", e.what());
    auto it = conns_.find(fd);
    if (it == conns_.end() || it->second->serial != serial || !it->second->rendering) return;
    it->second->rendering = false;
    return reply(*it->second, 500, "Internal Server Error", "", "internal error\n");
  }
}

void MetricsHttp::reply(Conn& c, int code, std::string_view reason, std::string_view extra_headers, std::string body,
                        bool head) {
  const char* type = code == 200 ? metrics::kContentType : "text/plain; charset=utf-8";
  c.out = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) + "\r\nContent-Type: " + type +
          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
          std::string(extra_headers) + "\r\n";
  if (!head) c.out += body;
  c.in.clear();
  c.in.shrink_to_fit();
  c.sent = 0;
  if (flush(c)) (void)loop_.modify(c.fd, c.draining ? EPOLLIN : EPOLLOUT);
}

bool MetricsHttp::flush(Conn& c) {
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      close_conn(c.fd);
      return false;
    }
    c.sent += static_cast<size_t>(n);
  }
  // Written: half-close and read what the client still sends (a body we did not want) until it
  // closes, so the kernel does not answer that unread data with a reset that could destroy
  // the reply before the client read it. The deadline still bounds this.
  c.out.clear();
  c.out.shrink_to_fit();
  c.draining = true;
  ::shutdown(c.fd, SHUT_WR);
  (void)loop_.modify(c.fd, EPOLLIN);
  return true;
}

}  // namespace fl::daemon
