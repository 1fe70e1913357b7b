// Tier 0 for the shaping faults, from what the user types to the wire: the parsers for delays,
// rates, sizes and distributions, validate()'s shaping rules, the JSON codec's new members and
// its direction default, faultctl's shaping commands, the matrix file, and the output formats.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/format.h"
#include "cli/matrix_file.h"
#include "core/model.h"
#include "core/parse.h"
#include "core/validate.h"
#include "protocol/protocol.h"

namespace fl {
namespace {

using core::Direction;
using core::Distribution;
using core::FaultKind;
using core::FaultSpec;
using core::MatrixPair;
using core::ShapeProfile;
using json = nlohmann::json;
using std::chrono::microseconds;
using namespace std::chrono_literals;

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

template <typename T>
std::string error_of(const Result<T>& r) {
  EXPECT_FALSE(r.ok()) << "expected an error";
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::invalid_argument) << r.error().message;
  return r.error().message;
}

core::Cidr C(std::string_view s) {
  auto r = core::parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : core::Cidr{};
}

// ---------------------------------------------------------------- parse_duration_us

TEST(ParseDurationUs, Accepts) {
  const std::pair<const char*, int64_t> cases[] = {
      {"100ms", 100000}, {"0.5ms", 500},         {"250us", 250},        {"1ms500us", 1500},
      {"0ms", 0},        {"0us", 0},             {"1.5s", 1500000},     {"60s", 60000000},
      {"1m", 60000000},  {"0.000001s", 1},       {"1h", 3600000000},    {"0.001ms", 1},
  };
  for (const auto& [in, us] : cases) {
    SCOPED_TRACE(in);
    auto r = core::parse_duration_us(in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->count(), us);
  }
  // The largest value: int64 max microseconds.
  auto max = core::parse_duration_us("9223372036854775807us");
  ASSERT_TRUE(max.ok()) << max.error().message;
  EXPECT_EQ(max->count(), std::numeric_limits<int64_t>::max());
}

TEST(ParseDurationUs, Rejects) {
  const std::pair<const char*, const char*> cases[] = {
      {"5", "invalid duration \"5\": missing unit (us, ms, s, m, h)"},
      {"1ms5", "invalid duration \"1ms5\": missing unit after \"5\" (us, ms, s, m, h)"},
      {"0.5us", "invalid duration \"0.5us\": finer than a microsecond"},
      {"0.0000001s", "invalid duration \"0.0000001s\": finer than a microsecond"},
      {"1us1ms", "invalid duration \"1us1ms\": unit \"ms\" after \"us\"; units must go from largest to smallest, "
                 "each at most once"},
      {"10ns", "invalid duration \"10ns\": unknown unit \"ns\"; expected one of (us, ms, s, m, h)"},
      {"-1ms", "invalid duration \"-1ms\": negative durations are not allowed"},
      {"", "invalid duration \"\": empty; expected a number and a unit, like 500ms, 30s or 1h30m"},
      {"9223372036854775808us", "invalid duration \"9223372036854775808us\": too large (at most "
                                "9223372036854775807us)"},
      {"99999999999999999999h", "too large (at most 9223372036854775807us)"},
  };
  for (const auto& [in, want] : cases) {
    SCOPED_TRACE(in);
    EXPECT_TRUE(contains(error_of(core::parse_duration_us(in)), want)) << core::parse_duration_us(in).error().message;
  }
  // parse_duration keeps its millisecond grammar: "us" is not one of its units.
  EXPECT_EQ(error_of(core::parse_duration("10us")),
            "invalid duration \"10us\": unknown unit \"us\"; expected one of (ms, s, m, h, d)");
}

TEST(FormatDurationUs, RoundTrips) {
  EXPECT_EQ(core::format_duration_us(0us), "0us");
  EXPECT_EQ(core::format_duration_us(250us), "250us");
  EXPECT_EQ(core::format_duration_us(1500us), "1ms500us");
  EXPECT_EQ(core::format_duration_us(1500000us), "1s500ms");
  EXPECT_EQ(core::format_duration_us(60s), "1m");
  EXPECT_EQ(core::format_duration_us(-1000us), "-1ms");
  for (int64_t v : {int64_t{1}, int64_t{999}, int64_t{1001}, int64_t{3723004005}, std::numeric_limits<int64_t>::max()}) {
    auto back = core::parse_duration_us(core::format_duration_us(microseconds(v)));
    ASSERT_TRUE(back.ok()) << v;
    EXPECT_EQ(back->count(), v);
  }
}

// ---------------------------------------------------------------- parse_rate

TEST(ParseRate, AcceptsTcUnits) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"512kbit", 512000},
      {"10mbit", 10000000},
      {"1gbit", 1000000000},
      {"1.5gbit", 1500000000},
      {"1tbit", 1000000000000},
      {"100bit", 100},
      {"0bit", 0},
      {"0.5kbit", 500},
      {"1kibit", 1024},
      {"1mibit", 1048576},
      {"2gibit", 2147483648},
      // tc's bps family is bytes per second.
      {"1bps", 8},
      {"100kbps", 800000},
      {"10mbps", 80000000},
      {"1gbps", 8000000000},
      {"1kibps", 8192},
      {"1.5mibps", 12582912},
      {"18446744073709551615bit", std::numeric_limits<uint64_t>::max()},
      {"007mbit", 7000000},
  };
  for (const auto& [in, bps] : cases) {
    SCOPED_TRACE(in);
    auto r = core::parse_rate(in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, bps);
  }
}

TEST(ParseRate, Rejects) {
  const std::pair<const char*, const char*> exact[] = {
      {"10", "invalid rate \"10\": missing unit; expected a number and a unit, like 512kbit or 10mbit (tc reads a "
             "bare number as bytes per second, so faultline asks)"},
      {"10Mbit", "invalid rate \"10Mbit\": unknown unit \"Mbit\"; units are lower case: \"mbit\""},
      {"0.5bit", "invalid rate \"0.5bit\": not a whole number of bits per second"},
      {"-1mbit", "invalid rate \"-1mbit\": must not be negative"},
      {"99999999999999999999bit",
       "invalid rate \"99999999999999999999bit\": too large (at most 18446744073709551615 bits per second)"},
  };
  for (const auto& [in, want] : exact) EXPECT_EQ(error_of(core::parse_rate(in)), want) << in;
  const std::pair<const char*, const char*> partial[] = {
      {"10mb", "unknown unit \"mb\"; expected one of (bit, kbit, mbit, gbit, tbit, kibit"},
      {"", "invalid rate \"\": empty; expected a number and a unit"},
      {" 1mbit", "leading or trailing whitespace"},
      {".5mbit", "expected a number at \".5mbit\""},
      {"1.mbit", "expected digits after '.'"},
      {"1 mbit", "unknown unit \" mbit\""},
      {"1e6bit", "unknown unit \"e6bit\""},
      {"30000000tbit", "too large"},
      {"1.0000000000000000001gbit", "not a whole number of bits per second"},
      {"1.3kibit", "not a whole number of bits per second"},
  };
  for (const auto& [in, want] : partial) {
    const std::string msg = error_of(core::parse_rate(in));
    EXPECT_TRUE(contains(msg, want)) << in << ": " << msg;
  }
}

TEST(FormatRate, LargestExactUnitAndRoundTrip) {
  EXPECT_EQ(core::format_rate(10000000), "10mbit");
  EXPECT_EQ(core::format_rate(1500000), "1500kbit");
  EXPECT_EQ(core::format_rate(1000000000), "1gbit");
  EXPECT_EQ(core::format_rate(12345), "12345bit");
  EXPECT_EQ(core::format_rate(0), "0bit");
  for (uint64_t v : {uint64_t{8000}, uint64_t{1}, uint64_t{999999}, core::kMaxRateBps, std::numeric_limits<uint64_t>::max()}) {
    auto back = core::parse_rate(core::format_rate(v));
    ASSERT_TRUE(back.ok()) << v;
    EXPECT_EQ(*back, v);
  }
  // The model's str() spells rates the same way.
  ShapeProfile p;
  p.rate_bps = 1500000;
  EXPECT_EQ(p.str(), "rate " + core::format_rate(p.rate_bps));
}

// ---------------------------------------------------------------- parse_size

TEST(ParseSize, AcceptsTcUnitsAllBinary) {
  const std::pair<const char*, uint32_t> cases[] = {
      {"1500", 1500},       {"1500b", 1500},           {"32kb", 32768},     {"64k", 65536},
      {"1kib", 1024},       {"1mb", 1048576},          {"1m", 1048576},     {"1mib", 1048576},
      {"1.5kb", 1536},      {"1g", 1073741824},        {"3gb", 3221225472}, {"4294967295b", 4294967295},
      {"0", 0},
  };
  for (const auto& [in, bytes] : cases) {
    SCOPED_TRACE(in);
    auto r = core::parse_size(in);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, bytes);
  }
}

