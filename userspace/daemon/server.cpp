#include "daemon/server.h"

#include <grp.h>
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
constexpr size_t kKeepCapacity = 64 * 1024;

constexpr const char* kDefaultOverlongReply = "request line too long";
constexpr const char* kDefaultInternalReply = "internal error";

std::string mode_str(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string parent_dir(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

sockaddr_un make_addr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());  // length checked at start
  return addr;
}

// A lookup failure (NSS down, say) is treated like a missing group: the socket then admits root
// only, which fails closed.
std::optional<gid_t> lookup_group(const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::vector<char> buf(1024);
  for (;;) {
    group gr{};
    group* res = nullptr;
    int rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) {
      spdlog::warn("looking up group {}: {}; only root may use the socket", name,
                   std::strerror(rc));
      return std::nullopt;
    }
    if (res == nullptr) return std::nullopt;
    return gr.gr_gid;
  }
}

// The socket's permissions are only as good as the directory's: whoever can write there can
// replace the socket with their own, or put a symlink where it is about to be. So only its
// owner (root, or the user running the daemon) may write there: no group, not even ours, and no
// sticky world-writable directory like /tmp. Stricter than chrony's UTI_CheckDirPermissions,
// which accepts a group-writable directory.
Status check_dir(const std::string& dir) {
  struct stat st{};
  if (lstat(dir.c_str(), &st) < 0) return Error::sys(Errc::internal, "stat " + dir, errno);
  if (!S_ISDIR(st.st_mode))
    return make_error(Errc::invalid_argument, "socket directory " + dir + " is not a directory");
  if (st.st_uid != 0 && st.st_uid != geteuid())
    return make_error(Errc::permission_denied,
                      "socket directory " + dir + " is owned by uid " + std::to_string(st.st_uid) +
                          ", expected root or uid " + std::to_string(geteuid()));
  if (st.st_mode & S_IWOTH)
    return make_error(Errc::permission_denied, "socket directory " + dir +
                                                   " is writable by others (mode " +
                                                   mode_str(st.st_mode) + ")");
  if (st.st_mode & S_IWGRP)
    return make_error(Errc::permission_denied,
                      "socket directory " + dir + " is writable by group " +
                          std::to_string(st.st_gid) + " (mode " + mode_str(st.st_mode) +
                          "); only its owner may write there");
  return {};
}

Status prepare_dir(const std::string& dir, std::optional<gid_t> gid) {
  if (mkdir(dir.c_str(), 0750) == 0) {
    // mkdir's mode went through the umask; say exactly what we mean.
    if (chmod(dir.c_str(), 0750) < 0) return Error::sys(Errc::internal, "chmod " + dir, errno);
    if (gid && chown(dir.c_str(), static_cast<uid_t>(-1), *gid) < 0)
      spdlog::warn("chgrp {} to gid {}: {}; group members cannot reach the socket", dir, *gid,
                   std::strerror(errno));
    spdlog::info("created socket directory {}", dir);
  } else if (errno != EEXIST) {
    return Error::sys(Errc::internal, "create socket directory " + dir, errno);
  }
  return check_dir(dir);
}

// A socket file outlives a crashed daemon. Connecting tells a stale one (ECONNREFUSED) from a
// live one; anything that is not a socket is someone else's file and is left alone.
Status clear_stale_socket(const std::string& path) {
  struct stat st{};
  if (lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return {};
    return Error::sys(Errc::internal, "stat " + path, errno);
  }
  if (!S_ISSOCK(st.st_mode))
    return make_error(Errc::invalid_argument,
                      path + " exists and is not a socket; refusing to replace it");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::sys(Errc::internal, "socket", errno);
  sockaddr_un addr = make_addr(path);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = rc == 0 ? 0 : errno;
  close(fd);
  // EAGAIN: the listener's backlog is full, so it is very much alive.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
    return make_error(Errc::already_exists, "another faultlined is already listening on " + path);
  if (err != ECONNREFUSED) return Error::sys(Errc::internal, "probe existing socket " + path, err);
  if (unlink(path.c_str()) < 0 && errno != ENOENT)
    return Error::sys(Errc::internal, "remove stale socket " + path, errno);
  spdlog::info("removed stale socket {}", path);
  return {};
}

bool peer_in_group(int fd, gid_t gid) {
  std::vector<gid_t> groups(32);
  // ERANGE reports the size needed; the list is fixed at connect time, so one retry suffices.
  for (int attempt = 0; attempt < 3; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return std::find(groups.begin(), groups.end(), gid) != groups.end();
    }
    if (errno != ERANGE) {
      spdlog::debug("SO_PEERGROUPS on fd {}: {}", fd, std::strerror(errno));
      return false;
    }
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return false;
}

}  // namespace

