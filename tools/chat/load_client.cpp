#include "load_client.h"

#include <sys/socket.h>
#include <time.h>

#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <deque>

#include <nlohmann/json.hpp>

#include "backoff.h"
#include "endpoint.h"

namespace fl::chat {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;  // output keys in the order written: "type" first

namespace {

double unix_now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

const char* clock_name(Clock c) { return c == Clock::realtime ? "realtime" : "monotonic"; }

ojson quantiles(const Histogram& h) {
  if (h.count() == 0) return {{"p50", nullptr}, {"p95", nullptr}, {"p99", nullptr}, {"max", nullptr}};
  auto ms = [](uint64_t us) { return static_cast<double>(us) / 1000.0; };
  return {{"p50", ms(h.quantile(0.50))}, {"p95", ms(h.quantile(0.95))}, {"p99", ms(h.quantile(0.99))},
          {"max", ms(h.max())}};
}

}  // namespace

// One simulated user: connect, read and send until the connection fails, back off, again.
class User : public std::enable_shared_from_this<User> {
 public:
  User(LoadClient& lc, int id)
      : lc_(lc), cfg_(lc.config()), id_(id), name_(cfg_.name + "-" + std::to_string(id)),
        slow_(id < cfg_.slow_users), server_(static_cast<size_t>(id) % cfg_.servers.size()),
        backoff_(cfg_.backoff_base, cfg_.backoff_cap, lc.seed_for(id)), retry_(lc.io()), send_(lc.io()),
        read_delay_(lc.io()), rng_(lc.seed_for(id) ^ 0x5bd1e995) {}

  void start() { connect(0); }

  void stop() {
    stopped_ = true;
    retry_.cancel();
    send_.cancel();
    read_delay_.cancel();
    if (conn_) {
      beast::error_code ec;
      beast::get_lowest_layer(conn_->ws).socket().close(ec);
      conn_.reset();
    }
  }

  bool connected() const { return conn_ && conn_->open; }

 private:
  struct Conn {
    explicit Conn(net::io_context& io) : ws(io) {}
    websocket::stream<beast::tcp_stream> ws;
    beast::flat_buffer buf;
    bool open = false, writing = false;
    std::string out;
  };

  void connect(int64_t delay_ms) {
    if (stopped_) return;
    attempt_++;
    lc_.on_connect_attempt();
    auto c = std::make_shared<Conn>(lc_.io());
    conn_ = c;
    auto ep = cfg_.servers[server_];
    auto& sock = beast::get_lowest_layer(c->ws).socket();
    beast::error_code ec;
    sock.open(ep.protocol(), ec);
    // Set before connect: the receive window (and its scale) is fixed at the handshake.
    if (!ec) sock.set_option(tcp::no_delay(true), ec);  // messages are small and latency is measured
    if (!ec && slow_ && cfg_.slow_rcvbuf > 0) sock.set_option(net::socket_base::receive_buffer_size(cfg_.slow_rcvbuf), ec);
    beast::get_lowest_layer(c->ws).expires_after(cfg_.connect_timeout);
    beast::get_lowest_layer(c->ws).async_connect(
        ep, [self = shared_from_this(), c, ep, delay_ms](beast::error_code ec) {
          if (c != self->conn_) return;
          if (ec) return self->failed(ep, ec.message(), delay_ms, false);
          self->handshake(c, ep, delay_ms);
        });
  }

  void handshake(const std::shared_ptr<Conn>& c, const tcp::endpoint& ep, int64_t delay_ms) {
    beast::get_lowest_layer(c->ws).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = cfg_.connect_timeout;
    // A slow user does not read, so it would never see the pongs.
    t.idle_timeout = slow_ ? websocket::stream_base::none() : std::chrono::duration_cast<std::chrono::steady_clock::duration>(cfg_.idle_timeout);
    t.keep_alive_pings = !slow_;
    c->ws.set_option(t);
    c->ws.read_message_max(1 << 20);
    c->ws.async_handshake(ep.address().to_string(), "/" + cfg_.room,
                          [self = shared_from_this(), c, ep, delay_ms](beast::error_code ec) {
                            if (c != self->conn_) return;
                            if (ec) return self->failed(ep, ec.message(), delay_ms, false);
                            self->up(c, ep, delay_ms);
                          });
  }

  void up(const std::shared_ptr<Conn>& c, const tcp::endpoint& ep, int64_t delay_ms) {
    c->open = true;
    up_at_ = std::chrono::steady_clock::now();
    lc_.on_connect_result(id_, to_string(ep), true, ever_up_, "", attempt_, delay_ms);
    ever_up_ = true;
    attempt_ = 0;
    backoff_.reset();
    if (!(slow_ && cfg_.slow_mode == SlowMode::stop)) read(c);
    if (cfg_.rate > 0) {
      // A random phase, so that users do not send in lockstep.
      std::uniform_real_distribution<double> d(0.0, 1.0 / cfg_.rate);
      schedule_send(c, std::chrono::duration<double>(d(rng_)));
    }
  }

