// The operator's policy (faultlined --require-default-exempt, --max-duration): what it refuses,
// with which error, and how status shows it. The daemon checks it before the engine sees a
// request; tests/integration/privilege_test.cpp shows that end to end.
#include "daemon/policy.h"

#include <gtest/gtest.h>

namespace fl::daemon {
namespace {

using namespace std::chrono_literals;

core::FaultSpec spec(bool default_exempt, std::chrono::milliseconds d) {
  core::FaultSpec s;
  s.default_exempt = default_exempt;
  s.duration = d;
  return s;
}

TEST(Policy, DefaultPolicyRefusesNothing) {
  Policy p;
  EXPECT_TRUE(p.check(spec(false, core::kMaxDuration)).ok());
  core::ResetSpec r;
  r.default_exempt = false;
  EXPECT_TRUE(p.check(r).ok());
  EXPECT_EQ(p.to_json(), (nlohmann::json{{"require_default_exempt", false}, {"max_duration_ms", nullptr}}));
}

TEST(Policy, RequiredDefaultExemptionsRefuseFaultsAndResetsThatDropThem) {
  Policy p;
  p.require_default_exempt = true;
  EXPECT_TRUE(p.check(spec(true, 1min)).ok());
  auto e = p.check(spec(false, 1min));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::permission_denied);
  EXPECT_NE(e.error().message.find("default_exempt: false is refused"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("--require-default-exempt"), std::string::npos) << e.error().message;
  core::ResetSpec r;
  r.default_exempt = false;
  EXPECT_FALSE(p.check(r).ok());
  r.default_exempt = true;
  EXPECT_TRUE(p.check(r).ok());
  EXPECT_EQ(p.to_json()["require_default_exempt"], true);
}

TEST(Policy, MaxDurationRefusesLongerFaultsOnly) {
  Policy p;
  p.max_duration = 1h;
  EXPECT_TRUE(p.check(spec(true, 1h)).ok());
  auto e = p.check(spec(true, 1h + 1s));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, Errc::permission_denied);
  EXPECT_EQ(e.error().message, "duration: 1h1s is above this daemon's policy maximum 1h (faultlined --max-duration)");
  EXPECT_EQ(p.to_json()["max_duration_ms"], 3600000);
}

}  // namespace
}  // namespace fl::daemon
