// The engine's transaction logic on the fake kernel (fake_kernel_util.h): what an apply leaves,
// that a failure at any step leaves the kernel exactly as before and no id taken, stacking,
// expiry on the monotonic clock alone, and reconciliation of targets that went away.
#include <gtest/gtest.h>

#include "unit/engine_rig_util.h"

namespace fl::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

json partition_ab() {
  return {{"kind", "partition"},
          {"sides", {{{"name", "x"}, {"cidrs", {"10.200.1.0/24"}}}, {{"name", "y"}, {"cidrs", {"10.200.2.0/24", "10.200.3.4"}}}}},
          {"targets", {"netns:a", "netns:b"}},
          {"duration_ms", 60000}};
}
json loss_a() {
  return {{"kind", "loss"}, {"loss", {{"percent", 50}}}, {"targets", {"netns:a"}}, {"devs", {"eth0"}},
          {"exempt", {"10.200.9.0/24/tcp:22"}}, {"duration_ms", 60000}};
}
// Egress and ingress: a root HTB on eth0, an ifb, a netem class on each.
json delay_a() {
  return {{"kind", "delay"}, {"shape", {{"delay_us", 20000}}}, {"targets", {"netns:a"}}, {"devs", {"eth0"}},
          {"match", {{"direction", "both"}}}, {"duration_ms", 60000}};
}

bool idle(const daemon::EngineUsage& u) {
  return u.targets == 0 && u.slots == 0 && u.set_bits == 0 && u.rule_bits == 0 && u.if_bits == 0 &&
         u.attached == 0 && u.egress_trees == 0 && u.ingress_trees == 0;
}
bool same(const daemon::EngineUsage& a, const daemon::EngineUsage& b) {
  return a.targets == b.targets && a.slots == b.slots && a.set_bits == b.set_bits && a.rule_bits == b.rule_bits &&
         a.if_bits == b.if_bits && a.attached == b.attached && a.egress_trees == b.egress_trees &&
         a.ingress_trees == b.ingress_trees;
}

// Steps a successful apply of j takes on a fresh rig (after `before` ran).
template <typename Before>
int steps_of_apply(const json& j, Before before) {
  EngineRig r;
  before(r);
  const int s0 = r.k.steps();
  auto st = r.engine->apply(engine_spec(j));
  EXPECT_TRUE(st.ok()) << st.error().message;
  return r.k.steps() - s0;
}

TEST(EngineTransaction, ApplyChangesTheKernelAndHealPutsItBack) {
  for (const json& j : {partition_ab(), loss_a(), delay_a()}) {
    EngineRig r;
    const std::string before = r.k.dump();
    auto st = r.engine->apply(engine_spec(j));
    ASSERT_TRUE(st.ok()) << st.error().message;
    const std::string during = r.k.dump();
    EXPECT_NE(during, before);
    EXPECT_NE(during.find("active slot"), std::string::npos) << during;
    EXPECT_NE(during.find("hooks 2"), std::string::npos) << during;
    if (j["kind"] == "delay") {
      EXPECT_NE(during.find("root 2 htb:ours"), std::string::npos) << during;
      EXPECT_NE(during.find("ifb 100 for 2"), std::string::npos) << during;
    }
    auto healed = r.engine->heal(std::to_string((*st)["id"].get<uint64_t>()));
    ASSERT_TRUE(healed.ok()) << healed.error().message;
    EXPECT_EQ(r.k.dump(), before) << j.dump();
    EXPECT_TRUE(idle(r.engine->usage()));
  }
}

// Every fallible kernel call of an apply, made to fail in turn: the apply reports the failure
// and the kernel is as it was, with no slot, bit, hook or tree left taken.
TEST(EngineTransaction, RollbackOnEveryFailingStepLeavesNothing) {
  for (const json& j : {partition_ab(), loss_a(), delay_a()}) {
    const int n = steps_of_apply(j, [](EngineRig&) {});
    ASSERT_GT(n, 5) << j.dump();
    for (int k = 1; k <= n; k++) {
      EngineRig r;
      const std::string before = r.k.dump();
      r.k.fail_at(k);
      auto st = r.engine->apply(engine_spec(j));
      auto log = r.k.step_log();
      ASSERT_FALSE(st.ok()) << "step " << k << " of " << n << " failed but the apply succeeded: " << j.dump();
      EXPECT_NE(st.error().message.find("fake: step"), std::string::npos) << st.error().message;
      EXPECT_EQ(r.k.dump(), before) << "fail at step " << k << " (" << log.at(k - 1) << ") of " << j.dump();
      EXPECT_TRUE(idle(r.engine->usage())) << "fail at step " << k << " (" << log.at(k - 1) << ")";
      EXPECT_EQ(r.engine->list().size(), 0u);
      // And the engine is whole: the same apply goes through and heals back to the start.
      auto again = r.engine->apply(engine_spec(j));
      ASSERT_TRUE(again.ok()) << again.error().message;
      ASSERT_TRUE(r.engine->heal(std::to_string((*again)["id"].get<uint64_t>())).ok());
      EXPECT_EQ(r.k.dump(), before) << "after a retry, fail at step " << k;
    }
  }
}

