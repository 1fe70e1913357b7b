// core::printable: what a terminal or a log line gets of other people's text.
#include "core/printable.h"

#include <string>

#include <gtest/gtest.h>

namespace fl::core {
namespace {

// No byte a terminal acts on: C0, DEL, the C1 lead byte followed by 0x80-0x9f, and nothing
// that is not valid UTF-8 (checked by the round trip through the escapes in the cases below).
bool terminal_safe(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9f) return false;
  }
  return true;
}

TEST(Printable, PrintableAsciiIsUnchanged) {
  const std::string all = [] {
    std::string s;
    for (int c = 0x20; c < 0x7f; ++c) s += static_cast<char>(c);
    return s;
  }();
  EXPECT_EQ(printable(all), all);
  EXPECT_EQ(printable(""), "");
  // A backslash is not doubled: error messages already quoted by core::quote stay readable.
  EXPECT_EQ(printable(R"(invalid name "a\xffb")"), R"(invalid name "a\xffb")");
}

TEST(Printable, EscapesC0AndDel) {
  EXPECT_EQ(printable("\x1b[31mx"), "\\x1b[31mx");
  EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(printable("a\tb\rc\nd\x07\x7f"), "a\\x09b\\x0dc\\x0ad\\x07\\x7f");
  for (int c = 0; c < 0x20; ++c) {
    const std::string out = printable(std::string(1, static_cast<char>(c)));
    EXPECT_EQ(out.size(), 4u) << c;
    EXPECT_TRUE(terminal_safe(out)) << c;
  }
}

TEST(Printable, NewlinesKeptOnlyWhenAsked) {
  EXPECT_EQ(printable("one\ntwo\x1b", Newlines::keep), "one\ntwo\\x1b");
  EXPECT_EQ(printable("one\r\ntwo", Newlines::keep), "one\\x0d\ntwo");
  EXPECT_EQ(printable("one\ntwo"), "one\\x0atwo");
}

TEST(Printable, EscapesC1Controls) {
  // CSI (U+009B) is ESC [ in one character; NEL (U+0085) is a newline to some terminals.
  EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\xc2\\x9b31m");
  EXPECT_EQ(printable("a\xc2\x85" "b"), "a\\xc2\\x85b");
  EXPECT_EQ(printable("\xc2\x80\xc2\x9f"), "\\xc2\\x80\\xc2\\x9f");
  // U+00A0 and above are text.
  EXPECT_EQ(printable("\xc2\xa0\xc2\xa9"), "\xc2\xa0\xc2\xa9");
}

TEST(Printable, EscapesSeparatorsAndBidiControls) {
  EXPECT_EQ(printable("a\xe2\x80\xa8" "b"), "a\\xe2\\x80\\xa8b");  // U+2028
  EXPECT_EQ(printable("\xe2\x80\xae" "gnp.exe"), "\\xe2\\x80\\xaegnp.exe");  // U+202E RLO
  EXPECT_EQ(printable("\xe2\x81\xa6x\xe2\x81\xa9"), "\\xe2\\x81\\xa6x\\xe2\\x81\\xa9");  // U+2066, U+2069
  // Their neighbours are ordinary punctuation.
  EXPECT_EQ(printable("\xe2\x80\xa6\xe2\x80\xaf"), "\xe2\x80\xa6\xe2\x80\xaf");  // U+2026, U+202F
}

TEST(Printable, KeepsValidUtf8Text) {
  EXPECT_EQ(printable("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(printable("\xe7\xaf\x80\xe7\x82\xb9"), "\xe7\xaf\x80\xe7\x82\xb9");
  EXPECT_EQ(printable("\xf0\x9f\x94\xa5"), "\xf0\x9f\x94\xa5");        // U+1F525
  EXPECT_EQ(printable("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf");        // U+10FFFF
}

TEST(Printable, EscapesInvalidUtf8ByteByByte) {
  EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(printable("a\x80" "b"), "a\\x80b");                       // stray continuation
  EXPECT_EQ(printable("\xc3"), "\\xc3");                              // truncated at the end
  EXPECT_EQ(printable("\xe7\xaf" "x"), "\\xe7\\xafx");                // truncated in the middle
  EXPECT_EQ(printable("\xc0\x9b"), "\\xc0\\x9b");                     // overlong CSI
  EXPECT_EQ(printable("\xe0\x80\x9b"), "\\xe0\\x80\\x9b");            // overlong, 3 bytes
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");            // surrogate U+D800
  EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(printable("\xf8\x88\x80\x80\x80"), "\\xf8\\x88\\x80\\x80\\x80");
  // A bad lead byte does not swallow the valid sequence after it.
  EXPECT_EQ(printable("\xe7\xc3\xa9"), "\\xe7\xc3\xa9");
  // A C1 control hidden behind a truncated sequence is still caught.
  EXPECT_EQ(printable("\xe2\xc2\x9b"), "\\xe2\\xc2\\x9b");
}

// Every single byte and every two-byte string: nothing a terminal acts on gets through.
TEST(Printable, NoRawControlForAnyShortInput) {
  for (int a = 0; a < 256; ++a) {
    EXPECT_TRUE(terminal_safe(printable(std::string(1, static_cast<char>(a))))) << a;
    for (int b = 0; b < 256; ++b) {
      const std::string in{static_cast<char>(a), static_cast<char>(b)};
      const std::string out = printable(in);
      ASSERT_TRUE(terminal_safe(out)) << a << " " << b << ": " << out;
    }
  }
}

}  // namespace
}  // namespace fl::core
