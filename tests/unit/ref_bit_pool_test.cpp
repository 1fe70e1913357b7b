#include "core/ref_bit_pool.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace fl::core {
namespace {

// What the kernel holds, as the callbacks see it: which bits are written.
struct Kernel {
  std::set<uint32_t> written;
  bool fail_write = false, fail_erase = false;
  Status write(uint32_t b) {
    if (fail_write) {
      written.erase(b);  // the callback undoes its own partial write
      return make_error(Errc::kernel_error, "write failed");
    }
    written.insert(b);
    return {};
  }
  Status erase(uint32_t b) {
    if (fail_erase) return make_error(Errc::kernel_error, "erase failed");
    written.erase(b);
    return {};
  }
};

auto acquire_at(uint64_t completed) {
  return [completed](IndexPool& p) -> Result<uint32_t> {
    auto id = p.acquire(completed);
    if (!id) return make_error(Errc::resource_exhausted, "no free bit");
    return *id;
  };
}

TEST(RefBitPool, SharedKeysShareOneBitWrittenOnceAndErasedWithTheLastReference) {
  RefBitPool<std::string> pool(4);
  Kernel k;
  auto write = [&](uint32_t b) { return k.write(b); };
  auto erase = [&](uint32_t b) { return k.erase(b); };
  auto a1 = pool.take("a", acquire_at(0), write, [] { return 1; });
  auto a2 = pool.take("a", acquire_at(0), [&](uint32_t) -> Status {
    ADD_FAILURE() << "a held key is not written again";
    return {};
  }, [] { return 1; });
  auto b = pool.take("b", acquire_at(0), write, [] { return 1; });
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok());
  EXPECT_EQ(*a1, *a2);
  EXPECT_NE(*a1, *b);
  EXPECT_EQ(pool.refs_of("a"), 2);
  EXPECT_EQ(k.written, (std::set<uint32_t>{*a1, *b}));

  EXPECT_TRUE(pool.give_back("a", 5, erase).ok());
  EXPECT_EQ(k.written.count(*a1), 1u) << "one reference left";
  EXPECT_TRUE(pool.give_back("a", 5, erase).ok());
  EXPECT_EQ(k.written.count(*a1), 0u);
  EXPECT_FALSE(pool.bit_of("a"));
  // Quarantined until the stamp's grace period completes.
  EXPECT_FALSE(pool.pool().used(*a1));
  EXPECT_TRUE(pool.pool().waiting(4));
  EXPECT_FALSE(pool.pool().waiting(5));
}

TEST(RefBitPool, AFailedWriteGivesTheBitBackAndHoldsNothing) {
  RefBitPool<int> pool(2);
  Kernel k;
  k.fail_write = true;
  auto r = pool.take(7, acquire_at(0), [&](uint32_t b) { return k.write(b); }, [] { return 3; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "write failed");
  EXPECT_TRUE(pool.empty());
  EXPECT_EQ(pool.pool().in_use(), 0u);
  EXPECT_TRUE(pool.pool().waiting(2)) << "quarantined with the stamp taken after the failure";
  EXPECT_TRUE(k.written.empty());
}

TEST(RefBitPool, AFailedEraseRetiresTheBitForGood) {
  RefBitPool<int> pool(1);
  Kernel k;
  ASSERT_TRUE(pool.take(1, acquire_at(0), [&](uint32_t b) { return k.write(b); }, [] { return 0; }).ok());
  k.fail_erase = true;
  EXPECT_FALSE(pool.give_back(1, 1, [&](uint32_t b) { return k.erase(b); }).ok());
  EXPECT_TRUE(pool.empty());
  EXPECT_TRUE(pool.pool().used(0)) << "packets may still see it: never handed out again";
  EXPECT_FALSE(pool.take(2, acquire_at(100), [&](uint32_t b) { return k.write(b); }, [] { return 0; }).ok());
}

TEST(RefBitPool, ForgetKeepsTheBitOutOfThePoolAndReportsItsReferences) {
  RefBitPool<int> pool(2);
  Kernel k;
  auto w = [&](uint32_t b) { return k.write(b); };
  ASSERT_TRUE(pool.take(3, acquire_at(0), w, [] { return 0; }).ok());
  ASSERT_TRUE(pool.take(3, acquire_at(0), w, [] { return 0; }).ok());
  auto held = pool.forget(3);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->second, 2);
  EXPECT_TRUE(pool.pool().used(held->first));
  EXPECT_FALSE(pool.forget(3).has_value());
  EXPECT_TRUE(pool.give_back(3, 1, [](uint32_t) -> Status {
    ADD_FAILURE() << "a forgotten key has nothing to erase";
    return {};
  }).ok());
}

}  // namespace
}  // namespace fl::core
