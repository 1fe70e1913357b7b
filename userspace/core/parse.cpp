// Over 600 lines on purpose: one parser per thing a user types (CIDR, duration, rate, size,
// percent, port, target, exemption, names), each small and with its own precise error; they
// share the number and quoting helpers at the top, which is why they stay together.
#include "core/parse.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <iterator>
#include <limits>
#include <optional>
#include <initializer_list>
#include <set>
#include <vector>
#include <span>
#include <string>

#include "core/cgroup_layout.h"

namespace fl::core {

namespace {

constexpr size_t kQuoteMax = 128;
// Longest names the kernel accepts for the two things a target names: a file in /run/netns
// (NAME_MAX) and a path (PATH_MAX, counting the terminating NUL).
constexpr size_t kMaxNetnsName = 255;
constexpr size_t kMaxPath = 4095;

Error invalid(std::string_view what, std::string_view input, const std::string& reason) {
  return make_error(Errc::invalid_argument,
                    "invalid " + std::string(what) + " " + quote(input) + ": " + reason);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
// The C locale's isspace, without depending on the process locale.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// Surrounding whitespace is almost always a quoting mistake in a script ("a, b" split on ',');
// silently trimming would hide it, and a name with a trailing space would never match again.
bool has_surrounding_space(std::string_view s) {
  return !s.empty() && (is_space(s.front()) || is_space(s.back()));
}

// Decimal digits only (no sign, no spaces), value <= max. Leading zeros are accepted: the
// value is read as decimal, never octal.
enum class Num { ok, not_number, too_large };
Num parse_dec(std::string_view s, uint64_t max, uint64_t& out) {
  if (!all_digits(s)) return Num::not_number;
  uint64_t v = 0;
  for (char c : s) {
    if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, unsigned(c - '0'), &v) ||
        v > max) {
      return Num::too_large;
    }
  }
  out = v;
  return Num::ok;
}

size_t max_prefix(uint8_t family) { return family == 4 ? 32 : 128; }

Cidr network_of(const Cidr& c) {
  Cidr n = c;
  for (size_t i = 0; i < n.addr.size(); ++i) {
    const size_t bit = i * 8;
    if (bit >= c.prefix) {
      n.addr[i] = 0;
    } else if (c.prefix - bit < 8) {
      n.addr[i] &= static_cast<uint8_t>(0xff << (8 - (c.prefix - bit)));
    }
  }
  return n;
}

}  // namespace

std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = std::min(s.size(), kQuoteMax);
  std::string out;
  out.reserve(n + 8);
  out += '"';
  for (size_t i = 0; i < n; ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u == '"' || u == '\\') {
      out += '\\';
      out += static_cast<char>(u);
    } else if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += static_cast<char>(u);
    }
  }
  out += '"';
  if (s.size() > n) out += "...";
  return out;
}

Result<Cidr> parse_cidr(std::string_view s) {
  constexpr std::string_view what = "CIDR";
  if (s.empty()) return invalid(what, s, "empty; expected an address like 10.0.0.0/8 or fd00::/64");
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");

  const size_t slash = s.find('/');
  const std::string_view addr = s.substr(0, slash);
  if (addr.empty()) return invalid(what, s, "missing address before '/'");

  Cidr c;
  bool v4_chars = true, v6_chars = true;
  for (char ch : addr) {
    v4_chars = v4_chars && (is_digit(ch) || ch == '.');
    v6_chars = v6_chars && (is_hex(ch) || ch == '.' || ch == ':');
  }
  // The character checks also keep an embedded NUL away from inet_pton, which reads a C string
  // and would otherwise accept "10.0.0.1\0junk".
  const std::string addr_z(addr);
  if (addr.find(':') != std::string_view::npos) {
    c.family = 6;
    if (!v6_chars || inet_pton(AF_INET6, addr_z.c_str(), c.addr.data()) != 1) {
      return invalid(what, s, "bad IPv6 address");
    }
  } else if (v4_chars) {
    c.family = 4;
    // glibc's inet_pton takes only the four-part dotted quad and refuses leading zeros, so
    // "10.1" and "010.0.0.1" (octal to inet_aton) are errors rather than surprises.
    if (inet_pton(AF_INET, addr_z.c_str(), c.addr.data()) != 1) {
      return invalid(what, s, "bad IPv4 address");
    }
  } else {
    return invalid(what, s, "not an IPv4 or IPv6 address (host names are not resolved)");
  }

  const size_t maxp = max_prefix(c.family);
  if (slash == std::string_view::npos) {
    c.prefix = static_cast<uint8_t>(maxp);
  } else {
    const std::string_view p = s.substr(slash + 1);
    if (p.empty()) return invalid(what, s, "missing prefix length after '/'");
    uint64_t v = 0;
    switch (parse_dec(p, maxp, v)) {
      case Num::ok: break;
      case Num::not_number: return invalid(what, s, "bad prefix length " + quote(p));
      case Num::too_large:
        return invalid(what, s,
                       "prefix length " + quote(p) + " is above " + std::to_string(maxp) +
                           (c.family == 4 ? " for IPv4" : " for IPv6"));
    }
    c.prefix = static_cast<uint8_t>(v);
  }

  const Cidr net = network_of(c);
  if (net.addr != c.addr) return invalid(what, s, "host bits set; the network is " + net.str());
  return c;
}

