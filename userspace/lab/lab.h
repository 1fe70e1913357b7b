// faultline-lab's model: a lab's name, its nodes, their namespaces and addresses, and the state
// file that records them. Pure logic; the kernel side is in system.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/normalize.h"
#include "core/parse.h"
#include "core/result.h"

namespace fl::lab {

constexpr const char* kDefaultName = core::kDefaultLab.data();
constexpr size_t kMaxNameLen = 40;
constexpr int kMinNodes = 2;
constexpr int kMaxNodes = 26;  // one letter each, a..z
constexpr int kDefaultNodes = 3;
// Node i gets host number 11+i: .1 is left for a gateway someone may add, and the numbers read
// the same in IPv4 and IPv6 (10.200.0.11 and fd00:200::11).
constexpr unsigned kFirstHost = 11;
constexpr const char* kDefaultSubnet4 = "10.200.0.0/24";
constexpr const char* kDefaultSubnet6 = "fd00:200::/64";
constexpr const char* kBridge = "br0";
constexpr const char* kNodeDev = "eth0";
constexpr const char* kStateDir = core::kLabStateDir;
constexpr const char* kNetnsDir = "/run/netns";

// [a-z0-9-], 1..40 characters, not starting with '-' (it would read as an option).
Status check_lab_name(std::string_view name);
// "a".."z" within the lab's node count.
Status check_node_name(std::string_view node, int nodes);

struct Request {
  std::string name = kDefaultName;
  int nodes = kDefaultNodes;
  bool ipv6 = false;
  core::Cidr subnet4;
  core::Cidr subnet6;
};

// Parses and checks everything `up` takes, before anything is touched.
Result<int> parse_nodes(std::string_view s);
Result<core::Cidr> parse_subnet(std::string_view s, int family, int nodes);

// Which namespace a name stood for when `up` made it: the nsfs device and inode that
// stat(/run/netns/NAME) shows, and the kernel's 64-bit cookie for the namespace. A namespace's
// inode number is freed with it and handed to the next namespace made, so a name deleted and
// made again can show the same device and inode; the cookie is never reused (0 where the
// kernel has no SO_NETNS_COOKIE, before Linux 5.14, and then it is not compared).
struct NetnsId {
  uint64_t dev = 0, ino = 0, cookie = 0;
  bool same_as(const NetnsId& o) const {
    return dev == o.dev && ino == o.ino && (cookie == 0 || o.cookie == 0 || cookie == o.cookie);
  }
  std::string str() const;  // "dev 0:4 inode 4026532890 cookie 4107"
};

struct Node {
  std::string name;   // "a"
  std::string netns;  // "<lab>-a"
  std::string ipv4;   // "10.200.0.11" (prefix length in Lab::prefix4)
  std::string ipv6;   // "fd00:200::11", empty without --ipv6
  std::string peer;   // the hub side of eth0: "veth-a"
  std::optional<NetnsId> id;  // recorded by `up` right after it made the namespace
};

struct Lab {
  std::string name;
  std::string hub;  // "<lab>-hub": holds the bridge
  std::string subnet4, subnet6;  // as CIDRs; subnet6 empty without --ipv6
  int prefix4 = 0, prefix6 = 0;
  std::string phase;  // "creating" while `up` runs (or if it was killed), then "ready"
  std::string created;  // UTC, ISO 8601
  std::vector<Node> nodes;
  std::optional<NetnsId> hub_id;

  // Every namespace of the lab, nodes first and hub last (the order `down` removes them in).
  std::vector<std::string> namespaces() const;
  const Node* node(std::string_view n) const;
  // The recorded identity of the lab's namespace `ns` (a node's or the hub's); nullopt when
  // `up` never recorded one (it was killed first, or `ns` is not the lab's).
  std::optional<NetnsId> recorded_id(std::string_view ns) const;
  void record_id(std::string_view ns, const NetnsId& id);
};

// The lab a request describes: names and addresses, no kernel involved.
Lab plan(const Request& r);

std::string netns_name(std::string_view lab, std::string_view node);
std::string state_path(std::string_view lab);

nlohmann::json to_json(const Lab& lab);
Result<Lab> from_json(const nlohmann::json& j);

}  // namespace fl::lab