Result<GroupSpec> parse_group(const std::string& s) {
  GroupSpec g;
  if (s.empty()) return g;
  if (s.find_first_not_of("0123456789") == std::string::npos) {
    // A number is a gid, as chown takes it, with no name service involved: what a container
    // image and the node agree on even when their /etc/group files differ.
    if (s.size() > 10) return make_error(Errc::invalid_argument, "gid \"" + s + "\" is out of range");
    unsigned long v = std::stoul(s);
    if (v >= 0xffffffffUL) return make_error(Errc::invalid_argument, "gid \"" + s + "\" is out of range");
    g.gid = static_cast<gid_t>(v);
    return g;
  }
  // POSIX portable names plus what useradd accepts; anything else is a typo or an attack on a log.
  bool ok = s.size() <= 32 && s[0] != '-';
  for (char ch : s)
    ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '_' || ch == '-' || ch == '.');
  if (!ok)
    return make_error(Errc::invalid_argument,
                      "\"" + s + "\" is neither a group name ([A-Za-z0-9_.-], at most 32, not starting with '-') nor a numeric gid");
  g.name = s;
  return g;
}

struct Server::Client {
  int fd = -1;
  uint64_t id = 0;
  Peer peer;
  std::string in;
  size_t scanned = 0;  // in[0, scanned) holds no '\n', so a long line is searched only once
  std::string out;
  size_t out_off = 0;  // out[0, out_off) is already written
  uint32_t events = 0;
  bool draining = false;  // no more input is read; close once the output is flushed
  bool held = false;      // see Server::hold
  bool doomed = false;    // over its output limit in send(); closed from the loop
  Clock::time_point last_active;

  size_t pending() const { return out.size() - out_off; }
};

