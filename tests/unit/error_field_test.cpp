// Errors carry the field they blame as data (Error::field): set by validate, the protocol
// decoder and the daemon's policy, sent in the error reply's "field" key, and turned by faultctl
// into the option that set it without reading the message.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "cli/args.h"
#include "core/parse.h"
#include "core/validate.h"
#include "daemon/policy.h"
#include "protocol/protocol.h"

namespace fl {
namespace {

using json = nlohmann::json;

core::FaultSpec loss_spec() {
  core::FaultSpec spec;
  spec.kind = core::FaultKind::loss;
  spec.loss_percent = 10;
  return spec;
}

TEST(ErrorField, ValidateBlamesTheField) {
  auto spec = loss_spec();
  spec.match.proto = core::Proto::icmp;
  spec.match.dport = *core::parse_port_range("80");
  auto st = core::validate(spec);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "match.dport");
  EXPECT_EQ(st.error().message.rfind("match.dport: ", 0), 0u) << st.error().message;

  spec = loss_spec();
  spec.duration = std::chrono::milliseconds(1);
  st = core::validate(spec);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "duration");
}

TEST(ErrorField, ValidateBlamesANestedName) {
  core::FaultSpec spec;
  spec.kind = core::FaultKind::partition;
  spec.sides = {{"a", {*core::parse_cidr("10.0.0.1")}}, {"a", {*core::parse_cidr("10.0.0.2")}}};
  auto st = core::validate(spec);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "sides");
}

TEST(ErrorField, TheDecoderBlamesThePathFromTheRequest) {
  auto r = proto::fault_spec_from_json(json{{"kind", "loss"}, {"match", {{"dport", "http"}}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "fault.match.dport");
  r = proto::fault_spec_from_json(json{{"kind", "loss"}, {"match", {{"dprt", "80"}}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "fault.match");
  r = proto::fault_spec_from_json(
      json{{"kind", "partition"}, {"sides", {{{"cidrs", {"10.0.0.1"}}}, {{"name", "a b"}, {"cidrs", {"10.0.0.2"}}}}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().field, "fault.sides[1].name");
  EXPECT_EQ(r.error().message.rfind("fault.sides[1].name: ", 0), 0u) << r.error().message;
  auto reset = proto::reset_spec_from_json(json{{"match", {{"src", {"10.0.0.300"}}}}});
  ASSERT_FALSE(reset.ok());
  EXPECT_EQ(reset.error().field, "reset.match.src[0]");
}

TEST(ErrorField, PolicyBlamesTheField) {
  daemon::Policy p;
  p.max_duration = std::chrono::minutes(1);
  p.require_default_exempt = true;
  auto spec = loss_spec();
  spec.duration = std::chrono::minutes(2);
  auto st = p.check(spec);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "duration");
  spec.duration = std::chrono::seconds(30);
  spec.default_exempt = false;
  st = p.check(spec);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().field, "default_exempt");
}

TEST(ErrorField, TheReplyCarriesItBesideCodeAndMessage) {
  Error e = field_error(Errc::invalid_argument, "fault.match.dport", "bad port");
  const json reply = json::parse(proto::reply_error(4, e));
  EXPECT_EQ(reply["error"]["code"], "invalid_argument");
  EXPECT_EQ(reply["error"]["message"], "fault.match.dport: bad port");
  EXPECT_EQ(reply["error"]["field"], "fault.match.dport");
  // An error that blames no field sends no "field", as before.
  const json plain = json::parse(proto::reply_error(4, make_error(Errc::not_found, "no fault 9")));
  EXPECT_FALSE(plain["error"].contains("field"));

  auto back = proto::parse_reply(proto::reply_error(4, e), 4);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.error().field, "fault.match.dport");
  EXPECT_EQ(back.error().message, "fault.match.dport: bad port");
  auto bad = proto::parse_reply(R"({"id":4,"ok":false,"error":{"code":"internal","message":"m","field":7}})", 4);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("error.field"), std::string::npos) << bad.error().message;
}

TEST(ErrorField, FaultctlNamesTheOptionFromTheField) {
  // Checked locally by faultctl: validate's field.
  auto inv = cli::parse_args({"loss", "10", "--proto", "icmp", "--dport", "80"}, nullptr);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.error().message.rfind("--dport: ", 0), 0u) << inv.error().message;
  EXPECT_EQ(inv.error().field, "match.dport");
  inv = cli::parse_args({"delay", "70s"}, nullptr);
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.error().message.rfind("DURATION: ", 0), 0u) << inv.error().message;

  // Refused by the daemon's policy: the field comes from the reply.
  Error e = field_error(Errc::permission_denied, "duration", "2m is above the policy maximum 1m");
  e.field = "fault.duration";
  Error shown = cli::in_option_terms("loss", e);
  EXPECT_EQ(shown.message, "--for: 2m is above the policy maximum 1m");
  EXPECT_EQ(shown.code, Errc::permission_denied);

  // The message alone is never read for a field: without one it stays as it is.
  Error no_field = make_error(Errc::invalid_argument, "match.dport: looks like a path");
  EXPECT_EQ(cli::in_option_terms("loss", no_field).message, "match.dport: looks like a path");
  // A field no option of the command sets stays as the daemon said it.
  Error other = field_error(Errc::invalid_argument, "fault.kind", "unknown");
  EXPECT_EQ(cli::in_option_terms("loss", other).message, "fault.kind: unknown");
}

}  // namespace
}  // namespace fl