// A second fault on a target that already has one shares its data path, hooks and bits: a
// failure anywhere in the second leaves the first exactly as it was, and healing the first then
// leaves nothing.
TEST(EngineTransaction, StackedFaultRollbackKeepsTheFirst) {
  for (const json& second : {delay_a(), partition_ab(), loss_a()}) {
    auto first = [](EngineRig& r) {
      auto st = r.engine->apply(engine_spec(loss_a()));
      ASSERT_TRUE(st.ok()) << st.error().message;
    };
    const int n = steps_of_apply(second, first);
    for (int k = 1; k <= n; k++) {
      EngineRig r;
      const std::string empty = r.k.dump();
      first(r);
      const int first_steps = r.k.steps();
      const std::string after_first = r.k.dump();
      const auto usage_first = r.engine->usage();
      r.k.fail_at(k);
      auto st = r.engine->apply(engine_spec(second));
      auto log = r.k.step_log();
      const std::string op = log.at(first_steps + k - 1);
      if (st.ok()) {
        // Only the look for interfaces gone under the first fault may fail without failing the
        // apply (it is asked again a second later); the apply is then whole and heals cleanly.
        EXPECT_NE(op.find(" enter"), std::string::npos) << "step " << k << " (" << op << ") failed, apply went on";
        ASSERT_TRUE(r.engine->heal(std::to_string((*st)["id"].get<uint64_t>())).ok());
        EXPECT_EQ(r.k.dump(), after_first) << "step " << k;
        r.engine->heal_all();
        EXPECT_EQ(r.k.dump(), empty);
        continue;
      }
      EXPECT_EQ(r.k.dump(), after_first) << "fail at step " << k << " (" << op << ")";
      EXPECT_TRUE(same(r.engine->usage(), usage_first)) << "fail at step " << k;
      ASSERT_EQ(r.engine->list().size(), 1u);
      r.engine->heal_all();
      EXPECT_EQ(r.k.dump(), empty) << "fail at step " << k;
      EXPECT_TRUE(idle(r.engine->usage()));
    }
  }
}

TEST(EngineTransaction, TwoFaultsStackAndHealInEitherOrder) {
  for (bool first_heals_first : {true, false}) {
    EngineRig r;
    const std::string empty = r.k.dump();
    auto a = r.engine->apply(engine_spec(loss_a()));
    ASSERT_TRUE(a.ok());
    const std::string only_a = r.k.dump();
    auto b = r.engine->apply(engine_spec(delay_a()));
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(r.engine->list().size(), 2u);
    EXPECT_EQ(r.engine->usage().attached, 1u);  // eth0: one hook for both
    if (first_heals_first) {
      ASSERT_TRUE(r.engine->heal(std::to_string((*a)["id"].get<uint64_t>())).ok());
      ASSERT_TRUE(r.engine->heal(std::to_string((*b)["id"].get<uint64_t>())).ok());
    } else {
      ASSERT_TRUE(r.engine->heal(std::to_string((*b)["id"].get<uint64_t>())).ok());
      EXPECT_EQ(r.k.dump(), only_a);
      ASSERT_TRUE(r.engine->heal(std::to_string((*a)["id"].get<uint64_t>())).ok());
    }
    EXPECT_EQ(r.k.dump(), empty);
    EXPECT_TRUE(idle(r.engine->usage()));
  }
}

