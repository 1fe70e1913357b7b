#include "core/printable.h"

#include <cstddef>
#include <cstdint>

namespace fl::core {

namespace {

void escape_byte(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

bool continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

// The length of the valid UTF-8 sequence at s[i] and its code point, or 0 if it is not one
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8_sequence(std::string_view s, size_t i, uint32_t& cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t len;
  uint32_t min;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2, min = 0x80, cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3, min = 0x800, cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;  // ASCII is handled by the caller; 0x80-0xc1 and 0xf5-0xff never start one
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if (!continuation(b(k))) return 0;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

bool shown_as_escape(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9f) ||         // C1 controls
         cp == 0x2028 || cp == 0x2029 ||         // line and paragraph separators
         (cp >= 0x202a && cp <= 0x202e) ||       // bidi embeddings and overrides
         (cp >= 0x2066 && cp <= 0x2069);         // bidi isolates
}

}  // namespace

std::string printable(std::string_view s, Newlines newlines) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      const bool control = c < 0x20 || c == 0x7f;
      if (control && !(c == '\n' && newlines == Newlines::keep)) {
        escape_byte(out, c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = utf8_sequence(s, i, cp);
    if (len == 0) {
      // One byte at a time: the next one may start a valid sequence of its own.
      escape_byte(out, c);
      ++i;
      continue;
    }
    if (shown_as_escape(cp)) {
      for (size_t k = 0; k < len; ++k) escape_byte(out, static_cast<unsigned char>(s[i + k]));
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

}  // namespace fl::core
