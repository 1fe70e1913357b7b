// faultline-lab's model: a lab's name, its nodes, their namespaces and addresses, and the state
// file that records them. Pure logic; the kernel side is in system.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "core/result.h"

namespace fl::lab {

constexpr const char* kDefaultName = "fl-lab";
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
constexpr const char* kStateDir = "/run/faultline/lab";
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

struct Node {
  std::string name;   // "a"
  std::string netns;  // "<lab>-a"
  std::string ipv4;   // "10.200.0.11" (prefix length in Lab::prefix4)
  std::string ipv6;   // "fd00:200::11", empty without --ipv6
  std::string peer;   // the hub side of eth0: "veth-a"
};

struct Lab {
  std::string name;
  std::string hub;  // "<lab>-hub": holds the bridge
  std::string subnet4, subnet6;  // as CIDRs; subnet6 empty without --ipv6
  int prefix4 = 0, prefix6 = 0;
  std::string phase;  // "creating" while `up` runs (or if it was killed), then "ready"
  std::string created;  // UTC, ISO 8601
  std::vector<Node> nodes;

  // Every namespace of the lab, nodes first and hub last (the order `down` removes them in).
  std::vector<std::string> namespaces() const;
  const Node* node(std::string_view n) const;
};

// The lab a request describes: names and addresses, no kernel involved.
Lab plan(const Request& r);

std::string netns_name(std::string_view lab, std::string_view node);
std::string state_path(std::string_view lab);

nlohmann::json to_json(const Lab& lab);
Result<Lab> from_json(const nlohmann::json& j);

}  // namespace fl::lab
