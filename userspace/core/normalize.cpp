#include "core/normalize.h"

namespace fl::core {

Direction default_direction(FaultKind kind) {
  return is_shaping(kind) || kind == FaultKind::loss ? Direction::egress : Direction::both;
}

void normalize(FaultSpec& spec, const Given& given) {
  if (!given.direction) spec.match.direction = default_direction(spec.kind);
}

std::string default_side_name(size_t index) { return "s" + std::to_string(index + 1); }

std::string side_name(const std::vector<Side>& sides, size_t index) {
  return sides[index].name.empty() ? default_side_name(index) : sides[index].name;
}

std::string lab_netns_name(std::string_view lab, std::string_view node) {
  return std::string(lab) + "-" + std::string(node);
}

}  // namespace fl::core
