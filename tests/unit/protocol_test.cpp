// Wire protocol v1: envelope parsing, replies, and the FaultSpec codec.
#include "protocol/protocol.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <set>
#include <string>

#include "core/model.h"
#include "core/parse.h"

namespace fl::proto {
namespace {

using core::FaultSpec;
using namespace std::chrono_literals;

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool printable_ascii(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// ---------------------------------------------------------------- parse_request

struct RequestError {
  Errc code;
  std::string message;
  std::optional<uint64_t> id;
};

RequestError request_error(std::string_view line) {
  std::optional<uint64_t> id = 12345;  // must be reset by parse_request
  auto r = parse_request(line, &id);
  EXPECT_FALSE(r.ok()) << "accepted: " << line;
  if (r.ok()) return {Errc::internal, "", id};
  return {r.error().code, r.error().message, id};
}

TEST(ParseRequest, AcceptsEnvelopeAndKeepsWholeBody) {
  std::optional<uint64_t> id;
  auto r = parse_request(R"({"id":7,"op":"hello","version":1})", &id);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, 7u);
  EXPECT_EQ(r->op, "hello");
  EXPECT_EQ(r->body.at("version"), 1);
  EXPECT_EQ(r->body.at("id"), 7);
  EXPECT_EQ(id, 7u);
}

TEST(ParseRequest, AcceptsEveryKnownOp) {
  uint64_t n = 0;
  for (std::string_view op : kOps) {
    auto line = json{{"id", ++n}, {"op", op}}.dump();
    auto r = parse_request(line, nullptr);
    ASSERT_TRUE(r.ok()) << line << ": " << r.error().message;
    EXPECT_EQ(r->op, op);
  }
}

TEST(ParseRequest, IdBoundaries) {
  auto zero = parse_request(R"({"id":0,"op":"list"})", nullptr);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->id, 0u);
  auto max = parse_request(R"({"id":18446744073709551615,"op":"list"})", nullptr);
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->id, std::numeric_limits<uint64_t>::max());
}

TEST(ParseRequest, ToleratesSurroundingWhitespaceAndCrLf) {
  auto r = parse_request(" {\"id\":1,\"op\":\"list\"} \r\n", nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST(ParseRequest, MalformedJson) {
  for (std::string_view line : {"{", "", "not json", R"({"id":1,"op":"list"} trailing)", R"({"id":1,})"}) {
    auto e = request_error(line);
    EXPECT_EQ(e.code, Errc::invalid_request) << line;
    EXPECT_TRUE(starts_with(e.message, "malformed JSON: ")) << e.message;
    // nlohmann's "[json.exception.parse_error.101]" tag is noise for a user.
    EXPECT_EQ(e.message.find("json.exception"), std::string::npos) << e.message;
    EXPECT_EQ(e.id, std::nullopt);
  }
}

TEST(ParseRequest, MalformedJsonMessageIsBoundedAndPrintable) {
  // An unterminated 500 kB string with control and high bytes: the parser echoes the token.
  std::string line = R"({"id":1,"op":")" + std::string(500000, 'a') + "\x01\xc3";
  auto e = request_error(line);
  EXPECT_EQ(e.code, Errc::invalid_request);
  EXPECT_LT(e.message.size(), 400u);
  EXPECT_TRUE(printable_ascii(e.message)) << e.message;
}

TEST(ParseRequest, InvalidUtf8IsInvalidRequestAndReplyStaysValidJson) {
  const std::string line = "{\"id\":3,\"op\":\"hel\xff\xfelo\"}";
  auto e = request_error(line);
  EXPECT_EQ(e.code, Errc::invalid_request);
  EXPECT_TRUE(starts_with(e.message, "malformed JSON: ")) << e.message;
  EXPECT_TRUE(printable_ascii(e.message)) << e.message;
  // The id precedes the bad byte but the line as a whole is not JSON: no id can be trusted.
  EXPECT_EQ(e.id, std::nullopt);
  std::string reply = reply_error(e.id, Error{e.code, e.message});
  auto parsed = json::parse(reply, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << reply;
  EXPECT_TRUE(parsed.at("id").is_null());
  EXPECT_EQ(parsed.at("error").at("code"), "invalid_request");
}

TEST(ParseRequest, NotAnObject) {
  for (auto [line, got] : {std::pair{"[1,2]", "an array"}, std::pair{"5", "an integer"},
                           std::pair{"\"x\"", "a string"}, std::pair{"null", "null"}}) {
    auto e = request_error(line);
    EXPECT_EQ(e.code, Errc::invalid_request);
    EXPECT_EQ(e.message, std::string("request must be a JSON object, got ") + got);
  }
}

TEST(ParseRequest, IdMissing) {
  auto e = request_error(R"({"op":"list"})");
  EXPECT_EQ(e.code, Errc::invalid_request);
  EXPECT_EQ(e.message, "missing \"id\" (a non-negative integer)");
  EXPECT_EQ(e.id, std::nullopt);
}

TEST(ParseRequest, IdNotANonNegativeInteger) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"id":-1,"op":"list"})", "got -1"},
      {R"({"id":1.5,"op":"list"})", "got 1.5"},
      {R"({"id":2.0,"op":"list"})", "got 2.0"},
      {R"({"id":1e3,"op":"list"})", "got 1000.0"},
      // 2^64 does not fit: nlohmann reads it as a double rather than wrapping.
      {R"({"id":18446744073709551616,"op":"list"})", "got 1.8446744073709552e+19"},
      {R"({"id":"7","op":"list"})", "got string \"7\""},
      {R"({"id":true,"op":"list"})", "got true"},
      {R"({"id":null,"op":"list"})", "got null"},
  };
  for (auto [line, got] : cases) {
    auto e = request_error(line);
    EXPECT_EQ(e.code, Errc::invalid_request) << line;
    EXPECT_EQ(e.message, std::string("\"id\" must be an integer in 0..18446744073709551615, ") + got) << line;
    EXPECT_EQ(e.id, std::nullopt) << line;
  }
}