TEST(ParseSize, Rejects) {
  EXPECT_EQ(error_of(core::parse_size("4gb")), "invalid size \"4gb\": too large (at most 4294967295 bytes)");
  EXPECT_EQ(error_of(core::parse_size("1kbit")),
            "invalid size \"1kbit\": unknown unit \"kbit\"; expected one of (b, k, kb, kib, m, mb, mib, g, gb, gib)");
  EXPECT_EQ(error_of(core::parse_size("1KB")), "invalid size \"1KB\": unknown unit \"KB\"; units are lower case: \"kb\"");
  EXPECT_EQ(error_of(core::parse_size("0.5b")), "invalid size \"0.5b\": not a whole number of bytes");
  EXPECT_EQ(error_of(core::parse_size("")), "invalid size \"\": empty; expected a number of bytes, like 1500, 32kb or 1mb");
  EXPECT_EQ(error_of(core::parse_size("abc")), "invalid size \"abc\": expected a number at \"abc\"");
  EXPECT_EQ(error_of(core::parse_size("-1k")), "invalid size \"-1k\": must not be negative");
}

TEST(ParseDistribution, NamesRoundTripAndRejects) {
  for (Distribution d : {Distribution::uniform, Distribution::normal, Distribution::pareto, Distribution::paretonormal}) {
    auto r = core::parse_distribution(core::distribution_name(d));
    ASSERT_TRUE(r.ok()) << core::distribution_name(d);
    EXPECT_EQ(*r, d);
  }
  EXPECT_EQ(error_of(core::parse_distribution("gauss")),
            "invalid distribution \"gauss\": expected uniform, normal, pareto or paretonormal");
  EXPECT_EQ(error_of(core::parse_distribution("Normal")),
            "invalid distribution \"Normal\": expected uniform, normal, pareto or paretonormal");
}

// ---------------------------------------------------------------- validate: shaping kinds

FaultSpec Shaping(FaultKind kind) {
  FaultSpec s;
  s.kind = kind;
  s.match.direction = Direction::egress;
  switch (kind) {
    case FaultKind::delay: s.shape.delay = 100ms; break;
    case FaultKind::rate: s.shape.rate_bps = 10000000; break;
    case FaultKind::corrupt: s.shape.corrupt_percent = 1; break;
    case FaultKind::duplicate: s.shape.duplicate_percent = 5; break;
    case FaultKind::reorder:
      s.shape.reorder_percent = 25;
      s.shape.delay = 10ms;
      break;
    case FaultKind::shape:
      s.shape.delay = 40ms;
      s.shape.rate_bps = 20000000;
      break;
    default: break;
  }
  return s;
}

FaultSpec Matrix() {
  FaultSpec s;
  s.kind = FaultKind::matrix;
  s.match.direction = Direction::egress;
  s.sides = {{"eu", {C("10.200.1.0/24")}}, {"us", {C("10.200.2.0/24")}}, {"ap", {C("10.200.3.0/24")}}};
  ShapeProfile eu_us;
  eu_us.delay = 80ms;
  eu_us.jitter = 5ms;
  eu_us.rate_bps = 100000000;
  eu_us.loss_percent = 0.1;
  ShapeProfile us_eu;
  us_eu.delay = 80ms;
  s.pairs = {{0, 1, eu_us}, {1, 0, us_eu}, {0, 2, us_eu}};
  return s;
}

std::string validate_error(FaultSpec s) {
  const Status st = core::validate(s);
  EXPECT_FALSE(st.ok()) << "accepted";
  if (st.ok()) return "";
  EXPECT_EQ(st.error().code, Errc::invalid_argument);
  return st.error().message;
}

TEST(ValidateShaping, EveryKindPasses) {
  for (FaultKind k : {FaultKind::delay, FaultKind::rate, FaultKind::corrupt, FaultKind::duplicate, FaultKind::reorder,
                      FaultKind::shape}) {
    FaultSpec s = Shaping(k);
    const Status st = core::validate(s);
    EXPECT_TRUE(st.ok()) << core::kind_name(k) << ": " << st.error().message;
    EXPECT_EQ(s.targets.size(), 1u);
  }
  FaultSpec m = Matrix();
  const Status st = core::validate(m);
  EXPECT_TRUE(st.ok()) << st.error().message;
}

TEST(ValidateShaping, FullOptionalSetsPass) {
  FaultSpec d = Shaping(FaultKind::delay);
  d.shape.jitter = 100ms;  // equal to the delay: the lowest delay is 0, nothing is clipped
  d.shape.delay_correlation = 25;
  d.shape.distribution = Distribution::paretonormal;
  d.replace_root = true;
  EXPECT_TRUE(core::validate(d).ok());

  FaultSpec r = Shaping(FaultKind::rate);
  r.shape.burst_bytes = core::kMinBurstBytes;
  EXPECT_TRUE(core::validate(r).ok());
  r.shape.burst_bytes = core::kMaxBurstBytes;
  r.shape.rate_bps = core::kMaxRateBps;
  EXPECT_TRUE(core::validate(r).ok());
  r.shape.rate_bps = core::kMinRateBps;
  EXPECT_TRUE(core::validate(r).ok());

  FaultSpec o = Shaping(FaultKind::reorder);
  o.shape.reorder_gap = 5;
  EXPECT_TRUE(core::validate(o).ok());

  FaultSpec sh = Shaping(FaultKind::shape);
  sh.shape.delay = core::kMaxDelay;
  sh.shape.jitter = 1ms;
  sh.shape.burst_bytes = 64 * 1024;
  sh.shape.loss_percent = 100;
  sh.shape.loss_correlation = 99.9;
  sh.shape.corrupt_percent = 0.5;
  sh.shape.duplicate_percent = 100;
  sh.shape.reorder_percent = 10;
  sh.shape.reorder_gap = 3;
  const Status st = core::validate(sh);
  EXPECT_TRUE(st.ok()) << st.error().message;

  // Loss alone is an effect: the BPF program does it, no class needed.
  FaultSpec loss_only;
  loss_only.kind = FaultKind::shape;
  loss_only.shape.loss_percent = 3;
  EXPECT_TRUE(core::validate(loss_only).ok());
}

TEST(ValidateShaping, KindsSetOnlyTheirOwnMembers) {
  FaultSpec d = Shaping(FaultKind::delay);
  d.shape.rate_bps = 1000000;
  EXPECT_EQ(validate_error(d),
            "shape.rate_bps: not for a delay fault, which sets only delay, jitter, delay_correlation and "
            "distribution; use kind shape to combine effects");
  FaultSpec r = Shaping(FaultKind::rate);
  r.shape.loss_percent = 1;
  EXPECT_EQ(validate_error(r),
            "shape.loss_percent: not for a rate fault, which sets only rate_bps and burst_bytes; use kind shape to "
            "combine effects");
  FaultSpec c = Shaping(FaultKind::corrupt);
  c.shape.duplicate_percent = 1;
  EXPECT_TRUE(starts_with(validate_error(c), "shape.duplicate_percent: not for a corrupt fault, which sets only "
                                             "corrupt_percent;"));
  FaultSpec o = Shaping(FaultKind::reorder);
  o.shape.jitter = 1ms;
  EXPECT_TRUE(starts_with(validate_error(o), "shape.jitter: not for a reorder fault, which sets only reorder_percent, "
                                             "delay and reorder_gap;"));
}

TEST(ValidateShaping, KindsNeedTheirEffect) {
  FaultSpec d = Shaping(FaultKind::delay);
  d.shape.delay = 0us;
  EXPECT_EQ(validate_error(d), "shape.delay: a delay fault needs a delay above 0 (got 0us)");
  FaultSpec r = Shaping(FaultKind::rate);
  r.shape.rate_bps = 0;
  EXPECT_EQ(validate_error(r), "shape.rate_bps: a rate fault needs a rate");
  FaultSpec c = Shaping(FaultKind::corrupt);
  c.shape.corrupt_percent = 0;
  EXPECT_EQ(validate_error(c), "shape.corrupt_percent: a corrupt fault needs a percentage above 0 (got 0)");
  FaultSpec u = Shaping(FaultKind::duplicate);
  u.shape.duplicate_percent = NAN;
  EXPECT_EQ(validate_error(u), "shape.duplicate_percent: a duplicate fault needs a percentage above 0 (got nan)");
  FaultSpec o = Shaping(FaultKind::reorder);
  o.shape.delay = 0us;
  EXPECT_EQ(validate_error(o),
            "shape.delay: a reorder fault needs a delay above 0: netem reorders by sending some packets at once "
            "while the rest wait the delay");
  FaultSpec o2 = Shaping(FaultKind::reorder);
  o2.shape.reorder_percent = 0;
  EXPECT_EQ(validate_error(o2), "shape.reorder_percent: a reorder fault needs a percentage above 0 (got 0)");
  FaultSpec sh;
  sh.kind = FaultKind::shape;
  EXPECT_EQ(validate_error(sh),
            "shape: a shape fault needs at least one effect (delay, rate, loss, corrupt, duplicate or reorder)");
}

