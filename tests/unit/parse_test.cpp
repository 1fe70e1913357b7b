// Tier 0: every parser in core/parse.h, its success forms, every error path, and round trips
// between the model's str() forms and the parsers.
#include "core/parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/model.h"

namespace fl::core {
namespace {

using std::chrono::milliseconds;
using namespace std::string_literals;

// Every parser error is invalid_argument and its message carries `want`.
template <typename T>
void ExpectInvalid(const Result<T>& r, const std::string& want) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << want;
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_NE(r.error().message.find(want), std::string::npos)
      << "message: " << r.error().message << "\nwanted:  " << want;
}

Cidr MustCidr(std::string_view s) {
  auto r = parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Cidr{};
}

// ---------------------------------------------------------------------------------------------
// quote

TEST(Quote, EscapesWhatWouldBreakAMessageOrJson) {
  EXPECT_EQ(quote("abc"), "\"abc\"");
  EXPECT_EQ(quote(""), "\"\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote("a\nb\tc\x7f"), "\"a\\x0ab\\x09c\\x7f\"");
  EXPECT_EQ(quote("x\0y"s), "\"x\\x00y\"");
  EXPECT_EQ(quote("\xc3\xbc"), "\"\\xc3\\xbc\"");  // UTF-8 u-umlaut: bytes, so never invalid UTF-8
}

TEST(Quote, CutsLongInputAfter128Bytes) {
  const std::string exact(128, 'a');
  EXPECT_EQ(quote(exact), "\"" + exact + "\"");
  const std::string longer(129, 'a');
  EXPECT_EQ(quote(longer), "\"" + exact + "\"...");
}

// ---------------------------------------------------------------------------------------------
// parse_cidr

TEST(ParseCidr, AcceptsEveryForm) {
  struct Case {
    std::string in;
    uint8_t family, prefix;
    std::string str;
  };
  const Case cases[] = {
      {"10.0.0.0/8", 4, 8, "10.0.0.0/8"},
      {"10.0.0.1", 4, 32, "10.0.0.1/32"},
      {"10.0.0.1/32", 4, 32, "10.0.0.1/32"},
      {"0.0.0.0/0", 4, 0, "0.0.0.0/0"},
      {"255.255.255.255", 4, 32, "255.255.255.255/32"},
      {"192.168.1.128/25", 4, 25, "192.168.1.128/25"},
      {"10.0.0.0/08", 4, 8, "10.0.0.0/8"},  // decimal, never octal
      {"fd00::/64", 6, 64, "fd00::/64"},
      {"fd00::1", 6, 128, "fd00::1/128"},
      {"::/0", 6, 0, "::/0"},
      {"::1", 6, 128, "::1/128"},
      {"fe80::/10", 6, 10, "fe80::/10"},
      {"FD00:0:0:0:0:0:0:1/128", 6, 128, "fd00::1/128"},
      {"2001:db8:0:0:1:0:0:1", 6, 128, "2001:db8::1:0:0:1/128"},     // first longest run
      {"2001:db8:0:1:1:1:1:1", 6, 128, "2001:db8:0:1:1:1:1:1/128"},  // lone zero kept
      {"2001:0db8::0001", 6, 128, "2001:db8::1/128"},
      {"::ffff:1.2.3.4", 6, 128, "::ffff:1.2.3.4/128"},  // IPv4-mapped stays IPv6
      {"::ffff:0:0/96", 6, 96, "::ffff:0.0.0.0/96"},
      // ::/96 addresses: RFC 5952 hex, not the deprecated "::0.2.0.3" glibc would print.
      {"::2:3", 6, 128, "::2:3/128"},
      {"::0.2.0.3", 6, 128, "::2:3/128"},
      {"::2:0", 6, 128, "::2:0/128"},
      {"::1:0:0", 6, 128, "::1:0:0/128"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_cidr(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->family, c.family);
    EXPECT_EQ(r->prefix, c.prefix);
    EXPECT_EQ(r->str(), c.str);
  }
}

TEST(ParseCidr, StoresAddressBytes) {
  auto v4 = parse_cidr("192.168.1.128/25");
  ASSERT_TRUE(v4.ok());
  const std::array<uint8_t, 16> want4{192, 168, 1, 128};
  EXPECT_EQ(v4->addr, want4);  // IPv4 in the first four bytes, the rest zero

  auto v6 = parse_cidr("fd00:1::ff");
  ASSERT_TRUE(v6.ok());
  const std::array<uint8_t, 16> want6{0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff};
  EXPECT_EQ(v6->addr, want6);
}

TEST(ParseCidr, RejectsWithPreciseMessage) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"", "invalid CIDR \"\": empty"},
      {" 10.0.0.0/8", "invalid CIDR \" 10.0.0.0/8\": leading or trailing whitespace"},
      {"10.0.0.0/8\n", "invalid CIDR \"10.0.0.0/8\\x0a\": leading or trailing whitespace"},
      {"10.0.0.300/8", "invalid CIDR \"10.0.0.300/8\": bad IPv4 address"},
      {"10.0.0", "invalid CIDR \"10.0.0\": bad IPv4 address"},
      {"010.0.0.1", "invalid CIDR \"010.0.0.1\": bad IPv4 address"},
      {"1.2.3.4.5", "bad IPv4 address"},
      {"10..0.1", "bad IPv4 address"},
      {"10.0.0.1/8", "invalid CIDR \"10.0.0.1/8\": host bits set; the network is 10.0.0.0/8"},
      {"192.168.1.1/23", "host bits set; the network is 192.168.0.0/23"},
      {"fd00::1/64", "invalid CIDR \"fd00::1/64\": host bits set; the network is fd00::/64"},
      {"10.0.0.0/33", "invalid CIDR \"10.0.0.0/33\": prefix length \"33\" is above 32 for IPv4"},
      {"fd00::/129", "prefix length \"129\" is above 128 for IPv6"},
      {"10.0.0.0/99999999999999999999999", "prefix length \"99999999999999999999999\" is above 32"},
      {"10.0.0.0/", "invalid CIDR \"10.0.0.0/\": missing prefix length after '/'"},
      {"/8", "invalid CIDR \"/8\": missing address before '/'"},
      {"10.0.0.0/-1", "bad prefix length \"-1\""},
      {"10.0.0.0/+8", "bad prefix length \"+8\""},
      {"10.0.0.0/8/9", "bad prefix length \"8/9\""},
      {"10.0.0.0/ 8", "bad prefix length \" 8\""},
      {"10.0.0.0/0x8", "bad prefix length \"0x8\""},
      {"fd00:::1", "invalid CIDR \"fd00:::1\": bad IPv6 address"},
      {"fe80::1%eth0", "bad IPv6 address"},
      {"1:2:3:4:5:6:7:8:9", "bad IPv6 address"},
      {"::ffff:1.2.3.256", "bad IPv6 address"},
      {"example.com", "invalid CIDR \"example.com\": not an IPv4 or IPv6 address"},
      {"10.0.0.1\0junk"s, "invalid CIDR \"10.0.0.1\\x00junk\": not an IPv4 or IPv6 address"},
      {"fd00::1\0"s, "bad IPv6 address"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(quote(c.in));
    ExpectInvalid(parse_cidr(c.in), c.want);
  }
}

