// faultctl --host/--hosts without ssh: option extraction, host specs, hosts files, and the part
// of a partition each host gets.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/fanout.h"
#include "core/parse.h"

namespace fl::cli {
namespace {

using json = nlohmann::json;
using Args = std::vector<std::string>;

ExtractedArgs extract_ok(const Args& args) {
  auto r = extract_host_options(args);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : ExtractedArgs{};
}

std::string extract_err(const Args& args) {
  auto r = extract_host_options(args);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  return r.error().message;
}

Host host_ok(std::string_view spec) {
  auto r = parse_host_spec(spec);
  EXPECT_TRUE(r.ok()) << spec << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Host{};
}

std::string host_err(std::string_view spec) {
  auto r = parse_host_spec(spec);
  EXPECT_FALSE(r.ok()) << "accepted: " << spec;
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  return r.error().message;
}

core::Cidr cidr(std::string_view s) {
  auto r = core::parse_cidr(s);
  EXPECT_TRUE(r.ok()) << s;
  return r.ok() ? *r : core::Cidr{};
}

std::vector<core::Cidr> cidrs(std::initializer_list<std::string_view> l) {
  std::vector<core::Cidr> out;
  for (auto s : l) out.push_back(cidr(s));
  return out;
}

core::FaultSpec partition(std::vector<std::vector<core::Cidr>> sides) {
  core::FaultSpec spec;
  spec.kind = core::FaultKind::partition;
  for (size_t i = 0; i < sides.size(); ++i) spec.sides.push_back({"s" + std::to_string(i + 1), sides[i]});
  return spec;
}

std::vector<std::vector<std::string>> side_strings(const core::FaultSpec& spec) {
  std::vector<std::vector<std::string>> out;
  for (const auto& s : spec.sides) {
    out.emplace_back();
    for (const auto& c : s.cidrs) out.back().push_back(c.str());
  }
  return out;
}

// ---------------------------------------------------------------- extraction

TEST(FanoutArgs, TakesHostOptionsBeforeTheCommand) {
  auto ex = extract_ok({"--host", "a", "--host=root@b:2222", "--hosts", "f1", "--hosts=f2", "--ssh-config", "cfg",
                        "-o", "json", "--socket", "/run/x.sock", "list"});
  EXPECT_EQ(ex.hosts.hosts, (Args{"a", "root@b:2222"}));
  EXPECT_EQ(ex.hosts.host_files, (Args{"f1", "f2"}));
  EXPECT_EQ(ex.hosts.ssh_config, "cfg");
  EXPECT_EQ(ex.rest, (Args{"-o", "json", "--socket", "/run/x.sock", "list"}));
  EXPECT_TRUE(ex.hosts.any());
}

TEST(FanoutArgs, LeavesEverythingElseInOrder) {
  auto ex = extract_ok({"-ojson", "--socket=/s", "--host", "h", "partition", "--side", "a=10.0.0.1", "--host", "x"});
  EXPECT_EQ(ex.hosts.hosts, (Args{"h"}));
  // After the command, --host is the command's business (and parse_args refuses it).
  EXPECT_EQ(ex.rest, (Args{"-ojson", "--socket=/s", "partition", "--side", "a=10.0.0.1", "--host", "x"}));

  // The value of --socket or -o is not the command, even when it looks like an option of ours.
  ex = extract_ok({"--socket", "--host", "list"});
  EXPECT_TRUE(ex.hosts.hosts.empty());
  EXPECT_EQ(ex.rest, (Args{"--socket", "--host", "list"}));

  // "--" ends the global options; parse_args sees it too.
  ex = extract_ok({"--host", "h", "--", "--host", "status"});
  EXPECT_EQ(ex.hosts.hosts, (Args{"h"}));
  EXPECT_EQ(ex.rest, (Args{"--", "--host", "status"}));

  ex = extract_ok({"list"});
  EXPECT_FALSE(ex.hosts.any());
  EXPECT_EQ(ex.rest, (Args{"list"}));
  EXPECT_TRUE(extract_ok({}).rest.empty());
  // Unknown options stay for parse_args to refuse with its own message.
  EXPECT_EQ(extract_ok({"--frob", "--host", "h", "list"}).rest, (Args{"--frob", "list"}));
}

TEST(FanoutArgs, NoNarrow) {
  auto ex = extract_ok({"--host", "a", "--host", "b", "partition", "--side", "10.0.0.1"});
  EXPECT_TRUE(ex.hosts.narrow);  // narrowing is the default
  ex = extract_ok({"--host", "a", "--no-narrow", "--host", "b", "partition", "--side", "10.0.0.1"});
  EXPECT_FALSE(ex.hosts.narrow);
  EXPECT_EQ(ex.hosts.hosts, (Args{"a", "b"}));
  EXPECT_EQ(ex.rest, (Args{"partition", "--side", "10.0.0.1"}));
  // Given twice it still means the same.
  EXPECT_FALSE(extract_ok({"--no-narrow", "--hosts", "f", "--no-narrow", "list"}).hosts.narrow);
  // After the command, it is the command's business.
  ex = extract_ok({"--host", "a", "partition", "--no-narrow"});
  EXPECT_TRUE(ex.hosts.narrow);
  EXPECT_EQ(ex.rest, (Args{"partition", "--no-narrow"}));
}

TEST(FanoutArgs, Errors) {
  EXPECT_EQ(extract_err({"--no-narrow", "partition"}), "--no-narrow needs --host or --hosts");
  EXPECT_EQ(extract_err({"--host", "a", "--no-narrow=yes", "list"}), "--no-narrow takes no value");
  EXPECT_EQ(extract_err({"--host"}), "--host: missing value");
  EXPECT_EQ(extract_err({"--hosts"}), "--hosts: missing value");
  EXPECT_EQ(extract_err({"--host=", "list"}), "--host: empty value");
  EXPECT_EQ(extract_err({"--hosts", "", "list"}), "--hosts: empty value");
  EXPECT_EQ(extract_err({"--host", "a", "--ssh-config", "x", "--ssh-config=y", "list"}), "--ssh-config given twice");
  EXPECT_EQ(extract_err({"--ssh-config", "x", "list"}), "--ssh-config needs --host or --hosts");
}

// ---------------------------------------------------------------- host specs

TEST(FanoutHost, Good) {
  Host h = host_ok("node-1");
  EXPECT_EQ(h.host, "node-1");
  EXPECT_EQ(h.user, "");
  EXPECT_EQ(h.port, 0);
  EXPECT_EQ(h.name(), "node-1");

  h = host_ok("ssh://deploy@db.example.com:2222");
  EXPECT_EQ(h.user, "deploy");
  EXPECT_EQ(h.host, "db.example.com");
  EXPECT_EQ(h.port, 2222);
  EXPECT_EQ(h.name(), "deploy@db.example.com:2222");

  h = host_ok("10.200.0.1:22");
  EXPECT_EQ(h.host, "10.200.0.1");
  EXPECT_EQ(h.port, 22);

  h = host_ok("root@[FD00:200::0001]:65535");
  EXPECT_EQ(h.host, "fd00:200::1");  // canonical, so duplicates are found
  EXPECT_EQ(h.port, 65535);
  EXPECT_EQ(h.name(), "root@[fd00:200::1]:65535");

  h = host_ok("fd00:200::2");  // bare IPv6 without a port
  EXPECT_EQ(h.host, "fd00:200::2");
  EXPECT_EQ(h.name(), "fd00:200::2");
  EXPECT_EQ(host_ok("[fd00:200::3]").host, "fd00:200::3");

  EXPECT_EQ(host_ok("ssh://host_alias").host, "host_alias");  // ssh_config aliases
  EXPECT_EQ(host_ok("a.b-c.d").host, "a.b-c.d");
  EXPECT_EQ(host_ok("_svc.x").host, "_svc.x");
  EXPECT_EQ(host_ok("u.ser_1-x@h").user, "u.ser_1-x");
  EXPECT_EQ(host_ok("h:1").port, 1);
}

TEST(FanoutHost, Bad) {
  EXPECT_EQ(host_err(""), "invalid host \"\": empty");
  EXPECT_EQ(host_err("-oProxyCommand=x"), "invalid host \"-oProxyCommand=x\": a host may not start with '-'");
  EXPECT_EQ(host_err("-h:22"), "invalid host \"-h:22\": a host may not start with '-'");
  EXPECT_EQ(host_err("-x@h"), "invalid host \"-x@h\": a user name may not start with '-'");
  const std::string no_spaces = ": spaces, control characters and non-ASCII bytes are not allowed";
  EXPECT_EQ(host_err("h -p 1"), "invalid host \"h -p 1\"" + no_spaces);
  EXPECT_EQ(host_err("h\tx"), "invalid host \"h\\x09x\"" + no_spaces);
  EXPECT_EQ(host_err("h\xc3\xa9"), "invalid host \"h\\xc3\\xa9\"" + no_spaces);
  EXPECT_EQ(host_err("h:0"), "invalid host \"h:0\": port \"0\" is not a number from 1 to 65535");
  EXPECT_EQ(host_err("h:65536"), "invalid host \"h:65536\": port \"65536\" is not a number from 1 to 65535");
  EXPECT_EQ(host_err("h:+22"), "invalid host \"h:+22\": port \"+22\" is not a number from 1 to 65535");
  EXPECT_EQ(host_err("h:022222"), "invalid host \"h:022222\": port \"022222\" is not a number from 1 to 65535");
  EXPECT_EQ(host_err("h:"), "invalid host \"h:\": empty port after ':'");
  EXPECT_EQ(host_err(":22"), "invalid host \":22\": no host");
  EXPECT_EQ(host_err("user@"), "invalid host \"user@\": no host");
  EXPECT_EQ(host_err("@h"), "invalid host \"@h\": empty user before '@'");
  EXPECT_EQ(host_err("us$er@h"),
            "invalid host \"us$er@h\": user name \"us$er\" has a character other than letters, digits, '.', '_', '-'");
  EXPECT_EQ(host_err(std::string(33, 'u') + "@h"),
            "invalid host \"" + std::string(33, 'u') + "@h\": user name longer than 32 characters");
  EXPECT_EQ(host_err("http://h"), "invalid host \"http://h\": only ssh:// is supported");
  EXPECT_EQ(host_err("ssh://h/path"), "invalid host \"ssh://h/path\": a path after the host is not supported");
  EXPECT_EQ(host_err("10.200.0"), "invalid host \"10.200.0\": \"10.200.0\" is not an IPv4 address");
  EXPECT_EQ(host_err("10.200.0.256:22"), "invalid host \"10.200.0.256:22\": \"10.200.0.256\" is not an IPv4 address");
  EXPECT_EQ(host_err("fd00::1::2"),
            "invalid host \"fd00::1::2\": \"fd00::1::2\" is not an IPv6 address (write [ADDRESS]:PORT to give a port)");
  EXPECT_EQ(host_err("[fd00::1"), "invalid host \"[fd00::1\": '[' without ']'");
  EXPECT_EQ(host_err("[10.0.0.1]:22"), "invalid host \"[10.0.0.1]:22\": \"10.0.0.1\" is not an IPv6 address");
  EXPECT_EQ(host_err("[fd00::1]22"), "invalid host \"[fd00::1]22\": expected ':PORT' after ']'");
  EXPECT_EQ(host_err("[fd00::1%eth0]:22"),
            "invalid host \"[fd00::1%eth0]:22\": \"fd00::1%eth0\" is not an IPv6 address");
  EXPECT_EQ(host_err("a..b"), "invalid host \"a..b\": empty label in host name \"a..b\"");
  EXPECT_EQ(host_err("a.b."), "invalid host \"a.b.\": empty label in host name \"a.b.\"");
  EXPECT_EQ(host_err("a.-b"), "invalid host \"a.-b\": label \"-b\" starts or ends with '-'");
  EXPECT_EQ(host_err("a!b"),
            "invalid host \"a!b\": host name \"a!b\" has a character other than letters, digits, '-', '_', '.'");
  const std::string long_label(64, 'a');
  EXPECT_EQ(host_err(long_label),
            "invalid host \"" + long_label + "\": label \"" + long_label + "\" longer than 63 characters");
}

// ---------------------------------------------------------------- hosts files

TEST(FanoutHostsFile, Parses) {
  auto r = parse_hosts_file(
      "# the lab\n"
      "\n"
      "   10.200.0.1\n"
      "root@10.200.0.2:2222   socket=/tmp/n1.sock   # node 1\r\n"
      "\t[fd00:200::3]:22\tsocket=/run/x.sock\n"
      "last-without-newline",
      "hosts.txt");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].name(), "10.200.0.1");
  EXPECT_EQ((*r)[0].socket, "");
  EXPECT_EQ((*r)[1].name(), "root@10.200.0.2:2222");
  EXPECT_EQ((*r)[1].socket, "/tmp/n1.sock");
  EXPECT_EQ((*r)[2].name(), "[fd00:200::3]:22");
  EXPECT_EQ((*r)[2].socket, "/run/x.sock");
  EXPECT_EQ((*r)[3].host, "last-without-newline");
}

