// The two pieces of arithmetic of tools/chat's client: the latency histogram's quantiles and
// the reconnect backoff's ceilings and jitter.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "../../tools/chat/backoff.h"
#include "../../tools/chat/histogram.h"

namespace {

using fl::chat::Backoff;
using fl::chat::Histogram;
using std::chrono::milliseconds;

TEST(ChatHistogram, QuantilesWithinOnePercentOfTheExactOnes) {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> d(7.0, 1.5);  // ~1 ms median, long tail, microseconds
  std::vector<uint64_t> v;
  Histogram h;
  for (int i = 0; i < 100000; i++) {
    uint64_t x = static_cast<uint64_t>(d(rng));
    v.push_back(x);
    h.record(x);
  }
  std::sort(v.begin(), v.end());
  for (double q : {0.5, 0.95, 0.99}) {
    double exact = static_cast<double>(v[static_cast<size_t>(q * v.size()) - 1]);
    EXPECT_NEAR(static_cast<double>(h.quantile(q)), exact, exact * 0.01 + 1) << "q=" << q;
  }
  EXPECT_EQ(h.max(), v.back());
  EXPECT_EQ(h.quantile(1.0), v.back());
  EXPECT_EQ(h.count(), v.size());
  h.clear();
  EXPECT_EQ(h.quantile(0.99), 0u);
}

TEST(ChatHistogram, SmallValuesAreExactAndBucketsTileTheRange) {
  Histogram h;
  h.record(3);
  EXPECT_EQ(h.quantile(0.5), 3u);
  for (uint64_t x : {127ull, 128ull, 255ull, 256ull, 1000ull, 123456789ull, (1ull << 62) + 5}) {
    int i = Histogram::index(x);
    ASSERT_LT(i, Histogram::kBuckets);
    EXPECT_LE(x, Histogram::upper(i));
    if (i > 0) EXPECT_GT(x, Histogram::upper(i - 1));
  }
}

TEST(ChatBackoff, FullJitterBelowADoublingCeilingUpToTheCap) {
  constexpr int kRuns = 2000;
  std::vector<std::vector<int64_t>> by_attempt(8);
  for (int r = 0; r < kRuns; r++) {
    Backoff b(milliseconds(100), milliseconds(1000), static_cast<uint64_t>(r + 1));
    for (int n = 0; n < 8; n++) by_attempt[n].push_back(b.next().count());
  }
  for (int n = 0; n < 8; n++) {
    int64_t ceiling = std::min<int64_t>(1000, 100LL << n);
    auto [mn, mx] = std::minmax_element(by_attempt[n].begin(), by_attempt[n].end());
    EXPECT_GE(*mn, 0);
    EXPECT_LE(*mx, ceiling) << "attempt " << n;
    // Full jitter: uniform over [0, ceiling), so draws reach both ends and the mean is half.
    EXPECT_LT(*mn, ceiling / 10) << "attempt " << n;
    EXPECT_GT(*mx, ceiling * 9 / 10) << "attempt " << n;
    double mean = 0;
    for (auto x : by_attempt[n]) mean += static_cast<double>(x);
    mean /= kRuns;
    EXPECT_NEAR(mean, ceiling / 2.0, ceiling * 0.05) << "attempt " << n;
  }
}

TEST(ChatBackoff, ResetStartsAgainFromTheBase) {
  Backoff b(milliseconds(100), milliseconds(10000), 3);
  for (int i = 0; i < 6; i++) b.next();
  EXPECT_EQ(b.failures(), 6);
  b.reset();
  for (int i = 0; i < 50; i++) {
    EXPECT_LE(b.next().count(), 100);
    b.reset();
  }
}

}  // namespace