TEST(ParseCidr, RoundTripsThroughStr) {
  const char* inputs[] = {
      "0.0.0.0/0", "10.0.0.0/8", "10.1.2.3",          "172.16.0.0/12",
      "::/0",      "fd00::/8",   "2001:db8::1:0:0:1", "::ffff:10.0.0.1",
      "::2:3",     "::1",        "fe80::/10",         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"};
  for (const char* in : inputs) {
    SCOPED_TRACE(in);
    const Cidr c = MustCidr(in);
    auto back = parse_cidr(c.str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, c);
  }
  // Every prefix length of both families, from an all-ones address masked down.
  for (int p = 0; p <= 128; ++p) {
    Cidr c{6, static_cast<uint8_t>(p), {}};
    for (int bit = 0; bit < p; ++bit) c.addr[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    SCOPED_TRACE(c.str());
    auto back = parse_cidr(c.str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, c);
    if (p <= 32) {
      Cidr v4{4, static_cast<uint8_t>(p), {}};
      for (int i = 0; i < 4; ++i) v4.addr[i] = c.addr[i];
      auto back4 = parse_cidr(v4.str());
      ASSERT_TRUE(back4.ok()) << back4.error().message;
      EXPECT_EQ(*back4, v4);
    }
  }
}

TEST(Cidr, StrOfInvalidFamilyDoesNotLookLikeAnAddress) {
  const Cidr c{5, 8, {}};
  EXPECT_EQ(c.str(), "<invalid family 5>/8");
}

TEST(Cidr, Contains) {
  struct Case {
    const char *outer, *inner;
    bool want;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8", true},
      {"10.0.0.0/8", "10.1.0.0/16", true},
      {"10.0.0.0/8", "10.255.255.255", true},
      {"10.0.0.0/8", "11.0.0.0/8", false},
      {"10.0.0.0/8", "0.0.0.0/0", false},  // wider never fits inside narrower
      {"10.1.0.0/16", "10.0.0.0/8", false},
      {"0.0.0.0/0", "203.0.113.7", true},
      {"0.0.0.0/0", "::/0", false},  // families never mix
      {"::/0", "10.0.0.0/8", false},
      {"::/0", "fd00::1", true},
      {"192.168.0.0/23", "192.168.1.0/24", true},  // prefix not on a byte boundary
      {"192.168.0.0/23", "192.168.2.0/24", false},
      {"10.0.0.0/9", "10.128.0.0/9", false},
      {"fd00::/64", "fd00::1", true},
      {"fd00::/64", "fd00:0:0:1::/64", false},
      {"fc00::/8", "fd00::/8", false},  // differ in the last bit of the first byte
      {"fc00::/7", "fd00::/8", true},
      {"::ffff:0:0/96", "::ffff:10.0.0.1", true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.outer) + " contains " + c.inner);
    EXPECT_EQ(MustCidr(c.outer).contains(MustCidr(c.inner)), c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_cidr_list

TEST(ParseCidrList, KeepsOrderAndDropsDuplicates) {
  auto r = parse_cidr_list("10.0.0.0/8,fd00::/64,10.0.0.0/8,192.168.0.1,192.168.0.1/32");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].str(), "10.0.0.0/8");
  EXPECT_EQ((*r)[1].str(), "fd00::/64");
  EXPECT_EQ((*r)[2].str(), "192.168.0.1/32");

  auto one = parse_cidr_list("::1");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].str(), "::1/128");
}