TEST(ParseRequest, OpMissingOrNotStringKeepsId) {
  auto missing = request_error(R"({"id":9})");
  EXPECT_EQ(missing.code, Errc::invalid_request);
  EXPECT_EQ(missing.message, "missing \"op\" (a string)");
  EXPECT_EQ(missing.id, 9u);

  auto number = request_error(R"({"id":10,"op":4})");
  EXPECT_EQ(number.code, Errc::invalid_request);
  EXPECT_EQ(number.message, "\"op\" must be a string, got 4");
  EXPECT_EQ(number.id, 10u);
}

TEST(ParseRequest, UnknownOpListsKnownOnes) {
  auto e = request_error(R"({"id":11,"op":"frob"})");
  EXPECT_EQ(e.code, Errc::unknown_op);
  EXPECT_EQ(e.message, "unknown op \"frob\"; known: hello, apply, list, get, heal, stats, status, reset, events, wait");
  EXPECT_EQ(e.id, 11u);
}

TEST(ParseRequest, OpNamesAreCaseSensitive) {
  EXPECT_EQ(request_error(R"({"id":1,"op":"LIST"})").code, Errc::unknown_op);
}

TEST(ParseRequest, UnknownOpWithHostileNameIsQuotedSafely) {
  auto e = request_error("{\"id\":1,\"op\":\"a\\\"b\\u0001" + std::string(300, 'x') + "\"}");
  EXPECT_EQ(e.code, Errc::unknown_op);
  EXPECT_TRUE(printable_ascii(e.message)) << e.message;
  EXPECT_LT(e.message.size(), 300u);
}

TEST(ParseRequest, LineOverLimit) {
  std::string line = R"({"id":1,"op":"list","pad":")" + std::string(kMaxLine, 'x') + "\"}";
  auto e = request_error(line);
  EXPECT_EQ(e.code, Errc::invalid_request);
  EXPECT_EQ(e.message, "request line is " + std::to_string(line.size()) + " bytes; the limit is " + std::to_string(kMaxLine));
}

TEST(ParseRequest, DeepNestingIsRefused) {
  std::string deep = R"({"id":1,"op":"list","x":)" + std::string(100, '[') + std::string(100, ']') + "}";
  auto e = request_error(deep);
  EXPECT_EQ(e.code, Errc::invalid_request);
  EXPECT_EQ(e.message, "malformed JSON: nested deeper than 32 levels");

  // A whole line of '[' must fail fast without exhausting the stack.
  auto huge = request_error(std::string(kMaxLine, '['));
  EXPECT_EQ(huge.code, Errc::invalid_request);

  std::string ok = R"({"id":1,"op":"list","x":)" + std::string(20, '[') + std::string(20, ']') + "}";
  EXPECT_TRUE(parse_request(ok, nullptr).ok());
}

TEST(ParseRequest, NullIdOutIsAllowedOnErrors) {
  auto r = parse_request(R"({"id":5,"op":"nope"})", nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unknown_op);
}

