// The control socket: line-oriented requests over a Unix stream socket, served from the event
// loop. The server frames lines and enforces resource limits; what a line means, and who may do
// what, is the handler's business.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "daemon/event_loop.h"
#include "daemon/socket_file.h"

namespace fl::daemon {

// Who is on the other end, from SO_PEERCRED (taken at connect time) and SO_PEERGROUPS.
// pid is 0 when the client lives in a pid namespace we cannot see into.
struct Peer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool may_mutate = false;  // uid 0, or the faultline group as primary or supplementary group
  uint64_t client = 0;      // this connection, for replies sent later (Server::send)
};

struct ServerOptions {
  std::string socket_path = "/run/faultline/faultline.sock";
  std::string group = "faultline";  // parse_group's NAME|GID, or "" for root only
  size_t max_line = 1 << 20;        // bytes before '\n'; longer: error reply, then disconnect
  // Unread reply bytes above this: disconnect. One request reply is not counted, so a client
  // that reads can take a reply up to max_reply.
  size_t max_output = 4 << 20;
  size_t max_reply = 16 << 20;  // a longer reply is replaced by the internal error reply
  // Input and output buffered for all clients together (capacity, what memory they take);
  // above it the least recently active clients holding buffers are closed. At least what one
  // client may hold: max_line + 64 KiB + max_output + max_reply.
  size_t max_buffered = 64 << 20;
  // No complete request and no drained output for this long: disconnect. 0 disables.
  std::chrono::milliseconds idle_timeout{60000};
  size_t max_clients = 1024;  // beyond: accept and close at once (logged once per burst)
};

// Clients get at most a quarter of the descriptors the daemon may open, and never more than
// 1024: the rest is for targets (~19 descriptors per namespace: maps, programs, links, the
// namespace) and for the daemon itself. 65536 (the unit's LimitNOFILE) gives 1024; systemd's
// default soft limit of 1024, if it cannot be raised, gives 256.
size_t max_clients_for(uint64_t fd_limit);

class Server {
 public:
  // Gets one request line (no newline, trailing '\r' stripped, never empty) and returns one reply
  // line without newline. Runs on the loop thread; it may throw (the client then gets the
  // internal error reply). A reply containing '\n' would break framing and is replaced likewise.
  // An empty reply sends nothing now: the handler answers later with send() (a wait, a stream)
  // or, after defer(), with deliver(). A client's requests run one per loop round, so one that
  // pipelines many cannot hold up the others.
  using Handler = std::function<std::string(const Peer&, std::string_view line)>;

  // Prepares and checks the socket directory, replaces a stale socket, binds and listens.
  // `loop` must outlive the server; call from the loop thread or before the loop runs.
  static Result<std::unique_ptr<Server>> start(EventLoop& loop, ServerOptions opts, Handler h);
  // Closes every client, then closes and unlinks the socket (only if the file is still ours).
  // Same threading rule as start().
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Safe from any thread.
  size_t client_count() const { return client_count_.load(std::memory_order_relaxed); }
  // Bytes buffered for all clients (ServerOptions::max_buffered). Safe from any thread.
  size_t buffered() const { return buffered_.load(std::memory_order_relaxed); }

  // Queues one line (no newline) for a client, outside of a request: a late reply or a pushed
  // event. False if the client is gone. A client over its output limit is disconnected (from
  // the loop, never inside this call, so a handler may push to its own client).
  bool send(uint64_t client, std::string line);
  // A held client is waiting for something the daemon will send: it is not closed for being
  // idle, nor after a half-close, until it is let go.
  void hold(uint64_t client, bool held);
  // The request being handled is answered later with deliver(), and the client's next requests
  // wait until then (replies stay in order). Call from inside the handler; the client is not
  // closed for being idle meanwhile.
  void defer(uint64_t client);
  // The reply to a deferred request; the client's next request runs after it. False if the
  // client is gone or over its output limit.
  bool deliver(uint64_t client, std::string reply);
  // Ends a defer() without a reply: the request is answered by send() later (a wait). The
  // client's next request runs now.
  void resume(uint64_t client);
  // The client is still there and may get replies (loop thread).
  bool connected(uint64_t client) const;
  // Called with the client id whenever a client is closed, for whoever keeps state about it.
  void set_close_hook(std::function<void(uint64_t)> f) { close_hook_ = std::move(f); }

  // Reply for an over-long line, built by the server itself since it never reaches the handler:
  // set by the owner so the wire format stays in the protocol layer.
  void set_overlong_reply(std::function<std::string()> f);
  // Reply when the handler throws or breaks framing; same reasoning as above.
  void set_internal_error_reply(std::function<std::string()> f);

 private:
  struct Client;
  enum class ReadResult { more, eof, overlong, overflow, gone };

  Server(EventLoop& loop, ServerOptions opts, Handler h);
  Status init();
  Status open_listener();
  void on_accept();
  void on_client_event(uint64_t id, uint32_t events);
  bool wants_input(Client& c);
  ReadResult read_input(Client& c, uint32_t events);
  ReadResult serve_one(Client& c);
  void compact_input(Client& c);
  void step(uint64_t id);
  void make_ready(Client& c);
  // more, overflow or gone; a request reply may be the one not counted against max_output.
  ReadResult queue_reply(Client& c, std::string reply, bool request_reply);
  static size_t unread_counted(const Client& c);
  bool flush(Client& c);  // false: the peer is gone
  void update_interest(Client& c);
  void account(Client& c);
  void shed(uint64_t keep);
  void close_client(uint64_t id, const char* why);
  void sweep_idle();
  // step() for a client from the loop a moment later, outside whatever handler asked: closes a
  // doomed client, a let-go one that half-closed, runs a resumed one's next request.
  void step_later(uint64_t client);
  std::string safe_reply(const std::function<std::string()>& f, const char* fallback) const;

  EventLoop& loop_;
  ServerOptions opts_;
  Handler handler_;
  std::function<std::string()> overlong_reply_;
  std::function<std::string()> internal_reply_;
  std::function<void(uint64_t)> close_hook_;
  std::optional<gid_t> group_gid_;

  int listen_fd_ = -1;
  bool bound_ = false;  // we created the socket file; unlink it on destruction
  dev_t sock_dev_ = 0;
  ino_t sock_ino_ = 0;
  EventLoop::TimerId sweep_timer_ = 0;
  EventLoop::TimerId accept_resume_timer_ = 0;
  size_t refused_in_burst_ = 0;

  uint64_t next_client_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients_;
  std::unordered_set<uint64_t> step_pending_;  // clients with a step_later() posted
  std::atomic<size_t> client_count_{0};
  std::vector<uint64_t> ready_;  // clients with a complete request waiting for their turn
  bool serve_posted_ = false;
  std::atomic<size_t> buffered_{0};   // sum of Client::accounted; written on the loop only
  std::shared_ptr<char> alive_;       // posted work checks it: the server may be gone by then
  std::vector<char> scratch_;  // one read buffer shared by all clients
};

}  // namespace fl::daemon
