// Address lists on faultctl's command line (--src, --dst, --side, isolate's CIDRS, --exempt):
// besides CIDRs, an item may be @FILE (one CIDR per line) or lab:[LAB/]NODE (the addresses of a
// node of a local lab, from its state file). Resolved here, in the CLI, so the daemon and the
// wire protocol only ever see CIDRs. Pure: files are read through the caller's ReadFile.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.h"
#include "core/model.h"
#include "core/parse.h"
#include "core/result.h"

namespace fl::cli {

// Where `faultctl lab` (faultline-lab) keeps a lab's state: LAB.json (docs/LAB.md).
inline constexpr const char* kLabStateDir = core::kLabStateDir;

// What one command's lists are resolved with. "-" (stdin) may be read once per command: a
// second reader would get nothing and silently make an empty list.
class AddressSources {
 public:
  explicit AddressSources(ReadFile read_file) : read_file_(std::move(read_file)) {}

  // The text of FILE ("-": stdin), or an error that names it.
  Result<std::string> read(const std::string& path);
  // The addresses of a lab node: its IPv4 address and, in a lab with IPv6, its IPv6 address.
  // `spec` is what follows "lab:": "NODE" (lab fl-lab) or "LAB/NODE".
  Result<std::vector<core::Cidr>> lab_node(std::string_view spec);

 private:
  struct LabNode {
    std::string name;
    std::vector<core::Cidr> addrs;
  };
  ReadFile read_file_;
  bool stdin_used_ = false;
  std::map<std::string, std::vector<LabNode>, std::less<>> labs_;  // read once per command
};

// "CIDR[,ITEM...]" where each comma-separated ITEM is a CIDR, @FILE or lab:[LAB/]NODE; at least
// one address in all, duplicates removed, order kept. Errors name the item ("hosts.txt:12:
// invalid CIDR ...", "lab:x/a: no lab named \"x\" ...").
Result<std::vector<core::Cidr>> resolve_cidr_list(std::string_view arg, AddressSources& src);

// "[NAME=]LIST" as for --side (a side without a name is "s<index+1>"), or "@FILE" alone. Errors
// start with "invalid side N \"...\"", as core::parse_side's do.
Result<core::Side> resolve_side(std::string_view arg, size_t index, AddressSources& src);

// The lines of a CIDR file: one CIDR per line, surrounding blanks ignored, '#' starts a comment
// to the end of the line, blank lines skipped. Errors are "NAME:LINE: <what is wrong>". A file
// without a single CIDR is an error (it would make an empty side or selector).
Result<std::vector<core::Cidr>> parse_cidr_lines(std::string_view text, const std::string& name);

// The same for exemptions (--exempt @FILE): one CIDR[/PROTO[:PORT]] per line.
Result<std::vector<core::Exemption>> parse_exemption_lines(std::string_view text, const std::string& name);

}  // namespace fl::cli