TEST(Ops, MutatingOnesAreApplyHealAndReset) {
  std::set<std::string_view> mutating;
  for (std::string_view op : kOps) {
    if (op_is_mutating(op)) mutating.insert(op);
  }
  EXPECT_EQ(mutating, (std::set<std::string_view>{"apply", "heal", "reset"}));
  EXPECT_FALSE(op_is_mutating("frob"));
}

// ---------------------------------------------------------------- replies

TEST(Reply, OkEnvelopeIsExact) {
  EXPECT_EQ(reply_ok(7, json{{"protocol", 1}}), R"({"id":7,"ok":true,"result":{"protocol":1}})");
  EXPECT_EQ(reply_ok(std::numeric_limits<uint64_t>::max(), json::array()),
            R"({"id":18446744073709551615,"ok":true,"result":[]})");
}

TEST(Reply, ErrorEnvelopeIsExactWithNullId) {
  EXPECT_EQ(reply_error(std::nullopt, make_error(Errc::invalid_request, "malformed JSON: x")),
            R"({"id":null,"ok":false,"error":{"code":"invalid_request","message":"malformed JSON: x"}})");
  EXPECT_EQ(reply_error(3, make_error(Errc::not_found, "no fault \"web\"")),
            R"({"id":3,"ok":false,"error":{"code":"not_found","message":"no fault \"web\""}})");
}

TEST(Reply, NeverThrowsOnInvalidUtf8) {
  std::string ok, err;
  ASSERT_NO_THROW(ok = reply_ok(1, json{{"name", "bad\xff\xfe"}}));
  ASSERT_NO_THROW(err = reply_error(2, make_error(Errc::internal, "bad\xc3")));
  for (const auto& line : {ok, err}) {
    auto j = json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_NE(line.find("\xef\xbf\xbd"), std::string::npos) << "expected U+FFFD in " << line;
    EXPECT_EQ(line.find('\n'), std::string::npos);
  }
}

TEST(Reply, NoNewlineInsideALine) {
  auto line = reply_error(1, make_error(Errc::internal, "two\nlines"));
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

TEST(ErrcNames, RoundTripEveryCode) {
  for (int i = 0; i <= static_cast<int>(Errc::timeout); ++i) {
    const auto c = static_cast<Errc>(i);
    auto back = errc_from_name(errc_name(c));
    ASSERT_TRUE(back.has_value()) << errc_name(c);
    EXPECT_EQ(*back, c);
  }
  EXPECT_EQ(errc_from_name("no_such_code"), std::nullopt);
  EXPECT_EQ(errc_from_name(""), std::nullopt);
  EXPECT_EQ(errc_from_name("Not_Found"), std::nullopt);
}

TEST(ParseReply, OkReturnsResult) {
  auto r = parse_reply(reply_ok(4, json{{"faults", json::array()}}), 4);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"faults", json::array()}}));
}

TEST(ParseReply, EveryErrorCodeMapsBack) {
  for (int i = 0; i <= static_cast<int>(Errc::timeout); ++i) {
    const auto c = static_cast<Errc>(i);
    auto r = parse_reply(reply_error(8, make_error(c, "because")), 8);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c);
    EXPECT_EQ(r.error().message, "because");
  }
}

TEST(ParseReply, UnknownCodeBecomesInternalKeepingText) {
  auto r = parse_reply(R"({"id":2,"ok":false,"error":{"code":"quota_exceeded","message":"too many"}})", 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_EQ(r.error().message, "quota_exceeded: too many");
}

TEST(ParseReply, NullIdErrorIsAccepted) {
  auto r = parse_reply(reply_error(std::nullopt, make_error(Errc::invalid_request, "malformed JSON: x")), 6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_request);
  EXPECT_EQ(r.error().message, "malformed JSON: x");
}

TEST(ParseReply, RejectsMalformedReplies) {
  const std::pair<const char*, const char*> cases[] = {
      {"garbage", "not JSON"},
      {"[]", "expected an object, got an array"},
      {R"({"id":1,"result":{}})", "\"ok\" missing or not a boolean"},
      {R"({"id":1,"ok":"yes","result":{}})", "\"ok\" missing or not a boolean"},
      {R"({"ok":true,"result":{}})", "\"id\" missing"},
      {R"({"id":2,"ok":true,"result":{}})", "reply id 2 does not match request id 1"},
      {R"({"id":null,"ok":true,"result":{}})", "reply id null does not match request id 1"},
      {R"({"id":1,"ok":true})", "\"result\" missing"},
      {R"({"id":1,"ok":false})", "\"error\" missing or not an object"},
      {R"({"id":1,"ok":false,"error":{"message":"m"}})", "\"error.code\" missing or not a string"},
      {R"({"id":1,"ok":false,"error":{"code":"internal"}})", "\"error.message\" missing or not a string"},
  };
  for (auto [line, what] : cases) {
    auto r = parse_reply(line, 1);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.error().code, Errc::internal) << line;
    EXPECT_EQ(r.error().message, std::string("malformed reply from faultlined: ") + what) << line;
  }
}

