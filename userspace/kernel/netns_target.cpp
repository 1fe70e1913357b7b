// Target resolution: from what a client named (host, netns:NAME, netns-path:P, pid:N, or a
// Kubernetes pod or container) to an open namespace handle (netns.cpp), and whether that name
// still names the namespace we hold.
#include "kernel/netns.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "kernel/pod_target.h"

namespace fl::kernel {

Result<Netns> Netns::open(const core::Target& t, const Netns& host) {
  using K = core::Target::Kind;
  switch (t.kind) {
    case K::host: return host.dup();
    case K::netns_name: return open_path("/run/netns/" + t.value);
    case K::netns_path: {
      // One answer for every failure (missing, not a namespace, refused): the daemon opens the
      // path as root for a group member, and the difference would tell them what exists where
      // they cannot look. The parser already confined the path to root's directories; the last
      // component is not followed outside /proc (where ns/net is the kernel's own link).
      bool proc = t.value.rfind("/proc/", 0) == 0;
      auto n = open_path(t.value, proc ? 0 : O_NOFOLLOW);
      if (n.ok()) return n;
      spdlog::debug("netns-path:{}: {}", t.value, n.error().message);
      return make_error(Errc::target_unavailable, "not a network namespace file we can open");
    }
    case K::pid: return open_path("/proc/" + t.value + "/ns/net");
    case K::pod_uid:
    case K::container:
    case K::pod: {
      auto p = open_pod_target(t, host);
      if (!p.ok()) return p.take_error();
      Netns n = std::move(p->ns);
      n.origin_pid_ = p->pid;
      n.pod_uid_ = std::move(p->pod_uid);
      n.container_id_ = std::move(p->container_id);
      return n;
    }
  }
  return make_error(Errc::internal, "unknown target kind");
}

namespace {

bool same_ns(const std::string& path, const Netns& held) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && NetnsId{st.st_dev, st.st_ino} == held.id();
}

}  // namespace

bool target_still_there(const core::Target& spec, const Netns& held) {
  using K = core::Target::Kind;
  switch (spec.kind) {
    case K::host: return true;
    case K::netns_name: return same_ns("/run/netns/" + spec.value, held);
    case K::netns_path: return same_ns(spec.value, held);
    case K::pid: return same_ns("/proc/" + spec.value + "/ns/net", held);
    case K::pod_uid:
    case K::container:
    case K::pod: return pod_target_still_there(spec, held);
  }
  return false;
}

}  // namespace fl::kernel