// check_profile's rules, reached through kind shape (which allows every member).
TEST(ValidateShaping, ProfileRules) {
  struct Case {
    const char* what;
    void (*edit)(ShapeProfile&);
    const char* want;
  };
  const Case cases[] = {
      {"negative delay", [](ShapeProfile& p) { p.delay = -1000us; }, "shape.delay: must not be negative (got -1ms)"},
      {"delay over max", [](ShapeProfile& p) { p.delay = 61s; }, "shape.delay: 1m1s is above the maximum 1m"},
      {"negative jitter", [](ShapeProfile& p) { p.jitter = -5us; }, "shape.jitter: must not be negative (got -5us)"},
      {"jitter without delay",
       [](ShapeProfile& p) {
         p.delay = 0us;
         p.jitter = 1ms;
       },
       "shape.jitter: needs a delay: jitter varies the delay around its mean"},
      {"jitter above delay",
       [](ShapeProfile& p) {
         p.delay = 10ms;
         p.jitter = 20ms;
       },
       "shape.jitter: 20ms is above the delay 10ms; netem would clip the negative delays to 0, which skews the "
       "distribution and raises the mean"},
      {"correlation without jitter", [](ShapeProfile& p) { p.delay_correlation = 5; },
       "shape.delay_correlation: needs jitter: it correlates the random part of the delay"},
      {"correlation 100",
       [](ShapeProfile& p) {
         p.jitter = 1ms;
         p.delay_correlation = 100;
       },
       "shape.delay_correlation: must be at least 0 and below 100 (got 100)"},
      {"distribution without jitter", [](ShapeProfile& p) { p.distribution = Distribution::normal; },
       "shape.distribution: normal needs jitter: it shapes the random part of the delay"},
      {"distribution out of enum", [](ShapeProfile& p) { p.distribution = static_cast<Distribution>(9); },
       "shape.distribution: unknown distribution value 9"},
      {"rate below min", [](ShapeProfile& p) { p.rate_bps = 1000; }, "shape.rate_bps: 1kbit is below the minimum 8kbit"},
      {"rate above max", [](ShapeProfile& p) { p.rate_bps = 500000000000; },
       "shape.rate_bps: 500gbit is above the maximum 400gbit"},
      {"burst without rate",
       [](ShapeProfile& p) {
         p.rate_bps = 0;
         p.burst_bytes = 32768;
       },
       "shape.burst_bytes: needs a rate: the burst is what the rate limit lets through at once"},
      {"burst below a frame", [](ShapeProfile& p) { p.burst_bytes = 1000; },
       "shape.burst_bytes: 1000 bytes is below 1500, one full-size Ethernet frame, which could then never be sent "
       "whole"},
      {"burst above 64mb", [](ShapeProfile& p) { p.burst_bytes = 64 * 1024 * 1024 + 1; },
       "shape.burst_bytes: 67108865 bytes is above the maximum 64mb (67108864 bytes)"},
      {"loss above 100", [](ShapeProfile& p) { p.loss_percent = 101; },
       "shape.loss_percent: must be between 0 and 100 (got 101)"},
      {"corrupt NaN", [](ShapeProfile& p) { p.corrupt_percent = NAN; },
       "shape.corrupt_percent: must be between 0 and 100 (got nan)"},
      {"duplicate negative", [](ShapeProfile& p) { p.duplicate_percent = -1; },
       "shape.duplicate_percent: must be between 0 and 100 (got -1)"},
      {"reorder infinite", [](ShapeProfile& p) { p.reorder_percent = INFINITY; },
       "shape.reorder_percent: must be between 0 and 100 (got inf)"},
      {"loss correlation without loss", [](ShapeProfile& p) { p.loss_correlation = 5; },
       "shape.loss_correlation: needs loss_percent above 0"},
      {"loss correlation 100",
       [](ShapeProfile& p) {
         p.loss_percent = 1;
         p.loss_correlation = 100;
       },
       "shape.loss_correlation: must be at least 0 and below 100 (got 100)"},
      {"reorder without delay",
       [](ShapeProfile& p) {
         p.delay = 0us;
         p.reorder_percent = 5;
       },
       "shape.reorder_percent: needs a delay: netem reorders by sending some packets at once while the rest wait "
       "the delay"},
      {"gap without reorder", [](ShapeProfile& p) { p.reorder_gap = 5; },
       "shape.reorder_gap: needs reorder_percent above 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    FaultSpec s = Shaping(FaultKind::shape);  // delay 40ms, rate 20mbit
    c.edit(s.shape);
    EXPECT_EQ(validate_error(s), c.want);
  }
}

TEST(ValidateShaping, CommonFieldsByKind) {
  FaultSpec sides = Shaping(FaultKind::delay);
  sides.sides = {{"a", {C("10.0.0.0/8")}}};
  EXPECT_EQ(validate_error(sides), "sides: delay takes no sides (got 1); choose traffic with match.src and match.dst");
  FaultSpec loss = Shaping(FaultKind::delay);
  loss.loss_percent = 5;
  EXPECT_EQ(validate_error(loss),
            "loss_percent: only for loss faults, not delay (a shaping fault's loss is shape.loss_percent)");
  FaultSpec corr = Shaping(FaultKind::rate);
  corr.correlation_percent = 5;
  EXPECT_EQ(validate_error(corr),
            "correlation_percent: only for loss faults, not rate (a shaping fault's loss is shape.loss_percent)");
  FaultSpec seed = Shaping(FaultKind::rate);
  seed.seed = 1;
  EXPECT_EQ(validate_error(seed), "seed: only for loss faults, not rate");
  FaultSpec one_way = Shaping(FaultKind::delay);
  one_way.one_way = true;
  EXPECT_EQ(validate_error(one_way), "one_way: only for partition faults, not delay");
  FaultSpec pairs = Shaping(FaultKind::shape);
  pairs.pairs = Matrix().pairs;
  EXPECT_EQ(validate_error(pairs), "pairs: only for matrix faults, not shape");

  // The other kinds carry none of the shaping members.
  FaultSpec l;
  l.kind = FaultKind::loss;
  l.loss_percent = 10;
  l.shape.delay = 1ms;
  EXPECT_EQ(validate_error(l), "shape: only for shaping faults (delay, rate, corrupt, duplicate, reorder, shape), not loss");
  FaultSpec p;
  p.kind = FaultKind::partition;
  p.sides = {{"a", {C("10.0.0.0/24")}}, {"b", {C("10.0.1.0/24")}}};
  p.replace_root = true;
  EXPECT_EQ(validate_error(p), "replace_root: only for shaping faults, not partition");
  FaultSpec i;
  i.kind = FaultKind::isolate;
  i.sides = {{"", {C("10.0.0.5")}}};
  i.pairs = {MatrixPair{}};
  EXPECT_EQ(validate_error(i), "pairs: only for matrix faults, not isolate");
}

TEST(ValidateShaping, MatrixRules) {
  FaultSpec one = Matrix();
  one.sides.resize(1);
  one.pairs.clear();
  EXPECT_EQ(validate_error(one), "sides: matrix needs at least 2 sides (got 1)");
  FaultSpec nine = Matrix();
  nine.sides.clear();
  for (int i = 0; i < 9; ++i) nine.sides.push_back({"", {C("10.9." + std::to_string(i) + ".0/24")}});
  EXPECT_EQ(validate_error(nine), "sides: matrix allows at most 8 sides (got 9): every ordered pair needs a slot and a class");
  FaultSpec src = Matrix();
  src.match.src = {C("10.0.0.0/8")};
  EXPECT_EQ(validate_error(src), "match.src: a matrix fault takes no source addresses: its sides are the addresses");
  FaultSpec dst = Matrix();
  dst.match.dst = {C("10.0.0.0/8")};
  EXPECT_EQ(validate_error(dst), "match.dst: a matrix fault takes no destination addresses: its sides are the addresses");
  FaultSpec shape = Matrix();
  shape.shape.delay = 1ms;
  EXPECT_EQ(validate_error(shape), "shape: a matrix fault has no fault-wide profile; each pair carries its own");
  FaultSpec none = Matrix();
  none.pairs.clear();
  EXPECT_EQ(validate_error(none), "pairs: a matrix fault needs at least 1 pair");
  FaultSpec out = Matrix();
  out.pairs[0].from = 5;
  EXPECT_EQ(validate_error(out), "pairs[0]: from 5 is not a side index (the fault has 3 sides, 0..2)");
  FaultSpec out_to = Matrix();
  out_to.pairs[2].to = 3;
  EXPECT_EQ(validate_error(out_to), "pairs[2]: to 3 is not a side index (the fault has 3 sides, 0..2)");
  FaultSpec self = Matrix();
  self.pairs[1].to = 1;
  EXPECT_EQ(validate_error(self), "pairs[1]: from and to are both side \"us\"; traffic within a side is not a pair");
  FaultSpec dup = Matrix();
  dup.pairs[2].to = 1;
  EXPECT_EQ(validate_error(dup), "pairs[2]: eu -> us is already pairs[0]; give each ordered pair one profile");
  FaultSpec empty = Matrix();
  empty.pairs[1].profile = ShapeProfile{};
  EXPECT_EQ(validate_error(empty),
            "pairs[1].profile: us -> eu has no effect; give it a delay, rate, loss, corrupt, duplicate or reorder");
  FaultSpec bad = Matrix();
  bad.pairs[1].profile.delay = 0us;
  bad.pairs[1].profile.jitter = 1ms;
  EXPECT_EQ(validate_error(bad), "pairs[1].profile.jitter: needs a delay: jitter varies the delay around its mean");
  FaultSpec many = Matrix();
  many.pairs.assign(7, many.pairs[0]);
  EXPECT_EQ(validate_error(many), "pairs: 7 pairs, but 3 sides have only 6 ordered pairs");
  FaultSpec loss = Matrix();
  loss.loss_percent = 1;
  EXPECT_EQ(validate_error(loss), "loss_percent: only for loss faults, not matrix (a matrix pair's loss is in its profile)");
  FaultSpec nocidr = Matrix();
  nocidr.sides[1].cidrs.clear();
  EXPECT_EQ(validate_error(nocidr), "sides[1].cidrs: side \"us\" has no CIDRs");

  // Unnamed sides get positional names, which the pair messages then use.
  FaultSpec unnamed = Matrix();
  for (auto& s : unnamed.sides) s.name.clear();
  unnamed.pairs[2].to = 1;
  EXPECT_EQ(validate_error(unnamed), "pairs[2]: s1 -> s2 is already pairs[0]; give each ordered pair one profile");
  FaultSpec named = Matrix();
  for (auto& s : named.sides) s.name.clear();
  ASSERT_TRUE(core::validate(named).ok());
  EXPECT_EQ(named.sides[2].name, "s3");
}

// ---------------------------------------------------------------- protocol

void expect_same_shaping(const FaultSpec& a, const FaultSpec& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.shape, b.shape);  // exact, doubles included
  EXPECT_EQ(a.pairs, b.pairs);
  EXPECT_EQ(a.replace_root, b.replace_root);
  EXPECT_EQ(a.match.direction, b.match.direction);
  ASSERT_EQ(a.sides.size(), b.sides.size());
  for (size_t i = 0; i < a.sides.size(); ++i) {
    EXPECT_EQ(a.sides[i].name, b.sides[i].name);
    EXPECT_EQ(a.sides[i].cidrs, b.sides[i].cidrs);
  }
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.duration, b.duration);
}