  void failed(const tcp::endpoint& ep, const std::string& why, int64_t delay_ms, bool was_up) {
    if (stopped_) return;
    if (was_up) {
      double up_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - up_at_).count();
      lc_.on_disconnect(id_, to_string(ep), why, up_s, slow_);
    } else {
      lc_.on_connect_result(id_, to_string(ep), false, ever_up_, why, attempt_, delay_ms);
      // The next attempt goes to the next server of the list: a dead node's users spread over
      // the others.
      server_ = (server_ + 1) % cfg_.servers.size();
    }
    if (conn_) {
      beast::error_code ec;
      beast::get_lowest_layer(conn_->ws).socket().close(ec);
      conn_.reset();
    }
    send_.cancel();
    read_delay_.cancel();
    auto d = backoff_.next();
    retry_.expires_after(d);
    retry_.async_wait([self = shared_from_this(), d](beast::error_code ec) {
      if (!ec) self->connect(d.count());
    });
  }

  void lost(const std::shared_ptr<Conn>& c, const beast::error_code& ec) {
    if (c != conn_ || stopped_) return;
    failed(cfg_.servers[server_], ec.message(), 0, true);
  }

  void read(const std::shared_ptr<Conn>& c) {
    c->ws.async_read(c->buf, [self = shared_from_this(), c](beast::error_code ec, size_t) {
      if (c != self->conn_) return;
      if (ec) return self->lost(c, ec);
      self->received(beast::buffers_to_string(c->buf.data()));
      c->buf.consume(c->buf.size());
      if (self->slow_) {
        self->read_delay_.expires_after(self->cfg_.slow_read_delay);
        self->read_delay_.async_wait([self, c](beast::error_code ec) {
          if (!ec && c == self->conn_) self->read(c);
        });
      } else {
        self->read(c);
      }
    });
  }

  void received(const std::string& text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    auto type = j.value("type", "");
    if (type == "error") {
      std::fprintf(stderr, "fl-chat-client %s: server error: %s\n", name_.c_str(), j.value("error", "").c_str());
      return;
    }
    if (type != "msg") return;
    std::string origin = j.value("origin", "?");
    const json& b = j.contains("body") ? j["body"] : json();
    bool measured = b.is_object() && b.contains("ts_ns") && b["ts_ns"].is_number_integer() &&
                    b.value("clock", "") == clock_name(cfg_.clock);
    int64_t lat = measured ? (lc_.now_ns() - b["ts_ns"].get<int64_t>()) / 1000 : 0;
    lc_.on_received(origin, lat, measured, slow_);
  }

  void schedule_send(const std::shared_ptr<Conn>& c, std::chrono::duration<double> after) {
    send_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(after));
    send_.async_wait([self = shared_from_this(), c](beast::error_code ec) {
      if (ec || c != self->conn_) return;
      self->send(c);
      self->schedule_send(c, std::chrono::duration<double>(1.0 / self->cfg_.rate));
    });
  }

  void send(const std::shared_ptr<Conn>& c) {
    // One write at a time: a user whose server does not keep up skips a beat (counted) rather
    // than queue without bound.
    if (c->writing) return lc_.on_send_skipped();
    json body = {{"user", name_}, {"seq", ++seq_}, {"ts_ns", lc_.now_ns()}, {"clock", clock_name(cfg_.clock)}};
    if (cfg_.payload_bytes) body["pad"] = std::string(cfg_.payload_bytes, 'x');
    c->out = json{{"type", "msg"}, {"body", std::move(body)}}.dump();
    c->writing = true;
    lc_.on_sent();
    c->ws.async_write(net::buffer(c->out), [self = shared_from_this(), c](beast::error_code ec, size_t) {
      c->writing = false;
      if (c != self->conn_) return;
      if (ec) return self->lost(c, ec);
    });
  }

  LoadClient& lc_;
  const ClientConfig& cfg_;
  int id_;
  std::string name_;
  bool slow_;
  size_t server_;
  Backoff backoff_;
  net::steady_timer retry_, send_, read_delay_;
  std::mt19937_64 rng_;
  std::shared_ptr<Conn> conn_;
  int attempt_ = 0;  // attempts since the last success
  bool ever_up_ = false, stopped_ = false;
  uint64_t seq_ = 0;
  std::chrono::steady_clock::time_point up_at_;
  beast::error_code ignored_;
};

LoadClient::LoadClient(net::io_context& io, ClientConfig cfg)
    : io_(io), cfg_(std::move(cfg)), seed_(cfg_.seed ? cfg_.seed : std::random_device{}()), timer_(io), end_(io) {}

LoadClient::~LoadClient() = default;