Result<std::vector<Cidr>> parse_cidr_list(std::string_view s) {
  constexpr std::string_view what = "CIDR list";
  if (s.empty()) return invalid(what, s, "empty; expected CIDR[,CIDR...]");
  std::vector<Cidr> out;
  // Lists can hold tens of thousands of entries; a set keeps de-duplication O(n log n).
  std::set<Cidr> seen;
  size_t start = 0, item = 1;
  while (true) {
    const size_t comma = s.find(',', start);
    const std::string_view part =
        s.substr(start, comma == std::string_view::npos ? s.npos : comma - start);
    if (part.empty()) return invalid(what, s, "item " + std::to_string(item) + " is empty");
    auto c = parse_cidr(part);
    if (!c.ok()) return c.take_error();
    if (seen.insert(*c).second) out.push_back(*c);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
    ++item;
  }
  return out;
}

namespace {

struct DurationUnit {
  std::string_view name;
  uint64_t ticks;  // in the parser's resolution
};

// The grammar of parse_duration and parse_duration_us, which differ only in their units and
// resolution. Returns the count of ticks (milliseconds or microseconds), at most int64 max.
Result<uint64_t> parse_ticks(std::string_view s, std::span<const DurationUnit> units,
                             std::string_view unit_list, std::string_view tick_name,
                             std::string_view finer) {
  constexpr std::string_view what = "duration";
  if (s.empty()) {
    return invalid(what, s, "empty; expected a number and a unit, like 500ms, 30s or 1h30m");
  }
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");
  if (s.front() == '-') return invalid(what, s, "negative durations are not allowed");

  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const std::string too_large =
      "too large (at most " + std::to_string(kMax) + std::string(tick_name) + ")";
  const std::string finer_than = "finer than " + std::string(finer);
  const std::string paren_units = "(" + std::string(unit_list) + ")";

  uint64_t total = 0;
  // Units go largest first: components must follow that order, each at most once, so every
  // duration has one spelling per set of components and "1m1m" or "30s1h" are reported, not
  // summed. next_unit is the index of the largest unit the next component may use.
  size_t next_unit = 0;
  std::string_view prev_unit;
  size_t i = 0;
  while (i < s.size()) {
    const size_t start = i;
    if (!is_digit(s[i])) return invalid(what, s, "expected a number at " + quote(s.substr(i)));
    uint64_t whole = 0;
    bool overflow = false;
    for (; i < s.size() && is_digit(s[i]); ++i) {
      overflow = overflow || __builtin_mul_overflow(whole, 10u, &whole) ||
                 __builtin_add_overflow(whole, unsigned(s[i] - '0'), &whole);
    }
    std::string_view frac;
    if (i < s.size() && s[i] == '.') {
      const size_t fstart = ++i;
      for (; i < s.size() && is_digit(s[i]); ++i) {
      }
      frac = s.substr(fstart, i - fstart);
      if (frac.empty()) return invalid(what, s, "expected digits after '.'");
    }
    const std::string_view number = s.substr(start, i - start);

    const size_t ustart = i;
    for (; i < s.size() && is_alpha(s[i]); ++i) {
    }
    const std::string_view unit_name = s.substr(ustart, i - ustart);
    if (unit_name.empty()) {
      if (i < s.size()) {
        return invalid(what, s,
                       "unexpected character " + quote(s.substr(i, 1)) + " after " + quote(number));
      }
      if (start == 0) return invalid(what, s, "missing unit " + paren_units);
      return invalid(what, s, "missing unit after " + quote(number) + " " + paren_units);
    }
    size_t u = 0;
    while (u < units.size() && units[u].name != unit_name) ++u;
    if (u == units.size()) {
      return invalid(what, s,
                     "unknown unit " + quote(unit_name) + "; expected one of " + paren_units);
    }
    if (u < next_unit) {
      return invalid(what, s,
                     "unit " + quote(unit_name) + " after " + quote(prev_unit) +
                         "; units must go from largest to smallest, each at most once");
    }
    next_unit = u + 1;
    prev_unit = unit_name;
    const uint64_t unit_ticks = units[u].ticks;

    uint64_t value = 0;
    if (overflow || __builtin_mul_overflow(whole, unit_ticks, &value)) {
      return invalid(what, s, too_large);
    }
    // The fraction is exact integer arithmetic, so "0.1s" is 100ms and never 99. Trailing zeros
    // carry no precision. With k significant digits, 10^k must divide f * unit where f is not a
    // multiple of 10; the largest units (a day: 86400000 = 2^10 * 3^3 * 5^5 ms, or an hour:
    // 3600000000 = 2^10 * 3^2 * 5^8 us) allow k <= 8, so refusing k > 9 up front loses nothing
    // and keeps f * unit below 1e9 * 3.6e9, inside 64 bits.
    while (!frac.empty() && frac.back() == '0') frac.remove_suffix(1);
    if (!frac.empty()) {
      uint64_t f = 0, scale = 1;
      if (frac.size() > 9) return invalid(what, s, finer_than);
      for (char c : frac) {
        f = f * 10 + unsigned(c - '0');
        scale *= 10;
      }
      const uint64_t scaled = f * unit_ticks;
      if (scaled % scale != 0) return invalid(what, s, finer_than);
      if (__builtin_add_overflow(value, scaled / scale, &value)) return invalid(what, s, too_large);
    }
    if (__builtin_add_overflow(total, value, &total) || total > kMax) {
      return invalid(what, s, too_large);
    }
  }
  return total;
}

// Largest first, as parse_ticks requires.
// Lifetimes go up to 7 days, so they take days too ("7d" is the maximum, as "168h" is).
constexpr DurationUnit kMsUnits[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
constexpr DurationUnit kUsUnits[] = {
    {"h", 3600000000}, {"m", 60000000}, {"s", 1000000}, {"ms", 1000}, {"us", 1}};

// Largest units first, zero components left out: the spelling parse_ticks reads back.
std::string format_ticks(int64_t v, std::span<const DurationUnit> units) {
  if (v == 0) return "0" + std::string(units.back().name);
  std::string out;
  // Negate in unsigned arithmetic so the most negative value does not overflow.
  uint64_t u = static_cast<uint64_t>(v);
  if (v < 0) {
    out = "-";
    u = 0 - u;
  }
  for (const auto& unit : units) {
    const uint64_t n = u / unit.ticks;
    u %= unit.ticks;
    if (n != 0) out += std::to_string(n) + std::string(unit.name);
  }
  return out;
}

}  // namespace

Result<std::chrono::milliseconds> parse_duration(std::string_view s) {
  auto r = parse_ticks(s, kMsUnits, "ms, s, m, h, d", "ms", "a millisecond");
  if (!r) return r.take_error();
  return std::chrono::milliseconds(static_cast<int64_t>(*r));
}

Result<std::chrono::microseconds> parse_duration_us(std::string_view s) {
  auto r = parse_ticks(s, kUsUnits, "us, ms, s, m, h", "us", "a microsecond");
  if (!r) return r.take_error();
  return std::chrono::microseconds(static_cast<int64_t>(*r));
}

std::string format_duration_us(std::chrono::microseconds d) {
  return format_ticks(d.count(), kUsUnits);
}

std::string format_duration(std::chrono::milliseconds d) {
  return format_ticks(d.count(), kMsUnits);
}

Result<double> parse_percent(std::string_view s) {
  constexpr std::string_view what = "percent";
  constexpr const char* expected = "expected a number from 0 to 100, like 30, 0.5 or 12.25%";
  if (s.empty()) return invalid(what, s, std::string("empty; ") + expected);
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");

  std::string_view body = s;
  if (body.back() == '%') body.remove_suffix(1);
  const bool negative = !body.empty() && body.front() == '-';
  if (negative) body.remove_prefix(1);
  // Grammar first, then from_chars: from_chars alone would take "inf", "nan", "1e2" and hex.
  const size_t dot = body.find('.');
  const std::string_view int_part = body.substr(0, dot);
  const bool well_formed =
      all_digits(int_part) && (dot == std::string_view::npos || all_digits(body.substr(dot + 1)));
  if (!well_formed) return invalid(what, s, expected);
  if (negative) return invalid(what, s, "must be between 0 and 100");

  double v = 0;
  const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
  // Out of range is overflow (far above 100) or, with a zero integer part, underflow below the
  // smallest double: neither is a percentage anyone means.
  if (ec == std::errc::result_out_of_range) {
    const bool underflow = int_part.find_first_not_of('0') == std::string_view::npos;
    return invalid(what, s, underflow ? "too small to represent" : "must be between 0 and 100");
  }
  if (ec != std::errc() || end != body.data() + body.size()) return invalid(what, s, expected);
  if (!(v >= 0 && v <= 100)) return invalid(what, s, "must be between 0 and 100");
  return v;
}

Result<PortRange> parse_port_range(std::string_view s) {
  constexpr std::string_view what = "port range";
  if (s.empty()) {
    return invalid(what, s, "empty; expected a port like 80, a range like 1000-2000, or any");
  }
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");
  if (s == "any") return PortRange{};

  auto port = [&](std::string_view p, uint16_t& out) -> Status {
    uint64_t v = 0;
    switch (parse_dec(p, 65535, v)) {
      case Num::ok: out = static_cast<uint16_t>(v); return {};
      case Num::not_number: return invalid(what, s, "bad port " + quote(p));
      case Num::too_large: return invalid(what, s, "port " + quote(p) + " is above 65535");
    }
    return invalid(what, s, "bad port " + quote(p));
  };

  PortRange r;
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    FL_TRY(port(s, r.lo));
    r.hi = r.lo;
    return r;
  }
  const std::string_view lo = s.substr(0, dash), hi = s.substr(dash + 1);
  if (lo.empty()) return invalid(what, s, "missing start before '-'");
  if (hi.empty()) return invalid(what, s, "missing end after '-'");
  FL_TRY(port(lo, r.lo));
  FL_TRY(port(hi, r.hi));
  if (r.lo > r.hi) return invalid(what, s, "start is above end");
  return r;
}

