// Every faultctl example in the documentation and in faultctl's own --help goes through the CLI's
// parse and validate path (what `faultctl` runs before it talks to a daemon), so a documented
// command can never again be refused. New commands and new documents are picked up by
// themselves: the commands come from the top-level help, the documents from the docs folder.
//
// What counts as an example: inside a fenced code block that is shell (```sh, bash, shell,
// console) or has no language, a line (with its `\` continuations) that starts with
// `faultctl ` once a prompt (`$ `, `# `) and `sudo ` are taken off; and every segment of such a
// line after `|`, `&&`, `||` or `;` that starts so. `kubectl faultline ... -- ARGS` lines are
// checked as `faultctl ARGS` (what the plugin runs, before it adds the pod's --target). Comments and redirections are cut. A line
// with a placeholder (`<...>`, `$VAR`, `...`) is a template, not an example: it is skipped and
// listed, so that a template does not hide a broken example for long.
//
// Files an example names (a matrix, @FILE, a hosts file) are read from the source tree, or else
// by their base name from docs/examples/ (a path under /vagrant/ is the source tree, as the
// Vagrant VMs see it); stdin ("-") is docs/examples/stdin-matrix.yaml for
// matrix and docs/examples/stdin-cidrs.txt otherwise. Lab state files are made up for any lab:
// 26 nodes with IPv6, as `faultctl lab up --nodes 26 --ipv6` would make.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/fanout.h"
#include "core/parse.h"

namespace fl::cli {
namespace {

namespace fs = std::filesystem;

struct Example {
  std::string where;  // "docs/FAULTS.md:123" or "faultctl loss --help"
  std::string line;   // as written (continuations joined)
  std::vector<std::string> args;  // after "faultctl"
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string trim(std::string s) {
  while (!s.empty() && is_space(s.front())) s.erase(0, 1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.pop_back();
  return s;
}

// Shell words of a command line, quotes removed; stops at an unquoted comment. Separators
// (|, ||, &&, ;) become words of their own, so the caller can split commands.
std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
      continue;
    }
    if (c == '#' && !in_word) break;
    if (is_space(c)) {
      if (in_word) words.push_back(cur), cur.clear(), in_word = false;
      continue;
    }
    if (c == '|' || c == ';' || (c == '&' && i + 1 < line.size() && line[i + 1] == '&')) {
      if (in_word) words.push_back(cur), cur.clear(), in_word = false;
      std::string sep(1, c);
      if (i + 1 < line.size() && line[i + 1] == c) sep += line[++i];
      words.push_back(sep);
      continue;
    }
    cur += c;
    in_word = true;
  }
  if (in_word) words.push_back(cur);
  return words;
}

bool is_separator(const std::string& w) { return w == "|" || w == "||" || w == "&&" || w == ";"; }

// "2>/dev/null", ">", "2>&1", "<file": redirections are the shell's, not faultctl's.
bool is_redirection(const std::string& w, bool& takes_next) {
  size_t i = 0;
  while (i < w.size() && w[i] >= '0' && w[i] <= '9') ++i;
  if (i >= w.size() || (w[i] != '>' && w[i] != '<')) return false;
  size_t j = i + 1;
  if (j < w.size() && (w[j] == '>' || w[j] == '&')) ++j;
  takes_next = j >= w.size();
  return true;
}

bool is_template(const std::string& line) {
  return line.find('<') != std::string::npos || line.find('$') != std::string::npos ||
         line.find("...") != std::string::npos || line.find("…") != std::string::npos;
}

// The faultctl commands in one (joined) line of a code block.
void examples_in_line(const std::string& where, std::string line, std::vector<Example>& out,
                      std::vector<std::string>& templates) {
  line = trim(line);
  for (const char* prompt : {"$ ", "# "}) {
    if (line.rfind(prompt, 0) == 0) line = trim(line.substr(2));
  }
  const std::vector<std::string> words = shell_words(line);
  size_t i = 0;
  while (i < words.size()) {
    size_t start = i;
    while (i < words.size() && !is_separator(words[i])) ++i;
    std::vector<std::string> cmd(words.begin() + static_cast<std::ptrdiff_t>(start),
                                 words.begin() + static_cast<std::ptrdiff_t>(i));
    ++i;
    size_t k = 0;
    if (k < cmd.size() && cmd[k] == "sudo") ++k;
    // The kubectl plugin runs faultctl with what follows "--" (plus the pod's --target).
    if (k + 1 < cmd.size() && cmd[k] == "kubectl" && cmd[k + 1] == "faultline") {
      const auto dd = std::find(cmd.begin() + static_cast<std::ptrdiff_t>(k), cmd.end(), "--");
      if (dd == cmd.end()) continue;
      k = static_cast<size_t>(dd - cmd.begin());
    } else if (k >= cmd.size() || cmd[k] != "faultctl") {
      continue;
    }
    std::string words_joined;
    for (const auto& w : cmd) words_joined += w + " ";
    if (is_template(words_joined)) {
      templates.push_back(where + ": " + line);
      continue;
    }
    Example e{where, line, {}};
    for (++k; k < cmd.size(); ++k) {
      bool takes_next = false;
      if (is_redirection(cmd[k], takes_next)) {
        if (takes_next) ++k;
        continue;
      }
      e.args.push_back(cmd[k]);
    }
    out.push_back(std::move(e));
  }
}

void examples_in_markdown(const std::string& rel, const std::string& text, std::vector<Example>& out,
                          std::vector<std::string>& templates) {
  std::istringstream in(text);
  std::string line;
  bool in_block = false, shell = false;
  size_t n = 0;
  std::string pending;
  size_t pending_line = 0;
  while (std::getline(in, line)) {
    ++n;
    const std::string t = trim(line);
    if (t.rfind("```", 0) == 0) {
      if (!in_block) {
        const std::string lang = trim(t.substr(3));
        shell = lang.empty() || lang == "sh" || lang == "bash" || lang == "shell" || lang == "console";
      }
      in_block = !in_block;
      pending.clear();
      continue;
    }
    if (!in_block || !shell) continue;
    if (pending.empty()) pending_line = n;
    if (!t.empty() && t.back() == '\\') {
      pending += t.substr(0, t.size() - 1) + " ";
      continue;
    }
    pending += t;
    examples_in_line(rel + ":" + std::to_string(pending_line), pending, out, templates);
    pending.clear();
  }
}

// The commands the top-level help lists: its "Commands:" section, two-space indented.
std::vector<std::string> commands_in_top_help() {
  std::vector<std::string> cmds;
  std::istringstream in(top_help());
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line == "Commands:") {
      in_section = true;
      continue;
    }
    if (!in_section) continue;
    if (line.empty()) break;
    cmds.push_back(trim(line).substr(0, trim(line).find(' ')));
  }
  return cmds;
}