// ---------------------------------------------------------------- FaultSpec codec

core::Cidr cidr(std::string_view s) {
  auto r = core::parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : core::Cidr{};
}

void expect_same_spec(const FaultSpec& a, const FaultSpec& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.name, b.name);
  ASSERT_EQ(a.sides.size(), b.sides.size());
  for (size_t i = 0; i < a.sides.size(); ++i) {
    EXPECT_EQ(a.sides[i].name, b.sides[i].name) << i;
    EXPECT_EQ(a.sides[i].cidrs, b.sides[i].cidrs) << i;
  }
  EXPECT_EQ(a.one_way, b.one_way);
  EXPECT_EQ(a.reset, b.reset);
  EXPECT_EQ(a.loss_percent, b.loss_percent);  // exact: JSON numbers must round-trip bit for bit
  EXPECT_EQ(a.correlation_percent, b.correlation_percent);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.match.src, b.match.src);
  EXPECT_EQ(a.match.dst, b.match.dst);
  EXPECT_EQ(a.match.proto, b.match.proto);
  EXPECT_EQ(a.match.sport, b.match.sport);
  EXPECT_EQ(a.match.dport, b.match.dport);
  EXPECT_EQ(a.match.direction, b.match.direction);
  EXPECT_EQ(a.match.new_only, b.match.new_only);
  EXPECT_EQ(a.exempt, b.exempt);
  EXPECT_EQ(a.default_exempt, b.default_exempt);
  EXPECT_EQ(a.targets, b.targets);
  EXPECT_EQ(a.devs, b.devs);
  EXPECT_EQ(a.duration, b.duration);
}

FaultSpec full_partition() {
  FaultSpec s;
  s.kind = core::FaultKind::partition;
  s.name = "split-brain.1";
  s.sides = {{"east", {cidr("10.0.0.0/8"), cidr("192.168.1.7")}},
             {"west", {cidr("fd00::/64")}},
             {"bridge", {cidr("172.16.0.0/12"), cidr("2001:db8::1")}}};
  s.one_way = true;
  s.match.src = {cidr("10.1.0.0/16")};
  s.match.dst = {cidr("10.2.0.0/16"), cidr("fd00:1::/48")};
  s.match.proto = core::Proto::tcp;
  s.match.sport = {80, 80};
  s.match.dport = {1000, 2000};
  s.match.direction = core::Direction::egress;
  s.match.new_only = true;
  s.exempt = {core::Exemption{cidr("10.9.0.0/16"), core::Proto::tcp, 6443},
              core::Exemption{cidr("::/0"), core::Proto::udp, 53},
              core::Exemption{cidr("192.0.2.1"), core::Proto::icmp, 0},
              core::Exemption{cidr("198.51.100.0/24"), core::Proto::all, 0}};
  s.default_exempt = false;
  s.targets = {core::Target{core::Target::Kind::host, ""}, core::Target{core::Target::Kind::netns_name, "pod-a"},
               core::Target{core::Target::Kind::netns_path, "/run/netns/b"},
               core::Target{core::Target::Kind::pid, "4242"}};
  s.devs = {"eth0", "veth1"};
  s.duration = 1234ms;
  return s;
}

FaultSpec full_loss() {
  FaultSpec s;
  s.kind = core::FaultKind::loss;
  s.loss_percent = 100.0 / 3.0;
  s.correlation_percent = 12.5;
  s.seed = std::numeric_limits<uint64_t>::max();
  s.duration = 7 * 24h;
  return s;
}

TEST(FaultSpecJson, EmitsEveryMember) {
  json j = fault_spec_to_json(FaultSpec{});
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  EXPECT_EQ(keys, (std::set<std::string>{"kind", "name", "sides", "one_way", "loss", "match", "exempt",
                                         "default_exempt", "targets", "devs", "duration_ms"}));
  EXPECT_EQ(j.at("loss"), (json{{"percent", 0.0}, {"correlation", 0.0}, {"seed", nullptr}}));
  EXPECT_EQ(j.at("match"), (json{{"src", json::array()},
                                 {"dst", json::array()},
                                 {"proto", "all"},
                                 {"sport", "any"},
                                 {"dport", "any"},
                                 {"direction", "both"},
                                 {"new_only", false}}));
  EXPECT_EQ(j.at("duration_ms"), 300000);
  EXPECT_EQ(j.at("default_exempt"), true);
}

