// The file `faultctl matrix FILE` reads: named sides and a profile per ordered pair of them, in
// YAML or JSON (JSON is YAML, so one reader takes both). Pure: the caller reads the file.
//
//   sides:                      # a map (order kept) or a list of {name: X, cidrs: [...]}
//     eu: [10.200.1.0/24, 10.200.9.7]
//     us: [10.200.2.0/24]
//     ap: 10.200.3.0/24,10.200.4.0/24     # a comma-separated string works too
//   pairs:
//     - {from: eu, to: us, delay: 80ms, jitter: 5ms, rate: 100mbit, loss: 0.1}
//     - {from: eu, to: ap, delay: 150ms, symmetric: true}   # and ap -> eu, the same profile
//
// Pair keys: from, to, symmetric, delay, jitter, correlation, distribution, rate, burst, loss,
// loss-correlation, corrupt, duplicate, reorder, gap. Values use faultctl's option syntax.
#pragma once

#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/result.h"

namespace fl::cli {

struct MatrixFile {
  std::vector<core::Side> sides;
  std::vector<core::MatrixPair> pairs;  // symmetric pairs expanded, in file order
};

// Errors are invalid_argument and start with "SOURCE:LINE: " (the line of the offending node,
// 1-based; "SOURCE:LINE:COLUMN: " for YAML syntax errors), then the path in the file
// ("pairs[2].delay: invalid duration ..."). `source` names the file: its path, or "<stdin>".
// Every rule of core::validate that concerns sides and pairs is checked here, with the line;
// the CIDRs of a side are de-duplicated, order kept.
Result<MatrixFile> parse_matrix_file(std::string_view text, std::string_view source);

}  // namespace fl::cli