Result<Proto> parse_proto(std::string_view s) {
  if (s == "tcp") return Proto::tcp;
  if (s == "udp") return Proto::udp;
  if (s == "icmp") return Proto::icmp;
  if (s == "all") return Proto::all;
  return invalid("protocol", s, "expected tcp, udp, icmp or all");
}

Result<Direction> parse_direction(std::string_view s) {
  if (s == "ingress") return Direction::ingress;
  if (s == "egress") return Direction::egress;
  if (s == "both") return Direction::both;
  return invalid("direction", s, "expected ingress, egress or both");
}

Result<FaultKind> parse_kind(std::string_view s) {
  for (auto k : {FaultKind::partition, FaultKind::loss, FaultKind::isolate, FaultKind::delay,
                 FaultKind::rate, FaultKind::corrupt, FaultKind::duplicate, FaultKind::reorder,
                 FaultKind::shape, FaultKind::matrix}) {
    if (s == kind_name(k)) return k;
  }
  return invalid("fault kind", s,
                 "expected partition, loss, isolate, delay, rate, corrupt, duplicate, reorder, "
                 "shape or matrix");
}

Result<Distribution> parse_distribution(std::string_view s) {
  for (auto d : {Distribution::uniform, Distribution::normal, Distribution::pareto,
                 Distribution::paretonormal}) {
    if (s == distribution_name(d)) return d;
  }
  return invalid("distribution", s, "expected uniform, normal, pareto or paretonormal");
}