TEST(FanoutHostsFile, Errors) {
  auto err = [](std::string_view text) {
    auto r = parse_hosts_file(text, "h.txt");
    EXPECT_FALSE(r.ok()) << "accepted: " << text;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_EQ(err(""), "h.txt: no hosts in the file");
  EXPECT_EQ(err("# only a comment\n\n   \n"), "h.txt: no hosts in the file");
  EXPECT_EQ(err("a\nb:0\n"), "h.txt:2: invalid host \"b:0\": port \"0\" is not a number from 1 to 65535");
  EXPECT_EQ(err("a sock=/x\n"), "h.txt:1: unexpected \"sock=/x\" after the host (expected socket=PATH)");
  EXPECT_EQ(err("a socket=/x socket=/y\n"), "h.txt:1: socket= given twice");
  EXPECT_EQ(err("a socket=\n"), "h.txt:1: socket: empty path");
  EXPECT_EQ(err("a socket=run/x.sock\n"),
            "h.txt:1: socket: \"run/x.sock\" is not an absolute path (it names the socket on the remote host)");
  EXPECT_EQ(err("a socket=/run/a:b.sock\n"),
            "h.txt:1: socket: \"/run/a:b.sock\" contains ':', which ssh -L cannot forward to");
  EXPECT_EQ(err("a socket=/" + std::string(107, 'x') + "\n"),
            "h.txt:1: socket: path is 108 bytes; a Unix socket path has at most 107");
}

TEST(FanoutHostsFile, CollectRefusesDuplicates) {
  std::map<std::string, std::string> files = {{"f", "10.200.0.2\nNode-A:2222\n"}, {"g", "node-a:2222\n"}};
  ReadFile read = [&](const std::string& path) -> Result<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return make_error(Errc::invalid_argument, "cannot open " + path + ": No such file");
    return it->second;
  };
  HostOptions o;
  o.hosts = {"10.200.0.1", "root@node-a"};
  o.host_files = {"f"};
  auto r = collect_hosts(o, read);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].name(), "10.200.0.1");
  EXPECT_EQ((*r)[1].name(), "root@node-a");  // same name, other port: another sshd
  EXPECT_EQ((*r)[3].name(), "Node-A:2222");

  auto err = [&](HostOptions opts) {
    auto res = collect_hosts(opts, read);
    EXPECT_FALSE(res.ok());
    return res.ok() ? std::string() : res.error().message;
  };
  EXPECT_EQ(err({{"10.200.0.1", "root@10.200.0.1"}, {}, ""}),
            "host root@10.200.0.1 is given twice (also as 10.200.0.1)");
  EXPECT_EQ(err({{"[fd00::1]:22", "[fd00:0::1]:22"}, {}, ""}), "host [fd00::1]:22 is given twice");
  EXPECT_EQ(err({{}, {"f", "g"}, ""}), "host node-a:2222 is given twice (also as Node-A:2222)");
  EXPECT_EQ(err({{"10.200.0.2"}, {"f"}, ""}), "host 10.200.0.2 is given twice");
  EXPECT_EQ(err({{}, {"missing"}, ""}), "--hosts: cannot open missing: No such file");
  HostOptions many;
  for (size_t i = 0; i <= kMaxHosts; ++i) many.hosts.push_back("h" + std::to_string(i));
  EXPECT_EQ(err(many), "1025 hosts; faultctl drives at most 1024");
  many.hosts.pop_back();
  EXPECT_TRUE(collect_hosts(many, read).ok());
  EXPECT_EQ(err({{"a b"}, {}, ""}),
            "--host: invalid host \"a b\": spaces, control characters and non-ASCII bytes are not allowed");
}