TEST(FaultSpecJson, CanonicalStrings) {
  json j = fault_spec_to_json(full_partition());
  EXPECT_EQ(j.at("sides").at(0), (json{{"name", "east"}, {"cidrs", {"10.0.0.0/8", "192.168.1.7/32"}}}));
  EXPECT_EQ(j.at("sides").at(2).at("cidrs").at(1), "2001:db8::1/128");
  EXPECT_EQ(j.at("match").at("sport"), "80");
  EXPECT_EQ(j.at("match").at("dport"), "1000-2000");
  EXPECT_EQ(j.at("exempt"), (json{"10.9.0.0/16/tcp:6443", "::/0/udp:53", "192.0.2.1/32/icmp", "198.51.100.0/24"}));
  EXPECT_EQ(j.at("targets"), (json{"host", "netns:pod-a", "netns-path:/run/netns/b", "pid:4242"}));
  EXPECT_EQ(j.at("kind"), "partition");
  EXPECT_EQ(j.at("duration_ms"), 1234);
}

TEST(FaultSpecJson, RoundTripsExactly) {
  for (const FaultSpec& spec : {FaultSpec{}, full_partition(), full_loss()}) {
    json j = fault_spec_to_json(spec);
    auto back = fault_spec_from_json(j);
    ASSERT_TRUE(back.ok()) << back.error().message << "\n" << j.dump();
    expect_same_spec(spec, *back);
    EXPECT_EQ(fault_spec_to_json(*back), j);

    // Through text too, as it travels: doubles and the 64-bit seed must survive.
    auto text = fault_spec_from_json(json::parse(j.dump()));
    ASSERT_TRUE(text.ok()) << text.error().message;
    expect_same_spec(spec, *text);
  }
}

