// Other people's text made safe for a terminal and a log line. Interface, namespace, pod and
// fault names come from the kernel or from another client: whoever controls a network
// namespace can name an interface $'\e]0;...\a' or $'\xff'. Printed raw, such bytes move the
// cursor, rewrite the title, hide lines or forge new ones on the operator's terminal and in
// the journal. Machine output (-o json, the protocol) keeps the exact bytes; only text for
// people goes through here.
#pragma once

#include <string>
#include <string_view>

namespace fl::core {

enum class Newlines { escape, keep };

// `s` with every byte that could drive a terminal or break a line written as \xNN (the byte's
// value, two lower-case hex digits, so the original can be typed back with $'...'):
//   - C0 controls 0x00-0x1f (ESC, BEL, CR, TAB, LF...) and DEL 0x7f; with Newlines::keep, LF
//     stays, for our own multi-line messages;
//   - C1 controls U+0080-U+009F (UTF-8 c2 80..c2 9f; CSI c2 9b is the one terminals obey);
//   - the line and paragraph separators U+2028/U+2029 and the bidirectional overrides and
//     isolates U+202A-U+202E, U+2066-U+2069, which reorder what is shown;
//   - every byte of a sequence that is not valid UTF-8 (stray continuation bytes, truncated,
//     overlong, surrogate or above U+10FFFF), one \xNN per byte.
// Everything else, printable ASCII and valid UTF-8 text ("café", "節点") included, is copied
// as is. A backslash is not doubled: the result is for people, and the exact bytes are in the
// JSON output.
std::string printable(std::string_view s, Newlines newlines = Newlines::escape);

}  // namespace fl::core
