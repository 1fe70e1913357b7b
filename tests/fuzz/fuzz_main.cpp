// One libFuzzer binary per target; FL_FUZZ_TARGET (set by CMake) is its index in kTargets.
#include <cstddef>
#include <cstdint>

#include "fuzz/entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fl::fuzz::kTargets[FL_FUZZ_TARGET].run(data, size);
  return 0;
}
