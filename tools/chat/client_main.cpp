// fl-chat-client: chat users and load generator. See tools/chat/README.md.
#include <boost/program_options.hpp>
#include <csignal>
#include <iostream>

#include "endpoint.h"
#include "load_client.h"

namespace po = boost::program_options;
using namespace fl::chat;

int main(int argc, char** argv) {
  ClientConfig cfg;
  std::vector<std::string> servers;
  std::string slow_mode = "stop", clock = "realtime";
  long long bb, bc, ct, it, srd;
  po::options_description d("usage: fl-chat-client --server ADDR:PORT [--server ADDR:PORT]... [options]\noptions");
  d.add_options()("help,h", "this text")
      ("server", po::value(&servers)->composing()->required(), "a chat server's --listen address (repeat to spread users)")
      ("room", po::value(&cfg.room)->default_value(cfg.room), "room to join")
      ("name", po::value(&cfg.name)->default_value(cfg.name), "user name prefix (NAME-0, NAME-1, ...)")
      ("users", po::value(&cfg.users)->default_value(1), "simulated users, one WebSocket each")
      ("rate", po::value(&cfg.rate)->default_value(1.0), "messages per second per user (0: listen only)")
      ("payload-bytes", po::value(&cfg.payload_bytes)->default_value(0), "padding added to each message")
      ("duration", po::value(&cfg.duration_s)->default_value(0), "seconds to run (0: until SIGINT/SIGTERM)")
      ("interval", po::value(&cfg.interval_s)->default_value(1.0), "seconds between interval lines")
      ("backoff-base-ms", po::value(&bb)->default_value(100), "reconnect: first backoff ceiling")
      ("backoff-cap-ms", po::value(&bc)->default_value(5000), "reconnect: largest backoff ceiling")
      ("connect-timeout-ms", po::value(&ct)->default_value(2000), "TCP connect and WebSocket handshake timeout")
      ("idle-timeout-ms", po::value(&it)->default_value(3000), "drop a connection silent this long (pings at half)")
      ("slow-users", po::value(&cfg.slow_users)->default_value(0), "the first K users are slow consumers")
      ("slow-mode", po::value(&slow_mode)->default_value(slow_mode), "stop: never read; slow: one message per --slow-read-delay-ms")
      ("slow-read-delay-ms", po::value(&srd)->default_value(1000), "slow mode's delay between reads")
      ("slow-rcvbuf", po::value(&cfg.slow_rcvbuf)->default_value(0), "SO_RCVBUF of slow users' sockets (0: default)")
      ("clock", po::value(&clock)->default_value(clock), "timestamps: realtime or monotonic (same host only)")
      ("log-connects", po::bool_switch(&cfg.log_connects), "print a JSON line per connection attempt")
      ("seed", po::value(&cfg.seed)->default_value(0), "random seed for jitter (0: random)");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, d), vm);
    if (vm.count("help")) {
      std::cout << d;
      return 0;
    }
    po::notify(vm);
    for (const auto& s : servers) {
      auto ep = parse_endpoint(s);
      if (!ep) throw po::error("--server: '" + s + "' is not ADDR:PORT (numeric, [v6]:port for IPv6)");
      cfg.servers.push_back(*ep);
    }
    auto room_ok = [](const std::string& r) {
      if (r.empty() || r.size() > 64) return false;
      for (char c : r)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
      return true;
    };
    if (!room_ok(cfg.room)) throw po::error("--room: 1-64 characters of [A-Za-z0-9_.-]");
    if (cfg.users < 1 || cfg.users > 100000) throw po::error("--users must be 1..100000");
    if (cfg.rate < 0 || cfg.rate > 10000) throw po::error("--rate must be 0..10000");
    if (cfg.payload_bytes > (8u << 10)) throw po::error("--payload-bytes must be at most 8192");
    if (cfg.duration_s < 0) throw po::error("--duration must not be negative");
    if (cfg.interval_s < 0.05) throw po::error("--interval must be at least 0.05");
    if (bb <= 0 || bc < bb) throw po::error("--backoff-base-ms must be > 0 and <= --backoff-cap-ms");
    if (ct <= 0 || it <= 0 || srd <= 0) throw po::error("timeouts and delays must be greater than 0");
    if (cfg.slow_users < 0 || cfg.slow_users > cfg.users) throw po::error("--slow-users must be 0..--users");
    if (cfg.slow_rcvbuf < 0) throw po::error("--slow-rcvbuf must not be negative");
    if (slow_mode == "stop") cfg.slow_mode = SlowMode::stop;
    else if (slow_mode == "slow") cfg.slow_mode = SlowMode::slow;
    else throw po::error("--slow-mode: stop or slow");
    if (clock == "realtime") cfg.clock = Clock::realtime;
    else if (clock == "monotonic") cfg.clock = Clock::monotonic;
    else throw po::error("--clock: realtime or monotonic");
    cfg.backoff_base = ms(bb);
    cfg.backoff_cap = ms(bc);
    cfg.connect_timeout = ms(ct);
    cfg.idle_timeout = ms(it);
    cfg.slow_read_delay = ms(srd);
  } catch (const po::error& e) {
    std::cerr << "fl-chat-client: " << e.what() << "\n" << d;
    return 2;
  }

  std::signal(SIGPIPE, SIG_IGN);
  net::io_context io(1);
  LoadClient lc(io, cfg);
  net::signal_set sig(io, SIGTERM, SIGINT);
  sig.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) lc.stop();
  });
  lc.start();
  // The summary is printed by stop(); then the io_context runs dry.
  io.run();
  return lc.any_connected() ? 0 : 1;
}