FaultSpec everything_shape() {
  FaultSpec s;
  s.kind = FaultKind::shape;
  s.name = "wan";
  s.shape.delay = 123457us;
  s.shape.jitter = 1001us;
  s.shape.delay_correlation = 100.0 / 3.0;
  s.shape.distribution = Distribution::pareto;
  s.shape.rate_bps = core::kMaxRateBps;
  s.shape.burst_bytes = std::numeric_limits<uint32_t>::max();
  s.shape.loss_percent = 0.1;
  s.shape.loss_correlation = 12.5;
  s.shape.corrupt_percent = 1e-9;
  s.shape.duplicate_percent = 99.99;
  s.shape.reorder_percent = 50;
  s.shape.reorder_gap = std::numeric_limits<uint32_t>::max();
  s.replace_root = true;
  s.match.direction = Direction::both;
  return s;
}

TEST(ShapingJson, RoundTripsExactly) {
  FaultSpec unnamed = Matrix();
  unnamed.sides[1].name.clear();  // pairs name it "s2" on the wire
  for (const FaultSpec& spec : {Shaping(FaultKind::delay), Shaping(FaultKind::rate), Shaping(FaultKind::corrupt),
                                Shaping(FaultKind::duplicate), Shaping(FaultKind::reorder), everything_shape(), Matrix(),
                                unnamed}) {
    SCOPED_TRACE(core::kind_name(spec.kind));
    const json j = proto::fault_spec_to_json(spec);
    auto back = proto::fault_spec_from_json(j);
    ASSERT_TRUE(back.ok()) << back.error().message << "\n" << j.dump();
    expect_same_shaping(spec, *back);
    EXPECT_EQ(proto::fault_spec_to_json(*back), j);
    auto text = proto::fault_spec_from_json(json::parse(j.dump()));
    ASSERT_TRUE(text.ok()) << text.error().message;
    expect_same_shaping(spec, *text);
  }
}

TEST(ShapingJson, WireFormat) {
  FaultSpec d = Shaping(FaultKind::delay);
  d.shape.jitter = 500us;
  const json j = proto::fault_spec_to_json(d);
  EXPECT_EQ(j.at("kind"), "delay");
  EXPECT_EQ(j.at("shape"), json::parse(R"({"delay_us":100000,"jitter_us":500,"delay_correlation":0.0,
      "distribution":"uniform","rate_bps":0,"burst_bytes":0,"loss_percent":0.0,"loss_correlation":0.0,
      "corrupt_percent":0.0,"duplicate_percent":0.0,"reorder_percent":0.0,"reorder_gap":0})"));
  EXPECT_EQ(j.at("replace_root"), false);
  EXPECT_FALSE(j.contains("pairs"));
  EXPECT_EQ(j.at("match").at("direction"), "egress");

  const json m = proto::fault_spec_to_json(Matrix());
  EXPECT_FALSE(m.contains("shape"));
  ASSERT_EQ(m.at("pairs").size(), 3u);
  EXPECT_EQ(m.at("pairs").at(0).at("from"), "eu");
  EXPECT_EQ(m.at("pairs").at(0).at("to"), "us");
  EXPECT_EQ(m.at("pairs").at(0).at("shape").at("rate_bps"), 100000000);
  EXPECT_EQ(m.at("pairs").at(2).at("to"), "ap");

  // Kinds from before shaping look exactly as they did, so an older daemon still takes them.
  FaultSpec loss;
  loss.kind = FaultKind::loss;
  const json l = proto::fault_spec_to_json(loss);
  EXPECT_FALSE(l.contains("shape"));
  EXPECT_FALSE(l.contains("pairs"));
  EXPECT_FALSE(l.contains("replace_root"));
}

TEST(ShapingJson, ShapingKindsAndLossDefaultToEgress) {
  auto d = proto::fault_spec_from_json(json{{"kind", "delay"}, {"shape", {{"delay_us", 1000}}}});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->match.direction, Direction::egress);
  EXPECT_EQ(d->shape.delay, 1000us);
  auto with_match = proto::fault_spec_from_json(json{{"kind", "rate"}, {"match", {{"proto", "tcp"}}}});
  ASSERT_TRUE(with_match.ok()) << with_match.error().message;
  EXPECT_EQ(with_match->match.direction, Direction::egress);
  for (const char* dir : {"ingress", "both", "egress"}) {
    auto given = proto::fault_spec_from_json(json{{"kind", "matrix"}, {"match", {{"direction", dir}}}});
    ASSERT_TRUE(given.ok()) << given.error().message;
    EXPECT_STREQ(core::direction_name(given->match.direction), dir);
  }
  // A probability drop judged on both ends would compound (30 % becomes 51 %): loss gets egress
  // too. Deterministic drops do not compound and keep both.
  auto loss = proto::fault_spec_from_json(json{{"kind", "loss"}, {"match", {{"proto", "udp"}}}});
  ASSERT_TRUE(loss.ok()) << loss.error().message;
  EXPECT_EQ(loss->match.direction, Direction::egress);
  auto loss_both = proto::fault_spec_from_json(json{{"kind", "loss"}, {"match", {{"direction", "both"}}}});
  ASSERT_TRUE(loss_both.ok()) << loss_both.error().message;
  EXPECT_EQ(loss_both->match.direction, Direction::both);
  for (const char* kind : {"partition", "isolate"}) {
    auto other = proto::fault_spec_from_json(json{{"kind", kind}});
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(other->match.direction, Direction::both) << kind;
  }
}

TEST(ShapingJson, DecodedMatrixValidates) {
  const json j = json::parse(R"({"kind":"matrix","sides":[{"name":"eu","cidrs":["10.200.1.0/24"]},
      {"cidrs":["10.200.2.0/24"]}],"pairs":[{"from":"eu","to":"s2","shape":{"delay_us":80000}},
      {"from":"s2","to":"eu","shape":{"loss_percent":1}}]})");
  auto r = proto::fault_spec_from_json(j);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->pairs.size(), 2u);
  EXPECT_EQ(r->pairs[0].from, 0u);
  EXPECT_EQ(r->pairs[0].to, 1u);
  EXPECT_EQ(r->pairs[0].profile.delay, 80ms);
  EXPECT_EQ(r->pairs[1].profile.loss_percent, 1.0);
  EXPECT_EQ(r->match.direction, Direction::egress);
  FaultSpec spec = *r;
  const Status st = core::validate(spec);
  EXPECT_TRUE(st.ok()) << st.error().message;
}

