// Over 600 lines on purpose: one connection state machine (accept, read, frame, answer now or
// later, bounded output, shedding, idle sweep) whose steps all read and write the same Client
// fields and budgets; split across files, each step would have to expose them. The socket
// file's checks are in socket_file.cpp.
#include "daemon/server.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/socket_file.h"

namespace fl::daemon {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kReadChunk = 64 * 1024;
// Per wake-up budgets: level-triggered epoll brings a busy fd back on the next round, so capping
// the work done for one fd is what keeps a flooding client from starving the others.
constexpr int kReadsPerWakeup = 4;
constexpr int kAcceptsPerWakeup = 64;
constexpr auto kMinSweep = 50ms;
constexpr auto kAcceptPause = 100ms;
// Buffers that grew for one large request or reply are given back once empty, so an idle
// connection does not pin a megabyte.
// Small, because a thousand idle clients each keeping this much for input and output is
// memory the bound on buffered bytes (ServerOptions::max_buffered) does not see.
constexpr size_t kKeepCapacity = 4 * 1024;

constexpr const char* kDefaultOverlongReply = "request line too long";
constexpr const char* kDefaultInternalReply = "internal error";

}  // namespace

size_t max_clients_for(uint64_t fd_limit) {
  return static_cast<size_t>(std::clamp<uint64_t>(fd_limit / 4, 16, 1024));
}

struct Server::Client {
  int fd = -1;
  uint64_t id = 0;
  Peer peer;
  std::string in;
  size_t in_off = 0;   // in[0, in_off) is consumed
  size_t scanned = 0;  // in[in_off, scanned) holds no '\n', so a long line is searched only once
  std::string out;
  size_t out_off = 0;  // out[0, out_off) is already written
  // Absolute stream positions: bytes ever queued and ever written, and the one request reply
  // that may exceed max_output (see Server::unread_counted).
  uint64_t queued = 0, sent = 0, exempt_begin = 0, exempt_end = 0;
  size_t accounted = 0;   // this client's share of Server::buffered_
  uint32_t events = 0;
  bool draining = false;  // no more input is read; close once the output is flushed
  bool held = false;      // see Server::hold
  bool busy = false;      // see Server::defer
  bool doomed = false;    // over its output limit in send(); closed from the loop
  bool ready = false;     // in Server::ready_: a complete request waits for its turn
  Clock::time_point last_active;

  size_t pending() const { return out.size() - out_off; }
  // Where the next complete line ends; npos if none is buffered yet.
  size_t next_newline() {
    size_t nl = in.find('\n', std::max(scanned, in_off));
    scanned = nl == std::string::npos ? in.size() : nl;
    return nl;
  }
};

Server::Server(EventLoop& loop, ServerOptions opts, Handler h)
    : loop_(loop), opts_(std::move(opts)), handler_(std::move(h)), alive_(std::make_shared<char>()),
      scratch_(kReadChunk) {}

Result<std::unique_ptr<Server>> Server::start(EventLoop& loop, ServerOptions opts, Handler h) {
  std::unique_ptr<Server> s(new Server(loop, std::move(opts), std::move(h)));
  // On failure the destructor undoes whatever init() got done.
  Status st = s->init();
  if (!st.ok()) return st.take_error().wrap("control socket " + s->opts_.socket_path);
  return s;
}

