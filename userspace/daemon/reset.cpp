#include "daemon/reset.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <set>

#include <spdlog/spdlog.h>

namespace fl::daemon {

namespace {

core::Cidr host_prefix(uint8_t family, const std::array<uint8_t, 16>& addr) {
  core::Cidr c;
  c.family = family;
  c.prefix = family == 4 ? 32 : 128;
  c.addr = addr;
  if (family == 4) std::fill(c.addr.begin() + 4, c.addr.end(), 0);
  return c;
}

core::Flow flow_of(const kernel::TcpConn& c) {
  return core::Flow{host_prefix(c.family, c.local), host_prefix(c.family, c.remote), c.lport, c.rport,
                    core::Proto::tcp};
}

Result<kernel::DestroyResult> destroy_matching(const core::FaultSpec& as_fault,
                                               const std::vector<core::Exemption>& daemon_exempt) {
  return kernel::destroy_tcp([&](const kernel::TcpConn& c) {
    const bool hit = core::connection_matches(as_fault, daemon_exempt, flow_of(c));
    if (hit) spdlog::debug("reset {}", c.str());
    return hit;
  });
}

bool is_loopback(const core::Cidr& c) {
  if (c.family == 4) return c.addr[0] == 127;
  static const std::array<uint8_t, 16> one = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return c.addr == one;
}

// The addresses of the calling thread's namespace (getifaddrs asks rtnetlink, which answers
// for the namespace the socket was made in).
Result<std::set<core::Cidr>> local_addresses() {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return Error::sys(Errc::kernel_error, "list the namespace's addresses", errno);
  std::set<core::Cidr> out;
  for (auto* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr) continue;
    std::array<uint8_t, 16> addr{};
    if (a->ifa_addr->sa_family == AF_INET) {
      std::memcpy(addr.data(), &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, 4);
      out.insert(host_prefix(4, addr));
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      std::memcpy(addr.data(), &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr, 16);
      out.insert(host_prefix(6, addr));
    }
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

nlohmann::json destroy_result_json(const kernel::DestroyResult& r) {
  return {{"matched", r.matched}, {"destroyed", r.destroyed}, {"gone", r.gone}};
}

Result<kernel::DestroyResult> reset_cut_connections(const core::FaultSpec& spec,
                                                    const std::vector<core::Exemption>& daemon_exempt) {
  // A connection between two addresses of this namespace runs over lo, which faults never
  // touch: it survives the cut, so it must survive the reset too.
  auto local = local_addresses();
  if (!local.ok()) return local.take_error();
  return kernel::destroy_tcp([&](const kernel::TcpConn& c) {
    const core::Flow f = flow_of(c);
    if (is_loopback(f.remote) || local->count(f.remote)) return false;
    const bool hit = core::connection_matches(spec, daemon_exempt, f);
    if (hit) spdlog::debug("reset {}", c.str());
    return hit;
  });
}

Result<nlohmann::json> reset_connections(const core::ResetSpec& spec,
                                         const std::vector<core::Exemption>& daemon_exempt,
                                         const kernel::Netns& host) {
  std::vector<kernel::Netns> namespaces;
  namespaces.reserve(spec.targets.size());
  for (const auto& t : spec.targets) {
    auto ns = kernel::Netns::open(t, host);
    if (!ns.ok()) return ns.take_error().wrap("target " + t.str());
    namespaces.push_back(std::move(*ns));
  }
  const core::FaultSpec as_fault = core::reset_as_fault(spec);
  kernel::DestroyResult total;
  nlohmann::json per_target = nlohmann::json::array();
  for (size_t i = 0; i < namespaces.size(); ++i) {
    const std::string name = spec.targets[i].str();
    auto done_before = [&] {
      return total.destroyed == 0
                 ? std::string()
                 : " (" + std::to_string(total.destroyed) + " connections in earlier targets were destroyed)";
    };
    Result<kernel::DestroyResult> r = [&]() -> Result<kernel::DestroyResult> {
      auto guard = kernel::NetnsGuard::enter(namespaces[i]);
      if (!guard.ok()) return guard.take_error();
      return destroy_matching(as_fault, daemon_exempt);
    }();
    if (!r.ok()) {
      Error e = r.take_error().wrap("target " + name);
      e.message += done_before();
      return e;
    }
    total.matched += r->matched;
    total.destroyed += r->destroyed;
    total.gone += r->gone;
    nlohmann::json row = destroy_result_json(*r);
    row["target"] = name;
    per_target.push_back(std::move(row));
  }
  nlohmann::json out = destroy_result_json(total);
  out["per_target"] = std::move(per_target);
  return out;
}

}  // namespace fl::daemon
