#include "kernel/capabilities.h"

#include <cstdint>
#include <fstream>
#include <string>

namespace fl::kernel {

std::vector<Capability> missing_capabilities() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    uint64_t eff = 0;
    try {
      eff = std::stoull(line.substr(7), nullptr, 16);
    } catch (...) {
      return {};
    }
    std::vector<Capability> out;
    for (const auto& c : kRequiredCapabilities)
      if (!(eff & (uint64_t{1} << c.number))) out.push_back(c);
    return out;
  }
  return {};
}

}  // namespace fl::kernel
