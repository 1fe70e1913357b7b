// fl-chat-client: N simulated chat users, each on its own WebSocket, sending timestamped
// messages and timing every message it receives. See tools/chat/README.md for the output.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "histogram.h"

namespace fl::chat {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using ms = std::chrono::milliseconds;

enum class SlowMode { stop, slow };
enum class Clock { realtime, monotonic };

struct ClientConfig {
  std::vector<tcp::endpoint> servers;  // user i starts on servers[i % n] and moves on after a failure
  std::string room = "lobby";
  std::string name = "user";           // user ids are NAME-0, NAME-1, ...
  int users = 1;
  double rate = 1.0;                   // messages per second per user (0: listen only)
  size_t payload_bytes = 0;            // padding added to each message
  double duration_s = 0;               // 0: until SIGINT/SIGTERM
  double interval_s = 1.0;
  ms backoff_base{100}, backoff_cap{5000};
  ms connect_timeout{2000};
  ms idle_timeout{3000};               // a connection that hears nothing (not even a pong) is dropped
  int slow_users = 0;                  // the first K users are slow consumers
  SlowMode slow_mode = SlowMode::stop;
  ms slow_read_delay{1000};            // slow mode: one message per this delay
  int slow_rcvbuf = 0;                 // SO_RCVBUF for slow users (0: the kernel's default)
  Clock clock = Clock::realtime;
  bool log_connects = false;
  uint64_t seed = 0;                   // 0: random
};

// Counters of one reporting interval, and of the whole run.
struct Tally {
  uint64_t sent = 0, send_skipped = 0, received = 0, received_slow = 0, unmeasured = 0;
  uint64_t connect_attempts = 0, connect_successes = 0, reconnects = 0, disconnects = 0, slow_disconnects = 0;
  std::map<std::string, uint64_t> by_origin;
  Histogram latency, latency_slow;
};

class User;

class LoadClient {
 public:
  LoadClient(net::io_context& io, ClientConfig cfg);
  ~LoadClient();
  void start();
  void stop();  // prints the summary, closes the connections
  // Returns false when no user ever connected.
  bool any_connected() const { return total_.connect_successes + cur_.connect_successes > 0; }

  // For User.
  const ClientConfig& config() const { return cfg_; }
  net::io_context& io() { return io_; }
  int64_t now_ns() const;  // the configured clock
  // Each updates the interval's tally and the run's.
  void on_sent() { cur_.sent++, total_.sent++; }
  void on_send_skipped() { cur_.send_skipped++, total_.send_skipped++; }
  void on_received(const std::string& origin, int64_t latency_us, bool measured, bool slow);
  void on_connect_attempt() { cur_.connect_attempts++, total_.connect_attempts++; }
  void on_connect_result(int user, const std::string& server, bool ok, bool reconnect, const std::string& error,
                         int attempt, int64_t delay_ms);
  void on_disconnect(int user, const std::string& server, const std::string& error, double up_s, bool slow);
  uint64_t seed_for(int user) { return seed_ + static_cast<uint64_t>(user) * 0x9E3779B97F4A7C15ull; }

 private:
  void report();
  void tick();
  int connected() const;

  net::io_context& io_;
  ClientConfig cfg_;
  uint64_t seed_;
  std::vector<std::shared_ptr<User>> users_;
  Tally cur_, total_;
  net::steady_timer timer_, end_;
  std::chrono::steady_clock::time_point start_, last_;
  double max_attempt_rate_ = 0;
  bool stopped_ = false;
};

}  // namespace fl::chat