TEST(FanoutRemoteSocket, Checks) {
  EXPECT_TRUE(check_remote_socket("/run/faultline/faultline.sock", "--socket").ok());
  EXPECT_EQ(check_remote_socket("x.sock", "--socket").error().message,
            "--socket: \"x.sock\" is not an absolute path (it names the socket on the remote host)");
  EXPECT_EQ(check_remote_socket("/a b", "--socket").error().message,
            "--socket: spaces, control characters and non-ASCII bytes are not allowed");
}

// ---------------------------------------------------------------- status addresses

TEST(FanoutStatus, Addresses) {
  auto r = status_addresses(json{{"addresses", {"10.200.0.1", "fd00:200::1"}}});
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(**r, cidrs({"10.200.0.1", "fd00:200::1"}));

  r = status_addresses(json{{"daemon", "0.0.1"}});  // an older daemon
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());

  EXPECT_EQ(status_addresses(json{{"addresses", "10.0.0.1"}}).error().message,
            "malformed status reply: \"addresses\" is not an array");
  EXPECT_EQ(status_addresses(json{{"addresses", {1}}}).error().message,
            "malformed status reply: addresses[0] is not a string");
  EXPECT_FALSE(status_addresses(json{{"addresses", {"10.0.0.1", "bogus"}}}).ok());
  EXPECT_FALSE(status_addresses(json::array()).ok());
}

