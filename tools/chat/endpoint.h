// HOST:PORT and [V6]:PORT on the command line, as a numeric TCP endpoint (no name resolution:
// the lab and the experiment files name nodes by address).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <string>

namespace fl::chat {

inline std::optional<boost::asio::ip::tcp::endpoint> parse_endpoint(const std::string& s) {
  std::string host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  unsigned long p = std::stoul(port);
  if (p == 0 || p > 65535) return std::nullopt;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return boost::asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(p));
}

inline std::string to_string(const boost::asio::ip::tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

}  // namespace fl::chat