std::string lab_state(const std::string& name) {
  std::string nodes;
  for (int i = 0; i < 26; ++i) {
    const std::string n(1, static_cast<char>('a' + i)), host = std::to_string(11 + i);
    nodes += (i ? "," : "") + std::string(R"({"node":")") + n + R"(","netns":")" + name + "-" + n +
             R"(","ipv4":"10.200.0.)" + host + R"(","ipv6":"fd00:200::)" + host + "\"}";
  }
  return R"({"version":1,"name":")" + name + R"(","phase":"ready","hub":")" + name +
         R"(-hub","subnet":"10.200.0.0/24","subnet6":"fd00:200::/64","nodes":[)" + nodes + "]}";
}

ReadFile example_files(const fs::path& root, const std::string& command) {
  return [root, command](const std::string& path) -> Result<std::string> {
    const std::string lab_dir = std::string(core::kLabStateDir) + "/";
    if (path.rfind(lab_dir, 0) == 0) {
      const std::string name = path.substr(lab_dir.size(), path.size() - lab_dir.size() - 5);
      return lab_state(name);
    }
    fs::path p;
    if (path == "-") {
      p = root / "docs/examples" / (command == "matrix" ? "stdin-matrix.yaml" : "stdin-cidrs.txt");
    } else if (path.rfind("/vagrant/", 0) == 0) {
      p = root / path.substr(9);  // the Vagrant VMs see the source tree at /vagrant
    } else if (fs::path(path).is_relative() && fs::exists(root / path)) {
      p = root / path;
    } else {
      p = root / "docs/examples" / fs::path(path).filename();
    }
    if (!fs::exists(p)) {
      return Error::sys(Errc::invalid_argument,
                        "cannot open " + path + " (an example's file goes in docs/examples/, looked for " +
                            p.string() + ")",
                        ENOENT);
    }
    return read_text(p);
  };
}

// What faultctl's main() does before it connects: host options, then parse and validate.
Status check_example(const Example& e, const fs::path& root) {
  auto ex = extract_host_options(e.args);
  if (!ex) return ex.take_error();
  std::string command;
  for (size_t i = 0; i < ex->rest.size(); ++i) {
    const std::string& a = ex->rest[i];
    if (a == "--socket" || a == "-o" || a == "--output") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] != '-') {
      command = a;
      break;
    }
  }
  const ReadFile rf = example_files(root, command);
  auto inv = parse_args(ex->rest, nullptr, rf);
  if (!inv) return inv.take_error();
  if (ex->hosts.any()) {
    auto hosts = collect_hosts(ex->hosts, rf);
    if (!hosts) return hosts.take_error();
    FL_TRY(check_fan_out_ref(*inv, hosts->size()));
    if (inv->command == "lab") return make_error(Errc::invalid_argument, "lab takes no --host/--hosts");
  }
  if (inv->command == "lab" && !inv->help && !inv->lab_args.empty()) {
    // faultline-lab checks the rest itself (tests/integration/lab_test.cpp); here, that the
    // command word is one of its own.
    const std::string& sub = inv->lab_args[0];
    if (sub != "up" && sub != "down" && sub != "exec" && sub != "status" && sub != "--help" && sub != "-h") {
      return make_error(Errc::invalid_argument, "unknown lab command " + sub);
    }
  }
  return {};
}