// ---------------------------------------------------------------- partition narrowing

TEST(FanoutNarrow, EachHostKeepsItsOwnAddressesInItsSides) {
  const auto spec = partition({cidrs({"10.200.0.1", "10.200.0.9", "fd00:200::/64"}), cidrs({"10.200.1.0/24"})});
  auto a = narrow_for_host(spec, cidrs({"10.200.0.1", "fd00:200::1", "192.168.7.7"}));
  ASSERT_TRUE(a.has_value());
  // Its own addresses replace its side; the other side is kept whole.
  EXPECT_EQ(side_strings(*a), (std::vector<std::vector<std::string>>{{"10.200.0.1/32", "fd00:200::1/128"},
                                                                      {"10.200.1.0/24"}}));
  EXPECT_EQ(a->sides[0].name, "s1");
  EXPECT_EQ(a->sides[1].name, "s2");

  auto b = narrow_for_host(spec, cidrs({"10.200.1.5"}));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(side_strings(*b),
            (std::vector<std::vector<std::string>>{{"10.200.0.1/32", "10.200.0.9/32", "fd00:200::/64"},
                                                   {"10.200.1.5/32"}}));
}

TEST(FanoutNarrow, HostInNoSideGetsNothing) {
  const auto spec = partition({cidrs({"10.200.0.1"}), cidrs({"10.200.0.2"})});
  EXPECT_FALSE(narrow_for_host(spec, cidrs({"10.200.0.3", "fd00:200::1"})).has_value());
  EXPECT_FALSE(narrow_for_host(spec, {}).has_value());
}