Status Server::init() {
  const std::string& path = opts_.socket_path;
  if (path.empty() || path.find('\0') != std::string::npos ||
      path.size() >= sizeof(sockaddr_un::sun_path))
    return make_error(Errc::invalid_argument,
                      "socket path must be non-empty and shorter than " +
                          std::to_string(sizeof(sockaddr_un::sun_path)) + " bytes");
  if (!handler_) return make_error(Errc::invalid_argument, "no request handler");
  if (opts_.max_line == 0 || opts_.max_output == 0 || opts_.max_clients == 0 ||
      opts_.idle_timeout.count() < 0)
    return make_error(Errc::invalid_argument,
                      "max_line, max_output and max_clients must be positive, "
                      "idle_timeout not negative");
  // One client within its own limits must never be shed for the others' sake.
  if (opts_.max_reply < opts_.max_output ||
      opts_.max_buffered < opts_.max_line + kReadChunk + opts_.max_output + opts_.max_reply)
    return make_error(Errc::invalid_argument,
                      "max_reply must be at least max_output, and max_buffered at least what one "
                      "client may hold (max_line + 64 KiB + max_output + max_reply)");

  auto spec = parse_group(opts_.group);
  if (!spec.ok()) return spec.take_error().wrap("group");
  if (spec->gid) group_gid_ = spec->gid;
  else if (!spec->name.empty()) group_gid_ = lookup_group(spec->name);
  FL_TRY(prepare_dir(parent_dir(path), group_gid_));
  FL_TRY(clear_stale_socket(path));
  FL_TRY(open_listener());
  FL_TRY_CTX(loop_.add(listen_fd_, EPOLLIN, [this](uint32_t) { on_accept(); }), "watch listener");

  if (opts_.idle_timeout.count() > 0) {
    auto period = std::max<std::chrono::milliseconds>(opts_.idle_timeout / 4, kMinSweep);
    auto t = loop_.add_timer(period, period, [this] { sweep_idle(); });
    if (!t.ok()) return t.take_error().wrap("idle sweep timer");
    sweep_timer_ = *t;
  }
  spdlog::info("listening on {} (group {})", path,
               group_gid_ ? (spec->name.empty() ? std::string() : spec->name + " ") + "gid " +
                                std::to_string(*group_gid_)
                          : std::string("none, root only"));
  return {};
}

Status Server::open_listener() {
  const std::string& path = opts_.socket_path;
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Error::sys(Errc::internal, "socket", errno);
  sockaddr_un addr = make_addr(path);
  // The file gets its mode when bind() creates it: the socket inode's mode, less the umask. A
  // chmod by path afterwards would follow whatever sits at the path by then. The umask is
  // process-wide, but at start no other thread creates files; it is put back at once.
  if (fchmod(listen_fd_, 0660) < 0) return Error::sys(Errc::internal, "fchmod socket", errno);
  mode_t old_umask = umask(0117);
  int rc = bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int bind_err = errno;
  umask(old_umask);
  if (rc < 0) {
    // EADDRINUSE here means someone created the path after our stale check.
    return Error::sys(Errc::internal, "bind", bind_err);
  }
  bound_ = true;
  struct stat st{};
  if (lstat(path.c_str(), &st) < 0) return Error::sys(Errc::internal, "stat after bind", errno);
  sock_dev_ = st.st_dev;
  sock_ino_ = st.st_ino;
  if (!S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0660)
    return make_error(Errc::internal, path + " has mode " + mode_str(st.st_mode) + " after bind, expected 0660");
  // The group is set before listen(): until then a connect is refused, so no one connects while
  // the file still has our primary group. lchown never follows a link.
  if (group_gid_ && lchown(path.c_str(), static_cast<uid_t>(-1), *group_gid_) < 0)
    spdlog::warn("chgrp {} to gid {}: {}; group members cannot connect", path, *group_gid_,
                 std::strerror(errno));
  if (listen(listen_fd_, SOMAXCONN) < 0) return Error::sys(Errc::internal, "listen", errno);
  return {};
}

Server::~Server() {
  for (auto& [id, c] : clients_) {
    loop_.remove(c->fd);
    close(c->fd);
  }
  clients_.clear();
  client_count_.store(0, std::memory_order_relaxed);
  if (sweep_timer_) loop_.cancel_timer(sweep_timer_);
  if (accept_resume_timer_) loop_.cancel_timer(accept_resume_timer_);
  if (listen_fd_ >= 0) {
    loop_.remove(listen_fd_);
    close(listen_fd_);
  }
  if (bound_) {
    // Only our own inode: if an operator moved things around, the file there is not ours.
    struct stat st{};
    if (lstat(opts_.socket_path.c_str(), &st) == 0 && st.st_dev == sock_dev_ &&
        st.st_ino == sock_ino_)
      unlink(opts_.socket_path.c_str());
  }
}