TEST(FaultSpecJson, DefaultsForOmittedMembers) {
  auto r = fault_spec_from_json(json{{"kind", "isolate"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  FaultSpec expected;
  expected.kind = core::FaultKind::isolate;
  expect_same_spec(expected, *r);
}

TEST(FaultSpecJson, SeedNullMeansUnsetAndZeroIsASeed) {
  auto unset = fault_spec_from_json(json{{"kind", "loss"}, {"loss", {{"percent", 5}, {"seed", nullptr}}}});
  ASSERT_TRUE(unset.ok()) << unset.error().message;
  EXPECT_FALSE(unset->seed.has_value());
  EXPECT_EQ(unset->loss_percent, 5.0);
  auto zero = fault_spec_from_json(json{{"kind", "loss"}, {"loss", {{"seed", 0}}}});
  ASSERT_TRUE(zero.ok()) << zero.error().message;
  EXPECT_EQ(zero->seed, std::optional<uint64_t>(0));
}

TEST(FaultSpecJson, PortAnyAndNumericFullRangeAreTheSame) {
  auto any = fault_spec_from_json(json{{"kind", "loss"}, {"match", {{"sport", "any"}}}});
  ASSERT_TRUE(any.ok()) << any.error().message;
  EXPECT_TRUE(any->match.sport.any());
  auto range = fault_spec_from_json(json{{"kind", "loss"}, {"match", {{"dport", "0-65535"}}}});
  ASSERT_TRUE(range.ok()) << range.error().message;
  EXPECT_TRUE(range->match.dport.any());
}

Error spec_error(const json& j) {
  auto r = fault_spec_from_json(j);
  EXPECT_FALSE(r.ok()) << "accepted: " << j.dump();
  return r.ok() ? Error{} : r.error();
}

TEST(FaultSpecJson, NotAnObject) {
  auto e = spec_error(json::array());
  EXPECT_EQ(e.code, Errc::invalid_argument);
  EXPECT_EQ(e.message, "fault: expected an object, got an array");
}

TEST(FaultSpecJson, KindIsRequired) {
  auto e = spec_error(json{{"name", "x"}});
  EXPECT_EQ(e.code, Errc::invalid_argument);
  EXPECT_EQ(e.message,
            "fault: missing field \"kind\" (partition, loss, isolate, delay, rate, corrupt, duplicate, reorder, "
            "shape or matrix)");
}

TEST(FaultSpecJson, UnknownMembersAreRejectedAtEveryLevel) {
  const std::pair<json, const char*> cases[] = {
      {json{{"kind", "partition"}, {"sidez", json::array()}}, "fault: unknown field \"sidez\""},
      {json{{"kind", "loss"}, {"loss", {{"percnt", 5}}}}, "fault.loss: unknown field \"percnt\""},
      {json{{"kind", "loss"}, {"match", {{"prot", "tcp"}}}}, "fault.match: unknown field \"prot\""},
      {json{{"kind", "partition"}, {"sides", {{{"name", "a"}, {"cidrs", json::array()}}, {{"cidr", "10.0.0.0/8"}}}}},
       "fault.sides[1]: unknown field \"cidr\""},
  };
  for (const auto& [j, msg] : cases) {
    auto e = spec_error(j);
    EXPECT_EQ(e.code, Errc::invalid_argument);
    EXPECT_EQ(e.message, msg);
  }
}

TEST(FaultSpecJson, WrongTypesNameThePath) {
  const std::pair<json, const char*> cases[] = {
      {json{{"kind", 1}}, "fault.kind: expected a string, got 1"},
      {json{{"kind", "loss"}, {"name", 5}}, "fault.name: expected a string, got 5"},
      {json{{"kind", "loss"}, {"one_way", "yes"}}, "fault.one_way: expected a boolean, got string \"yes\""},
      {json{{"kind", "loss"}, {"sides", json::object()}}, "fault.sides: expected an array, got an object"},
      {json{{"kind", "loss"}, {"sides", {"10.0.0.0/8"}}},
       "fault.sides[0]: expected an object, got string \"10.0.0.0/8\""},
      {json{{"kind", "loss"}, {"sides", {{{"cidrs", {"10.0.0.0/8"}}}, {{"cidrs", {10}}}}}},
       "fault.sides[1].cidrs[0]: expected a string, got 10"},
      {json{{"kind", "loss"}, {"sides", {{{"cidrs", "10.0.0.0/8"}}}}},
       "fault.sides[0].cidrs: expected an array of strings, got string \"10.0.0.0/8\""},
      {json{{"kind", "loss"}, {"sides", {{{"name", nullptr}}}}}, "fault.sides[0].name: expected a string, got null"},
      {json{{"kind", "loss"}, {"loss", 30}}, "fault.loss: expected an object, got 30"},
      {json{{"kind", "loss"}, {"loss", {{"percent", "30"}}}},
       "fault.loss.percent: expected a number, got string \"30\""},
      {json{{"kind", "loss"}, {"loss", {{"correlation", true}}}},
       "fault.loss.correlation: expected a number, got true"},
      {json{{"kind", "loss"}, {"loss", {{"seed", -1}}}},
       "fault.loss.seed: expected an integer in 0..18446744073709551615, got -1"},
      {json{{"kind", "loss"}, {"loss", {{"seed", 1.5}}}},
       "fault.loss.seed: expected an integer in 0..18446744073709551615, got 1.5"},
      {json{{"kind", "loss"}, {"loss", {{"seed", "7"}}}},
       "fault.loss.seed: expected an integer in 0..18446744073709551615, got string \"7\""},
      {json{{"kind", "loss"}, {"match", {{"proto", 6}}}}, "fault.match.proto: expected a string, got 6"},
      {json{{"kind", "loss"}, {"match", {{"sport", 80}}}}, "fault.match.sport: expected a string, got 80"},
      {json{{"kind", "loss"}, {"match", {{"src", {"10.0.0.0/8", false}}}}},
       "fault.match.src[1]: expected a string, got false"},
      {json{{"kind", "loss"}, {"match", {{"new_only", 1}}}}, "fault.match.new_only: expected a boolean, got 1"},
      {json{{"kind", "loss"}, {"exempt", "10.0.0.0/8"}},
       "fault.exempt: expected an array of strings, got string \"10.0.0.0/8\""},
      {json{{"kind", "loss"}, {"default_exempt", nullptr}}, "fault.default_exempt: expected a boolean, got null"},
      {json{{"kind", "loss"}, {"targets", "host"}}, "fault.targets: expected an array of strings, got string \"host\""},
      {json{{"kind", "loss"}, {"devs", {"eth0", 1}}}, "fault.devs[1]: expected a string, got 1"},
      {json{{"kind", "loss"}, {"duration_ms", -5}},
       "fault.duration_ms: expected an integer in 0..18446744073709551615, got -5"},
      {json{{"kind", "loss"}, {"duration_ms", "5m"}},
       "fault.duration_ms: expected an integer in 0..18446744073709551615, got string \"5m\""},
  };
  for (const auto& [j, msg] : cases) {
    auto e = spec_error(j);
    EXPECT_EQ(e.code, Errc::invalid_argument) << j.dump();
    EXPECT_EQ(e.message, msg) << j.dump();
  }
}

TEST(FaultSpecJson, HugeNumbers) {
  // 2^64 arrives as a double; it must be refused, not truncated into a seed.
  auto seed = spec_error(json::parse(R"({"kind":"loss","loss":{"seed":18446744073709551616}})"));
  EXPECT_EQ(seed.message,
            "fault.loss.seed: expected an integer in 0..18446744073709551615, got 1.8446744073709552e+19");
  auto dur = spec_error(json::parse(R"({"kind":"loss","duration_ms":9223372036854775808})"));
  EXPECT_EQ(dur.message, "fault.duration_ms: 9223372036854775808 is out of range");
  // Out-of-range percentages are validate()'s job; the codec must carry them unchanged.
  auto big = fault_spec_from_json(json::parse(R"({"kind":"loss","loss":{"percent":1e308}})"));
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(big->loss_percent, 1e308);
  auto max_dur = fault_spec_from_json(json::parse(R"({"kind":"loss","duration_ms":9223372036854775807})"));
  ASSERT_TRUE(max_dur.ok()) << max_dur.error().message;
  EXPECT_EQ(max_dur->duration.count(), std::numeric_limits<int64_t>::max());
}

// Errors from core/parse.h keep their text (owned by core) behind the JSON path.
TEST(FaultSpecJson, ParseErrorsArePrefixedWithPath) {
  const std::tuple<json, const char*, const char*> cases[] = {
      {json{{"kind", "flood"}}, "fault.kind: ", "flood"},
      {json{{"kind", "loss"}, {"name", "bad name"}}, "fault.name: ", "bad name"},
      {json{{"kind", "loss"}, {"name", "1234"}}, "fault.name: ", "1234"},
      {json{{"kind", "partition"}, {"sides", {{{"cidrs", {"10.0.0.0/8"}}}, {{"cidrs", {"10.0.0.300"}}}}}},
       "fault.sides[1].cidrs[0]: ", "10.0.0.300"},
      {json{{"kind", "partition"}, {"sides", {{{"name", "a b"}, {"cidrs", {"10.0.0.0/8"}}}}}},
       "fault.sides[0].name: ", "a b"},
      {json{{"kind", "loss"}, {"match", {{"dst", {"fd00::/64", "nope"}}}}}, "fault.match.dst[1]: ", "nope"},
      {json{{"kind", "loss"}, {"match", {{"proto", "sctp"}}}}, "fault.match.proto: ", "sctp"},
      {json{{"kind", "loss"}, {"match", {{"sport", "99999"}}}}, "fault.match.sport: ", "99999"},
      {json{{"kind", "loss"}, {"match", {{"dport", "20-10"}}}}, "fault.match.dport: ", "20-10"},
      {json{{"kind", "loss"}, {"match", {{"direction", "up"}}}}, "fault.match.direction: ", "up"},
      {json{{"kind", "loss"}, {"exempt", {"10.0.0.0/8/tcp:22", "bogus/tcp"}}}, "fault.exempt[1]: ", "bogus"},
      {json{{"kind", "loss"}, {"targets", {"host", "docker:abc"}}}, "fault.targets[1]: ", "docker:abc"},
  };
  for (const auto& [j, prefix, quoted] : cases) {
    auto e = spec_error(j);
    EXPECT_EQ(e.code, Errc::invalid_argument) << j.dump();
    EXPECT_TRUE(starts_with(e.message, prefix)) << e.message;
    EXPECT_NE(e.message.find(quoted), std::string::npos) << "input not quoted: " << e.message;
  }
}

TEST(FaultSpecJson, DoesNotRunValidate) {
  // A partition with one side is invalid, but that is validate()'s call, with its own message.
  auto r = fault_spec_from_json(json{{"kind", "partition"}, {"sides", {{{"cidrs", {"10.0.0.0/8"}}}}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->sides.size(), 1u);
  EXPECT_EQ(r->sides[0].name, "");
}

// ---------------------------------------------------------------- reset

TEST(FaultSpecJson, ResetIsEmittedOnlyWhenSetAndRoundTrips) {
  FaultSpec s;
  s.kind = core::FaultKind::isolate;
  s.sides = {core::Side{"", {*core::parse_cidr("10.0.0.7")}}};
  EXPECT_FALSE(fault_spec_to_json(s).contains("reset"));
  s.reset = true;
  json j = fault_spec_to_json(s);
  EXPECT_EQ(j.at("reset"), true);
  auto back = fault_spec_from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_spec(s, *back);
  EXPECT_TRUE(back->reset);
}

TEST(FaultSpecJson, ResetMustBeABoolean) {
  auto r = fault_spec_from_json(json{{"kind", "isolate"}, {"reset", 1}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  EXPECT_EQ(r.error().message, "fault.reset: expected a boolean, got 1");
}

core::ResetSpec full_reset() {
  core::ResetSpec r;
  r.match.src = {*core::parse_cidr("10.0.0.0/8")};
  r.match.dst = {*core::parse_cidr("fd00:200::1")};
  r.match.proto = core::Proto::tcp;
  r.match.sport = *core::parse_port_range("1000-2000");
  r.match.dport = *core::parse_port_range("5432");
  r.exempt = {*core::parse_exemption("10.9.0.0/16/tcp:6443")};
  r.default_exempt = false;
  r.targets = {*core::parse_target("netns:a"), *core::parse_target("pid:7")};
  return r;
}

void expect_same_reset(const core::ResetSpec& a, const core::ResetSpec& b) {
  EXPECT_EQ(a.match.src, b.match.src);
  EXPECT_EQ(a.match.dst, b.match.dst);
  EXPECT_EQ(a.match.proto, b.match.proto);
  EXPECT_EQ(a.match.sport, b.match.sport);
  EXPECT_EQ(a.match.dport, b.match.dport);
  EXPECT_EQ(a.match.direction, b.match.direction);
  EXPECT_EQ(a.match.new_only, b.match.new_only);
  EXPECT_EQ(a.exempt, b.exempt);
  EXPECT_EQ(a.default_exempt, b.default_exempt);
  EXPECT_EQ(a.all, b.all);
  EXPECT_EQ(a.targets, b.targets);
}

TEST(ResetSpecJson, EmitsEveryMemberAndRoundTrips) {
  core::ResetSpec all;
  all.all = true;
  for (const core::ResetSpec& spec : {core::ResetSpec{}, full_reset(), all}) {
    json j = reset_spec_to_json(spec);
    std::set<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"match", "exempt", "default_exempt", "all", "targets"}));
    EXPECT_FALSE(j.at("match").contains("direction"));
    EXPECT_FALSE(j.at("match").contains("new_only"));
    auto back = reset_spec_from_json(json::parse(j.dump()));
    ASSERT_TRUE(back.ok()) << back.error().message << "\n" << j.dump();
    expect_same_reset(spec, *back);
    EXPECT_EQ(reset_spec_to_json(*back), j);
  }
}

TEST(ResetSpecJson, EveryMemberIsOptional) {
  auto r = reset_spec_from_json(json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_same_reset(*r, core::ResetSpec{});
}

TEST(ResetSpecJson, RefusesWithPaths) {
  struct Case {
    json j;
    std::string message;
  };
  const Case cases[] = {
      {json::array(), "reset: expected an object, got an array"},
      {{{"kind", "isolate"}}, "reset: unknown field \"kind\""},
      {{{"match", {{"dst", {"10.0.0.0/33"}}}}}, "reset.match.dst[0]: "},
      {{{"match", {{"dport", 80}}}}, "reset.match.dport: expected a string, got 80"},
      {{{"match", {{"frob", 1}}}}, "reset.match: unknown field \"frob\""},
      {{{"match", {{"direction", "egress"}}}}, "reset.match.direction: a reset takes no direction"},
      {{{"match", {{"new_only", false}}}}, "reset.match.new_only: not for a reset"},
      {{{"all", "yes"}}, "reset.all: expected a boolean, got string \"yes\""},
      {{{"default_exempt", 0}}, "reset.default_exempt: expected a boolean, got 0"},
      {{{"exempt", {"10.0.0.0/8/sctp"}}}, "reset.exempt[0]: "},
      {{{"targets", {"netns:"}}}, "reset.targets[0]: "},
  };
  for (const auto& c : cases) {
    auto r = reset_spec_from_json(c.j);
    ASSERT_FALSE(r.ok()) << c.j.dump();
    EXPECT_EQ(r.error().code, Errc::invalid_argument) << c.j.dump();
    EXPECT_TRUE(starts_with(r.error().message, c.message)) << c.j.dump() << ": " << r.error().message;
  }
}

TEST(ResetSpecJson, DoesNotRunValidate) {
  // No selector and no "all": the codec takes it, validate_reset refuses it.
  auto r = reset_spec_from_json(json{{"match", {{"proto", "udp"}}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->match.proto, core::Proto::udp);
}

}  // namespace
}  // namespace fl::proto