TEST(FanoutNarrow, BridgesThatShareTheHostsSideStayInIt) {
  // 10.0.0.5 is in both sides: a bridge, which reaches everyone. On host 10.0.0.1 (side 1), a
  // side 1 of just 10.0.0.1 would leave the bridge only in side 2, and cut it off.
  const auto spec = partition({cidrs({"10.0.0.0/29"}), cidrs({"10.0.0.5", "10.0.1.0/24"})});
  auto n = narrow_for_host(spec, cidrs({"10.0.0.1"}));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(side_strings(*n),
            (std::vector<std::vector<std::string>>{{"10.0.0.0/29"}, {"10.0.0.5/32", "10.0.1.0/24"}}));

  // With the bridge as a separate CIDR, only it is kept next to the host's own address.
  const auto spec2 = partition({cidrs({"10.0.0.1", "10.0.0.2", "10.0.0.5"}), cidrs({"10.0.0.5", "10.0.1.0/24"})});
  n = narrow_for_host(spec2, cidrs({"10.0.0.1"}));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(side_strings(*n),
            (std::vector<std::vector<std::string>>{{"10.0.0.5/32", "10.0.0.1/32"}, {"10.0.0.5/32", "10.0.1.0/24"}}));

  // The bridge host itself is in both sides: both shrink to its address.
  n = narrow_for_host(spec2, cidrs({"10.0.0.5"}));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(side_strings(*n), (std::vector<std::vector<std::string>>{{"10.0.0.5/32"}, {"10.0.0.5/32"}}));
}

