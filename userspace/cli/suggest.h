// "Did you mean ...?" for a mistyped command or option.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fl::cli {

// The candidate the user most likely meant by `typed`: the one it is an unambiguous prefix of,
// else the closest by edit distance (Damerau: a swap of two neighbours is one edit) if that is
// at most 2 and under half of typed's length, and no other candidate is as close. nullopt when
// nothing is close enough to be a helpful guess.
std::optional<std::string> closest(std::string_view typed, const std::vector<std::string>& candidates);

// "; did you mean 'X'?" or "".
std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates);

}  // namespace fl::cli