Server::Server(EventLoop& loop, ServerOptions opts, Handler h)
    : loop_(loop), opts_(std::move(opts)), handler_(std::move(h)), scratch_(kReadChunk) {}

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
  for (auto [client, timer] : deferred_) loop_.cancel_timer(timer);
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

  // HUP and ERR go through read() too: data the peer sent before closing is still queued, and
  // its requests get answered as far as the peer still listens.
  if (!c.draining && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
    switch (read_input(c, events)) {
      case ReadResult::more:
        break;
      case ReadResult::eof:
        // A half-close (socat, `faultctl < file`) still waits for its replies.
        if (!c.in.empty())
          spdlog::debug("client {}: dropping {} bytes of an unterminated last line", id,
                        c.in.size());
        c.draining = true;
        break;
      case ReadResult::overlong: {
        spdlog::warn("client {} (pid {} uid {}): request line over {} bytes; disconnecting", id,
                     c.peer.pid, c.peer.uid, opts_.max_line);
        c.draining = true;
        c.held = false;  // whatever it waited for, it is being disconnected
        std::string().swap(c.in);
        c.scanned = 0;
        ReadResult r = queue_reply(c, safe_reply(overlong_reply_, kDefaultOverlongReply));
        if (r != ReadResult::more) {
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
  }

  if (c.doomed) {
    close_client(id, "output limit");
    return;
  }
  // Fully hung up (both directions): nothing more can be read or written, held or not.
  if (c.draining && (events & (EPOLLHUP | EPOLLERR))) {
    close_client(id, "hung up");
    return;
  }
  if (!flush(c)) {
    close_client(id, "peer stopped reading");
    return;
  }
  if (c.draining && c.pending() == 0 && !c.held) {
    close_client(id, "done");
    return;
  }
  update_interest(c);
}

bool Server::send(uint64_t client, std::string line) {
  auto it = clients_.find(client);
  if (it == clients_.end() || it->second->doomed) return false;
  Client& c = *it->second;
  if (line.find('\n') != std::string::npos) {
    spdlog::error("client {}: pushed line contains a newline; sending internal error", c.id);
    line = safe_reply(internal_reply_, kDefaultInternalReply);
  }
  ReadResult r = queue_reply(c, std::move(line));
  if (r == ReadResult::more && flush(c)) {
    update_interest(c);
    return true;
  }
  if (r == ReadResult::overflow)
    spdlog::warn("client {} (pid {} uid {}): over {} unread bytes of pushed output; disconnecting", c.id,
                 c.peer.pid, c.peer.uid, opts_.max_output);
  // Closing here could free a client whose request is being handled further up the stack.
  c.doomed = true;
  c.held = false;
  close_later(client);
  return false;
}

void Server::close_later(uint64_t client) {
  auto t = loop_.add_timer(std::chrono::milliseconds(1), std::chrono::milliseconds(0), [this, client] {
    deferred_.erase(client);
    auto i = clients_.find(client);
    if (i == clients_.end()) return;
    if (i->second->doomed) close_client(client, "output limit or send error");
    else if (!i->second->held && i->second->draining && i->second->pending() == 0) close_client(client, "done");
  });
  if (!t.ok()) {
    spdlog::error("client {}: {}", client, t.error().message);
    return;
  }
  if (auto old = deferred_.find(client); old != deferred_.end()) loop_.cancel_timer(old->second);
  deferred_[client] = *t;
}

void Server::hold(uint64_t client, bool held) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  c.held = held;
  c.last_active = Clock::now();
  // Let go after a half-close: the client read its last reply and is done.
  if (!held && c.draining && c.pending() == 0) close_later(client);
}

Server::ReadResult Server::read_input(Client& c, uint32_t events) {
  for (int i = 0; i < kReadsPerWakeup; ++i) {
    ssize_t n = recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (n > 0) {
      c.in.append(scratch_.data(), static_cast<size_t>(n));
      ReadResult r = process_lines(c);
      if (r != ReadResult::more) return r;
      // A short read emptied the socket buffer; the next recv would only say EAGAIN.
      if (static_cast<size_t>(n) < scratch_.size()) return ReadResult::more;
      continue;
    }
    if (n == 0) return ReadResult::eof;
    if (errno == EINTR) continue;
    // EPOLLERR is reported whatever the interest mask: if recv does not surface the error,
    // returning "more" would bring us straight back here.
    if ((errno == EAGAIN || errno == EWOULDBLOCK) && !(events & EPOLLERR)) return ReadResult::more;
    spdlog::debug("client {}: recv: {}", c.id, std::strerror(errno));
    return ReadResult::gone;
  }
  return ReadResult::more;
}

Server::ReadResult Server::process_lines(Client& c) {
  size_t start = 0;
  for (;;) {
    // A client over its output limit (a push during its own request) gets no more requests run:
    // it would never see their replies.
    if (c.doomed) break;
    size_t nl = c.in.find('\n', c.scanned);
    if (nl == std::string::npos) {
      c.scanned = c.in.size();
      break;
    }
    if (nl - start > opts_.max_line) return ReadResult::overlong;
    std::string_view line(c.in.data() + start, nl - start);
    start = nl + 1;
    c.scanned = start;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
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
    if (reply.empty()) continue;  // answered later through send()
    ReadResult r = queue_reply(c, std::move(reply));
    if (r != ReadResult::more) return r;
  }
  // Erase once per batch, not per line: pipelined small requests would otherwise be quadratic.
  c.in.erase(0, start);
  c.scanned -= start;
  if (c.in.size() > opts_.max_line) return ReadResult::overlong;  // no newline in sight yet
  if (c.in.empty() && c.in.capacity() > kKeepCapacity) std::string().swap(c.in);
  return ReadResult::more;
}

Server::ReadResult Server::queue_reply(Client& c, std::string reply) {
  if (c.out.empty()) {
    c.out = std::move(reply);
  } else {
    c.out += reply;
  }
  c.out.push_back('\n');
  if (c.pending() <= opts_.max_output) return ReadResult::more;
  // Give the kernel a chance before judging: the limit is on what the client has not taken.
  if (!flush(c)) return ReadResult::gone;
  return c.pending() <= opts_.max_output ? ReadResult::more : ReadResult::overflow;
}

bool Server::flush(Client& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
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
  uint32_t want = c.draining ? 0u : static_cast<uint32_t>(EPOLLIN);
  if (c.pending() > 0) want |= EPOLLOUT;
  if (want == c.events) return;
  Status st = loop_.modify(c.fd, want);
  if (!st.ok()) {
    spdlog::error("client {}: {}", c.id, st.error().message);
    return;
  }
  c.events = want;
}

// Limit violations are logged at warn by the caller, with the numbers that explain them.
void Server::close_client(uint64_t id, const char* why) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  spdlog::debug("client {} (pid {} uid {}) disconnected: {}", id, c.peer.pid, c.peer.uid, why);
  loop_.remove(c.fd);
  close(c.fd);
  clients_.erase(it);
  client_count_.store(clients_.size(), std::memory_order_relaxed);
  if (close_hook_) close_hook_(id);
}

void Server::sweep_idle() {
  auto now = Clock::now();
  std::vector<uint64_t> idle;
  for (auto& [id, c] : clients_) {
    // A doomed client whose close_later timer could not be made (out of descriptors) ends here.
    if (c->doomed || (!c->held && now - c->last_active >= opts_.idle_timeout)) idle.push_back(id);
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