TEST(FanoutNarrow, KeepsEverythingButTheSides) {
  auto spec = partition({cidrs({"10.0.0.1"}), cidrs({"10.0.0.2"}), cidrs({"10.0.0.3"})});
  spec.one_way = true;
  spec.name = "split";
  spec.match.proto = core::Proto::tcp;
  spec.duration = std::chrono::minutes(2);
  auto n = narrow_for_host(spec, cidrs({"10.0.0.2"}));
  ASSERT_TRUE(n.has_value());
  EXPECT_TRUE(n->one_way);
  EXPECT_EQ(n->name, "split");
  EXPECT_EQ(n->match.proto, core::Proto::tcp);
  EXPECT_EQ(n->duration, std::chrono::minutes(2));
  EXPECT_EQ(n->sides.size(), 3u);  // order matters for --one-way
}

TEST(FanoutNarrow, OtherKindsUnchanged) {
  core::FaultSpec iso;
  iso.kind = core::FaultKind::isolate;
  iso.sides.push_back({"s1", cidrs({"10.0.0.0/24"})});
  auto n = narrow_for_host(iso, cidrs({"10.9.9.9"}));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(side_strings(*n), side_strings(iso));

  core::FaultSpec loss;
  loss.kind = core::FaultKind::loss;
  loss.loss_percent = 10;
  EXPECT_TRUE(narrow_for_host(loss, {}).has_value());
}

// What faultctl would send for a command line (parse_args, as main does).
Invocation invocation(const Args& args) {
  auto r = parse_args(args, nullptr);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Invocation{};
}

