// What a request leaves unsaid, decided in one place: the protocol decoder, faultctl and
// faultline-lab all call here instead of each writing the default down again.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"

namespace fl::core {

// The direction a fault of this kind acts in when its request names none. Loss and shaping act
// where packets leave (netem on an interface delays and drops what it sends), so a fault on every
// node judges each packet once, on its sender, instead of compounding on the receiver: egress.
// Partition and isolate keep both: their drops are deterministic and do not compound.
Direction default_direction(FaultKind kind);

// What the request said, of the members normalize() would otherwise decide.
struct Given {
  bool direction = false;  // match.direction
};

// Fills in the defaults the request did not give. Run after parsing and before validate(), by
// the decoder and by faultctl, so both send and accept the same spec for the same words.
void normalize(FaultSpec& spec, const Given& given);

// A side without a name answers to "s<index+1>": "s1", "s2", ... (a pair's from and to, error
// messages, faultctl's --side without NAME=).
std::string default_side_name(size_t index);
// The name sides[index] answers to: its own, or the default for its place.
std::string side_name(const std::vector<Side>& sides, size_t index);

// faultline-lab's names: the lab a lab:NODE address means without LAB/, and the network
// namespace of a lab's node ("hub" for its bridge): "<lab>-<node>".
inline constexpr std::string_view kDefaultLab = "fl-lab";
std::string lab_netns_name(std::string_view lab, std::string_view node);

}  // namespace fl::core