fs::path source_root() { return fs::path(FL_SOURCE_DIR); }

// Every Markdown document a user reads for commands: the README, docs/, and the READMEs of the
// deployment and the Vagrant lab.
std::vector<fs::path> documents() {
  const fs::path root = source_root();
  std::vector<fs::path> docs = {root / "README.md", root / "deploy/README.md", root / "vagrant/README.md"};
  for (const auto& entry : fs::directory_iterator(root / "docs")) {
    if (entry.path().extension() == ".md") docs.push_back(entry.path());
  }
  std::sort(docs.begin(), docs.end());
  return docs;
}

TEST(DocExamples, EveryDocumentedCommandParsesAndValidates) {
  const fs::path root = source_root();
  std::vector<Example> examples;
  std::vector<std::string> templates;
  for (const auto& doc : documents()) {
    if (!fs::exists(doc)) continue;
    examples_in_markdown(fs::relative(doc, root).string(), read_text(doc), examples, templates);
  }
  ASSERT_GT(examples.size(), 40u) << "the extractor found too few examples; is it still reading the docs?";
  size_t failed = 0;
  for (const auto& e : examples) {
    auto st = check_example(e, root);
    if (!st) {
      ++failed;
      ADD_FAILURE() << e.where << ": " << e.line << "\n  faultctl: " << st.error().message;
    }
  }
  std::printf("doc examples: %zu checked, %zu failed, %zu templates skipped\n", examples.size(), failed,
              templates.size());
  for (const auto& t : templates) std::printf("  template (not checked): %s\n", t.c_str());
}

TEST(DocExamples, EveryHelpExampleParsesAndValidates) {
  const std::vector<std::string> commands = commands_in_top_help();
  ASSERT_GE(commands.size(), 10u) << top_help();
  std::vector<Example> examples;
  std::vector<std::string> templates;
  for (const auto& cmd : commands) {
    auto inv = parse_args({cmd, "--help"}, nullptr);
    ASSERT_TRUE(inv.ok() && inv->help) << cmd << ": the top-level help lists it, but it has no --help";
    std::istringstream in(inv->help_text);
    std::string line;
    size_t before = examples.size();
    while (std::getline(in, line)) {
      if (trim(line).rfind("faultctl ", 0) == 0) examples_in_line("faultctl " + cmd + " --help", line, examples, templates);
    }
    // A command whose help shows how to use it is worth the line; the read-only ones may not.
    (void)before;
  }
  examples_in_line("faultctl --help", "faultctl --help", examples, templates);
  ASSERT_GT(examples.size(), 20u);
  for (const auto& e : examples) {
    auto st = check_example(e, source_root());
    EXPECT_TRUE(st.ok()) << e.where << ": " << e.line << "\n  faultctl: " << (st.ok() ? "" : st.error().message);
  }
  EXPECT_TRUE(templates.empty()) << "a --help example is a template: " << templates.front();
}

// The extractor itself, so that a change to it cannot quietly make the tests above vacuous.
TEST(DocExamples, ExtractorFindsCommandsContinuationsPipesAndSkipsTemplates) {
  const std::string md =
      "text faultctl list outside a block\n"
      "```sh\n"
      "# a comment\n"
      "$ sudo faultctl partition --side a=10.0.0.1 \\\n"
      "    --side b=10.0.0.2 --for 30s   # split\n"
      "generate | faultctl matrix - --name wan 2>/dev/null || true\n"
      "faultctl lab status --name <LAB>\n"
      "```\n"
      "```json\n"
      "faultctl list\n"
      "```\n"
      "```\n"
      "faultctl heal 'my fault'\n"
      "```\n";
  std::vector<Example> ex;
  std::vector<std::string> templates;
  examples_in_markdown("x.md", md, ex, templates);
  ASSERT_EQ(ex.size(), 3u);
  EXPECT_EQ(ex[0].where, "x.md:4");
  EXPECT_EQ(ex[0].args, (std::vector<std::string>{"partition", "--side", "a=10.0.0.1", "--side", "b=10.0.0.2",
                                                  "--for", "30s"}));
  EXPECT_EQ(ex[1].args, (std::vector<std::string>{"matrix", "-", "--name", "wan"}));
  EXPECT_EQ(ex[2].args, (std::vector<std::string>{"heal", "my fault"}));
  ASSERT_EQ(templates.size(), 1u);
  // An unknown command is a failure, not a skip.
  EXPECT_FALSE(check_example(Example{"x", "faultctl frobnicate", {"frobnicate"}}, source_root()).ok());
  EXPECT_FALSE(check_example(Example{"x", "faultctl loss 30 --for 8d", {"loss", "30", "--for", "8d"}}, source_root()).ok());
}

}  // namespace
}  // namespace fl::cli