TEST(FanoutNarrow, OnlyPartitionsOfTheHostNamespace) {
  const Args split = {"partition", "--side", "a=10.200.0.1", "--side", "b=10.200.0.2"};
  auto with = [&](Args extra) {
    Args a = split;
    a.insert(a.end(), extra.begin(), extra.end());
    return invocation(a);
  };
  // The default target, and an explicit host: narrowed.
  for (const Invocation& inv : {with({}), with({"--target", "host"})}) {
    ASSERT_TRUE(inv.fault.has_value());
    EXPECT_TRUE(narrowable(*inv.fault));
    auto n = narrow_for_host(*inv.fault, cidrs({"10.200.0.1"}));
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(side_strings(*n), (std::vector<std::vector<std::string>>{{"10.200.0.1/32"}, {"10.200.0.2/32"}}));
    EXPECT_FALSE(narrow_for_host(*inv.fault, cidrs({"192.168.1.1"})).has_value());
  }
  // Any other target: the host's own addresses say nothing about the namespace the fault is
  // installed in, so the spec goes whole, and no host is skipped.
  for (const char* target : {"netns:blue", "netns-path:/run/netns/blue", "pid:1", "lab:a", "lab:mylab/b",
                             "pod-uid:0f0e0d0c-1111-2222-3333-444455556666", "container:0123456789abcdef",
                             "pod:default/web-0"}) {
    SCOPED_TRACE(target);
    const Invocation inv = with({"--target", target});
    ASSERT_TRUE(inv.fault.has_value());
    ASSERT_FALSE(inv.fault->targets.empty());
    EXPECT_FALSE(narrowable(*inv.fault));
    // A host whose own address is in a side: the pod's addresses must not drop out.
    auto n = narrow_for_host(*inv.fault, cidrs({"10.200.0.1"}));
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(side_strings(*n), side_strings(*inv.fault));
    // A host in no side: not skipped, its pod may well be in one.
    n = narrow_for_host(*inv.fault, cidrs({"192.168.1.1"}));
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(side_strings(*n), side_strings(*inv.fault));
  }
  // One non-host target among several is enough.
  const Invocation mixed = with({"--target", "host", "--target", "netns:blue"});
  ASSERT_TRUE(mixed.fault.has_value());
  ASSERT_EQ(mixed.fault->targets.size(), 2u);
  EXPECT_FALSE(narrowable(*mixed.fault));
  EXPECT_EQ(side_strings(*narrow_for_host(*mixed.fault, cidrs({"10.200.0.1"}))), side_strings(*mixed.fault));

  // Only partitions are ever narrowed.
  EXPECT_FALSE(narrowable(*invocation({"loss", "10"}).fault));
  EXPECT_FALSE(narrowable(*invocation({"isolate", "10.200.0.1"}).fault));
}

// ---------------------------------------------------------------- fault ids across hosts

std::string ref_err(const Args& args, size_t hosts) {
  auto st = check_fan_out_ref(invocation(args), hosts);
  EXPECT_FALSE(st.ok()) << "accepted with " << hosts << " hosts";
  if (st.ok()) return "";
  EXPECT_EQ(st.error().code, Errc::invalid_argument);
  return st.error().message;
}

TEST(FanoutRef, IdsAreRefusedAcrossHosts) {
  EXPECT_EQ(ref_err({"heal", "7"}, 2),
            "heal 7: fault ids are per host (each faultlined numbers its own faults), so id 7 would name a "
            "different fault, or none, on each of the 2 hosts; refer to the fault by its name (heal NAME, the "
            "--name it was applied with), or heal every fault with heal --all, or give a single --host to use "
            "that host's id");
  // The canonical id is the one named.
  EXPECT_NE(ref_err({"heal", "007"}, 3).find("heal 7: fault ids are per host"), std::string::npos);
  const std::string get = ref_err({"get", "3"}, 2);
  EXPECT_NE(get.find("get 3: fault ids are per host"), std::string::npos) << get;
  EXPECT_NE(get.find("get NAME"), std::string::npos) << get;
  EXPECT_EQ(get.find("--all"), std::string::npos) << get;  // get has no --all
  const std::string stats = ref_err({"-o", "json", "stats", "0"}, 1024);
  EXPECT_NE(stats.find("stats 0: fault ids are per host"), std::string::npos) << stats;
  EXPECT_NE(stats.find("each of the 1024 hosts"), std::string::npos) << stats;
}

TEST(FanoutRef, NamesAllAndSingleHostsPass) {
  for (const Args& args : std::vector<Args>{{"heal", "split"},
                                            {"heal", "--all"},
                                            {"heal", "r7"},
                                            {"get", "split"},
                                            {"stats"},
                                            {"stats", "split"},
                                            {"list"},
                                            {"status"},
                                            {"reset", "--all"},
                                            {"partition", "--side", "10.0.0.1", "--side", "10.0.0.2", "--name", "x1"},
                                            {"loss", "10"}}) {
    EXPECT_TRUE(check_fan_out_ref(invocation(args), 5).ok()) << args[0];
  }
  // One host: its ids are unambiguous.
  EXPECT_TRUE(check_fan_out_ref(invocation({"heal", "7"}), 1).ok());
  EXPECT_TRUE(check_fan_out_ref(invocation({"get", "7"}), 1).ok());
}

}  // namespace
}  // namespace fl::cli