namespace {

struct ScaledUnit {
  std::string_view name;
  uint64_t scale;
};

// "<digits>[.<digits>]<unit>" times the unit's scale, exactly: a result that is not a whole
// number is refused rather than rounded, so what the user wrote is what the kernel gets. An
// empty unit is looked up like any other (the size table has one, the rate table does not).
// `missing` explains a missing unit; `resolution` names the smallest step in the plural
// ("bits per second").
Result<uint64_t> parse_scaled(std::string_view s, std::string_view what,
                              std::span<const ScaledUnit> units, std::string_view unit_list,
                              const std::string& missing, std::string_view resolution,
                              uint64_t max) {
  if (s.empty()) return invalid(what, s, "empty; " + missing);
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");
  if (s.front() == '-') return invalid(what, s, "must not be negative");
  size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
  }
  const std::string_view whole = s.substr(0, i);
  std::string_view frac;
  if (i < s.size() && s[i] == '.') {
    const size_t fstart = ++i;
    for (; i < s.size() && is_digit(s[i]); ++i) {
    }
    frac = s.substr(fstart, i - fstart);
    if (frac.empty()) return invalid(what, s, "expected digits after '.'");
  }
  if (whole.empty()) return invalid(what, s, "expected a number at " + quote(s));
  const std::string_view unit = s.substr(i);
  const ScaledUnit* found = nullptr;
  for (const auto& u : units) {
    if (u.name == unit) found = &u;
  }
  if (found == nullptr) {
    if (unit.empty()) return invalid(what, s, "missing unit; " + missing);
    std::string lower(unit);
    for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (const auto& u : units) {
      if (u.name == lower && !lower.empty()) {
        return invalid(what, s, "unknown unit " + quote(unit) + "; units are lower case: " +
                                    quote(lower));
      }
    }
    return invalid(what, s,
                   "unknown unit " + quote(unit) + "; expected one of (" + std::string(unit_list) +
                       ")");
  }
  const std::string too_large = "too large (at most " + std::to_string(max) + " " +
                                std::string(resolution) + ")";
  const std::string fractional = "not a whole number of " + std::string(resolution);
  // 128 bits: a 20-digit number times the largest scale (2^43) cannot overflow them, so the
  // only range check needed is the final one.
  unsigned __int128 value = 0;
  for (char c : whole) {
    value = value * 10 + unsigned(c - '0');
    if (value > max) return invalid(what, s, too_large);
  }
  value *= found->scale;
  while (!frac.empty() && frac.back() == '0') frac.remove_suffix(1);
  if (frac.size() > 18) return invalid(what, s, fractional);
  if (!frac.empty()) {
    unsigned __int128 f = 0, den = 1;
    for (char c : frac) {
      f = f * 10 + unsigned(c - '0');
      den *= 10;
    }
    const unsigned __int128 scaled = f * found->scale;
    if (scaled % den != 0) return invalid(what, s, fractional);
    value += scaled / den;
  }
  if (value > max) return invalid(what, s, too_large);
  return static_cast<uint64_t>(value);
}