TEST(EngineTransaction, RefusalBeforeAnyChange) {
  EngineRig r;
  r.k.set_root_qdisc("a", "eth0", "tbf");
  const std::string before = r.k.dump();
  const int s0 = r.k.steps();
  auto st = r.engine->apply(engine_spec(delay_a()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("root qdisc tbf"), std::string::npos) << st.error().message;
  EXPECT_EQ(r.k.dump(), before);
  // Nothing but looking: no attach, no map write, no tree.
  auto log = r.k.step_log();
  for (size_t i = s0; i < log.size(); i++)
    EXPECT_TRUE(log[i].find("attach") == std::string::npos && log[i].find("install_root") == std::string::npos &&
                log[i].find("set_") == std::string::npos)
        << log[i];
}

// Expiry reads only the monotonic clock: the wall clock jumping a day either way changes nothing,
// the monotonic clock passing the duration ends the fault, and not a nanosecond before.
TEST(EngineExpiry, OnlyTheMonotonicClockEndsAFault) {
  EngineRig r;
  const std::string before = r.k.dump();
  json j = loss_a();
  j["duration_ms"] = 5000;
  auto st = r.engine->apply(engine_spec(j));
  ASSERT_TRUE(st.ok());
  const uint64_t id = (*st)["id"].get<uint64_t>();
  EXPECT_EQ(r.engine->next_expiry(), std::optional<uint64_t>(r.now_ns + 5'000'000'000ull));
  r.wall_ms += 86'400'000;  // someone sets the clock a day ahead
  EXPECT_EQ(r.engine->expire_due(), 0u);
  r.wall_ms -= 2 * 86'400'000;
  EXPECT_EQ(r.engine->expire_due(), 0u);
  ASSERT_EQ(r.engine->list().size(), 1u);
  EXPECT_EQ(r.engine->list()[0]["expires_in_ms"], 5000);
  r.now_ns += 2'000'000'000ull;
  EXPECT_EQ(r.engine->list()[0]["expires_in_ms"], 3000);
  r.now_ns += 3'000'000'000ull - 1;
  EXPECT_EQ(r.engine->expire_due(), 0u);
  r.now_ns += 1;
  EXPECT_EQ(r.engine->expire_due(), 1u);
  EXPECT_EQ(r.engine->list().size(), 0u);
  auto got = r.engine->get(std::to_string(id));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["state"], "expired");
  EXPECT_EQ(r.k.dump(), before);
}

// The slot's expiry in the data path comes from the same clock.
TEST(EngineExpiry, TheSlotExpiresWhenTheEngineSays) {
  EngineRig r;
  json j = loss_a();
  j["duration_ms"] = 5000;
  ASSERT_TRUE(r.engine->apply(engine_spec(j)).ok());
  const std::string d = r.k.dump();
  EXPECT_NE(d.find("active slot 0"), std::string::npos) << d;
  std::lock_guard l(r.k.mu_);
  EXPECT_EQ(r.k.dps_.begin()->second.slots[0].expires_ns, r.now_ns + 5'000'000'000ull);
}

TEST(EngineReconcile, InterfaceGoneLeavesItsFaultsThenTheFaultEndsGone) {
  EngineRig r;
  json j = loss_a();
  j.erase("devs");  // every Ethernet interface: eth0 and eth1
  auto st = r.engine->apply(engine_spec(j));
  ASSERT_TRUE(st.ok());
  const uint64_t id = (*st)["id"].get<uint64_t>();
  EXPECT_EQ((*st)["interfaces"].size(), 2u);
  r.k.delete_iface("a", "eth0");
  EXPECT_EQ(r.engine->reconcile(), 0u);  // still on eth1: nothing ended
  auto l = r.engine->list();
  ASSERT_EQ(l.size(), 1u);
  ASSERT_EQ(l[0]["interfaces"].size(), 1u);
  EXPECT_EQ(l[0]["interfaces"][0]["dev"], "eth1");
  EXPECT_EQ(r.engine->usage().attached, 1u);
  // eth0's bit stays taken while a fault still names it: given to a new interface, it would
  // put that one under the fault.
  EXPECT_EQ(r.engine->usage().if_bits, 2u);
  r.k.delete_iface("a", "eth1");
  EXPECT_EQ(r.engine->reconcile(), 1u);
  EXPECT_EQ(r.engine->list().size(), 0u);
  auto got = r.engine->get(std::to_string(id));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["state"], "gone");
  EXPECT_EQ((*got)["per_target"][0]["state"], "gone");
  EXPECT_TRUE(idle(r.engine->usage()));
  const std::string d = r.k.dump();
  EXPECT_EQ(d.find("dp"), std::string::npos) << d;  // no data path holds anything
}

TEST(EngineReconcile, NamespaceGoneEndsItsPartThenTheFault) {
  EngineRig r;
  auto st = r.engine->apply(engine_spec(partition_ab()));
  ASSERT_TRUE(st.ok());
  const uint64_t id = (*st)["id"].get<uint64_t>();
  r.k.lose_ns("b");
  EXPECT_EQ(r.engine->reconcile(), 1u);
  auto l = r.engine->list();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0]["state"], "active");
  EXPECT_EQ(l[0]["per_target"][1]["state"], "gone");
  EXPECT_EQ(r.engine->usage().targets, 1u);
  r.k.lose_ns("a");
  EXPECT_EQ(r.engine->reconcile(), 1u);
  auto got = r.engine->get(std::to_string(id));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["state"], "gone");
  EXPECT_TRUE(idle(r.engine->usage()));
}

// A re-created interface (same name and index, new address) is not the one the fault was on.
TEST(EngineReconcile, ReCreatedInterfaceIsNotTaken) {
  EngineRig r;
  ASSERT_TRUE(r.engine->apply(engine_spec(loss_a())).ok());
  {
    std::lock_guard l(r.k.mu_);
    auto& s = r.k.ns_.at("a");
    s.hooks.erase(2);  // the device went with our hooks...
    s.ifaces[1].hwaddr[0] = 6;  // ...and a new one took its name and index
  }
  EXPECT_EQ(r.engine->reconcile(), 1u);
  EXPECT_TRUE(idle(r.engine->usage()));
  std::lock_guard l(r.k.mu_);
  EXPECT_TRUE(r.k.ns_.at("a").hooks.empty());
}

}  // namespace
}  // namespace fl::test
