// Address lists on faultctl's command line: @FILE (one CIDR per line) and lab:[LAB/]NODE
// wherever a CIDR list is taken, resolved by the CLI before anything is sent to a daemon.
#include "cli/address_list.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/parse.h"

namespace fl::cli {
namespace {

bool contains(const std::string& s, const std::string& p) { return s.find(p) != std::string::npos; }

core::Cidr C(std::string_view s) {
  auto r = core::parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : core::Cidr{};
}

// Files by path; a path not listed does not exist (ENOENT, as the real reader reports it).
ReadFile files(std::map<std::string, std::string> m) {
  return [m = std::move(m)](const std::string& path) -> Result<std::string> {
    auto it = m.find(path);
    if (it == m.end()) return Error::sys(Errc::invalid_argument, "cannot open " + path, ENOENT);
    return it->second;
  };
}

std::string lab_state(const std::string& name, int nodes, bool ipv6, const std::string& phase = "ready") {
  std::string out = R"({"version": 1, "name": ")" + name + R"(", "phase": ")" + phase +
                    R"(", "hub": ")" + name + R"(-hub", "subnet": "10.200.0.0/24", "nodes": [)";
  for (int i = 0; i < nodes; ++i) {
    const std::string n(1, static_cast<char>('a' + i));
    const std::string host = std::to_string(11 + i);
    out += (i ? "," : "") + std::string(R"({"node": ")") + n + R"(", "netns": ")" + name + "-" + n +
           R"(", "ipv4": "10.200.0.)" + host + "\"";
    if (ipv6) out += R"(, "ipv6": "fd00:200::)" + host + "\"";
    out += "}";
  }
  return out + "]}";
}

Result<Invocation> parse(std::vector<std::string> args, const ReadFile& rf) { return parse_args(args, nullptr, rf); }

std::string err(std::vector<std::string> args, const ReadFile& rf) {
  auto r = parse(args, rf);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

// ---------------------------------------------------------------- the file format

TEST(CidrLines, CommentsBlankLinesAndBlanksAroundAreIgnored) {
  auto r = parse_cidr_lines("# db nodes\n10.0.1.7\n\n  10.0.2.0/24  # the app subnet\r\n\tfd00::1\n10.0.1.7\n", "f");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (std::vector<core::Cidr>{C("10.0.1.7"), C("10.0.2.0/24"), C("fd00::1")}));
}

TEST(CidrLines, ErrorsSayFileAndLine) {
  auto r = parse_cidr_lines("10.0.0.1\n# x\n10.0.0.300\n", "nodes.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "nodes.txt:3: invalid CIDR \"10.0.0.300\": bad IPv4 address");
  // Two per line is a mistake, not a list.
  r = parse_cidr_lines("10.0.0.1 10.0.0.2\n", "f");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "f:1: invalid CIDR \"10.0.0.1 10.0.0.2\"")) << r.error().message;
  r = parse_cidr_lines("# nothing\n\n", "empty.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "empty.txt: no CIDR in the file (one per line; '#' starts a comment)");
}

TEST(CidrLines, OneHundredThousandLinesParseFast) {
  std::string text = "# generated\n";
  for (int i = 0; i < 100000; ++i) {
    char line[32];
    std::snprintf(line, sizeof line, "10.%d.%d.%d\n", i >> 16, (i >> 8) & 255, i & 255);
    text += line;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto r = parse_cidr_lines(text, "big.txt");
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 100000u);
  std::printf("parse_cidr_lines: 100,000 lines in %lld ms\n", static_cast<long long>(ms.count()));
  EXPECT_LT(ms.count(), 1000) << "100,000 lines must parse in well under a second";

  // Through the whole command line: more than a fault may hold is refused by the limit, at once.
  const auto t1 = std::chrono::steady_clock::now();
  const std::string msg = err({"partition", "--side", "a=@big.txt", "--side", "b=10.255.0.1"}, files({{"big.txt", text}}));
  const auto ms1 = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t1);
  EXPECT_EQ(msg, "sides, match.src, match.dst: 100001 CIDRs in total; the limit is 65536");
  EXPECT_LT(ms1.count(), 2000);

  // And 60,000 (under the limit) go through parse and validation whole.
  std::string part = "";
  for (int i = 0; i < 60000; ++i) {
    char line[32];
    std::snprintf(line, sizeof line, "10.%d.%d.%d\n", i >> 16, (i >> 8) & 255, i & 255);
    part += line;
  }
  const auto t2 = std::chrono::steady_clock::now();
  auto inv = parse({"partition", "--side", "a=@part.txt", "--side", "b=10.255.0.1"}, files({{"part.txt", part}}));
  const auto ms2 = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t2);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->fault->sides[0].cidrs.size(), 60000u);
  std::printf("faultctl partition with a 60,000-line side: parsed and validated in %lld ms\n",
              static_cast<long long>(ms2.count()));
  EXPECT_LT(ms2.count(), 2000);
}

