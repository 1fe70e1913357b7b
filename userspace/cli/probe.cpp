#include "cli/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/parse.h"

extern char** environ;

namespace fl::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool is_latency(const Probe& p) {
  return p.kind == ProbeKind::tcp || p.kind == ProbeKind::http;
}

// A connected TCP socket to host:port by `deadline`, or -1 with `error` set.
int tcp_connect(const std::string& host, bool v6, uint16_t port, Clock::time_point deadline, std::string& error) {
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
    error = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return -1;
  }
  pollfd pfd{fd, POLLOUT, 0};
  const int n = poll(&pfd, 1, remaining_ms(deadline));
  if (n <= 0) {
    error = n == 0 ? "connect: timed out" : std::string("poll: ") + std::strerror(errno);
    close(fd);
    return -1;
  }
  int err = 0;
  socklen_t elen = sizeof err;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) {
    error = std::string("connect: ") + std::strerror(err);
    close(fd);
    return -1;
  }
  return fd;
}

// A GET with HTTP/1.0 (the server closes; no chunked bodies to decode). Returns the status, and
// the body in `body`; -1 with `error` set when there is no valid answer by `deadline`.
int http_get(const HttpUrl& u, Clock::time_point deadline, std::string& body, std::string& error) {
  const int fd = tcp_connect(u.host, u.v6, u.port, deadline, error);
  if (fd < 0) return -1;
  const std::string host = (u.v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
  const std::string req = "GET " + u.path + " HTTP/1.0\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  std::string in;
  constexpr size_t kMaxResponse = 4u << 20;
  while (true) {
    pollfd pfd{fd, static_cast<short>(sent < req.size() ? POLLOUT : POLLIN), 0};
    const int n = poll(&pfd, 1, remaining_ms(deadline));
    if (n <= 0) {
      error = n == 0 ? "no complete answer in time" : std::string("poll: ") + std::strerror(errno);
      close(fd);
      return -1;
    }
    if (sent < req.size()) {
      const ssize_t w = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) {
        error = std::string("send: ") + std::strerror(errno);
        close(fd);
        return -1;
      }
      if (w > 0) sent += static_cast<size_t>(w);
      continue;
    }
    char buf[16384];
    const ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EAGAIN) continue;
    if (r < 0) {
      error = std::string("recv: ") + std::strerror(errno);
      close(fd);
      return -1;
    }
    if (r == 0) break;
    in.append(buf, static_cast<size_t>(r));
    if (in.size() > kMaxResponse) {
      error = "answer larger than 4 MiB";
      close(fd);
      return -1;
    }
  }
  close(fd);
  // "HTTP/1.x NNN ..."
  if (in.size() < 12 || !in.starts_with("HTTP/1.") || in[8] != ' ') {
    error = "not an HTTP answer";
    return -1;
  }
  const std::string code = in.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    error = "not an HTTP status line";
    return -1;
  }
  const size_t head_end = in.find("\r\n\r\n");
  body = head_end == std::string::npos ? std::string() : in.substr(head_end + 4);
  return std::stoi(code);
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::optional<double> parse_number(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  s = s.substr(i);
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

ProbeSample sample_tcp(const Probe& p, Clock::time_point start) {
  ProbeSample s;
  std::string err;
  const int fd = tcp_connect(p.host, p.v6, p.port, start + p.timeout, err);
  s.value = ms_since(start);
  if (fd >= 0) {
    close(fd);
    s.ok = true;
  } else {
    s.error = err;
  }
  return s;
}

ProbeSample sample_http(const Probe& p, Clock::time_point start) {
  ProbeSample s;
  std::string body, err;
  const int status = http_get(p.http, start + p.timeout, body, err);
  s.value = ms_since(start);
  if (status < 0) {
    s.error = err;
  } else if (p.status ? status == *p.status : status >= 200 && status < 300) {
    s.ok = true;
  } else {
    s.error = "status " + std::to_string(status);
  }
  return s;
}

ProbeSample sample_prometheus(const Probe& p, Clock::time_point start) {
  ProbeSample s;
  HttpUrl u = p.server_url;
  u.path = "/api/v1/query?query=" + url_encode(p.query);
  std::string body, err;
  const int status = http_get(u, start + p.timeout, body, err);
  if (status < 0) {
    s.error = err;
    return s;
  }
  try {
    const json j = json::parse(body);
    if (j.value("status", "") != "success") {
      s.error = "status " + std::to_string(status) + ": " + j.value("error", std::string("query failed"));
      return s;
    }
    const json& data = j.at("data");
    const std::string type = data.at("resultType").get<std::string>();
    const json& result = data.at("result");
    const json* pair = nullptr;
    if (type == "vector" || type == "matrix") {
      if (result.empty()) {
        s.error = "the query returned no sample";
        return s;
      }
      pair = type == "vector" ? &result.at(0).at("value") : &result.at(0).at("values").back();
    } else {
      pair = &result;  // scalar, string: [time, "value"]
    }
    auto v = parse_number(pair->at(1).get<std::string>());
    if (!v) {
      s.error = "not a finite number: " + pair->at(1).get<std::string>();
      return s;
    }
    s.ok = true;
    s.value = *v;
  } catch (const std::exception& e) {
    s.error = std::string("unexpected answer: ") + e.what();
  }
  return s;
}

ProbeSample sample_exec(const Probe& p, Clock::time_point start) {
  ProbeSample s;
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    s.error = std::string("pipe: ") + std::strerror(errno);
    return s;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> argv;
  std::vector<std::string> copy = p.argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    s.error = "cannot run " + p.argv[0] + ": " + std::strerror(rc);
    return s;
  }
  const auto deadline = start + p.timeout;
  std::string text;
  bool timed_out = false;
  while (true) {
    pollfd pfd{out[0], POLLIN, 0};
    const int n = poll(&pfd, 1, remaining_ms(deadline));
    if (n == 0) {
      timed_out = true;
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    char buf[4096];
    const ssize_t r = n < 0 ? -1 : read(out[0], buf, sizeof buf);
    if (r <= 0) break;
    if (text.size() < 65536) text.append(buf, static_cast<size_t>(r));
  }
  close(out[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    s.error = "timed out after " + core::format_duration(p.timeout);
    return s;
  }
  if (!WIFEXITED(status)) {
    s.error = "killed by signal " + std::to_string(WTERMSIG(status));
    return s;
  }
  const int code = WEXITSTATUS(status);
  s.ok = code == 0;
  if (!s.ok) s.error = "exit status " + std::to_string(code);
  s.value = parse_number(text).value_or(static_cast<double>(code));
  return s;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  // Nearest rank: the smallest value with at least q of the samples at or below it.
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

}  // namespace

ProbeSample take_sample(const Probe& p) {
  const auto start = Clock::now();
  switch (p.kind) {
    case ProbeKind::tcp: return sample_tcp(p, start);
    case ProbeKind::http: return sample_http(p, start);
    case ProbeKind::exec: return sample_exec(p, start);
    case ProbeKind::prometheus: return sample_prometheus(p, start);
  }
  return {};
}

std::optional<double> probe_statistic(const Probe& p, const std::vector<ProbeSample>& samples) {
  if (samples.empty()) return std::nullopt;
  const size_t n = std::min(samples.size(), p.window);
  const auto first = samples.end() - static_cast<std::ptrdiff_t>(n);
  if (p.statistic == Statistic::success_rate) {
    const auto ok = std::count_if(first, samples.end(), [](const ProbeSample& s) { return s.ok; });
    return static_cast<double>(ok) / static_cast<double>(n);
  }
  std::vector<double> values;
  for (auto it = first; it != samples.end(); ++it) {
    if (it->ok) {
      values.push_back(it->value);
    } else if (is_latency(p) && p.statistic != Statistic::value) {
      values.push_back(std::max(it->value, static_cast<double>(p.timeout.count())));
    }
  }
  if (values.empty()) return std::nullopt;
  switch (p.statistic) {
    case Statistic::p50: return percentile(values, 0.50);
    case Statistic::p95: return percentile(values, 0.95);
    case Statistic::p99: return percentile(values, 0.99);
    case Statistic::value: {
      double sum = 0;
      for (double v : values) sum += v;
      return sum / static_cast<double>(values.size());
    }
    case Statistic::success_rate: break;
  }
  return std::nullopt;
}

}  // namespace fl::cli