constexpr uint64_t kKi = 1024;

}  // namespace

Result<uint64_t> parse_rate(std::string_view s) {
  static constexpr ScaledUnit kUnits[] = {
      {"bit", 1},
      {"kbit", 1000},
      {"mbit", 1000000},
      {"gbit", 1000000000},
      {"tbit", 1000000000000},
      {"kibit", kKi},
      {"mibit", kKi * kKi},
      {"gibit", kKi * kKi * kKi},
      {"tibit", kKi * kKi * kKi * kKi},
      // tc's "bps" is bytes per second; a user who copies a tc command line must get what tc
      // would have done, however surprising "mbps" is.
      {"bps", 8},
      {"kbps", 8000},
      {"mbps", 8000000},
      {"gbps", 8000000000},
      {"tbps", 8000000000000},
      {"kibps", 8 * kKi},
      {"mibps", 8 * kKi * kKi},
      {"gibps", 8 * kKi * kKi * kKi},
      {"tibps", 8 * kKi * kKi * kKi * kKi},
  };
  return parse_scaled(
      s, "rate", kUnits,
      "bit, kbit, mbit, gbit, tbit, kibit, mibit, gibit, tibit; bytes per second: bps, kbps, "
      "mbps, gbps, tbps, kibps, mibps, gibps, tibps",
      "expected a number and a unit, like 512kbit or 10mbit (tc reads a bare number as bytes "
      "per second, so faultline asks)",
      "bits per second", std::numeric_limits<uint64_t>::max());
}

std::string format_rate(uint64_t bps) {
  if (bps != 0 && bps % 1000000000 == 0) return std::to_string(bps / 1000000000) + "gbit";
  if (bps != 0 && bps % 1000000 == 0) return std::to_string(bps / 1000000) + "mbit";
  if (bps != 0 && bps % 1000 == 0) return std::to_string(bps / 1000) + "kbit";
  return std::to_string(bps) + "bit";
}

Result<uint32_t> parse_size(std::string_view s) {
  static constexpr ScaledUnit kUnits[] = {
      {"", 1},         {"b", 1},
      {"k", kKi},      {"kb", kKi},      {"kib", kKi},
      {"m", kKi * kKi}, {"mb", kKi * kKi}, {"mib", kKi * kKi},
      {"g", kKi * kKi * kKi}, {"gb", kKi * kKi * kKi}, {"gib", kKi * kKi * kKi},
  };
  auto r = parse_scaled(s, "size", kUnits, "b, k, kb, kib, m, mb, mib, g, gb, gib",
                        "expected a number of bytes, like 1500, 32kb or 1mb", "bytes",
                        std::numeric_limits<uint32_t>::max());
  if (!r) return r.take_error();
  return static_cast<uint32_t>(*r);
}

Result<uint64_t> parse_u64(std::string_view s) {
  constexpr std::string_view what = "number";
  constexpr const char* expected = "expected decimal digits, or 0x followed by hex digits";
  if (s.empty()) return invalid(what, s, std::string("empty; ") + expected);
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");
  if (s.front() == '-' || s.front() == '+') {
    return invalid(what, s, std::string("sign not allowed; ") + expected);
  }
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    const std::string_view hex = s.substr(2);
    if (hex.empty()) return invalid(what, s, "missing hex digits after 0x");
    uint64_t v = 0;
    for (char c : hex) {
      if (!is_hex(c)) return invalid(what, s, "bad hex digit " + quote(std::string_view(&c, 1)));
      if (v >> 60 != 0) return invalid(what, s, "out of range (max 0xffffffffffffffff)");
      const unsigned d = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
      v = (v << 4) | d;
    }
    return v;
  }
  uint64_t v = 0;
  switch (parse_dec(s, std::numeric_limits<uint64_t>::max(), v)) {
    case Num::ok: return v;
    case Num::not_number: return invalid(what, s, expected);
    case Num::too_large:
      return invalid(
          what, s,
          "out of range (max " + std::to_string(std::numeric_limits<uint64_t>::max()) + ")");
  }
  return invalid(what, s, expected);
}

