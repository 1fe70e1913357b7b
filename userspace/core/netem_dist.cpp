#include "core/netem_dist.h"

#include <linux/pkt_sched.h>

#include <algorithm>
#include <cmath>

namespace fl::core {

namespace {

constexpr double kDistScale = NETEM_DIST_SCALE;
constexpr double kDistLo = -32768.0 / kDistScale, kDistHi = 32767.0 / kDistScale;

double normal_quantile(double p) {
  // Bisection on the CDF through erfc: slow by numeric standards (about 60 steps) but exact to
  // double precision and branch-free of magic constants; 4096 of them take well under 10 ms.
  double lo = -40, hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-12; i++) {
    double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p)
      lo = mid;
    else
      hi = mid;
  }
  return (lo + hi) / 2;
}

// Pareto with scale 1 and shape 3 (mean 3/2, variance 3/4), standardized.
double pareto_quantile(double p) {
  constexpr double a = 3;
  double x = std::pow(1 - p, -1 / a);
  return (x - 1.5) / std::sqrt(0.75);
}

// Samples to table: standardize to mean 0 and standard deviation 1, clamp to what an int16
// holds at NETEM_DIST_SCALE (about +-4 sigma), and repeat, since clamping Pareto's long tail
// takes variance away that the next pass puts back. A few passes settle it.
std::vector<int16_t> to_table(std::vector<double> z) {
  for (int pass = 0; pass < 50; pass++) {
    double mean = 0, var = 0;
    for (double v : z) mean += v;
    mean /= static_cast<double>(z.size());
    for (double v : z) var += (v - mean) * (v - mean);
    double sd = std::sqrt(var / static_cast<double>(z.size()));
    if (std::abs(mean) < 1e-9 && std::abs(sd - 1) < 1e-9) break;
    for (double& v : z) v = std::clamp((v - mean) / sd, kDistLo, kDistHi);
  }
  std::sort(z.begin(), z.end());
  std::vector<int16_t> t(z.size());
  for (size_t i = 0; i < z.size(); i++)
    t[i] = static_cast<int16_t>(std::clamp(std::lround(z[i] * kDistScale), -32768L, 32767L));
  return t;
}

}  // namespace

// Why not iproute2's normal.dist, pareto.dist and paretonormal.dist: iproute2 is not a
// dependency of ours, the files live in different places across distributions (/usr/lib/tc,
// /usr/lib64/tc, /usr/share/tc) and not every build ships them. The tables are simple enough
// to compute, and computing them makes the result the same everywhere.
//
// All three have kDistSize (4096) entries, mean 0 and standard deviation NETEM_DIST_SCALE
// (8192), sorted (netem picks entries at random, so order does not matter):
//   normal:       the normal quantiles at (i + 0.5) / 4096.
//   pareto:       the quantiles of Pareto with shape 3 (scale 1) at the same points,
//                 standardized; its long tail is clamped at the int16 limit (+4 sigma).
//   paretonormal: a deterministic stand-in for sum-of-independent-samples: normal quantile i
//                 scaled to variance 1/4 plus Pareto quantile (i * 2531 mod 4096) scaled to
//                 variance 3/4 (2531 is odd, so that is a permutation that pairs low with high
//                 quantiles evenly), then standardized like the others.
std::vector<int16_t> distribution_table(Distribution d) {
  std::vector<double> z(kDistSize);
  auto u = [](size_t i) { return (static_cast<double>(i) + 0.5) / kDistSize; };
  switch (d) {
    case Distribution::uniform:
      return {};
    case Distribution::normal:
      for (size_t i = 0; i < kDistSize; i++) z[i] = normal_quantile(u(i));
      break;
    case Distribution::pareto:
      for (size_t i = 0; i < kDistSize; i++) z[i] = pareto_quantile(u(i));
      break;
    case Distribution::paretonormal:
      for (size_t i = 0; i < kDistSize; i++)
        z[i] = 0.5 * normal_quantile(u(i)) + std::sqrt(0.75) * pareto_quantile(u((i * 2531) % kDistSize));
      break;
  }
  return to_table(std::move(z));
}

}  // namespace fl::core