TEST(ShapingJson, Errors) {
  const json sides = json::parse(R"([{"name":"eu","cidrs":["10.0.1.0/24"]},{"name":"us","cidrs":["10.0.2.0/24"]}])");
  const std::pair<json, const char*> cases[] = {
      {json{{"kind", "delay"}, {"shape", {{"delay", 5}}}}, "fault.shape: unknown field \"delay\""},
      {json{{"kind", "delay"}, {"shape", 5}}, "fault.shape: expected an object, got 5"},
      {json{{"kind", "delay"}, {"shape", {{"delay_us", "10ms"}}}},
       "fault.shape.delay_us: expected an integer in 0..18446744073709551615, got string \"10ms\""},
      {json{{"kind", "delay"}, {"shape", {{"jitter_us", -1}}}},
       "fault.shape.jitter_us: expected an integer in 0..18446744073709551615, got -1"},
      {json::parse(R"({"kind":"delay","shape":{"delay_us":9223372036854775808}})"),
       "fault.shape.delay_us: 9223372036854775808 is out of range (at most 9223372036854775807)"},
      {json{{"kind", "delay"}, {"shape", {{"distribution", "gauss"}}}},
       "fault.shape.distribution: invalid distribution \"gauss\": expected uniform, normal, pareto or paretonormal"},
      {json{{"kind", "delay"}, {"shape", {{"distribution", 1}}}}, "fault.shape.distribution: expected a string, got 1"},
      {json{{"kind", "rate"}, {"shape", {{"rate_bps", 1.5}}}},
       "fault.shape.rate_bps: expected an integer in 0..18446744073709551615, got 1.5"},
      {json{{"kind", "rate"}, {"shape", {{"burst_bytes", 4294967296}}}},
       "fault.shape.burst_bytes: 4294967296 is out of range (at most 4294967295)"},
      {json{{"kind", "reorder"}, {"shape", {{"reorder_gap", 4294967296}}}},
       "fault.shape.reorder_gap: 4294967296 is out of range (at most 4294967295)"},
      {json{{"kind", "shape"}, {"shape", {{"loss_percent", "5"}}}},
       "fault.shape.loss_percent: expected a number, got string \"5\""},
      {json{{"kind", "delay"}, {"replace_root", "yes"}}, "fault.replace_root: expected a boolean, got string \"yes\""},
      {json{{"kind", "matrix"}, {"pairs", json::object()}}, "fault.pairs: expected an array, got an object"},
      {json{{"kind", "matrix"}, {"sides", sides}, {"pairs", {{{"from", "eu"}, {"to", "us"}, {"delay_us", 1}}}}},
       "fault.pairs[0]: unknown field \"delay_us\""},
      {json{{"kind", "matrix"}, {"sides", sides}, {"pairs", {{{"to", "us"}}}}},
       "fault.pairs[0]: missing field \"from\" (a side name)"},
      {json{{"kind", "matrix"}, {"sides", sides}, {"pairs", {{{"from", "eu"}, {"to", "mars"}}}}},
       "fault.pairs[0].to: no side named \"mars\" (sides: eu, us)"},
      {json{{"kind", "matrix"}, {"sides", sides}, {"pairs", {{{"from", 0}, {"to", "us"}}}}},
       "fault.pairs[0].from: expected a string, got 0"},
      {json{{"kind", "matrix"}, {"pairs", {{{"from", "s1"}, {"to", "s2"}}}}},
       "fault.pairs[0].from: no side named \"s1\" (the fault has no sides)"},
      {json{{"kind", "matrix"}, {"sides", sides}, {"pairs", {{{"from", "eu"}, {"to", "us"}, {"shape", {{"rate", 1}}}}}}},
       "fault.pairs[0].shape: unknown field \"rate\""},
  };
  for (const auto& [j, want] : cases) {
    auto r = proto::fault_spec_from_json(j);
    ASSERT_FALSE(r.ok()) << j.dump();
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_EQ(r.error().message, want) << j.dump();
  }
}

TEST(ShapingJson, PairPastTheSidesNeverFindsASide) {
  FaultSpec m = Matrix();
  m.pairs[0].to = 7;  // invalid; encoded as "7", which no side can be called
  const json j = proto::fault_spec_to_json(m);
  EXPECT_EQ(j.at("pairs").at(0).at("to"), "7");
  auto r = proto::fault_spec_from_json(j);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "fault.pairs[0].to: no side named \"7\" (sides: eu, us, ap)");
}

TEST(ShapingJson, ProfileHelpers) {
  const ShapeProfile p = everything_shape().shape;
  auto back = proto::shape_profile_from_json(proto::shape_profile_to_json(p), "x");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, p);
  auto bad = proto::shape_profile_from_json(json{{"nope", 1}}, "fault.spec.shape");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "fault.spec.shape: unknown field \"nope\"");
}

// ---------------------------------------------------------------- faultctl commands

cli::Invocation parse_ok(std::vector<std::string> args, const cli::ReadFile& read = {}) {
  auto r = cli::parse_args(args, nullptr, read);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : cli::Invocation{};
}

std::string parse_err(std::vector<std::string> args, const cli::ReadFile& read = {}) {
  auto r = cli::parse_args(args, nullptr, read);
  EXPECT_FALSE(r.ok()) << "accepted: " << (args.empty() ? "" : args[0]);
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  return r.error().message;
}

TEST(CliShaping, Delay) {
  auto inv = parse_ok({"delay", "100ms", "--jitter", "10ms", "--correlation", "25%", "--distribution", "normal",
                       "--dst", "10.0.2.0/24", "--for", "2m", "--replace-root"});
  ASSERT_TRUE(inv.fault.has_value());
  const FaultSpec& f = *inv.fault;
  EXPECT_EQ(f.kind, FaultKind::delay);
  EXPECT_EQ(f.shape.delay, 100ms);
  EXPECT_EQ(f.shape.jitter, 10ms);
  EXPECT_EQ(f.shape.delay_correlation, 25.0);
  EXPECT_EQ(f.shape.distribution, Distribution::normal);
  EXPECT_TRUE(f.replace_root);
  EXPECT_EQ(f.match.direction, Direction::egress);  // the shaping default
  EXPECT_EQ(f.match.dst, std::vector<core::Cidr>{C("10.0.2.0/24")});
  EXPECT_EQ(f.duration, 2min);
  EXPECT_EQ(f.targets.size(), 1u);  // validated

  EXPECT_EQ(parse_ok({"delay", "0.5ms"}).fault->shape.delay, 500us);
  EXPECT_FALSE(parse_ok({"delay", "1ms"}).fault->replace_root);
  EXPECT_EQ(parse_ok({"delay", "1ms", "--direction", "both"}).fault->match.direction, Direction::both);
  EXPECT_EQ(parse_ok({"delay", "1ms", "--direction", "ingress"}).fault->match.direction, Direction::ingress);
  // Loss shares the egress default (judged once per path); partition keeps both.
  EXPECT_EQ(parse_ok({"loss", "5"}).fault->match.direction, Direction::egress);
  EXPECT_EQ(parse_ok({"partition", "--side", "10.0.0.1", "--side", "10.0.0.2"}).fault->match.direction,
            Direction::both);
}

TEST(CliShaping, RateCorruptDuplicateReorder) {
  auto rate = parse_ok({"rate", "10mbit", "--burst", "32kb"});
  EXPECT_EQ(rate.fault->kind, FaultKind::rate);
  EXPECT_EQ(rate.fault->shape.rate_bps, 10000000u);
  EXPECT_EQ(rate.fault->shape.burst_bytes, 32768u);
  EXPECT_EQ(parse_ok({"rate", "10mbps"}).fault->shape.rate_bps, 80000000u);  // bytes per second, as tc

  auto corrupt = parse_ok({"corrupt", "1%"});
  EXPECT_EQ(corrupt.fault->kind, FaultKind::corrupt);
  EXPECT_EQ(corrupt.fault->shape.corrupt_percent, 1.0);
  auto dup = parse_ok({"duplicate", "5", "--proto", "udp"});
  EXPECT_EQ(dup.fault->kind, FaultKind::duplicate);
  EXPECT_EQ(dup.fault->shape.duplicate_percent, 5.0);
  EXPECT_EQ(dup.fault->match.proto, core::Proto::udp);

  auto reorder = parse_ok({"reorder", "25", "--delay", "10ms", "--gap", "5"});
  EXPECT_EQ(reorder.fault->kind, FaultKind::reorder);
  EXPECT_EQ(reorder.fault->shape.reorder_percent, 25.0);
  EXPECT_EQ(reorder.fault->shape.delay, 10ms);
  EXPECT_EQ(reorder.fault->shape.reorder_gap, 5u);
}

TEST(CliShaping, ShapeTakesEveryOption) {
  auto inv = parse_ok({"shape", "--delay", "40ms", "--jitter", "5ms", "--correlation", "10", "--distribution",
                       "pareto", "--rate", "20mbit", "--burst", "64k", "--loss", "0.5", "--loss-correlation", "25",
                       "--corrupt", "0.1", "--duplicate", "1", "--reorder", "2", "--gap", "3"});
  ASSERT_TRUE(inv.fault.has_value());
  const ShapeProfile& p = inv.fault->shape;
  EXPECT_EQ(inv.fault->kind, FaultKind::shape);
  EXPECT_EQ(p.delay, 40ms);
  EXPECT_EQ(p.jitter, 5ms);
  EXPECT_EQ(p.delay_correlation, 10.0);
  EXPECT_EQ(p.distribution, Distribution::pareto);
  EXPECT_EQ(p.rate_bps, 20000000u);
  EXPECT_EQ(p.burst_bytes, 65536u);
  EXPECT_EQ(p.loss_percent, 0.5);
  EXPECT_EQ(p.loss_correlation, 25.0);
  EXPECT_EQ(p.corrupt_percent, 0.1);
  EXPECT_EQ(p.duplicate_percent, 1.0);
  EXPECT_EQ(p.reorder_percent, 2.0);
  EXPECT_EQ(p.reorder_gap, 3u);
  EXPECT_EQ(inv.fault->loss_percent, 0.0);  // the fault-wide loss is the loss kind's
}

TEST(CliShaping, RequestCarriesTheSpec) {
  auto inv = parse_ok({"delay", "100ms", "--jitter", "1ms", "--name", "slow"});
  const cli::Call c = cli::command_call(inv);
  EXPECT_EQ(c.op, "apply");
  const json& f = c.params.at("fault");
  EXPECT_EQ(f.at("kind"), "delay");
  EXPECT_EQ(f.at("shape").at("delay_us"), 100000);
  EXPECT_EQ(f.at("shape").at("jitter_us"), 1000);
  EXPECT_EQ(f.at("match").at("direction"), "egress");
  auto back = proto::fault_spec_from_json(f);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_shaping(*inv.fault, *back);
}