Result<Exemption> parse_exemption(std::string_view s) {
  constexpr std::string_view what = "exemption";
  if (s.empty()) return invalid(what, s, "empty; expected CIDR, CIDR/PROTO or CIDR/PROTO:PORT");
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");
  const std::string ctx = "invalid exemption " + quote(s);

  // The CIDR has its own '/', so the protocol is whatever follows the last '/' when that does
  // not start with a digit (a digit there is a prefix length: "10.0.0.0/8").
  std::string_view cidr_part = s, spec;
  bool has_spec = false;
  const size_t slash = s.rfind('/');
  if (slash != std::string_view::npos && (slash + 1 == s.size() || !is_digit(s[slash + 1]))) {
    cidr_part = s.substr(0, slash);
    spec = s.substr(slash + 1);
    has_spec = true;
  }

  Exemption e;
  auto cidr = parse_cidr(cidr_part);
  if (!cidr.ok()) return cidr.take_error().wrap(ctx);
  e.cidr = *cidr;
  if (!has_spec) return e;

  if (spec.empty()) return invalid(what, s, "missing protocol after '/'");
  const size_t colon = spec.find(':');
  auto proto = parse_proto(spec.substr(0, colon));
  if (!proto.ok()) return proto.take_error().wrap(ctx);
  e.proto = *proto;
  if (colon == std::string_view::npos) return e;

  const std::string_view port = spec.substr(colon + 1);
  if (port.empty()) return invalid(what, s, "missing port after ':'");
  uint64_t v = 0;
  // Port 0 is the "any port" encoding, so it cannot be asked for explicitly.
  switch (parse_dec(port, 65535, v)) {
    case Num::ok:
      if (v != 0) break;
      [[fallthrough]];
    case Num::too_large:
      return invalid(what, s, "port " + quote(port) + " is not between 1 and 65535");
    case Num::not_number: return invalid(what, s, "bad port " + quote(port));
  }
  if (e.proto != Proto::tcp && e.proto != Proto::udp) {
    return invalid(what, s,
                   std::string("a port needs protocol tcp or udp, not ") + proto_name(e.proto));
  }
  e.port = static_cast<uint16_t>(v);
  return e;
}

namespace {

// Kubernetes' DNS-1123 label: what a namespace name must be.
std::optional<std::string> dns1123_label_problem(std::string_view v) {
  if (v.size() > 63) return "longer than 63 characters";
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')) {
      return "character " + quote(v.substr(i, 1)) + " at position " + std::to_string(i + 1) +
             " is not allowed; use lower case letters, digits and '-'";
    }
  }
  if (v.front() == '-' || v.back() == '-') return "must start and end with a letter or digit";
  return std::nullopt;
}

// Kubernetes' DNS-1123 subdomain (a pod name): dot-separated labels, 253 characters at most.
std::optional<std::string> dns1123_subdomain_problem(std::string_view v) {
  if (v.size() > 253) return "longer than 253 characters";
  size_t start = 0;
  while (true) {
    const size_t dot = v.find('.', start);
    const std::string_view label = v.substr(start, dot == std::string_view::npos ? v.npos : dot - start);
    if (label.empty()) return "empty label between dots";
    for (size_t i = 0; i < label.size(); ++i) {
      const char c = label[i];
      if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')) {
        return "character " + quote(label.substr(i, 1)) + " at position " +
               std::to_string(start + i + 1) +
               " is not allowed; use lower case letters, digits, '-' and '.'";
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return "each dot-separated part must start and end with a letter or digit";
    }
    if (dot == std::string_view::npos) return std::nullopt;
    start = dot + 1;
  }
}

bool lab_chars_ok(std::string_view v) {
  for (char c : v) {
    if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')) return false;
  }
  return true;
}


// "/proc/PID/ns/net" and the like, component by component: no ".", "..", empty component or
// trailing slash can sneak out of the directories netns-path: accepts.
bool is_namespace_file_path(std::string_view p) {
  std::vector<std::string_view> c;
  if (p.empty() || p.front() != '/') return false;
  for (size_t i = 1;;) {
    size_t j = p.find('/', i);
    std::string_view part = p.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (part.empty() || part == "." || part == "..") return false;
    c.push_back(part);
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  auto digits = [](std::string_view v) {
    return !v.empty() && v.size() <= 10 && v.find_first_not_of("0123456789") == std::string_view::npos;
  };
  auto is = [&](std::initializer_list<std::string_view> want) {
    if (c.size() != want.size() + 1) return false;
    size_t k = 0;
    for (auto w : want)
      if (c[k++] != w) return false;
    return true;
  };
  if (is({"run", "netns"}) || is({"var", "run", "netns"}) || is({"run", "docker", "netns"}) ||
      is({"var", "run", "docker", "netns"}))
    return true;
  if (c.size() == 4 && c[0] == "proc" && digits(c[1]) && c[2] == "ns" && c[3] == "net") return true;
  return c.size() == 6 && c[0] == "proc" && digits(c[1]) && c[2] == "task" && digits(c[3]) && c[4] == "ns" &&
         c[5] == "net";
}

}  // namespace

