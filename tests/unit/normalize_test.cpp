// core/normalize.h: the defaults a request leaves unsaid, decided once for the decoder, faultctl
// and the lab.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/args.h"
#include "core/normalize.h"
#include "core/parse.h"
#include "protocol/protocol.h"

namespace fl {
namespace {

using json = nlohmann::json;
using core::Direction;
using core::FaultKind;

TEST(Normalize, LossAndShapingDefaultToEgressPartitionAndIsolateToBoth) {
  for (auto k : {FaultKind::loss, FaultKind::delay, FaultKind::rate, FaultKind::corrupt, FaultKind::duplicate,
                 FaultKind::reorder, FaultKind::shape, FaultKind::matrix})
    EXPECT_EQ(core::default_direction(k), Direction::egress) << core::kind_name(k);
  for (auto k : {FaultKind::partition, FaultKind::isolate})
    EXPECT_EQ(core::default_direction(k), Direction::both) << core::kind_name(k);
}

TEST(Normalize, KeepsAGivenDirection) {
  core::FaultSpec spec;
  spec.kind = FaultKind::delay;
  spec.match.direction = Direction::both;
  core::normalize(spec, core::Given{.direction = true});
  EXPECT_EQ(spec.match.direction, Direction::both);
  core::normalize(spec, core::Given{});
  EXPECT_EQ(spec.match.direction, Direction::egress);
}

// The same words give the same spec whether faultctl or the daemon's decoder fills the gaps.
TEST(Normalize, FaultctlAndTheDecoderAgreeOnEveryKind) {
  struct Case {
    std::vector<std::string> args;
    json fault;
  };
  const Case cases[] = {
      {{"loss", "10"}, {{"kind", "loss"}, {"loss", {{"percent", 10}}}}},
      {{"delay", "10ms"}, {{"kind", "delay"}, {"shape", {{"delay_us", 10000}}}}},
      {{"rate", "1mbit"}, {{"kind", "rate"}, {"shape", {{"rate_bps", 1000000}}}}},
      {{"partition", "--side", "10.0.0.1", "--side", "10.0.0.2"},
       {{"kind", "partition"}, {"sides", {{{"cidrs", {"10.0.0.1"}}}, {{"cidrs", {"10.0.0.2"}}}}}}},
      {{"isolate", "10.0.0.1"}, {{"kind", "isolate"}, {"sides", {{{"cidrs", {"10.0.0.1"}}}}}}},
  };
  for (const auto& c : cases) {
    for (const char* dir : {"", "both", "ingress"}) {
      auto args = c.args;
      json fault = c.fault;
      if (*dir) {
        args.insert(args.end(), {"--direction", dir});
        fault["match"] = {{"direction", dir}};
      }
      auto inv = cli::parse_args(args, nullptr);
      ASSERT_TRUE(inv.ok()) << args[0] << ": " << inv.error().message;
      auto decoded = proto::fault_spec_from_json(fault);
      ASSERT_TRUE(decoded.ok()) << fault.dump() << ": " << decoded.error().message;
      EXPECT_EQ(inv->fault->match.direction, decoded->match.direction) << args[0] << " " << dir;
      const Direction want = *dir ? *core::parse_direction(dir) : core::default_direction(decoded->kind);
      EXPECT_EQ(decoded->match.direction, want) << args[0] << " " << dir;
    }
  }
}

TEST(Normalize, UnnamedSidesAnswerToTheirPlace) {
  EXPECT_EQ(core::default_side_name(0), "s1");
  EXPECT_EQ(core::default_side_name(1), "s2");
  std::vector<core::Side> sides{{"", {}}, {"db", {}}, {"", {}}};
  EXPECT_EQ(core::side_name(sides, 0), "s1");
  EXPECT_EQ(core::side_name(sides, 1), "db");
  EXPECT_EQ(core::side_name(sides, 2), "s3");
  // faultctl's --side without NAME= and the decoder's pair lookup use the same names.
  auto side = core::parse_side("10.0.0.1", 1);
  ASSERT_TRUE(side.ok());
  EXPECT_EQ(side->name, "s2");
  json fault = {{"kind", "matrix"},
                {"sides", {{{"cidrs", {"10.0.0.1"}}}, {{"name", "b"}, {"cidrs", {"10.0.0.2"}}}}},
                {"pairs", {{{"from", "s1"}, {"to", "b"}, {"shape", {{"delay_us", 1000}}}}}}};
  auto spec = proto::fault_spec_from_json(fault);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->pairs.at(0).from, 0u);
  EXPECT_EQ(spec->pairs.at(0).to, 1u);
}

TEST(Normalize, LabNodesAreNamespacesNamedLabDashNode) {
  EXPECT_EQ(core::lab_netns_name("fl-lab", "a"), "fl-lab-a");
  EXPECT_EQ(core::lab_netns_name("x", "hub"), "x-hub");
  auto t = core::parse_target("lab:b");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, core::lab_netns_name(core::kDefaultLab, "b"));
  t = core::parse_target("lab:mylab/c");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value, "mylab-c");
}

}  // namespace
}  // namespace fl