TEST(CliShaping, UsageErrors) {
  const std::pair<std::vector<std::string>, std::string> exact[] = {
      {{"delay"}, "delay: missing DURATION\nTry 'faultctl delay --help'."},
      {{"delay", "1ms", "2ms"}, "delay: unexpected argument \"2ms\"\nTry 'faultctl delay --help'."},
      {{"rate"}, "rate: missing RATE\nTry 'faultctl rate --help'."},
      {{"corrupt"}, "corrupt: missing PERCENT\nTry 'faultctl corrupt --help'."},
      {{"reorder", "25"},
       "reorder: missing --delay DURATION (netem reorders by sending some packets at once while the rest wait the "
       "delay)\nTry 'faultctl reorder --help'."},
      {{"shape", "10ms"},
       "shape: unexpected argument \"10ms\" (every effect is an option, like --delay 10ms)\nTry 'faultctl shape "
       "--help'."},
      {{"matrix"}, "matrix: missing FILE\nTry 'faultctl matrix --help'."},
      {{"delay", "10ms", "--rate", "1mbit"}, "delay: unrecognised option '--rate'\nTry 'faultctl delay --help'."},
      {{"rate", "1mbit", "--jitter", "1ms"}, "rate: unrecognised option '--jitter'\nTry 'faultctl rate --help'."},
      {{"corrupt", "1", "--delay", "1ms"}, "corrupt: unrecognised option '--delay'\nTry 'faultctl corrupt --help'."},
      {{"matrix", "m.yaml", "--src", "10.0.0.0/8"},
       "matrix: unrecognised option '--src'\nTry 'faultctl matrix --help'."},
      {{"loss", "30", "--replace-root"}, "loss: unrecognised option '--replace-root'\nTry 'faultctl loss --help'."},
      {{"delay", "1ms", "--seed", "1"}, "delay: unrecognised option '--seed'\nTry 'faultctl delay --help'."},
      {{"matrix", "m.yaml"}, "matrix: this caller cannot read files"},
  };
  for (const auto& [args, msg] : exact) EXPECT_EQ(parse_err(args), msg);
}

TEST(CliShaping, ValueErrorsNameTheOption) {
  const std::pair<std::vector<std::string>, std::string> exact[] = {
      {{"delay", "5"}, "DURATION: invalid duration \"5\": missing unit (us, ms, s, m, h)"},
      {{"delay", "0ms"}, "DURATION: a delay fault needs a delay above 0 (got 0us)"},
      {{"delay", "61s"}, "DURATION: 1m1s is above the maximum 1m"},
      {{"delay", "10ms", "--jitter", "20ms"},
       "--jitter: 20ms is above the delay 10ms; netem would clip the negative delays to 0, which skews the "
       "distribution and raises the mean"},
      {{"delay", "10ms", "--correlation", "5"}, "--correlation: needs jitter: it correlates the random part of the delay"},
      {{"delay", "10ms", "--distribution", "gauss"},
       "--distribution: invalid distribution \"gauss\": expected uniform, normal, pareto or paretonormal"},
      {{"rate", "10Mbit"}, "RATE: invalid rate \"10Mbit\": unknown unit \"Mbit\"; units are lower case: \"mbit\""},
      {{"rate", "1bit"}, "RATE: 1bit is below the minimum 8kbit"},
      {{"rate", "1mbit", "--burst", "1000"},
       "--burst: 1000 bytes is below 1500, one full-size Ethernet frame, which could then never be sent whole"},
      {{"rate", "1mbit", "--burst", "1kbit"},
       "--burst: invalid size \"1kbit\": unknown unit \"kbit\"; expected one of (b, k, kb, kib, m, mb, mib, g, gb, gib)"},
      {{"corrupt", "0"}, "PERCENT: a corrupt fault needs a percentage above 0 (got 0)"},
      {{"duplicate", "101"}, "PERCENT: invalid percent \"101\": must be between 0 and 100"},
      {{"reorder", "25", "--delay", "5"}, "--delay: invalid duration \"5\": missing unit (us, ms, s, m, h)"},
      {{"reorder", "25", "--delay", "1ms", "--gap", "99999999999"},
       "--gap: invalid gap \"99999999999\": at most 4294967295"},
      {{"reorder", "25", "--delay", "1ms", "--gap", "x"},
       "--gap: invalid number \"x\": expected decimal digits, or 0x followed by hex digits"},
      {{"shape", "--delay", "1ms", "--gap", "5"}, "--gap: needs reorder_percent above 0"},
      {{"shape", "--delay", "1ms", "--loss-correlation", "5"}, "--loss-correlation: needs loss_percent above 0"},
      {{"shape", "--rate", "1bit"}, "--rate: 1bit is below the minimum 8kbit"},
      {{"shape", "--burst", "32kb", "--delay", "1ms"},
       "--burst: needs a rate: the burst is what the rate limit lets through at once"},
      {{"shape", "--reorder", "5"},
       "--reorder: needs a delay: netem reorders by sending some packets at once while the rest wait the delay"},
      {{"shape", "--loss", "x"}, "--loss: invalid percent \"x\": expected a number from 0 to 100, like 30, 0.5 or 12.25%"},
      {{"shape"}, "shape: a shape fault needs at least one effect (delay, rate, loss, corrupt, duplicate or reorder)"},
  };
  for (const auto& [args, msg] : exact) EXPECT_EQ(parse_err(args), msg);
}

TEST(CliShaping, HelpSaysDirectionAndNetem) {
  for (const char* cmd : {"delay", "corrupt", "duplicate", "reorder"}) {
    const std::string h = parse_ok({cmd, "--help"}).help_text;
    EXPECT_TRUE(contains(h, "without --direction they shape egress only")) << cmd;
    EXPECT_TRUE(contains(h, "Needs netem in the kernel (CONFIG_NET_SCH_NETEM); rate and loss work without it."))
        << cmd;
    EXPECT_TRUE(contains(h, "ingress, egress or both (default egress)")) << cmd;
    EXPECT_TRUE(contains(h, "--replace-root")) << cmd;
    EXPECT_TRUE(contains(h, "Example")) << cmd;
  }
  const std::string rate = parse_ok({"rate", "-h"}).help_text;
  EXPECT_TRUE(contains(rate, "Works without netem"));
  EXPECT_TRUE(contains(rate, "10mbps is 80mbit"));
  for (const char* cmd : {"shape", "matrix"}) {
    const std::string h = parse_ok({cmd, "--help"}).help_text;
    EXPECT_TRUE(contains(h, "(CONFIG_NET_SCH_NETEM); rate and loss work without it.")) << cmd;
    EXPECT_TRUE(contains(h, "egress only")) << cmd;
  }
  const std::string matrix = parse_ok({"matrix", "--help"}).help_text;
  EXPECT_TRUE(contains(matrix, "symmetric: true"));
  EXPECT_TRUE(contains(matrix, "\"-\" reads stdin"));
  EXPECT_FALSE(contains(matrix, "--src CIDRS"));
  EXPECT_TRUE(contains(matrix, "--proto PROTO"));
  const std::string loss = parse_ok({"loss", "--help"}).help_text;
  EXPECT_TRUE(contains(loss, "ingress, egress or both (default egress)"));
  EXPECT_TRUE(contains(loss, "without --direction it drops on egress only"));
  EXPECT_TRUE(contains(loss, "(30 % becomes 51 %)"));
  EXPECT_FALSE(contains(loss, "--replace-root"));
  EXPECT_TRUE(contains(parse_ok({"partition", "--help"}).help_text, "ingress, egress or both (default both)"));
}

// ---------------------------------------------------------------- the matrix file

constexpr const char* kExample = R"(sides:
  eu: [10.200.1.0/24, 10.200.9.7]
  us: [10.200.2.0/24]
  ap: 10.200.3.0/24,10.200.4.0/24
pairs:
  - {from: eu, to: us, delay: 80ms, jitter: 5ms, rate: 100mbit, loss: 0.1}
  - {from: us, to: eu, delay: 80ms, symmetric: false}
  - {from: eu, to: ap, delay: 150ms, symmetric: true}
)";