void Server::set_overlong_reply(std::function<std::string()> f) { overlong_reply_ = std::move(f); }

void Server::set_internal_error_reply(std::function<std::string()> f) {
  internal_reply_ = std::move(f);
}

std::string Server::safe_reply(const std::function<std::string()>& f, const char* fallback) const {
  if (!f) return fallback;
  try {
    std::string r = f();
    if (r.find('\n') == std::string::npos) return r;
    spdlog::error("server: canned reply contains a newline; using the fallback");
  } catch (const std::exception& e) {
    spdlog::error("server: building a canned reply threw: {}", e.what());
  } catch (...) {
    spdlog::error("server: building a canned reply threw a non-standard exception");
  }
  return fallback;
}

void Server::on_accept() {
  for (int i = 0; i < kAcceptsPerWakeup; ++i) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // The pending connection stays queued and the listener stays readable: without a pause
        // the loop would spin on it. Existing clients keep being served meanwhile.
        spdlog::warn("accept on {}: {}; pausing accepts for {} ms", opts_.socket_path,
                     std::strerror(err), kAcceptPause.count());
        if (!loop_.modify(listen_fd_, 0).ok()) return;
        auto t = loop_.add_timer(kAcceptPause, 0ms, [this] {
          accept_resume_timer_ = 0;
          Status st = loop_.modify(listen_fd_, EPOLLIN);
          if (!st.ok()) spdlog::error("resume accepting: {}", st.error().message);
        });
        if (t.ok()) {
          accept_resume_timer_ = *t;
        } else {
          (void)loop_.modify(listen_fd_, EPOLLIN);
        }
        return;
      }
      spdlog::error("accept on {}: {}", opts_.socket_path, std::strerror(err));
      return;
    }

    if (clients_.size() >= opts_.max_clients) {
      if (refused_in_burst_++ == 0)
        spdlog::warn("{} clients connected (max_clients); refusing new connections",
                     clients_.size());
      close(fd);
      continue;
    }
    if (refused_in_burst_ > 0) {
      spdlog::warn("accepting connections again; refused {} while at max_clients",
                   refused_in_burst_);
      refused_in_burst_ = 0;
    }

    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
      spdlog::warn("SO_PEERCRED: {}; dropping connection", std::strerror(errno));
      close(fd);
      continue;
    }
    auto c = std::make_unique<Client>();
    c->fd = fd;
    c->id = next_client_id_++;
    c->peer.pid = cred.pid;
    c->peer.uid = cred.uid;
    c->peer.gid = cred.gid;
    c->peer.client = c->id;
    // SO_PEERGROUPS costs a syscall and an allocation; most callers are root or in the group
    // by their primary gid, so ask only when that did not settle it.
    c->peer.may_mutate =
        cred.uid == 0 ||
        (group_gid_ && (cred.gid == *group_gid_ || peer_in_group(fd, *group_gid_)));
    c->events = EPOLLIN;
    c->last_active = Clock::now();
    uint64_t id = c->id;
    Status st = loop_.add(fd, EPOLLIN, [this, id](uint32_t ev) { on_client_event(id, ev); });
    if (!st.ok()) {
      spdlog::error("watch client fd {}: {}", fd, st.error().message);
      close(fd);
      continue;
    }
    spdlog::debug("client {} connected: fd {} pid {} uid {} gid {} may_mutate {}", id, fd,
                  cred.pid, cred.uid, cred.gid, c->peer.may_mutate);
    clients_.emplace(id, std::move(c));
    client_count_.store(clients_.size(), std::memory_order_relaxed);
  }
}

