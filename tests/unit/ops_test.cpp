// protocol/ops.h is the one list of ops: every op in it is known to the codec, and sent by a
// faultctl command. (The daemon's dispatcher is checked at build time: its switches on Op have
// no default and dispatch.cpp is compiled with -Werror=switch.)
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "cli/args.h"
#include "protocol/ops.h"
#include "protocol/protocol.h"

namespace fl {
namespace {

using json = nlohmann::json;

// The arguments a verb needs to be a complete command.
std::vector<std::string> minimal_command(std::string_view verb) {
  std::vector<std::string> args{std::string(verb)};
  if (verb == "get" || verb == "heal" || verb == "wait") args.push_back("7");
  if (verb == "reset") args.push_back("--all");
  return args;
}

TEST(OpTable, IsIndexedByOp) {
  for (const auto& o : proto::kOpTable) {
    EXPECT_EQ(&proto::op_info(o.op), &o) << o.name;
    EXPECT_EQ(proto::find_op(o.name), &o) << o.name;
  }
  EXPECT_EQ(proto::find_op("frob"), nullptr);
}

TEST(OpTable, TheCodecKnowsEveryOpAndNamesItsKind) {
  uint64_t n = 0;
  for (const auto& o : proto::kOpTable) {
    auto line = json{{"id", ++n}, {"op", o.name}}.dump();
    auto r = proto::parse_request(line, nullptr);
    ASSERT_TRUE(r.ok()) << line << ": " << r.error().message;
    EXPECT_EQ(r->op, o.name);
    EXPECT_EQ(r->kind, o.op) << o.name;
    EXPECT_EQ(proto::op_is_mutating(o.name), o.mutating) << o.name;
  }
}

TEST(OpTable, EveryVerbIsACommandThatSendsItsOp) {
  for (const auto& o : proto::kOpTable) {
    if (o.verb.empty()) continue;
    auto inv = cli::parse_args(minimal_command(o.verb), nullptr);
    ASSERT_TRUE(inv.ok()) << o.verb << ": " << inv.error().message;
    EXPECT_EQ(cli::command_call(*inv).op, o.name) << o.verb;
    // Its help line is the table's.
    const std::string help = cli::top_help();
    EXPECT_NE(help.find(std::string(o.verb)), std::string::npos) << o.verb;
    EXPECT_NE(help.find(std::string(o.summary)), std::string::npos) << o.verb;
  }
}

TEST(OpTable, FaultctlSendsEveryOp) {
  std::set<std::string> sent{cli::hello_call().op};
  for (const auto& o : proto::kOpTable) {
    if (o.verb.empty()) continue;
    auto inv = cli::parse_args(minimal_command(o.verb), nullptr);
    ASSERT_TRUE(inv.ok()) << o.verb << ": " << inv.error().message;
    sent.insert(cli::command_call(*inv).op);
  }
  auto apply = cli::parse_args({"loss", "10"}, nullptr);
  ASSERT_TRUE(apply.ok()) << apply.error().message;
  sent.insert(cli::command_call(*apply).op);
  std::set<std::string> all;
  for (const auto& o : proto::kOpTable) all.insert(std::string(o.name));
  EXPECT_EQ(sent, all);
}

TEST(OpTable, OnlyApplyHealAndResetMutate) {
  std::set<std::string_view> mutating;
  for (const auto& o : proto::kOpTable)
    if (o.mutating) mutating.insert(o.name);
  EXPECT_EQ(mutating, (std::set<std::string_view>{"apply", "heal", "reset"}));
}

}  // namespace
}  // namespace fl