cli::MatrixFile matrix_ok(std::string_view text) {
  auto r = cli::parse_matrix_file(text, "m.yaml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : cli::MatrixFile{};
}

std::string matrix_err(std::string_view text) { return error_of(cli::parse_matrix_file(text, "m.yaml")); }

void expect_example(const cli::MatrixFile& m) {
  ASSERT_EQ(m.sides.size(), 3u);
  EXPECT_EQ(m.sides[0].name, "eu");
  EXPECT_EQ(m.sides[1].name, "us");
  EXPECT_EQ(m.sides[2].name, "ap");
  EXPECT_EQ(m.sides[0].cidrs, (std::vector<core::Cidr>{C("10.200.1.0/24"), C("10.200.9.7")}));
  EXPECT_EQ(m.sides[2].cidrs, (std::vector<core::Cidr>{C("10.200.3.0/24"), C("10.200.4.0/24")}));
  ASSERT_EQ(m.pairs.size(), 4u);  // the symmetric pair adds ap -> eu
  ShapeProfile eu_us;
  eu_us.delay = 80ms;
  eu_us.jitter = 5ms;
  eu_us.rate_bps = 100000000;
  eu_us.loss_percent = 0.1;
  ShapeProfile d80, d150;
  d80.delay = 80ms;
  d150.delay = 150ms;
  EXPECT_EQ(m.pairs[0], (MatrixPair{0, 1, eu_us}));
  EXPECT_EQ(m.pairs[1], (MatrixPair{1, 0, d80}));
  EXPECT_EQ(m.pairs[2], (MatrixPair{0, 2, d150}));
  EXPECT_EQ(m.pairs[3], (MatrixPair{2, 0, d150}));
}

TEST(MatrixFile, YamlExample) { expect_example(matrix_ok(kExample)); }

TEST(MatrixFile, ListOfSidesAndBlockStyle) {
  expect_example(matrix_ok(R"(
sides:
  - name: eu
    cidrs:
      - 10.200.1.0/24
      - 10.200.9.7
  - {name: us, cidrs: [10.200.2.0/24]}
  - name: ap
    cidrs: "10.200.3.0/24,10.200.4.0/24"
pairs:
  - from: eu
    to: us
    delay: 80ms
    jitter: 5ms
    rate: 100mbit
    loss: 0.1
  - {from: us, to: eu, delay: 80ms}
  - {from: eu, to: ap, delay: 150ms, symmetric: true}
)"));
}

TEST(MatrixFile, JsonIsYaml) {
  const json j = json::parse(R"({
    "sides": {"eu": ["10.200.1.0/24", "10.200.9.7"], "us": ["10.200.2.0/24"], "ap": "10.200.3.0/24,10.200.4.0/24"},
    "pairs": [{"from": "eu", "to": "us", "delay": "80ms", "jitter": "5ms", "rate": "100mbit", "loss": 0.1},
              {"from": "us", "to": "eu", "delay": "80ms", "symmetric": false},
              {"from": "eu", "to": "ap", "delay": "150ms", "symmetric": true}]})");
  // nlohmann keeps object members sorted, so the sides come out as ap, eu, us: check by name.
  for (const std::string& text : {j.dump(), j.dump(2)}) {
    auto m = matrix_ok(text);
    ASSERT_EQ(m.sides.size(), 3u);
    std::map<std::string, std::vector<core::Cidr>> by_name;
    for (const auto& s : m.sides) by_name[s.name] = s.cidrs;
    EXPECT_EQ(by_name["eu"], (std::vector<core::Cidr>{C("10.200.1.0/24"), C("10.200.9.7")}));
    EXPECT_EQ(by_name["ap"].size(), 2u);
    EXPECT_EQ(m.pairs.size(), 4u);
  }
  // Written by hand, member order is kept.
  expect_example(matrix_ok(R"({"sides": {"eu": ["10.200.1.0/24", "10.200.9.7"], "us": ["10.200.2.0/24"],
      "ap": "10.200.3.0/24,10.200.4.0/24"},
    "pairs": [{"from": "eu", "to": "us", "delay": "80ms", "jitter": "5ms", "rate": "100mbit", "loss": 0.1},
              {"from": "us", "to": "eu", "delay": "80ms"},
              {"from": "eu", "to": "ap", "delay": "150ms", "symmetric": true}]})"));
}

TEST(MatrixFile, EveryPairKey) {
  auto m = matrix_ok(R"(sides: {a: [10.0.0.1], b: ["fd00::/64"]}
pairs:
  - {from: a, to: b, delay: 10ms, jitter: 1ms, correlation: 25, distribution: normal, rate: 1mbit, burst: 32kb,
     loss: 1%, loss-correlation: 10, corrupt: 0.5, duplicate: 2, reorder: 3, gap: 4}
)");
  ASSERT_EQ(m.pairs.size(), 1u);
  const ShapeProfile& p = m.pairs[0].profile;
  EXPECT_EQ(p.delay, 10ms);
  EXPECT_EQ(p.jitter, 1ms);
  EXPECT_EQ(p.delay_correlation, 25.0);
  EXPECT_EQ(p.distribution, Distribution::normal);
  EXPECT_EQ(p.rate_bps, 1000000u);
  EXPECT_EQ(p.burst_bytes, 32768u);
  EXPECT_EQ(p.loss_percent, 1.0);
  EXPECT_EQ(p.loss_correlation, 10.0);
  EXPECT_EQ(p.corrupt_percent, 0.5);
  EXPECT_EQ(p.duplicate_percent, 2.0);
  EXPECT_EQ(p.reorder_percent, 3.0);
  EXPECT_EQ(p.reorder_gap, 4u);
  EXPECT_EQ(m.sides[1].cidrs, std::vector<core::Cidr>{C("fd00::/64")});
}

TEST(MatrixFile, DuplicateAddressesAreDroppedOrderKept) {
  auto m = matrix_ok("sides: {a: [10.0.0.2, 10.0.0.1, 10.0.0.2/32], b: 10.1.0.0/16}\npairs: [{from: a, to: b, loss: 1}]\n");
  EXPECT_EQ(m.sides[0].cidrs, (std::vector<core::Cidr>{C("10.0.0.2"), C("10.0.0.1")}));
}

TEST(MatrixFile, ErrorsCarryFileAndLine) {
  const std::pair<std::string, std::string> cases[] = {
      {std::string(kExample) + "  - {from: us, to: ap, dealy: 3ms}\n",
       "m.yaml:9: pairs[3]: unknown key \"dealy\"; expected from, to, symmetric, delay, jitter, correlation, "
       "distribution, rate, burst, loss, loss-correlation, corrupt, duplicate, reorder or gap"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: mars, delay: 1ms}\n",
       "m.yaml:3: pairs[0].to: no side named \"mars\" (sides: eu, us)"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, delay: 80}\n",
       "m.yaml:3: pairs[0].delay: invalid duration \"80\": missing unit (us, ms, s, m, h)"},
      {"sides:\n  eu:\n    - 10.0.0.0/24\n    - 10.0.0.300\n  us: [10.0.1.0/24]\npairs: [{from: eu, to: us, loss: 1}]\n",
       "m.yaml:4: sides.eu[1]: invalid CIDR \"10.0.0.300\": bad IPv4 address"},
      {"sides:\n  eu: 10.0.0.0/24,10.0.0.1/8\n  us: [10.0.1.0/24]\npairs: [{from: eu, to: us, loss: 1}]\n",
       "m.yaml:2: sides.eu: invalid CIDR \"10.0.0.1/8\": host bits set; the network is 10.0.0.0/8"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, delay: 1ms, symmetric: true}\n"
       "  - {from: us, to: eu, delay: 2ms}\n",
       "m.yaml:4: pairs[1]: us -> eu is already given by pairs[0] (line 3); each ordered pair takes one profile"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: eu, delay: 1ms}\n",
       "m.yaml:3: pairs[0]: from and to are both \"eu\"; traffic within a side is not a pair"},
      {"sides: {eu: [10.0.0.0/24]}\npairs: [{from: eu, to: eu, delay: 1ms}]\n",
       "m.yaml:1: sides: a matrix needs at least 2 sides (got 1)"},
      {"sides:\n  eu: [10.0.0.0/24]\n  us: [10.0.1.0/24]\n  eu: [10.0.2.0/24]\npairs: [{from: eu, to: us, loss: 1}]\n",
       "m.yaml:4: sides.eu: side \"eu\" given twice (first on line 2)"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npair: []\n",
       "m.yaml:2: top level: unknown key \"pair\"; expected sides and pairs"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\n", "m.yaml: missing key \"pairs\""},
      {"", "m.yaml: empty; expected a map with sides and pairs"},
      {"- 1\n- 2\n", "m.yaml:1: expected a map with sides and pairs, got a list"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs: []\n", "m.yaml:2: pairs: a matrix needs at least 1 pair"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, delay: 5ms, jitter: 10ms}\n",
       "m.yaml:3: pairs[0].jitter: 10ms is above the delay 5ms; netem would clip the negative delays to 0, which "
       "skews the distribution and raises the mean"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, delay: 5ms, loss-correlation: 5}\n",
       "m.yaml:3: pairs[0].loss-correlation: needs loss_percent above 0"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, loss: 1, symmetric: maybe}\n",
       "m.yaml:3: pairs[0].symmetric: expected true or false, got \"maybe\""},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us}\n",
       "m.yaml:3: pairs[0]: eu -> us has no effect; give it a delay, rate, loss, corrupt, duplicate or reorder"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, delay: [1ms]}\n",
       "m.yaml:3: pairs[0].delay: expected a value, got a list"},
      {"sides: {eu: [], us: [10.0.1.0/24]}\npairs: [{from: eu, to: us, loss: 1}]\n", "m.yaml:1: sides.eu: no addresses"},
      {"sides: {eu: [{a: 1}], us: [10.0.1.0/24]}\npairs: [{from: eu, to: us, loss: 1}]\n",
       "m.yaml:1: sides.eu[0]: expected a CIDR, got a map (in [...] lists, quote IPv6 addresses: \"fd00::\")"},
      {"sides:\n  eu: [fd00::, 10.0.0.1]\n  us: [10.0.1.0/24]\npairs: [{from: eu, to: us, loss: 1}]\n",
       "m.yaml:2: sides.eu[0]: expected a CIDR, got a map (in [...] lists, quote IPv6 addresses: \"fd00::\")"},
      {"sides:\n  eu: [\"fd00::\", \"::1\"]\n  us: [10.0.1.0/24]\npairs: [{from: eu, to: us, loss: 1}, "
       "{from: us, to: eu, rate: 0.5kbit}]\n",
       "m.yaml:4: pairs[1].rate: 500bit is below the minimum 8kbit"},
      {"sides: {\"a b\": [10.0.0.1], us: [10.0.1.0/24]}\npairs: [{from: us, to: a b, loss: 1}]\n",
       "m.yaml:1: sides.a b: invalid side name \"a b\": character \" \" at position 2 is not allowed; use letters, "
       "digits, '_', '.' and '-'"},
      {"sides:\n  - {name: eu, cidr: [10.0.0.0/24]}\npairs: []\n",
       "m.yaml:2: sides[0]: unknown key \"cidr\"; expected name and cidrs"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, gap: 4294967296, reorder: 1, "
       "delay: 1ms}\n",
       "m.yaml:3: pairs[0].gap: 4294967296 is above 4294967295"},
      {"sides: {eu: [10.0.0.0/24], us: [10.0.1.0/24]}\npairs:\n  - {from: eu, to: us, loss: 1, loss: 2}\n",
       "m.yaml:3: pairs[0]: key \"loss\" given twice"},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(matrix_err(text), want);
  }
}