void Server::on_client_event(uint64_t id, uint32_t events) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;

  // HUP and ERR go through read() too: data the peer sent before closing is still queued.
  if (wants_input(c) && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    switch (read_input(c, events)) {
      case ReadResult::eof:
        // A half-close (socat, `faultctl < file`) still gets a reply to every complete line.
        c.draining = true;
        break;
      case ReadResult::gone:
        close_client(id, "connection error");
        return;
      default:
        break;
    }
  }
  // Hung up both ways: nobody is left to read a reply, so no further request of it runs.
  if (events & (EPOLLHUP | EPOLLERR)) {
    close_client(id, "hung up");
    return;
  }
  // A client waiting in ready_ gets its turn there: one request per client per round.
  if (c.ready) {
    if (!flush(c)) close_client(id, "peer stopped reading");
    else update_interest(c);
    return;
  }
  step(id);
}

// Whether to read more from the client now. A complete request not yet run stops reading: the
// socket's own buffer then holds back a client that pipelines faster than it is served, and
// what we buffer per client stays under a line plus one read.
bool Server::wants_input(Client& c) {
  return !c.draining && c.next_newline() == std::string::npos && c.in.size() - c.in_off <= opts_.max_line;
}

Server::ReadResult Server::read_input(Client& c, uint32_t events) {
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    ssize_t n = recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (n > 0) {
      c.in.append(scratch_.data(), static_cast<size_t>(n));
      if (!wants_input(c)) return ReadResult::more;
      // A short read emptied the socket buffer; the next recv would only say EAGAIN.
      if (static_cast<size_t>(n) < scratch_.size()) return ReadResult::more;
      continue;
    }
    if (n == 0) {
      if (c.in.size() > c.in_off && c.next_newline() == std::string::npos)
        spdlog::debug("client {}: dropping {} bytes of an unterminated last line", c.id,
                      c.in.size() - c.in_off);
      return ReadResult::eof;
    }
    if (errno == EINTR) continue;
    // EPOLLERR is reported whatever the interest mask: if recv does not surface the error,
    // returning "more" would bring us straight back here.
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && !(events & EPOLLERR)) return ReadResult::more;
    spdlog::debug("client {}: recv: {}", c.id, std::strerror(errno));
    return ReadResult::gone;
  }
  return ReadResult::more;
}

// Runs the client's next request, if one is complete and it may run now. One per call: a
// client that pipelines a thousand requests gets one, then every other client gets its turn.
Server::ReadResult Server::serve_one(Client& c) {
  for (;;) {
    size_t nl = c.next_newline();
    if (nl == std::string::npos)
      return c.in.size() - c.in_off > opts_.max_line ? ReadResult::overlong : ReadResult::more;
    if (nl - c.in_off > opts_.max_line) return ReadResult::overlong;
    // Answered later, and the requests after it wait their turn (replies stay in order); a
    // client over its output limit gets none run, it would never see their replies.
    if (c.busy || c.doomed) return ReadResult::more;
    // Pipelining without reading: the replies it has not taken already exceed the limit.
    if (unread_counted(c) > opts_.max_output) return ReadResult::overflow;
    std::string_view line(c.in.data() + c.in_off, nl - c.in_off);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      c.in_off = nl + 1;
      continue;  // costs nothing, is no request
    }
    c.last_active = Clock::now();

    std::string reply;
    try {
      reply = handler_(c.peer, line);
      if (reply.find('\n') != std::string::npos) {
        spdlog::error("client {}: handler reply contains a newline; sending internal error", c.id);
        reply = safe_reply(internal_reply_, kDefaultInternalReply);
      }
    } catch (const std::exception& e) {
      spdlog::error("client {} (pid {} uid {}): handler threw: {}", c.id, c.peer.pid, c.peer.uid,
                    e.what());
      reply = safe_reply(internal_reply_, kDefaultInternalReply);
    } catch (...) {
      spdlog::error("client {} (pid {} uid {}): handler threw a non-standard exception", c.id,
                    c.peer.pid, c.peer.uid);
      reply = safe_reply(internal_reply_, kDefaultInternalReply);
    }
    // The line is a view into c.in: consumed only once the handler is done with it.
    c.in_off = nl + 1;
    compact_input(c);
    if (reply.empty()) return ReadResult::more;  // answered later through send()
    return queue_reply(c, std::move(reply), true);
  }
}

