// faultctl's side of the control socket: one connection, one request at a time, each reply
// awaited with a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace fl::cli {

inline constexpr auto kReplyTimeout = std::chrono::seconds(30);
// The longest reply the daemon sends (proto::kMaxReply; a longer one becomes an error), small
// enough that a confused peer cannot make us buffer without limit.
inline constexpr size_t kMaxReply = 16u << 20;

// One request line: {"id":ID,"op":OP, ...params}. Params named "id" or "op" are ignored.
std::string encode_request(uint64_t id, std::string_view op, const nlohmann::json& params);

class Client {
 public:
  // Fails (sys_errno set) when nothing accepts a connection at `path` within `timeout`.
  static Result<Client> connect(const std::string& path, std::chrono::milliseconds timeout = kReplyTimeout);

  Client(Client&& other) noexcept;
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // Sends a request (ids count up from 1) and returns the reply's "result", or the daemon's
  // error. After a failure, lost() tells the two kinds apart: true when the connection broke
  // or timed out (the daemon may never have seen the request), false when the daemon answered
  // with an error or with something that is not a valid reply.
  Result<nlohmann::json> call(std::string_view op, const nlohmann::json& params);
  // The same with its own reply deadline: for requests the daemon answers when something
  // happens (wait), not at once.
  Result<nlohmann::json> call(std::string_view op, const nlohmann::json& params, std::chrono::milliseconds timeout);
  // The next reply to the last request, for requests answered more than once (events with
  // follow). Waits at most timeout; a time-out is a transport failure like any other.
  Result<nlohmann::json> next(std::chrono::milliseconds timeout);
  bool lost() const { return lost_; }

 private:
  Client(int fd, std::string path, std::chrono::milliseconds timeout)
      : fd_(fd), path_(std::move(path)), timeout_(timeout) {}
  Status send_all(const std::string& data, std::chrono::steady_clock::time_point deadline);
  Result<std::string> read_line(std::chrono::steady_clock::time_point deadline);
  Error transport(Error e);

  int fd_ = -1;
  std::string path_;
  std::chrono::milliseconds timeout_;
  uint64_t next_id_ = 1;
  uint64_t last_id_ = 0;
  bool lost_ = false;
  std::string in_;  // bytes received past the last reply line
};

}  // namespace fl::cli
