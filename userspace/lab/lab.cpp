#include "lab/lab.h"

#include <arpa/inet.h>
#include <sys/sysmacros.h>

#include <ctime>

#include "core/parse.h"

namespace fl::lab {

namespace {

using json = nlohmann::json;

Error invalid(std::string_view what, std::string_view input, const std::string& reason) {
  return make_error(Errc::invalid_argument,
                    "invalid " + std::string(what) + " " + core::quote(input) + ": " + reason);
}

// Adds a host number to a network address (big-endian bytes, as in Cidr).
std::array<uint8_t, 16> add_host(std::array<uint8_t, 16> a, size_t len, uint64_t host) {
  for (size_t i = len; i-- > 0 && host;) {
    uint64_t sum = a[i] + (host & 0xff);
    a[i] = static_cast<uint8_t>(sum);
    host = (host >> 8) + (sum >> 8);
  }
  return a;
}

std::string addr_str(int family, const std::array<uint8_t, 16>& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, a.data(), buf, sizeof buf);
  return buf;
}

// Node i's host number. In IPv6 the digits of the IPv4 host number are read as hex, so node a
// is 10.200.0.11 and fd00:200::11, and a reader matches the two by eye.
uint64_t host_number(int family, int i) {
  unsigned n = kFirstHost + static_cast<unsigned>(i);
  return family == 4 ? n : std::stoull(std::to_string(n), nullptr, 16);
}

std::string now_utc() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Status check_lab_name(std::string_view s) {
  const char* what = "lab name";
  if (s.empty()) return invalid(what, s, "empty");
  if (s.size() > kMaxNameLen) {
    return invalid(what, s,
                   "longer than " + std::to_string(kMaxNameLen) + " characters (got " +
                       std::to_string(s.size()) + ")");
  }
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return invalid(what, s,
                     "character " + core::quote(s.substr(i, 1)) + " at position " + std::to_string(i + 1) +
                         " is not allowed; use lower-case letters, digits and '-'");
    }
  }
  if (s.front() == '-') return invalid(what, s, "must not start with '-'");
  return {};
}

Status check_node_name(std::string_view s, int nodes) {
  std::string last(1, static_cast<char>('a' + nodes - 1));
  if (s.size() != 1 || s[0] < 'a' || s[0] > 'z')
    return invalid("node", s, "nodes are single letters, a to " + last);
  if (s[0] - 'a' >= nodes)
    return make_error(Errc::not_found, "no node " + core::quote(s) + " in this lab: its nodes are a to " + last);
  return {};
}

Result<int> parse_nodes(std::string_view s) {
  const std::string range = "expected a number from " + std::to_string(kMinNodes) + " to " + std::to_string(kMaxNodes);
  if (s.empty() || s.size() > 3) return invalid("--nodes", s, range);
  int n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return invalid("--nodes", s, range);
    n = n * 10 + (c - '0');
  }
  if (n < kMinNodes || n > kMaxNodes) return invalid("--nodes", s, range);
  return n;
}

Result<core::Cidr> parse_subnet(std::string_view s, int family, int nodes) {
  const char* what = family == 4 ? "--subnet" : "--subnet6";
  auto c = core::parse_cidr(s);
  if (!c.ok()) return c.take_error().wrap(what);
  if (c->family != family)
    return invalid(what, s, family == 4 ? "expected an IPv4 network (IPv6 goes to --subnet6)"
                                        : "expected an IPv6 network (IPv4 goes to --subnet)");
  // The kernel would refuse these on an interface only after half the lab exists.
  const uint8_t first = c->addr[0];
  if (family == 4 && (first == 0 || first == 127 || first >= 224))
    return invalid(what, s, "not a unicast network (0/8, 127/8 and 224/3 cannot be interface addresses)");
  if (family == 6 && (first == 0xff || first == 0))
    return invalid(what, s, "not a unicast network (ff00::/8 and ::/8 cannot be interface addresses)");
  // Room for the highest node address, and in IPv4 for the broadcast address above it.
  const unsigned bits = (family == 4 ? 32u : 128u) - c->prefix;
  const uint64_t highest = host_number(family, nodes - 1);
  const bool fits = bits >= 63 || highest + (family == 4 ? 1 : 0) < (uint64_t{1} << bits);
  if (!fits) {
    return invalid(what, s,
                   "too small for " + std::to_string(nodes) + " nodes (their host numbers start at " +
                       std::to_string(kFirstHost) + "); use a shorter prefix, e.g. " +
                       (family == 4 ? "/24" : "/64"));
  }
  return *c;
}

std::string netns_name(std::string_view lab, std::string_view node) {
  return core::lab_netns_name(lab, node);
}

std::string state_path(std::string_view lab) { return std::string(kStateDir) + "/" + std::string(lab) + ".json"; }

std::vector<std::string> Lab::namespaces() const {
  std::vector<std::string> out;
  for (const auto& n : nodes) out.push_back(n.netns);
  out.push_back(hub);
  return out;
}

std::string NetnsId::str() const {
  return "dev " + std::to_string(major(dev)) + ":" + std::to_string(minor(dev)) + " inode " + std::to_string(ino) +
         " cookie " + (cookie ? std::to_string(cookie) : std::string("unknown"));
}