void Server::compact_input(Client& c) {
  if (c.in_off == c.in.size()) {
    if (c.in.capacity() > kKeepCapacity) {
      std::string().swap(c.in);
    } else {
      c.in.clear();
    }
    c.in_off = 0;
    c.scanned = 0;
  } else if (c.in_off >= kKeepCapacity && c.in_off * 2 >= c.in.size()) {
    // Only when the consumed prefix dominates, so each byte is moved O(1) times.
    c.in.erase(0, c.in_off);
    c.scanned -= std::min(c.scanned, c.in_off);
    c.in_off = 0;
  }
}

// After a request, a read, a late reply or a resume: the one place that decides what happens to
// a client next.
void Server::step(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  switch (serve_one(c)) {
    case ReadResult::more:
    case ReadResult::eof:
      break;
    case ReadResult::overlong: {
      spdlog::warn("client {} (pid {} uid {}): request line over {} bytes; disconnecting", id,
                   c.peer.pid, c.peer.uid, opts_.max_line);
      c.draining = true;
      c.held = false;  // whatever it waited for, it is being disconnected
      std::string().swap(c.in);
      c.in_off = c.scanned = 0;
      if (queue_reply(c, safe_reply(overlong_reply_, kDefaultOverlongReply), false) != ReadResult::more) {
        close_client(id, "could not queue the over-long reply");
        return;
      }
      break;
    }
    case ReadResult::overflow:
      spdlog::warn("client {} (pid {} uid {}): over {} unread reply bytes; disconnecting", id,
                   c.peer.pid, c.peer.uid, opts_.max_output);
      close_client(id, "output limit");
      return;
    case ReadResult::gone:
      close_client(id, "connection error");
      return;
  }
  if (c.doomed) {
    close_client(id, "output limit");
    return;
  }
  if (!flush(c)) {
    close_client(id, "peer stopped reading");
    return;
  }
  // A complete request, or a partial line already past the limit, is for the next round.
  const bool more = !c.busy && (c.next_newline() != std::string::npos || c.in.size() - c.in_off > opts_.max_line);
  if (c.draining && c.pending() == 0 && !c.held && !c.busy && !more) {
    close_client(id, "done");
    return;
  }
  if (more) make_ready(c);
  update_interest(c);
  account(c);
  shed(id);
}

void Server::make_ready(Client& c) {
  if (c.ready) return;
  c.ready = true;
  ready_.push_back(c.id);
  if (serve_posted_) return;
  serve_posted_ = true;
  // Posted work runs after the fds that are ready now: every other client gets its turn first.
  loop_.post([this, alive = std::weak_ptr<char>(alive_)] {
    if (alive.expired()) return;
    serve_posted_ = false;
    std::vector<uint64_t> round;
    round.swap(ready_);
    for (uint64_t id : round) {
      auto it = clients_.find(id);
      if (it == clients_.end()) continue;
      it->second->ready = false;
      step(id);
    }
  });
}

bool Server::send(uint64_t client, std::string line) {
  auto it = clients_.find(client);
  if (it == clients_.end() || it->second->doomed) return false;
  Client& c = *it->second;
  if (line.find('\n') != std::string::npos) {
    spdlog::error("client {}: pushed line contains a newline; sending internal error", c.id);
    line = safe_reply(internal_reply_, kDefaultInternalReply);
  }
  ReadResult r = queue_reply(c, std::move(line), false);
  if (r == ReadResult::more && flush(c)) {
    update_interest(c);
    account(c);
    // Shedding closes clients; the caller may be inside a request of one of them.
    if (buffered() > opts_.max_buffered) loop_.post([this, alive = std::weak_ptr<char>(alive_)] {
      if (!alive.expired()) shed(0);
    });
    return true;
  }
  if (r == ReadResult::overflow)
    spdlog::warn("client {} (pid {} uid {}): over {} unread bytes of pushed output; disconnecting", c.id,
                 c.peer.pid, c.peer.uid, opts_.max_output);
  // Closing here could free a client whose request is being handled further up the stack.
  c.doomed = true;
  c.held = false;
  step_later(client);
  return false;
}

