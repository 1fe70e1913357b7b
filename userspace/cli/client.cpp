#include "cli/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "protocol/protocol.h"

namespace fl::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string seconds(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s" : std::to_string(d.count()) + "ms";
}

// Waits until fd is ready for `events` or the deadline passes. Readiness includes errors and
// hang-ups: the following send/recv reports them with the right errno.
Status wait_ready(int fd, short events, Clock::time_point deadline, const std::string& timeout_msg) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Error{Errc::internal, timeout_msg, ETIMEDOUT};
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
    if (rc > 0) return {};
    if (rc == 0) continue;  // re-check the clock: poll may wake a little early
    if (errno == EINTR) continue;
    return Error::sys(Errc::internal, "poll", errno);
  }
}

}  // namespace

std::string encode_request(uint64_t id, std::string_view op, const json& params) {
  json j = params.is_object() ? params : json::object();
  j["id"] = id;
  j["op"] = op;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Client> Client::connect(const std::string& path, std::chrono::milliseconds timeout) {
  const std::string what = "cannot connect to " + path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Error::sys(Errc::target_unavailable, what, ENAMETOOLONG);
  }
  path.copy(addr.sun_path, path.size());

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::sys(Errc::internal, "socket(AF_UNIX)", errno);
  // A blocking AF_UNIX connect waits while the listener's backlog is full; SO_SNDTIMEO bounds
  // that wait (it then fails with EAGAIN).
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) {
    const int err = errno;
    ::close(fd);
    return Error::sys(Errc::internal, "setsockopt(SO_SNDTIMEO)", err);
  }
  for (;;) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    const int err = errno;
    // An interrupted AF_UNIX connect leaves the socket unconnected, so trying again is safe.
    if (err == EINTR) continue;
    ::close(fd);
    if (err == EAGAIN || err == EWOULDBLOCK) {
      return Error{Errc::target_unavailable, what + ": no connection accepted within " + seconds(timeout), err};
    }
    return Error::sys(Errc::target_unavailable, what, err);
  }
  // From here on every wait is a poll with the call's deadline.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    const int err = errno;
    ::close(fd);
    return Error::sys(Errc::internal, "fcntl(O_NONBLOCK)", err);
  }
  return Client(fd, path, timeout);
}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      timeout_(other.timeout_),
      next_id_(other.next_id_),
      last_id_(other.last_id_),
      lost_(other.lost_),
      in_(std::move(other.in_)) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    timeout_ = other.timeout_;
    next_id_ = other.next_id_;
    last_id_ = other.last_id_;
    lost_ = other.lost_;
    in_ = std::move(other.in_);
  }
  return *this;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Error Client::transport(Error e) {
  lost_ = true;
  return e;
}

Status Client::send_all(const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    // MSG_NOSIGNAL: a daemon that went away must give us EPIPE to report, not kill us.
    const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto st = wait_ready(fd_, POLLOUT, deadline,
                           "faultlined at " + path_ + " did not take the request within " + seconds(timeout_));
      if (!st) return transport(st.take_error());
      continue;
    }
    return transport(Error::sys(Errc::internal, "send request to faultlined at " + path_, n < 0 ? errno : EPIPE));
  }
  return {};
}

Result<std::string> Client::read_line(Clock::time_point deadline) {
  size_t scanned = 0;
  char buf[64 * 1024];
  for (;;) {
    if (auto nl = in_.find('\n', scanned); nl != std::string::npos) {
      std::string line = in_.substr(0, nl);
      in_.erase(0, nl + 1);
      return line;
    }
    scanned = in_.size();
    if (in_.size() > kMaxReply) {
      return make_error(Errc::internal, "reply from faultlined exceeds " + std::to_string(kMaxReply >> 20) + " MiB");
    }
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      return transport(make_error(Errc::internal,
                                  in_.empty() ? "faultlined closed the connection without replying"
                                              : "faultlined closed the connection in the middle of a reply"));
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      auto st = wait_ready(fd_, POLLIN, deadline,
                           "no reply from faultlined at " + path_ + " within " + seconds(timeout_));
      if (!st) return transport(st.take_error());
      continue;
    }
    return transport(Error::sys(Errc::internal, "receive reply from faultlined at " + path_, errno));
  }
}

Result<json> Client::call(std::string_view op, const json& params) { return call(op, params, timeout_); }

Result<json> Client::call(std::string_view op, const json& params, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return transport(make_error(Errc::internal, "not connected"));
  const uint64_t id = next_id_++;
  last_id_ = id;
  std::string request = encode_request(id, op, params);
  // Said here, before sending: the daemon would read the first kMaxLine bytes, answer and hang
  // up, and the rest of the write would fail with a bare "Broken pipe".
  if (request.size() > proto::kMaxLine)
    return make_error(Errc::invalid_argument, "the " + std::string(op) + " request is " + std::to_string(request.size()) +
                                                  " bytes, over faultlined's limit of " +
                                                  std::to_string(proto::kMaxLine) + " for one request line");
  FL_TRY(send_all(request + "\n", Clock::now() + timeout_));
  auto line = read_line(Clock::now() + timeout);
  if (!line) return line.take_error();
  return proto::parse_reply(*line, id);
}

Result<json> Client::next(std::chrono::milliseconds timeout) {
  if (fd_ < 0 || last_id_ == 0) return transport(make_error(Errc::internal, "not connected"));
  auto line = read_line(Clock::now() + timeout);
  if (!line) return line.take_error();
  return proto::parse_reply(*line, last_id_);
}

}  // namespace fl::cli
