// Replays the fuzz targets' seed corpus and every crasher tools/fuzz kept (tests/fuzz/crashers)
// through the same entry points as the libFuzzer binaries, in the ordinary gcc build: a defect
// the fuzzer found stays a failing test here. Each replay runs in a death-test child, so an
// abort names the file that caused it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/entries.h"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename().string().front() != '.') out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// All inputs of a target in one child process: fork per file would cost more than the inputs.
// The child prints the file it is on first, so a death names it.
void replay(const fl::fuzz::Target& t, const std::vector<fs::path>& files) {
  for (const auto& f : files) {
    std::fprintf(stderr, "replaying %s\n", f.c_str());
    const std::string data = read_all(f);
    t.run(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  std::fprintf(stderr, "replayed all\n");
  std::exit(0);
}

class FuzzCorpus : public ::testing::TestWithParam<fl::fuzz::Target> {};

TEST_P(FuzzCorpus, SeedsAndCrashersRunClean) {
  const auto& t = GetParam();
  const fs::path root = fs::path(FL_SOURCE_DIR) / "tests" / "fuzz";
  const auto seeds = files_in(root / "corpus" / t.name);
  ASSERT_FALSE(seeds.empty()) << "no seed corpus in " << (root / "corpus" / t.name);
  auto files = seeds;
  const auto crashers = files_in(root / "crashers" / t.name);
  files.insert(files.end(), crashers.begin(), crashers.end());
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(replay(t, files), ::testing::ExitedWithCode(0), "replayed all")
      << files.size() << " inputs (" << crashers.size() << " crashers)";
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpus, ::testing::ValuesIn(fl::fuzz::kTargets),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