bool Server::deliver(uint64_t client, std::string reply) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return false;
  Client& c = *it->second;
  if (!c.busy) {
    spdlog::error("client {}: deliver() without defer(); sending as a push", client);
    return send(client, std::move(reply));
  }
  c.busy = false;
  c.last_active = Clock::now();
  bool ok = true;
  if (!c.doomed) {
    if (reply.find('\n') != std::string::npos) {
      spdlog::error("client {}: late reply contains a newline; sending internal error", c.id);
      reply = safe_reply(internal_reply_, kDefaultInternalReply);
    }
    if (queue_reply(c, std::move(reply), true) != ReadResult::more) {
      c.doomed = true;
      ok = false;
    }
  }
  // Not step() here: the caller may be a handler of this very client.
  step_later(client);
  return ok;
}

void Server::resume(uint64_t client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  if (!c.busy) return;
  c.busy = false;
  c.last_active = Clock::now();
  step_later(client);
}

void Server::step_later(uint64_t client) {
  // Posted, not a timer: a timer costs a descriptor, and this is how a late reply or a doomed
  // client is acted on; out of descriptors, that must still happen.
  if (!step_pending_.insert(client).second) return;
  loop_.post([this, alive = std::weak_ptr<char>(alive_), client] {
    if (alive.expired()) return;
    step_pending_.erase(client);
    auto i = clients_.find(client);
    if (i == clients_.end()) return;
    if (i->second->doomed) close_client(client, "output limit or send error");
    else step(client);
  });
}

void Server::hold(uint64_t client, bool held) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  c.held = held;
  c.last_active = Clock::now();
  // Let go after a half-close: the client read its last reply and is done.
  if (!held && c.draining && c.pending() == 0) step_later(client);
}

bool Server::connected(uint64_t client) const {
  auto it = clients_.find(client);
  return it != clients_.end() && !it->second->doomed;
}

void Server::defer(uint64_t client) {
  auto it = clients_.find(client);
  if (it != clients_.end()) it->second->busy = true;
}

// What counts against max_output: every unread byte but those of one request reply, so a
// reply up to max_reply can be taken by a client that reads, while one that does not read
// cannot pile up more than max_output besides.
size_t Server::unread_counted(const Client& c) {
  const uint64_t pending = c.queued - c.sent;
  const uint64_t from = std::max(c.sent, c.exempt_begin);
  const uint64_t exempt = c.exempt_end > from ? c.exempt_end - from : 0;
  return static_cast<size_t>(pending - exempt);
}

Server::ReadResult Server::queue_reply(Client& c, std::string reply, bool request_reply) {
  if (reply.size() > opts_.max_reply) {
    spdlog::error("client {}: a reply of {} bytes exceeds {}; sending internal error", c.id, reply.size(),
                  opts_.max_reply);
    reply = safe_reply(internal_reply_, kDefaultInternalReply);
  }
  const uint64_t begin = c.queued;
  c.queued += reply.size() + 1;
  if (c.out.empty()) {
    c.out = std::move(reply);
  } else {
    c.out += reply;
  }
  c.out.push_back('\n');
  if (request_reply && c.exempt_end <= c.sent) {
    c.exempt_begin = begin;
    c.exempt_end = c.queued;
  }
  if (unread_counted(c) <= opts_.max_output) return ReadResult::more;
  // Give the kernel a chance before judging: the limit is on what the client has not taken.
  if (!flush(c)) return ReadResult::gone;
  return unread_counted(c) <= opts_.max_output ? ReadResult::more : ReadResult::overflow;
}