Result<Target> parse_target(std::string_view s) {
  constexpr std::string_view what = "target";
  constexpr const char* expected =
      "expected host, netns:NAME, netns-path:/PATH, pid:PID, pod-uid:UID, container:ID, "
      "pod:NAMESPACE/NAME or lab:[LAB/]NODE";
  if (s.empty()) return invalid(what, s, std::string("empty; ") + expected);
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");
  if (s == "host") return Target{};

  const size_t colon = s.find(':');
  if (colon == std::string_view::npos) return invalid(what, s, expected);
  const std::string_view kind = s.substr(0, colon), value = s.substr(colon + 1);
  auto has_control = [](std::string_view v) {
    for (char c : v) {
      if (is_control(c)) return true;
    }
    return false;
  };

  if (kind == "host") return invalid(what, s, "host takes no value");
  if (kind == "netns") {
    // The name is a file under /run/netns (iproute2's convention), never a path.
    if (value.empty()) return invalid(what, s, "missing namespace name after \"netns:\"");
    if (value.find('/') != std::string_view::npos) {
      return invalid(what, s, "namespace name must not contain '/'; use netns-path: for a path");
    }
    if (value == "." || value == "..") {
      return invalid(what, s, "namespace name cannot be \".\" or \"..\"");
    }
    if (value.size() > kMaxNetnsName) {
      return invalid(what, s,
                     "namespace name is longer than " + std::to_string(kMaxNetnsName) + " bytes");
    }
    if (has_control(value)) return invalid(what, s, "namespace name contains a control character");
    return Target{Target::Kind::netns_name, std::string(value)};
  }
  if (kind == "netns-path") {
    if (value.empty()) return invalid(what, s, "missing path after \"netns-path:\"");
    // A relative path would resolve against the daemon's working directory, not the caller's.
    if (value.front() != '/') return invalid(what, s, "path must be absolute");
    if (value.size() > kMaxPath) {
      return invalid(what, s, "path is longer than " + std::to_string(kMaxPath) + " bytes");
    }
    if (has_control(value)) return invalid(what, s, "path contains a control character");
    // The daemon opens this path as root for any member of the group. Anywhere else a member
    // could point it at a FUSE or NFS mount that never answers (hanging the daemon) or probe
    // which files exist in directories they cannot read. Only root creates files in these.
    if (!is_namespace_file_path(value)) {
      return invalid(what, s,
                     "path must be /run/netns/NAME, /var/run/netns/NAME, /run/docker/netns/NAME, "
                     "/var/run/docker/netns/NAME, /proc/PID/ns/net or /proc/PID/task/TID/ns/net");
    }
    return Target{Target::Kind::netns_path, std::string(value)};
  }
  if (kind == "pid") {
    if (value.empty()) return invalid(what, s, "missing process id after \"pid:\"");
    uint64_t v = 0;
    switch (parse_dec(value, INT_MAX, v)) {
      case Num::ok: break;
      case Num::not_number: return invalid(what, s, "process id must be a positive integer");
      case Num::too_large:
        return invalid(what, s,
                       "process id is above " + std::to_string(INT_MAX) + " (pid_t range)");
    }
    if (v == 0) return invalid(what, s, "process id must be a positive integer");
    // Canonical digits, so "pid:0042" and "pid:42" are the same target.
    return Target{Target::Kind::pid, std::to_string(v)};
  }
  if (kind == "pod-uid") {
    constexpr const char* form =
        "expected a pod UID such as 0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9 (as `kubectl get pod "
        "NAME -o jsonpath={.metadata.uid}` prints it)";
    if (value.empty()) return invalid(what, s, "missing pod UID after \"pod-uid:\"");
    if (is_pod_uid(value)) return Target{Target::Kind::pod_uid, std::string(value)};
    if (value.find('_') != std::string_view::npos) {
      return invalid(what, s,
                     std::string("write the UID with '-', not the '_' of systemd slice names; ") +
                         form);
    }
    if (value.size() == 36 && std::any_of(value.begin(), value.end(),
                                          [](char c) { return c >= 'A' && c <= 'F'; })) {
      return invalid(what, s, "the pod UID must be lower case, as Kubernetes prints it");
    }
    return invalid(what, s, form);
  }
  if (kind == "container") {
    if (value.empty()) return invalid(what, s, "missing container id after \"container:\"");
    for (std::string_view scheme : {"containerd://", "cri-o://", "docker://"}) {
      if (value.starts_with(scheme)) {
        return invalid(what, s,
                       "drop the runtime prefix " + quote(scheme) + " and give the hex id alone");
      }
    }
    for (size_t i = 0; i < value.size(); ++i) {
      const char c = value[i];
      if (c >= 'A' && c <= 'F') {
        return invalid(what, s, "the container id must be lower case hex, as crictl prints it");
      }
      if (!(is_digit(c) || (c >= 'a' && c <= 'f'))) {
        return invalid(what, s,
                       "character " + quote(value.substr(i, 1)) + " at position " +
                           std::to_string(i + 1) + " is not a hex digit; a container id is hex");
      }
    }
    if (value.size() < kMinContainerIdPrefix) {
      return invalid(what, s,
                     "a container id prefix needs at least " +
                         std::to_string(kMinContainerIdPrefix) + " hex digits (got " +
                         std::to_string(value.size()) + ")");
    }
    if (value.size() > 64) {
      return invalid(what, s,
                     "a container id has 64 hex digits (got " + std::to_string(value.size()) + ")");
    }
    return Target{Target::Kind::container, std::string(value)};
  }
  if (kind == "pod") {
    const size_t slash = value.find('/');
    if (value.empty() || slash == std::string_view::npos) {
      return invalid(what, s, "expected pod:NAMESPACE/NAME");
    }
    const std::string_view ns = value.substr(0, slash), name = value.substr(slash + 1);
    if (ns.empty()) return invalid(what, s, "missing namespace before '/'");
    if (name.empty()) return invalid(what, s, "missing pod name after '/'");
    if (name.find('/') != std::string_view::npos) {
      return invalid(what, s, "expected pod:NAMESPACE/NAME with one '/'");
    }
    if (auto p = dns1123_label_problem(ns)) return invalid(what, s, "namespace " + quote(ns) + ": " + *p);
    if (auto p = dns1123_subdomain_problem(name)) {
      return invalid(what, s, "pod name " + quote(name) + ": " + *p);
    }
    return Target{Target::Kind::pod, std::string(value)};
  }
  if (kind == "lab") {
    const size_t slash = value.find('/');
    std::string_view lab = kDefaultLab, node = value;
    if (slash != std::string_view::npos) {
      lab = value.substr(0, slash);
      node = value.substr(slash + 1);
      if (lab.empty()) return invalid(what, s, "missing lab name before '/'");
      if (lab.size() > 40) return invalid(what, s, "lab name is longer than 40 characters");
      if (!lab_chars_ok(lab)) {
        return invalid(what, s, "lab name " + quote(lab) + " may hold only a-z, 0-9 and '-'");
      }
    }
    if (node.empty()) return invalid(what, s, "missing node name; expected lab:NODE or lab:LAB/NODE");
    // Lab nodes are a, b, c, ...: anything longer would also read as another lab's node
    // (lab:x/a-b and lab:x-a/b are one namespace), and "hub" is the bridge's namespace.
    if (node.size() != 1 || node[0] < 'a' || node[0] > 'z') {
      return invalid(what, s, "node name " + quote(node) + " is not a lab node (one letter, a to z)");
    }
    return Target{Target::Kind::netns_name, lab_netns_name(lab, node)};
  }
  return invalid(what, s, "unknown kind " + quote(kind) + "; " + expected);
}