TEST(MatrixFile, SyntaxErrorsHaveLineAndColumn) {
  const std::string msg = matrix_err("sides: {eu: [10.0.0.0/24]\npairs: [\n");
  EXPECT_TRUE(starts_with(msg, "m.yaml:")) << msg;
  EXPECT_TRUE(contains(msg, ": not valid YAML or JSON: ")) << msg;
  const std::string tab = matrix_err("sides:\n\teu: [10.0.0.0/24]\n");
  EXPECT_TRUE(starts_with(tab, "m.yaml:2:")) << tab;
}

// 3 sides of 10,000 host addresses each, in both list styles. On the 2-core development VM the
// whole test (both parses, validate, encode) takes about 0.25 s in RelWithDebInfo; yaml-cpp
// builds a node per address. No timing assertion: it must simply work.
TEST(MatrixFile, TenThousandAddressesPerSide) {
  auto addr = [](int side, int i) {
    return "10." + std::to_string(side) + "." + std::to_string(i / 256) + "." + std::to_string(i % 256);
  };
  std::string block = "sides:\n";
  for (int side = 0; side < 3; ++side) {
    block += "  s" + std::to_string(side) + ":\n";
    for (int i = 0; i < 10000; ++i) block += "    - " + addr(side, i) + "\n";
  }
  block += "pairs:\n  - {from: s0, to: s1, delay: 10ms, symmetric: true}\n  - {from: s0, to: s2, rate: 1mbit}\n";
  auto m = matrix_ok(block);
  ASSERT_EQ(m.sides.size(), 3u);
  for (const auto& s : m.sides) EXPECT_EQ(s.cidrs.size(), 10000u) << s.name;
  EXPECT_EQ(m.sides[2].cidrs.back(), C("10.2.39.15"));
  EXPECT_EQ(m.pairs.size(), 3u);

  std::string flow = "sides:\n";
  for (int side = 0; side < 3; ++side) {
    flow += "  s" + std::to_string(side) + ": ";
    for (int i = 0; i < 10000; ++i) flow += (i ? "," : "") + addr(side, i);
    flow += "\n";
  }
  flow += "pairs: [{from: s0, to: s1, delay: 10ms}]\n";
  auto f = matrix_ok(flow);
  ASSERT_EQ(f.sides.size(), 3u);
  for (const auto& s : f.sides) EXPECT_EQ(s.cidrs.size(), 10000u) << s.name;

  // And the whole fault, as faultctl builds it, validates and encodes.
  FaultSpec spec;
  spec.kind = FaultKind::matrix;
  spec.sides = m.sides;
  spec.pairs = m.pairs;
  const Status st = core::validate(spec);
  ASSERT_TRUE(st.ok()) << st.error().message;
  const std::string line = proto::fault_spec_to_json(spec).dump();
  EXPECT_LT(line.size(), proto::kMaxLine);
}

TEST(CliShaping, MatrixReadsTheFileThroughTheCaller) {
  std::vector<std::string> asked;
  const cli::ReadFile reader = [&](const std::string& path) -> Result<std::string> {
    asked.push_back(path);
    if (path == "missing.yaml") return Error::sys(Errc::invalid_argument, "cannot open missing.yaml", ENOENT);
    return std::string(kExample);
  };
  auto inv = parse_ok({"matrix", "wan.yaml", "--for", "30m", "--replace-root", "--name", "wan"}, reader);
  ASSERT_TRUE(inv.fault.has_value());
  EXPECT_EQ(asked, std::vector<std::string>{"wan.yaml"});
  const FaultSpec& f = *inv.fault;
  EXPECT_EQ(f.kind, FaultKind::matrix);
  EXPECT_EQ(f.match.direction, Direction::egress);
  EXPECT_TRUE(f.replace_root);
  EXPECT_EQ(f.duration, 30min);
  cli::MatrixFile m{f.sides, f.pairs};
  expect_example(m);
  EXPECT_EQ(f.shape, ShapeProfile{});

  EXPECT_EQ(parse_err({"matrix", "missing.yaml"}, reader), "matrix: cannot open missing.yaml: No such file or directory");
  // stdin is named as such in errors.
  const cli::ReadFile bad = [](const std::string&) -> Result<std::string> { return std::string("sides: 5\npairs: []\n"); };
  EXPECT_EQ(parse_err({"matrix", "-"}, bad),
            "matrix: <stdin>:1: sides: expected a map of name: CIDRs, or a list of {name, cidrs}; got a scalar");
  EXPECT_EQ(parse_err({"matrix", "a.yaml", "b.yaml"}, reader),
            "matrix: unexpected argument \"b.yaml\"\nTry 'faultctl matrix --help'.");
}

// ---------------------------------------------------------------- output

json status_of(const FaultSpec& spec, uint64_t id, const std::string& name) {
  json f = {{"id", id},
            {"name", name},
            {"kind", core::kind_name(spec.kind)},
            {"state", "active"},
            {"expires_in_ms", 60000},
            {"duration_ms", 60000},
            {"targets", {"host"}},
            {"counters", {{"matched", 10}, {"dropped", 1}, {"exempted", 0}, {"shaped", 9}}},
            {"spec", proto::fault_spec_to_json(spec)}};
  return f;
}

TEST(ShapingFormat, TableGainsDetailsOnlyForShaping) {
  FaultSpec d = Shaping(FaultKind::delay);
  d.shape.jitter = 10ms;
  FaultSpec loss;
  loss.kind = FaultKind::loss;
  loss.loss_percent = 5;
  const json faults = json{status_of(d, 3, "slow"), status_of(Matrix(), 4, "wan"), status_of(loss, 5, "")};
  EXPECT_EQ(cli::format_fault_table(faults),
            "ID  NAME  KIND    TARGETS  EXPIRES  MATCHED  DROPPED  EXEMPT  SHAPED  DETAILS\n"
            " 3  slow  delay   host     1m            10        1       0       9  delay 100ms jitter 10ms\n"
            " 4  wan   matrix  host     1m            10        1       0       9  3 sides, 3 pairs\n"
            " 5  -     loss    host     1m            10        1       0       -  -\n");
  EXPECT_EQ(cli::format_fault_table(json{status_of(loss, 5, "")}),
            "ID  NAME  KIND  TARGETS  EXPIRES  MATCHED  DROPPED  EXEMPT\n"
            " 5  -     loss  host     1m            10        1       0\n");
  // A profile that does not decode (a newer daemon) shows as "-", never throws.
  json odd = status_of(d, 6, "");
  odd["spec"]["shape"]["warp"] = 9;
  EXPECT_TRUE(contains(cli::format_fault_table(json{odd}), "  -\n"));
}

TEST(ShapingFormat, DetailShowsProfileOrPairs) {
  FaultSpec d = Shaping(FaultKind::shape);
  d.replace_root = true;
  const std::string one = cli::format_fault_detail(status_of(d, 3, "slow"));
  EXPECT_TRUE(contains(one, "\nprofile:         delay 40ms rate 20mbit\n")) << one;
  EXPECT_TRUE(contains(one, "\nreplace root:    yes\n")) << one;
  EXPECT_TRUE(contains(one, "\ndirection:       egress\n")) << one;
  EXPECT_FALSE(contains(one, "\nsides:")) << one;

  const std::string m = cli::format_fault_detail(status_of(Matrix(), 4, "wan"));
  EXPECT_TRUE(contains(m, "\nsides:           eu = 10.200.1.0/24\n"
                          "                 us = 10.200.2.0/24\n"
                          "                 ap = 10.200.3.0/24\n"))
      << m;
  EXPECT_TRUE(contains(m, "\npairs:           eu -> us: delay 80ms jitter 5ms rate 100mbit loss 0.1%\n"
                          "                 us -> eu: delay 80ms\n"
                          "                 eu -> ap: delay 80ms\n"))
      << m;
  EXPECT_FALSE(contains(m, "\nprofile:")) << m;

  // With the daemon's per-pair counters and classes, both are shown.
  json live = status_of(Matrix(), 4, "wan");
  live["pairs"] = json::array();
  for (int i = 0; i < 3; i++)
    live["pairs"].push_back({{"counters", {{"matched", 7 + i}, {"dropped", 0}, {"exempted", 0}, {"shaped", 7 + i}}}});
  live["per_target"] = {{{"target", "host"}, {"classes", {{{"dev", "eth0"}, {"class", "fa17:2"}}}}}};
  const std::string lm = cli::format_fault_detail(live);
  EXPECT_TRUE(contains(lm, "us -> eu: delay 80ms (matched 8, shaped 8, dropped 0)\n")) << lm;
  EXPECT_TRUE(contains(lm, "\nshaped:          9\n")) << lm;
  EXPECT_TRUE(contains(lm, "\nclasses:         host eth0 class fa17:2\n")) << lm;
}

}  // namespace
}  // namespace fl
