// Where the lab keeps its state (issue 10 item 9): nowhere a unit of faultline's manages. systemd
// removes a service's RuntimeDirectory when it stops; a lab's state there was gone after
// `systemctl stop faultlined`, and `lab down` then found "no lab" and leaked its namespaces.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cli/address_list.h"

namespace fl {
namespace {

namespace fs = std::filesystem;

const fs::path kSrc = FL_SOURCE_DIR;

// The directories systemd makes for the unit and removes with it (RuntimeDirectory= always on
// stop unless RuntimeDirectoryPreserve=; the others on `systemctl clean`), as absolute paths.
std::vector<std::string> managed_directories(const fs::path& unit) {
  static const std::vector<std::pair<std::string, std::string>> kRoots = {{"RuntimeDirectory", "/run/"},
                                                                          {"StateDirectory", "/var/lib/"},
                                                                          {"CacheDirectory", "/var/cache/"},
                                                                          {"LogsDirectory", "/var/log/"},
                                                                          {"ConfigurationDirectory", "/etc/"}};
  std::ifstream in(unit);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    for (const auto& [key, root] : kRoots) {
      if (line.rfind(key + "=", 0) != 0) continue;
      std::istringstream words(line.substr(key.size() + 1));
      for (std::string w; words >> w;) out.push_back(root + w.substr(0, w.find(':')));
    }
  }
  return out;
}

bool inside(const std::string& path, const std::string& dir) {
  return path == dir || path.rfind(dir + "/", 0) == 0;
}

TEST(LabState, LivesOutsideEveryDirectoryFaultlinedsUnitManages) {
  const std::string lab = cli::kLabStateDir;
  ASSERT_EQ(lab.front(), '/');
  const auto dirs = managed_directories(kSrc / "deploy/systemd/faultlined.service");
  ASSERT_FALSE(dirs.empty()) << "the unit declares its directories";
  for (const auto& d : dirs) EXPECT_FALSE(inside(lab, d)) << lab << " is inside " << d << ", which systemd removes";
  // On tmpfs, as /run/netns is: a reboot ends the namespaces and their state together.
  EXPECT_TRUE(inside(lab, "/run")) << lab;
}

}  // namespace
}  // namespace fl