TEST(ParseCidrList, Rejects) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"", "invalid CIDR list \"\": empty"},
      {",", "invalid CIDR list \",\": item 1 is empty"},
      {",10.0.0.0/8", "item 1 is empty"},
      {"10.0.0.0/8,", "invalid CIDR list \"10.0.0.0/8,\": item 2 is empty"},
      {"10.0.0.0/8,,fd00::/64", "item 2 is empty"},
      // The bad item itself is quoted, so it can be found in a long list.
      {"10.0.0.0/8, 10.1.0.0/16", "invalid CIDR \" 10.1.0.0/16\": leading or trailing whitespace"},
      {"10.0.0.0/8,10.0.0.300", "invalid CIDR \"10.0.0.300\": bad IPv4 address"},
      {"10.0.0.0/8;10.1.0.0/16", "invalid CIDR \"10.0.0.0/8;10.1.0.0/16\": bad prefix length"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ExpectInvalid(parse_cidr_list(c.in), c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_duration / format_duration

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

TEST(ParseDuration, AcceptsUnitsCombinationsAndDecimals) {
  struct Case {
    std::string in;
    int64_t ms;
  };
  const Case cases[] = {
      {"500ms", 500},
      {"30s", 30000},
      {"10m", 600000},
      {"2h", 7200000},
      {"1h30m", 5400000},
      {"1h30m15s250ms", 5415250},
      {"1h250ms", 3600250},
      {"0s", 0},
      {"0ms", 0},
      {"1.5s", 1500},
      {"0.1s", 100},  // exact, never 99 from binary floating point
      {"0.001s", 1},
      {"1.500s", 1500},
      {"1.0000000000000s", 1000},  // trailing zeros carry no precision
      {"1.25m", 75000},
      {"0.5h", 1800000},
      {"0.0000025h", 9},  // seven significant fraction digits, still whole milliseconds
      {"1h0.5s", 3600500},
      {"007s", 7000},
      {"168h", 168 * 3600000LL},
      {"7d", 168 * 3600000LL},
      {"1d12h", 36 * 3600000LL},
      {"0.5d", 12 * 3600000LL},
      {"2562047788015h12m55s807ms", kInt64Max},
      {"106751991167d7h12m55s807ms", kInt64Max},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_duration(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->count(), c.ms);
  }
}

TEST(ParseDuration, Rejects) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"10", "invalid duration \"10\": missing unit (ms, s, m, h, d)"},
      {"1.5", "invalid duration \"1.5\": missing unit (ms, s, m, h, d)"},
      {"1h30", "invalid duration \"1h30\": missing unit after \"30\" (ms, s, m, h, d)"},
      {"", "invalid duration \"\": empty"},
      {" 5s", "invalid duration \" 5s\": leading or trailing whitespace"},
      {"5s ", "leading or trailing whitespace"},
      {"-5s", "invalid duration \"-5s\": negative durations are not allowed"},
      {"+5s", "invalid duration \"+5s\": expected a number at \"+5s\""},
      {"s", "expected a number at \"s\""},
      {".5s", "expected a number at \".5s\""},
      {"nan", "expected a number at \"nan\""},
      {"inf", "expected a number at \"inf\""},
      {"5 s", "invalid duration \"5 s\": unexpected character \" \" after \"5\""},
      {"1.5.5s", "unexpected character \".\" after \"1.5\""},
      {"1s-1ms", "invalid duration \"1s-1ms\": expected a number at \"-1ms\""},
      {"10us", "invalid duration \"10us\": unknown unit \"us\"; expected one of (ms, s, m, h, d)"},
      {"10S", "unknown unit \"S\""},
      {"1w", "unknown unit \"w\""},
      {"1h1d", "unit \"d\" after \"h\""},
      {"5msx", "unknown unit \"msx\""},
      {"1e3s", "unknown unit \"e\""},
      {"1m1m",
       "invalid duration \"1m1m\": unit \"m\" after \"m\"; units must go from largest to smallest, "
       "each at most once"},
      {"30s1h", "unit \"h\" after \"s\""},
      {"1ms1s", "unit \"s\" after \"ms\""},
      {"1.s", "invalid duration \"1.s\": expected digits after '.'"},
      {"1.0005s", "invalid duration \"1.0005s\": finer than a millisecond"},
      {"0.5ms", "finer than a millisecond"},
      {"0.0000001h", "finer than a millisecond"},
      {"0.0000000001h", "finer than a millisecond"},  // past nine significant digits
      {"99999999999999999999h",
       "invalid duration \"99999999999999999999h\": too large (at most 9223372036854775807ms)"},
      {"99999999999999999999ms", "too large"},
      {"2562047788016h", "too large"},             // fits 64 unsigned bits, not milliseconds' int64
      {"5124095576030432h", "too large"},          // the multiplication itself overflows
      {"2562047788015h12m55s808ms", "too large"},  // one past the maximum, from the sum
      {"2562047788015.5h", "too large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ExpectInvalid(parse_duration(c.in), c.want);
  }
}

