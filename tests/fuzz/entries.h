// The fuzz targets' bodies, one function per target. The libFuzzer binaries (tests/fuzz,
// -DFL_FUZZ=ON) call them from LLVMFuzzerTestOneInput, and the unit tier
// (tests/unit/fuzz_corpus_test.cpp) feeds them every seed and every kept crasher, so a crash once
// found stays a failing test in the ordinary gcc build. Each aborts (FL_FUZZ_CHECK) when an
// invariant of the code under test breaks, not only on memory errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fl::fuzz {

// A request line: parse_request, then the fault or reset codec on its body, then the codec's
// round trip (to_json(from_json(to_json(x))) == to_json(x)) and the reply encoders.
void protocol_one(const uint8_t* data, size_t size);
// A request line whose "fault" (or "reset" object) goes through the decoder, validate()
// and, when it passes, the planner; checks that a valid spec stays valid after a round trip.
void validate_one(const uint8_t* data, size_t size);
// The user-typed parsers. The first byte picks the parser, the rest is its input; values that
// parse are formatted back and parsed again, and must come back equal.
void parse_one(const uint8_t* data, size_t size);

struct Target {
  std::string_view name;
  void (*run)(const uint8_t*, size_t);
};
inline constexpr Target kTargets[] = {
    {"protocol", protocol_one},
    {"validate", validate_one},
    {"parse", parse_one},
};

}  // namespace fl::fuzz
