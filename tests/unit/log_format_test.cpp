// The daemon's log formatter: whatever a message quotes, a record is one line with no byte
// that drives a terminal.
#include "daemon/log_format.h"

#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

namespace fl::daemon {
namespace {

std::string logged(const std::string& name) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger log("test", sink);
  log.set_formatter(escaping_formatter("%l %v"));
  log.info("{}: shaping tree on {} egress", "netns:a", name);
  log.flush();
  return out.str();
}

TEST(LogFormat, EscapesWhatAMessageQuotes) {
  EXPECT_EQ(logged("\x1b[31mx\xc2\x9b" "0m"), "info netns:a: shaping tree on \\x1b[31mx\\xc2\\x9b0m egress\n");
  EXPECT_EQ(logged("\xff\xfe"), "info netns:a: shaping tree on \\xff\\xfe egress\n");
}

TEST(LogFormat, OneRecordIsOneLine) {
  EXPECT_EQ(logged("eth0\n2026-01-01 critical forged"),
            "info netns:a: shaping tree on eth0\\x0a2026-01-01 critical forged egress\n");
}

TEST(LogFormat, PlainTextIsUnchanged) {
  EXPECT_EQ(logged("eth0"), "info netns:a: shaping tree on eth0 egress\n");
  EXPECT_EQ(logged("n\xc3\xa6t"), "info netns:a: shaping tree on n\xc3\xa6t egress\n");
}

TEST(LogFormat, CloneKeepsThePattern) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(escaping_formatter("[%v]")->clone());
  spdlog::logger log("test", sink);
  log.warn("a\x1b" "b");
  EXPECT_EQ(out.str(), "[a\\x1bb]\n");
}

}  // namespace
}  // namespace fl::daemon