// ---------------------------------------------------------------- @FILE wherever a list is taken

TEST(AtFile, EveryPlaceThatTakesAList) {
  const ReadFile rf = files({{"db.txt", "10.0.2.7\n10.0.2.8\n"},
                             {"app.txt", "# app\n10.0.1.0/24\n"},
                             {"ex.txt", "10.9.0.0/16/tcp:443\n# more\n10.8.0.1\n"}});
  auto inv = parse({"partition", "--side", "db=@db.txt", "--side", "@app.txt", "--side", "x=10.0.3.1,@db.txt"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  ASSERT_EQ(inv->fault->sides.size(), 3u);
  EXPECT_EQ(inv->fault->sides[0].name, "db");
  EXPECT_EQ(inv->fault->sides[0].cidrs, (std::vector<core::Cidr>{C("10.0.2.7"), C("10.0.2.8")}));
  EXPECT_EQ(inv->fault->sides[1].name, "s2");
  EXPECT_EQ(inv->fault->sides[1].cidrs, (std::vector<core::Cidr>{C("10.0.1.0/24")}));
  EXPECT_EQ(inv->fault->sides[2].cidrs, (std::vector<core::Cidr>{C("10.0.3.1"), C("10.0.2.7"), C("10.0.2.8")}));

  inv = parse({"loss", "30", "--src", "@app.txt", "--dst", "@db.txt", "--exempt", "@ex.txt"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->fault->match.src, (std::vector<core::Cidr>{C("10.0.1.0/24")}));
  EXPECT_EQ(inv->fault->match.dst.size(), 2u);
  ASSERT_EQ(inv->fault->exempt.size(), 2u);
  EXPECT_EQ(inv->fault->exempt[0].str(), "10.9.0.0/16/tcp:443");

  inv = parse({"isolate", "@db.txt"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->fault->sides[0].cidrs.size(), 2u);

  inv = parse({"reset", "--dst", "@db.txt", "--dport", "5432"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->reset->match.dst.size(), 2u);

  inv = parse({"delay", "10ms", "--dst", "@db.txt"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
}

TEST(AtFile, ErrorsNameTheOptionTheFileAndTheLine) {
  const ReadFile rf = files({{"bad.txt", "10.0.0.1\n10.0.0.1/8\n"}, {"bad-ex.txt", "10.0.0.0/8/icmp:1\n"}});
  EXPECT_EQ(err({"loss", "30", "--dst", "@bad.txt"}, rf),
            "--dst: bad.txt:2: invalid CIDR \"10.0.0.1/8\": host bits set; the network is 10.0.0.0/8");
  EXPECT_EQ(err({"partition", "--side", "a=@bad.txt", "--side", "10.0.0.2"}, rf),
            "--side: invalid side 1 \"a=@bad.txt\": bad.txt:2: invalid CIDR \"10.0.0.1/8\": host bits set; the "
            "network is 10.0.0.0/8");
  EXPECT_TRUE(contains(err({"loss", "30", "--exempt", "@bad-ex.txt"}, rf), "--exempt: bad-ex.txt:1: invalid exemption"));
  EXPECT_EQ(err({"loss", "30", "--src", "@missing.txt"}, rf), "--src: cannot open missing.txt: No such file or directory");
  EXPECT_EQ(err({"loss", "30", "--src", "@"}, rf), "--src: missing file name after '@'");
  EXPECT_EQ(err({"loss", "30", "--src", "10.0.0.1,,@bad.txt"}, rf),
            "--src: invalid CIDR list \"10.0.0.1,,@bad.txt\": item 2 is empty");
  // No reader (a caller that must not touch files): refused, not ignored.
  auto r = parse_args({"loss", "30", "--src", "@x"}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "--src: this caller cannot read files");
}

TEST(AtFile, StdinIsReadOncePerCommand) {
  const ReadFile rf = files({{"-", "10.0.0.1\n"}});
  auto inv = parse({"loss", "30", "--dst", "@-"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->fault->match.dst, (std::vector<core::Cidr>{C("10.0.0.1")}));
  EXPECT_EQ(err({"loss", "30", "--src", "@-", "--dst", "@-"}, rf),
            "--dst: stdin ('-') can be read only once per command");
  EXPECT_TRUE(contains(err({"partition", "--side", "@-", "--side", "x=@-"}, rf), "stdin ('-') can be read only once"));
  // A stdin error is named as such.
  EXPECT_EQ(err({"loss", "30", "--dst", "@-"}, files({{"-", "nope\n"}})),
            "--dst: <stdin>:1: invalid CIDR \"nope\": not an IPv4 or IPv6 address (host names are not resolved)");
}

// ---------------------------------------------------------------- lab:[LAB/]NODE

TEST(LabAddress, ANodeIsItsAddressesFromTheStateFile) {
  const ReadFile rf = files({{"/run/faultline-lab/fl-lab.json", lab_state("fl-lab", 3, true)},
                             {"/run/faultline-lab/x.json", lab_state("x", 2, false)}});
  auto inv = parse({"partition", "--side", "lab:a", "--side", "b=lab:x/b,lab:c"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->fault->sides[0].cidrs, (std::vector<core::Cidr>{C("10.200.0.11"), C("fd00:200::11")}));
  EXPECT_EQ(inv->fault->sides[1].name, "b");
  EXPECT_EQ(inv->fault->sides[1].cidrs,
            (std::vector<core::Cidr>{C("10.200.0.12"), C("10.200.0.13"), C("fd00:200::13")}));

  inv = parse({"loss", "30", "--dst", "lab:x/a", "--target", "lab:x/b"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->fault->match.dst, (std::vector<core::Cidr>{C("10.200.0.11")}));
  EXPECT_EQ(inv->fault->targets[0].str(), "netns:x-b");

  inv = parse({"isolate", "lab:b", "--target", "lab:a"}, rf);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->fault->sides[0].cidrs.size(), 2u);
}

TEST(LabAddress, UnknownLabOrNodeIsAPreciseError) {
  const ReadFile rf = files({{"/run/faultline-lab/fl-lab.json", lab_state("fl-lab", 3, false)},
                             {"/run/faultline-lab/half.json", lab_state("half", 2, false, "creating")},
                             {"/run/faultline-lab/junk.json", "{not json"}});
  EXPECT_EQ(err({"loss", "30", "--dst", "lab:nolab/a"}, rf),
            "--dst: lab:nolab/a: no lab named \"nolab\" (no /run/faultline-lab/nolab.json; 'faultctl lab up --name "
            "nolab' makes one)");
  EXPECT_EQ(err({"loss", "30", "--dst", "lab:q"}, rf),
            "--dst: lab:q: lab \"fl-lab\" has no node \"q\" (its nodes: a, b, c)");
  EXPECT_TRUE(contains(err({"partition", "--side", "lab:a", "--side", "lab:half/a"}, rf),
                       "--side: invalid side 2 \"lab:half/a\": lab:half/a: lab \"half\" is not ready (phase \"creating\")"));
  EXPECT_TRUE(contains(err({"loss", "30", "--dst", "lab:junk/a"}, rf),
                       "lab:junk/a: /run/faultline-lab/junk.json: malformed state file"));
  EXPECT_EQ(err({"loss", "30", "--dst", "lab:/a"}, rf), "--dst: lab:/a: missing lab name before '/'");
  EXPECT_EQ(err({"loss", "30", "--dst", "lab:ab"}, rf),
            "--dst: lab:ab: node name \"ab\" is not a lab node (one letter, a to z)");
  EXPECT_EQ(err({"loss", "30", "--dst", "lab:X/a"}, rf),
            "--dst: lab:X/a: lab name \"X\" is not a lab name (1 to 40 of a-z, 0-9 and '-')");
}

}  // namespace
}  // namespace fl::cli