Result<Side> parse_side(std::string_view s, size_t index) {
  const std::string ctx = "invalid side " + std::to_string(index + 1) + " " + quote(s);
  auto fail = [&](const std::string& reason) {
    return make_error(Errc::invalid_argument, ctx + ": " + reason);
  };
  if (s.empty()) return fail("empty; expected [NAME=]CIDR[,CIDR...]");
  if (has_surrounding_space(s)) return fail("leading or trailing whitespace");

  Side side;
  std::string_view cidrs = s;
  const size_t eq = s.find('=');
  if (eq != std::string_view::npos) {
    const std::string_view name = s.substr(0, eq);
    FL_TRY_CTX(check_name(name, "side name"), ctx);
    side.name = std::string(name);
    cidrs = s.substr(eq + 1);
    if (cidrs.empty()) return fail("missing CIDRs after '='");
  } else {
    side.name = default_side_name(index);
  }
  auto list = parse_cidr_list(cidrs);
  if (!list.ok()) return list.take_error().wrap(ctx);
  side.cidrs = std::move(*list);
  return side;
}

Status check_name(std::string_view s, std::string_view what) {
  if (s.empty()) return invalid(what, s, "empty");
  if (has_surrounding_space(s)) return invalid(what, s, "leading or trailing whitespace");
  if (s.size() > kMaxNameLen) {
    return invalid(what, s,
                   "longer than " + std::to_string(kMaxNameLen) + " characters (got " +
                       std::to_string(s.size()) + ")");
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!(is_digit(c) || is_alpha(c) || c == '_' || c == '.' || c == '-')) {
      return invalid(what, s,
                     "character " + quote(s.substr(i, 1)) + " at position " +
                         std::to_string(i + 1) +
                         " is not allowed; use letters, digits, '_', '.' and '-'");
    }
  }
  // A leading '-' reads as an option on the command line.
  if (s.front() == '-') return invalid(what, s, "must not start with '-'");
  if (all_digits(s)) return invalid(what, s, "must not be all digits (that reads as a fault id)");
  return {};
}

}  // namespace fl::core