std::optional<NetnsId> Lab::recorded_id(std::string_view ns) const {
  if (ns == hub) return hub_id;
  for (const auto& n : nodes)
    if (n.netns == ns) return n.id;
  return std::nullopt;
}

void Lab::record_id(std::string_view ns, const NetnsId& id) {
  if (ns == hub) hub_id = id;
  for (auto& n : nodes)
    if (n.netns == ns) n.id = id;
}

const Node* Lab::node(std::string_view n) const {
  for (const auto& x : nodes)
    if (x.name == n) return &x;
  return nullptr;
}

Lab plan(const Request& r) {
  Lab lab;
  lab.name = r.name;
  lab.hub = netns_name(r.name, "hub");
  lab.subnet4 = r.subnet4.str();
  lab.prefix4 = r.subnet4.prefix;
  if (r.ipv6) {
    lab.subnet6 = r.subnet6.str();
    lab.prefix6 = r.subnet6.prefix;
  }
  lab.phase = "creating";
  lab.created = now_utc();
  for (int i = 0; i < r.nodes; i++) {
    Node n;
    n.name = std::string(1, static_cast<char>('a' + i));
    n.netns = netns_name(r.name, n.name);
    n.peer = "veth-" + n.name;
    n.ipv4 = addr_str(4, add_host(r.subnet4.addr, 4, host_number(4, i)));
    if (r.ipv6) n.ipv6 = addr_str(6, add_host(r.subnet6.addr, 16, host_number(6, i)));
    lab.nodes.push_back(std::move(n));
  }
  return lab;
}

namespace {

json id_json(const NetnsId& id) { return {{"dev", id.dev}, {"ino", id.ino}, {"cookie", id.cookie}}; }

NetnsId id_from_json(const json& j) {
  return {j.at("dev").get<uint64_t>(), j.at("ino").get<uint64_t>(), j.value("cookie", uint64_t{0})};
}

}  // namespace

json to_json(const Lab& lab) {
  json nodes = json::array();
  for (const auto& n : lab.nodes) {
    json o = {{"node", n.name}, {"netns", n.netns}, {"target", "netns:" + n.netns},
              {"dev", kNodeDev}, {"peer", n.peer}, {"ipv4", n.ipv4}};
    if (!n.ipv6.empty()) o["ipv6"] = n.ipv6;
    if (n.id) o["netns_id"] = id_json(*n.id);
    nodes.push_back(std::move(o));
  }
  json j = {{"version", 1},     {"name", lab.name},       {"phase", lab.phase}, {"created", lab.created},
            {"hub", lab.hub},   {"bridge", kBridge},      {"subnet", lab.subnet4},
            {"nodes", nodes}};
  if (!lab.subnet6.empty()) j["subnet6"] = lab.subnet6;
  if (lab.hub_id) j["hub_id"] = id_json(*lab.hub_id);
  return j;
}

Result<Lab> from_json(const json& j) {
  auto bad = [](const std::string& why) { return make_error(Errc::invalid_request, "malformed state file: " + why); };
  try {
    if (!j.is_object() || j.value("version", 0) != 1) return bad("no \"version\": 1");
    Lab lab;
    lab.name = j.at("name").get<std::string>();
    if (auto st = check_lab_name(lab.name); !st.ok()) return bad(st.error().message);
    lab.phase = j.at("phase").get<std::string>();
    lab.created = j.value("created", "");
    lab.hub = j.at("hub").get<std::string>();
    if (lab.hub != netns_name(lab.name, "hub")) return bad("hub " + core::quote(lab.hub) + " is not the lab's");
    lab.subnet4 = j.at("subnet").get<std::string>();
    auto s4 = core::parse_cidr(lab.subnet4);
    if (!s4.ok()) return bad(s4.error().message);
    lab.prefix4 = s4->prefix;
    if (j.contains("subnet6")) {
      lab.subnet6 = j.at("subnet6").get<std::string>();
      auto s6 = core::parse_cidr(lab.subnet6);
      if (!s6.ok()) return bad(s6.error().message);
      lab.prefix6 = s6->prefix;
    }
    if (j.contains("hub_id")) lab.hub_id = id_from_json(j.at("hub_id"));
    for (const auto& o : j.at("nodes")) {
      Node n;
      n.name = o.at("node").get<std::string>();
      if (auto st = check_node_name(n.name, kMaxNodes); !st.ok()) return bad(st.error().message);
      n.netns = o.at("netns").get<std::string>();
      // down deletes these: a state file must not be able to name someone else's namespace.
      if (n.netns != netns_name(lab.name, n.name))
        return bad("namespace " + core::quote(n.netns) + " is not the lab's");
      n.peer = o.value("peer", "veth-" + n.name);
      n.ipv4 = o.at("ipv4").get<std::string>();
      n.ipv6 = o.value("ipv6", "");
      if (o.contains("netns_id")) n.id = id_from_json(o.at("netns_id"));
      lab.nodes.push_back(std::move(n));
    }
    if (lab.nodes.size() < size_t{kMinNodes} || lab.nodes.size() > size_t{kMaxNodes}) return bad("wrong node count");
    return lab;
  } catch (const json::exception& e) {
    return bad(e.what());
  }
}

}  // namespace fl::lab
