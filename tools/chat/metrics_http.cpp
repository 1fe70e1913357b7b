#include "metrics_http.h"

#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>

namespace fl::chat {

namespace beast = boost::beast;
namespace http = beast::http;

uint64_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

namespace {

struct MetricsSession : std::enable_shared_from_this<MetricsSession> {
  MetricsSession(Server& s, tcp::socket sock) : srv(s), stream(std::move(sock)) {}

  void run() {
    parser.header_limit(8 << 10);
    parser.body_limit(0);
    stream.expires_after(std::chrono::seconds(5));
    http::async_read(stream, buf, parser, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      self->respond();
    });
  }

  void respond() {
    const auto& req = parser.get();
    std::string target(req.target());
    res.version(req.version());
    res.keep_alive(false);
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res.result(http::status::method_not_allowed);
      res.set(http::field::allow, "GET, HEAD");
    } else if (target == "/metrics" || target.rfind("/metrics?", 0) == 0) {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      if (req.method() == http::verb::get) res.body() = srv.render_metrics();
    } else {
      res.result(http::status::not_found);
      res.body() = "not found: try /metrics\n";
    }
    res.prepare_payload();
    http::async_write(stream, res, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ec;
      self->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    });
  }

  Server& srv;
  beast::tcp_stream stream;
  beast::flat_buffer buf;
  http::request_parser<http::empty_body> parser;
  http::response<http::string_body> res;
};

}  // namespace

void serve_metrics(Server& srv, tcp::socket sock) {
  std::make_shared<MetricsSession>(srv, std::move(sock))->run();
}

}  // namespace fl::chat