bool Server::flush(Client& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      c.sent += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    spdlog::debug("client {}: send: {}", c.id, n < 0 ? std::strerror(errno) : "wrote 0 bytes");
    return false;
  }
  if (c.out_off == c.out.size()) {
    if (!c.out.empty()) c.last_active = Clock::now();
    if (c.out.capacity() > kKeepCapacity) {
      std::string().swap(c.out);
    } else {
      c.out.clear();
    }
    c.out_off = 0;
  } else if (c.out_off >= kKeepCapacity && c.out_off * 2 >= c.out.size()) {
    // Compact only when the written prefix dominates, so each byte is moved O(1) times.
    c.out.erase(0, c.out_off);
    c.out_off = 0;
  }
  return true;
}

void Server::update_interest(Client& c) {
  uint32_t want = wants_input(c) ? static_cast<uint32_t>(EPOLLIN) : 0u;
  if (c.pending() > 0) want |= EPOLLOUT;
  if (want == c.events) return;
  Status st = loop_.modify(c.fd, want);
  if (!st.ok()) {
    spdlog::error("client {}: {}", c.id, st.error().message);
    return;
  }
  c.events = want;
}

void Server::account(Client& c) {
  const size_t now = c.in.capacity() + c.out.capacity();
  buffered_.store(buffered_.load(std::memory_order_relaxed) - c.accounted + now, std::memory_order_relaxed);
  c.accounted = now;
}

// Over the bound on buffered bytes across all clients: the clients holding buffers that were
// active least recently go first (a hostile one sits on a partial line or on replies it never
// reads; one that is being served was active just now). `keep`, the client being served, stays.
void Server::shed(uint64_t keep) {
  if (buffered() <= opts_.max_buffered) return;
  std::vector<std::pair<Clock::time_point, uint64_t>> holders;
  for (auto& [id, c] : clients_)
    if (id != keep && (c->in.size() > c->in_off || c->pending() > 0)) holders.push_back({c->last_active, id});
  std::sort(holders.begin(), holders.end());
  size_t closed = 0;
  const size_t before = buffered();
  for (auto& [when, id] : holders) {
    if (buffered() <= opts_.max_buffered) break;
    close_client(id, "buffered bytes across clients over the limit");
    closed++;
  }
  spdlog::warn("{} bytes buffered for clients, over the limit of {}: closed {} least recently active client(s)",
               before, opts_.max_buffered, closed);
}

// Limit violations are logged at warn by the caller, with the numbers that explain them.
void Server::close_client(uint64_t id, const char* why) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  spdlog::debug("client {} (pid {} uid {}) disconnected: {}", id, c.peer.pid, c.peer.uid, why);
  loop_.remove(c.fd);
  close(c.fd);
  buffered_.fetch_sub(c.accounted, std::memory_order_relaxed);
  clients_.erase(it);
  client_count_.store(clients_.size(), std::memory_order_relaxed);
  if (close_hook_) close_hook_(id);
}

void Server::sweep_idle() {
  auto now = Clock::now();
  std::vector<uint64_t> idle;
  for (auto& [id, c] : clients_) {
    // A doomed client whose step_later timer could not be made (out of descriptors) ends here.
    if (c->doomed || (!c->held && !c->busy && now - c->last_active >= opts_.idle_timeout)) idle.push_back(id);
  }
  // One warning per sweep rather than per client: a leak of idle connections is one event.
  if (!idle.empty())
    spdlog::warn("closing {} client(s) idle for {} ms", idle.size(), opts_.idle_timeout.count());
  for (uint64_t id : idle) close_client(id, "idle timeout");
  if (refused_in_burst_ > 0 && clients_.size() < opts_.max_clients) {
    spdlog::warn("below max_clients again; refused {} connection(s)", refused_in_burst_);
    refused_in_burst_ = 0;
  }
}

}  // namespace fl::daemon