TEST(FormatDuration, LargestUnitsFirstZeroComponentsOmitted) {
  struct Case {
    int64_t ms;
    std::string want;
  };
  const Case cases[] = {
      {0, "0ms"},
      {1, "1ms"},
      {500, "500ms"},
      {1000, "1s"},
      {1500, "1s500ms"},
      {20000, "20s"},
      {90000, "1m30s"},
      {5400000, "1h30m"},
      {3600001, "1h1ms"},
      {168 * 3600000LL, "7d"},
      {25 * 3600000LL + 1, "1d1h1ms"},
      {kInt64Max, "106751991167d7h12m55s807ms"},
      {-1500, "-1s500ms"},
      {std::numeric_limits<int64_t>::min(), "-106751991167d7h12m55s808ms"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_duration(milliseconds(c.ms)), c.want) << c.ms;
  }
}

TEST(FormatDuration, RoundTripsThroughParse) {
  std::vector<int64_t> values = {0, 1, 999, 1000, 1001, 59999, 60000, 3599999, 3600000, kInt64Max};
  // A fixed-seed sweep over every magnitude, so a failure reproduces.
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    values.push_back(static_cast<int64_t>(x >> (1 + i % 63)));
  }
  for (int64_t v : values) {
    const std::string s = format_duration(milliseconds(v));
    auto back = parse_duration(s);
    ASSERT_TRUE(back.ok()) << s << ": " << back.error().message;
    ASSERT_EQ(back->count(), v) << s;
  }
  // And the other way: canonical spellings survive parse then format unchanged.
  for (const char* s : {"1h30m", "500ms", "20s", "1s500ms", "7d", "1d1h1m1s1ms"}) {
    auto d = parse_duration(s);
    ASSERT_TRUE(d.ok()) << s;
    EXPECT_EQ(format_duration(*d), s);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_percent

TEST(ParsePercent, Accepts) {
  struct Case {
    std::string in;
    double want;
  };
  const Case cases[] = {
      {"30", 30},       {"30%", 30}, {"0.5", 0.5},       {"12.25%", 12.25},
      {"0", 0},         {"0%", 0},   {"100", 100},       {"100%", 100},
      {"100.000", 100}, {"007", 7},  {"99.999", 99.999}, {"0.0001%", 0.0001},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_percent(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_DOUBLE_EQ(*r, c.want);
  }
}

TEST(ParsePercent, Rejects) {
  const std::string expected = "expected a number from 0 to 100, like 30, 0.5 or 12.25%";
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"101", "invalid percent \"101\": must be between 0 and 100"},
      {"100.01", "must be between 0 and 100"},
      {"100.0000001%", "must be between 0 and 100"},
      {"1" + std::string(400, '0'), "must be between 0 and 100"},  // beyond double's range
      {"0." + std::string(400, '0') + "1", "too small to represent"},
      {"-1", "invalid percent \"-1\": must be between 0 and 100"},
      {"-0.5%", "must be between 0 and 100"},
      {"", "invalid percent \"\": empty; " + expected},
      {" 5", "invalid percent \" 5\": leading or trailing whitespace"},
      {"5%\t", "leading or trailing whitespace"},
      {"nan", "invalid percent \"nan\": " + expected},
      {"NaN", expected},
      {"inf", expected},
      {"-inf", expected},
      {"1e2", expected},
      {"0x10", expected},
      {"abc", expected},
      {"%", expected},
      {"30%%", expected},
      {"30 %", expected},
      {".5", expected},
      {"5.", expected},
      {"1,5", expected},
      {"+5", expected},
      {"5%5", expected},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ExpectInvalid(parse_percent(c.in), c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_u64

TEST(ParseU64, AcceptsDecimalAndHex) {
  struct Case {
    std::string in;
    uint64_t want;
  };
  const Case cases[] = {
      {"0", 0},
      {"42", 42},
      {"00012", 12},  // decimal, not octal
      {"18446744073709551615", std::numeric_limits<uint64_t>::max()},
      {"0x0", 0},
      {"0xff", 255},
      {"0XFF", 255},
      {"0xDeadBeef", 0xdeadbeef},
      {"0xffffffffffffffff", std::numeric_limits<uint64_t>::max()},
      {"0x00000000000000000001", 1},  // leading zeros do not count towards overflow
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_u64(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, c.want);
  }
}

TEST(ParseU64, Rejects) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"", "invalid number \"\": empty"},
      {"-1", "invalid number \"-1\": sign not allowed"},
      {"+1", "sign not allowed"},
      {"18446744073709551616",
       "invalid number \"18446744073709551616\": out of range (max 18446744073709551615)"},
      {"99999999999999999999999", "out of range (max 18446744073709551615)"},
      {"0x10000000000000000", "out of range (max 0xffffffffffffffff)"},
      {"0x", "invalid number \"0x\": missing hex digits after 0x"},
      {"0xg", "invalid number \"0xg\": bad hex digit \"g\""},
      {"0x1 ", "leading or trailing whitespace"},
      {"12a", "invalid number \"12a\": expected decimal digits, or 0x followed by hex digits"},
      {"1.5", "expected decimal digits"},
      {"1 2", "expected decimal digits"},
      {"0b101", "expected decimal digits"},
      {"ff", "expected decimal digits"},
      {" 1", "leading or trailing whitespace"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ExpectInvalid(parse_u64(c.in), c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_port_range

TEST(ParsePortRange, Accepts) {
  struct Case {
    std::string in;
    uint16_t lo, hi;
    std::string str;
  };
  const Case cases[] = {
      {"80", 80, 80, "80"},
      {"0", 0, 0, "0"},
      {"65535", 65535, 65535, "65535"},
      {"0080", 80, 80, "80"},
      {"1000-2000", 1000, 2000, "1000-2000"},
      {"80-80", 80, 80, "80"},
      {"0-65535", 0, 65535, "any"},
      {"any", 0, 65535, "any"},
      {"1-65535", 1, 65535, "1-65535"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_port_range(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->lo, c.lo);
    EXPECT_EQ(r->hi, c.hi);
    EXPECT_EQ(r->str(), c.str);
  }
}

TEST(ParsePortRange, Rejects) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"90-80", "invalid port range \"90-80\": start is above end"},
      {"", "invalid port range \"\": empty"},
      {"70000", "invalid port range \"70000\": port \"70000\" is above 65535"},
      {"1-70000", "port \"70000\" is above 65535"},
      {"99999999999999999999999", "is above 65535"},
      {"-80", "invalid port range \"-80\": missing start before '-'"},
      {"80-", "invalid port range \"80-\": missing end after '-'"},
      {"http", "invalid port range \"http\": bad port \"http\""},
      {"1-2-3", "bad port \"2-3\""},
      {"80 - 90", "bad port \"80 \""},
      {"+80", "bad port \"+80\""},
      {"ANY", "bad port \"ANY\""},
      {" 80", "leading or trailing whitespace"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ExpectInvalid(parse_port_range(c.in), c.want);
  }
}

TEST(PortRange, RoundTripsThroughStr) {
  const PortRange ranges[] = {{0, 65535}, {80, 80},   {0, 0},       {65535, 65535},
                              {1, 65535}, {0, 65534}, {1000, 2000}, {0, 1}};
  for (const PortRange& r : ranges) {
    SCOPED_TRACE(r.str());
    auto back = parse_port_range(r.str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, r);
  }
}

// ---------------------------------------------------------------------------------------------
// Enumerations

TEST(ParseEnums, NamesRoundTrip) {
  for (Proto p : {Proto::all, Proto::tcp, Proto::udp, Proto::icmp}) {
    auto r = parse_proto(proto_name(p));
    ASSERT_TRUE(r.ok()) << proto_name(p);
    EXPECT_EQ(*r, p);
  }
  for (Direction d : {Direction::ingress, Direction::egress, Direction::both}) {
    auto r = parse_direction(direction_name(d));
    ASSERT_TRUE(r.ok()) << direction_name(d);
    EXPECT_EQ(*r, d);
  }
  for (FaultKind k : {FaultKind::partition, FaultKind::loss, FaultKind::isolate, FaultKind::delay,
                      FaultKind::rate, FaultKind::corrupt, FaultKind::duplicate, FaultKind::reorder,
                      FaultKind::shape, FaultKind::matrix}) {
    auto r = parse_kind(kind_name(k));
    ASSERT_TRUE(r.ok()) << kind_name(k);
    EXPECT_EQ(*r, k);
  }
  EXPECT_STREQ(proto_name(Proto::tcp), "tcp");
  EXPECT_STREQ(direction_name(Direction::egress), "egress");
  EXPECT_STREQ(kind_name(FaultKind::isolate), "isolate");
  EXPECT_STREQ(proto_name(static_cast<Proto>(9)), "unknown");
  EXPECT_STREQ(direction_name(static_cast<Direction>(0)), "unknown");
  EXPECT_STREQ(kind_name(static_cast<FaultKind>(0)), "unknown");
}

TEST(ParseEnums, Reject) {
  ExpectInvalid(parse_proto("sctp"), "invalid protocol \"sctp\": expected tcp, udp, icmp or all");
  ExpectInvalid(parse_proto("TCP"), "invalid protocol \"TCP\"");
  ExpectInvalid(parse_proto(""), "invalid protocol \"\"");
  ExpectInvalid(parse_proto("tcp "), "invalid protocol \"tcp \"");
  ExpectInvalid(parse_direction("in"),
                "invalid direction \"in\": expected ingress, egress or both");
  ExpectInvalid(parse_direction(""), "invalid direction \"\"");
  ExpectInvalid(parse_kind("delays"),
                "invalid fault kind \"delays\": expected partition, loss, isolate, delay, rate, "
                "corrupt, duplicate, reorder, shape or matrix");
  ExpectInvalid(parse_kind("Partition"), "invalid fault kind \"Partition\"");
}

// ---------------------------------------------------------------------------------------------
// parse_exemption, Exemption::str, default_exemptions

TEST(ParseExemption, AcceptsEveryForm) {
  struct Case {
    std::string in;
    std::string cidr;
    Proto proto;
    uint16_t port;
    std::string str;
  };
  const Case cases[] = {
      {"169.254.169.254", "169.254.169.254/32", Proto::all, 0, "169.254.169.254/32"},
      {"10.0.0.0/8", "10.0.0.0/8", Proto::all, 0, "10.0.0.0/8"},
      {"10.0.0.0/8/tcp", "10.0.0.0/8", Proto::tcp, 0, "10.0.0.0/8/tcp"},
      {"10.0.0.0/8/tcp:22", "10.0.0.0/8", Proto::tcp, 22, "10.0.0.0/8/tcp:22"},
      {"10.0.0.0/8/all", "10.0.0.0/8", Proto::all, 0, "10.0.0.0/8"},
      {"10.0.0.0/8/icmp", "10.0.0.0/8", Proto::icmp, 0, "10.0.0.0/8/icmp"},
      {"10.0.0.1/tcp:443", "10.0.0.1/32", Proto::tcp, 443, "10.0.0.1/32/tcp:443"},
      {"0.0.0.0/0/udp:65535", "0.0.0.0/0", Proto::udp, 65535, "0.0.0.0/0/udp:65535"},
      {"fd00::/64/udp:53", "fd00::/64", Proto::udp, 53, "fd00::/64/udp:53"},
      {"fd00::1/tcp:22", "fd00::1/128", Proto::tcp, 22, "fd00::1/128/tcp:22"},
      {"::/0/icmp", "::/0", Proto::icmp, 0, "::/0/icmp"},
      {"::", "::/128", Proto::all, 0, "::/128"},
      {"::/udp", "::/128", Proto::udp, 0, "::/128/udp"},
      {"::ffff:1.2.3.4/tcp:80", "::ffff:1.2.3.4/128", Proto::tcp, 80, "::ffff:1.2.3.4/128/tcp:80"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_exemption(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->cidr.str(), c.cidr);
    EXPECT_EQ(r->proto, c.proto);
    EXPECT_EQ(r->port, c.port);
    EXPECT_EQ(r->str(), c.str);
    auto back = parse_exemption(r->str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, *r);
  }
}

TEST(ParseExemption, Rejects) {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"", "invalid exemption \"\": empty"},
      {" 10.0.0.0/8", "invalid exemption \" 10.0.0.0/8\": leading or trailing whitespace"},
      {"10.0.0.0/8/", "invalid exemption \"10.0.0.0/8/\": missing protocol after '/'"},
      {"10.0.0.0/8/sctp",
       "invalid exemption \"10.0.0.0/8/sctp\": invalid protocol \"sctp\": expected tcp, udp, icmp "
       "or all"},
      {"10.0.0.0/8/tcp:", "invalid exemption \"10.0.0.0/8/tcp:\": missing port after ':'"},
      {"10.0.0.0/8/tcp:0", "port \"0\" is not between 1 and 65535"},
      {"10.0.0.0/8/tcp:65536", "port \"65536\" is not between 1 and 65535"},
      {"10.0.0.0/8/tcp:ssh", "bad port \"ssh\""},
      {"10.0.0.0/8/tcp:22-80", "bad port \"22-80\""},
      {"10.0.0.0/8/icmp:22",
       "invalid exemption \"10.0.0.0/8/icmp:22\": a port needs protocol tcp or udp, not icmp"},
      {"10.0.0.0/8/all:22", "a port needs protocol tcp or udp, not all"},
      {"10.0.0.300/tcp",
       "invalid exemption \"10.0.0.300/tcp\": invalid CIDR \"10.0.0.300\": bad IPv4 address"},
      {"10.0.0.1/8/tcp", "invalid CIDR \"10.0.0.1/8\": host bits set; the network is 10.0.0.0/8"},
      {"10.0.0.0/8/22", "invalid CIDR \"10.0.0.0/8/22\": bad prefix length \"8/22\""},
      {"/tcp", "invalid exemption \"/tcp\": invalid CIDR \"\": empty"},
      {"10.0.0.0/8/TCP", "invalid protocol \"TCP\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ExpectInvalid(parse_exemption(c.in), c.want);
  }
}

TEST(DefaultExemptions, SshDnsBothFamiliesAndMetadata) {
  std::vector<std::string> got;
  for (const Exemption& e : default_exemptions()) got.push_back(e.str());
  const std::vector<std::string> want = {
      "0.0.0.0/0/tcp:22", "0.0.0.0/0/udp:22", "0.0.0.0/0/tcp:53",
      "0.0.0.0/0/udp:53", "::/0/tcp:22",      "::/0/udp:22",
      "::/0/tcp:53",      "::/0/udp:53",      "169.254.169.254/32",
  };
  EXPECT_EQ(got, want);
  for (const Exemption& e : default_exemptions()) {
    SCOPED_TRACE(e.str());
    auto back = parse_exemption(e.str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, e);
  }
}

TEST(Exemption, StrKeepsAnInvalidPortVisible) {
  // proto all with a port cannot be parsed; str() still shows the port so the error that
  // rejects the value quotes it as given.
  const Exemption e{MustCidr("10.0.0.0/8"), Proto::all, 22};
  EXPECT_EQ(e.str(), "10.0.0.0/8/all:22");
  ExpectInvalid(parse_exemption(e.str()), "a port needs protocol tcp or udp, not all");
}

// ---------------------------------------------------------------------------------------------
// parse_target

TEST(ParseTarget, AcceptsEveryKind) {
  struct Case {
    std::string in;
    Target::Kind kind;
    std::string value, str;
  };
  const Case cases[] = {
      {"host", Target::Kind::host, "", "host"},
      {"netns:pod-a", Target::Kind::netns_name, "pod-a", "netns:pod-a"},
      {"netns:my ns", Target::Kind::netns_name, "my ns", "netns:my ns"},
      {"netns:a:b", Target::Kind::netns_name, "a:b", "netns:a:b"},
      {"netns:" + std::string(255, 'n'), Target::Kind::netns_name, std::string(255, 'n'),
       "netns:" + std::string(255, 'n')},
      {"netns-path:/run/netns/x", Target::Kind::netns_path, "/run/netns/x",
       "netns-path:/run/netns/x"},
      {"netns-path:/proc/1/ns/net", Target::Kind::netns_path, "/proc/1/ns/net",
       "netns-path:/proc/1/ns/net"},
      {"netns-path:/proc/12/task/13/ns/net", Target::Kind::netns_path, "/proc/12/task/13/ns/net",
       "netns-path:/proc/12/task/13/ns/net"},
      {"netns-path:/var/run/netns/cni-1", Target::Kind::netns_path, "/var/run/netns/cni-1",
       "netns-path:/var/run/netns/cni-1"},
      {"netns-path:/run/docker/netns/4f2a", Target::Kind::netns_path, "/run/docker/netns/4f2a",
       "netns-path:/run/docker/netns/4f2a"},
      {"netns-path:/var/run/docker/netns/default", Target::Kind::netns_path, "/var/run/docker/netns/default",
       "netns-path:/var/run/docker/netns/default"},
      {"pid:1", Target::Kind::pid, "1", "pid:1"},
      {"pid:0042", Target::Kind::pid, "42", "pid:42"},
      {"pid:2147483647", Target::Kind::pid, "2147483647", "pid:2147483647"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    auto r = parse_target(c.in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->kind, c.kind);
    EXPECT_EQ(r->value, c.value);
    EXPECT_EQ(r->str(), c.str);
    auto back = parse_target(r->str());
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, *r);
  }
}

TEST(ParseTarget, Rejects) {
  const std::string expected =
      "expected host, netns:NAME, netns-path:/PATH, pid:PID, pod-uid:UID, container:ID, pod:NAMESPACE/NAME or "
      "lab:[LAB/]NODE";
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"", "invalid target \"\": empty; " + expected},
      {" host", "invalid target \" host\": leading or trailing whitespace"},
      {"hosts", "invalid target \"hosts\": " + expected},
      {"host:", "invalid target \"host:\": host takes no value"},
      {"host:x", "host takes no value"},
      {"k8s:abc", "invalid target \"k8s:abc\": unknown kind \"k8s\"; " + expected},
      {"netns:", "invalid target \"netns:\": missing namespace name after \"netns:\""},
      {"netns:a/b", "namespace name must not contain '/'; use netns-path: for a path"},
      {"netns:/run/netns/a", "namespace name must not contain '/'"},
      {"netns:.", "namespace name cannot be \".\" or \"..\""},
      {"netns:..", "namespace name cannot be \".\" or \"..\""},
      {"netns:" + std::string(256, 'n'), "namespace name is longer than 255 bytes"},
      {"netns:a\tb", "namespace name contains a control character"},
      {"netns:a\0b"s,
       "invalid target \"netns:a\\x00b\": namespace name contains a control character"},
      {"netns-path:", "missing path after \"netns-path:\""},
      {"netns-path:run/netns/x",
       "invalid target \"netns-path:run/netns/x\": path must be absolute"},
      {"netns-path:/" + std::string(4095, 'p'), "path is longer than 4095 bytes"},
      {"netns-path:/a\nb", "path contains a control character"},
      {"netns-path:/a\0b"s, "path contains a control character"},
      // Only root's namespace directories: anywhere else a group member could hang the daemon
      // on a FUSE or NFS mount, or probe which files exist (issue 10 item 7).
      {"netns-path:/a", "path must be /run/netns/NAME, /var/run/netns/NAME, /run/docker/netns/NAME, "
                        "/var/run/docker/netns/NAME, /proc/PID/ns/net or /proc/PID/task/TID/ns/net"},
      {"netns-path:/home/u/fuse/ns", "path must be /run/netns/NAME"},
      {"netns-path:/run/netns/", "path must be /run/netns/NAME"},
      {"netns-path:/run/netns/.", "path must be /run/netns/NAME"},
      {"netns-path:/run/netns/..", "path must be /run/netns/NAME"},
      {"netns-path:/run/netns/../../tmp", "path must be /run/netns/NAME"},
      {"netns-path:/run/netns//x", "path must be /run/netns/NAME"},
      {"netns-path:/run/netns/a/b", "path must be /run/netns/NAME"},
      {"netns-path:/proc/self/ns/net", "path must be /run/netns/NAME"},
      {"netns-path:/proc/1/ns/mnt", "path must be /run/netns/NAME"},
      {"netns-path:/proc/1/ns/net/", "path must be /run/netns/NAME"},
      {"netns-path:/proc/1/root/tmp/ns", "path must be /run/netns/NAME"},
      {"pid:", "invalid target \"pid:\": missing process id after \"pid:\""},
      {"pid:0", "invalid target \"pid:0\": process id must be a positive integer"},
      {"pid:-1", "process id must be a positive integer"},
      {"pid:abc", "process id must be a positive integer"},
      {"pid:1.5", "process id must be a positive integer"},
      {"pid:2147483648", "process id is above 2147483647 (pid_t range)"},
      {"pid:99999999999999999999999", "process id is above 2147483647"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(quote(c.in));
    ExpectInvalid(parse_target(c.in), c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_side

TEST(ParseSide, NamedAndUnnamed) {
  auto a = parse_side("10.0.0.0/8", 0);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->name, "s1");
  ASSERT_EQ(a->cidrs.size(), 1u);
  EXPECT_EQ(a->cidrs[0].str(), "10.0.0.0/8");

  auto b = parse_side("10.0.0.1,fd00::1", 4);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->name, "s5");
  ASSERT_EQ(b->cidrs.size(), 2u);
  EXPECT_EQ(b->cidrs[1].str(), "fd00::1/128");

  auto c = parse_side("db.primary-1=10.0.0.0/24,10.0.1.0/24,10.0.0.0/24", 1);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->name, "db.primary-1");
  ASSERT_EQ(c->cidrs.size(), 2u);  // the repeated CIDR is dropped
  EXPECT_EQ(c->cidrs[0].str(), "10.0.0.0/24");
  EXPECT_EQ(c->cidrs[1].str(), "10.0.1.0/24");
}

TEST(ParseSide, Rejects) {
  struct Case {
    std::string in;
    size_t index;
    std::string want;
  };
  const Case cases[] = {
      {"", 0, "invalid side 1 \"\": empty; expected [NAME=]CIDR[,CIDR...]"},
      {" a=10.0.0.0/8", 0, "invalid side 1 \" a=10.0.0.0/8\": leading or trailing whitespace"},
      {"=10.0.0.0/8", 1, "invalid side 2 \"=10.0.0.0/8\": invalid side name \"\": empty"},
      {"a=", 2, "invalid side 3 \"a=\": missing CIDRs after '='"},
      {"a b=10.0.0.0/8", 0,
       "invalid side name \"a b\": character \" \" at position 2 is not allowed"},
      {"-a=10.0.0.0/8", 0, "invalid side name \"-a\": must not start with '-'"},
      {"123=10.0.0.0/8", 0, "invalid side name \"123\": must not be all digits"},
      {"a=10.0.0.300", 0,
       "invalid side 1 \"a=10.0.0.300\": invalid CIDR \"10.0.0.300\": bad IPv4 address"},
      {"10.0.0.1/8", 0,
       "invalid side 1 \"10.0.0.1/8\": invalid CIDR \"10.0.0.1/8\": host bits set"},
      {"a=10.0.0.0/8,,10.1.0.0/16", 0,
       "invalid CIDR list \"10.0.0.0/8,,10.1.0.0/16\": item 2 is empty"},
      {"a=b=10.0.0.0/8", 0, "invalid CIDR \"b=10.0.0.0/8\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ExpectInvalid(parse_side(c.in, c.index), c.want);
  }
}

// ---------------------------------------------------------------------------------------------
// check_name

TEST(CheckName, Accepts) {
  for (const std::string& s :
       {"a"s, "f1"s, "1a"s, "db.primary-1"s, "A_B"s, "."s, "a-"s, "0x10"s, std::string(63, 'n')}) {
    SCOPED_TRACE(s);
    const Status st = check_name(s, "fault name");
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
}

TEST(CheckName, RejectsNamingWhat) {
  struct Case {
    std::string in, what, want;
  };
  const Case cases[] = {
      {"", "fault name", "invalid fault name \"\": empty"},
      {std::string(64, 'n'), "fault name", "longer than 63 characters (got 64)"},
      {"-x", "fault name", "invalid fault name \"-x\": must not start with '-'"},
      {"123", "fault name",
       "invalid fault name \"123\": must not be all digits (that reads as a fault id)"},
      {"a b", "side name",
       "invalid side name \"a b\": character \" \" at position 2 is not allowed; use letters, "
       "digits, '_', '.' and '-'"},
      {"a/b", "fault name", "character \"/\" at position 2 is not allowed"},
      {"a=b", "fault name", "character \"=\" at position 2"},
      {"\xc3\xbc", "fault name", "character \"\\xc3\" at position 1"},
      {"ab\0"s, "fault name", "character \"\\x00\" at position 3"},
      {" a", "side name", "invalid side name \" a\": leading or trailing whitespace"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(quote(c.in));
    const Status st = check_name(c.in, c.what);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, Errc::invalid_argument);
    EXPECT_NE(st.error().message.find(c.want), std::string::npos) << st.error().message;
  }
}

// ---------------------------------------------------------------------------------------------
// Target::str

TEST(Target, Str) {
  EXPECT_EQ((Target{}).str(), "host");
  EXPECT_EQ((Target{Target::Kind::netns_name, "a"}).str(), "netns:a");
  EXPECT_EQ((Target{Target::Kind::netns_path, "/run/netns/a"}).str(), "netns-path:/run/netns/a");
  EXPECT_EQ((Target{Target::Kind::pid, "7"}).str(), "pid:7");
}

}  // namespace
}  // namespace fl::core
