#include "cli/suggest.h"

#include <algorithm>
#include <cstddef>

namespace fl::cli {

namespace {

// Optimal string alignment distance: insertions, deletions, substitutions and transpositions
// of adjacent characters, each costing 1.
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string_view without_dashes(std::string_view s) {
  while (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return s;
}

}  // namespace

std::optional<std::string> closest(std::string_view typed, const std::vector<std::string>& candidates) {
  if (typed.empty()) return std::nullopt;
  // A prefix ("--corr" for "--correlation") is not accepted as the option itself, on purpose,
  // but it is the best guess of what was meant. Only the part after the dashes counts, so that
  // "--" alone is not a prefix of everything.
  const std::string_view bare = without_dashes(typed);
  if (bare.size() >= 2) {
    std::optional<std::string> only;
    size_t count = 0;
    for (const auto& c : candidates) {
      if (c.size() > typed.size() && c.starts_with(typed)) {
        only = c;
        ++count;
      }
    }
    if (count == 1) return only;
  }
  size_t best = SIZE_MAX;
  std::optional<std::string> pick;
  bool tie = false;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(typed, c);
    if (d < best) {
      best = d;
      pick = c;
      tie = false;
    } else if (d == best) {
      tie = true;
    }
  }
  if (!pick || tie || best == 0 || best > 2 || best * 2 >= bare.size()) return std::nullopt;
  return pick;
}

std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates) {
  auto c = closest(typed, candidates);
  return c ? "; did you mean '" + *c + "'?" : "";
}

}  // namespace fl::cli