int64_t LoadClient::now_ns() const {
  timespec ts;
  clock_gettime(cfg_.clock == Clock::realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void LoadClient::on_received(const std::string& origin, int64_t latency_us, bool measured, bool slow) {
  for (Tally* t : {&cur_, &total_}) {
    t->received++;
    if (slow) t->received_slow++;
    if (t->by_origin.size() < 256 || t->by_origin.count(origin)) t->by_origin[origin]++;
    if (!measured) {
      t->unmeasured++;
      continue;
    }
    uint64_t us = latency_us > 0 ? static_cast<uint64_t>(latency_us) : 0;
    (slow ? t->latency_slow : t->latency).record(us);
  }
}

void LoadClient::on_disconnect(int user, const std::string& server, const std::string& error, double up_s,
                               bool slow) {
  cur_.disconnects++, total_.disconnects++;
  if (slow) cur_.slow_disconnects++, total_.slow_disconnects++;
  if (!cfg_.log_connects) return;
  ojson j = {{"type", "disconnect"}, {"t", unix_now()}, {"user", user}, {"server", server}, {"slow", slow},
             {"up_s", up_s}, {"error", error}};
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

void LoadClient::on_connect_result(int user, const std::string& server, bool ok, bool reconnect,
                                   const std::string& error, int attempt, int64_t delay_ms) {
  if (ok) {
    cur_.connect_successes++, total_.connect_successes++;
    if (reconnect) cur_.reconnects++, total_.reconnects++;
  }
  if (!cfg_.log_connects) return;
  ojson j = {{"type", "connect"}, {"t", unix_now()}, {"user", user}, {"server", server}, {"ok", ok},
            {"attempt", attempt}, {"delay_ms", delay_ms}};
  if (!ok) j["error"] = error;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

int LoadClient::connected() const {
  int n = 0;
  for (const auto& u : users_) n += u->connected() ? 1 : 0;
  return n;
}

void LoadClient::start() {
  if (cfg_.servers.empty()) throw std::runtime_error("no servers");
  start_ = last_ = std::chrono::steady_clock::now();
  for (int i = 0; i < cfg_.users; i++) users_.push_back(std::make_shared<User>(*this, i));
  for (auto& u : users_) u->start();
  tick();
  if (cfg_.duration_s > 0) {
    end_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(cfg_.duration_s)));
    end_.async_wait([this](beast::error_code ec) {
      if (!ec) stop();
    });
  }
}

void LoadClient::tick() {
  timer_.expires_at(last_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::duration<double>(cfg_.interval_s)));
  timer_.async_wait([this](beast::error_code ec) {
    if (ec || stopped_) return;
    report();
    tick();
  });
}

void LoadClient::report() {
  auto now = std::chrono::steady_clock::now();
  double secs = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  double rate = secs > 0 ? static_cast<double>(cur_.connect_attempts) / secs : 0;
  max_attempt_rate_ = std::max(max_attempt_rate_, rate);
  ojson j = {{"type", "interval"},
            {"t", unix_now()},
            {"elapsed_s", std::chrono::duration<double>(now - start_).count()},
            {"interval_s", secs},
            {"sent", cur_.sent},
            {"send_skipped", cur_.send_skipped},
            {"received", cur_.received},
            {"received_slow", cur_.received_slow},
            {"latency_ms", quantiles(cur_.latency)},
            {"slow_latency_ms", quantiles(cur_.latency_slow)},
            {"received_by_origin", cur_.by_origin},
            {"users", cfg_.users},
            {"connected", connected()},
            {"connect_attempts", cur_.connect_attempts},
            {"connect_successes", cur_.connect_successes},
            {"connect_attempts_per_s", rate},
            {"reconnects", cur_.reconnects},
            {"disconnects", cur_.disconnects},
            {"slow_disconnects", cur_.slow_disconnects}};
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
  cur_.sent = cur_.send_skipped = cur_.received = cur_.received_slow = cur_.unmeasured = 0;
  cur_.connect_attempts = cur_.connect_successes = cur_.reconnects = cur_.disconnects = cur_.slow_disconnects = 0;
  cur_.by_origin.clear();
  cur_.latency.clear();
  cur_.latency_slow.clear();
}

void LoadClient::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  end_.cancel();
  // The last, partial interval.
  if (std::chrono::steady_clock::now() - last_ > std::chrono::milliseconds(50)) report();
  auto now = std::chrono::steady_clock::now();
  ojson j = {{"type", "summary"},
            {"t", unix_now()},
            {"duration_s", std::chrono::duration<double>(now - start_).count()},
            {"clock", clock_name(cfg_.clock)},
            {"sent", total_.sent},
            {"send_skipped", total_.send_skipped},
            {"received", total_.received},
            {"received_slow", total_.received_slow},
            {"unmeasured", total_.unmeasured},
            {"latency_ms", quantiles(total_.latency)},
            {"slow_latency_ms", quantiles(total_.latency_slow)},
            {"received_by_origin", total_.by_origin},
            {"users", cfg_.users},
            {"slow_users", cfg_.slow_users},
            {"connected", connected()},
            {"connect_attempts", total_.connect_attempts},
            {"connect_successes", total_.connect_successes},
            {"max_connect_attempts_per_s", max_attempt_rate_},
            {"reconnects", total_.reconnects},
            {"disconnects", total_.disconnects},
            {"slow_disconnects", total_.slow_disconnects}};
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
  for (auto& u : users_) u->stop();
  io_.stop();  // the signal handler's wait would keep run() going
}

}  // namespace fl::chat
