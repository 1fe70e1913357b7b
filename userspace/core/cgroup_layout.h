// Which Kubernetes pod and container a process belongs to, read from the kubelet's cgroup
// layout as /proc/<pid>/cgroup shows it. Pure text matching: the caller reads the file.
//
// Recognised (each may sit below any prefix, e.g. kind's /kubelet.slice/kubelet-kubepods.slice
// or a nested node's /docker/<id>/kubepods, and may have sub-cgroups below the container):
//   systemd driver   kubepods.slice[/kubepods-QOS.slice]/kubepods[-QOS]-pod<uid with _>.slice/
//                    {cri-containerd,crio,docker}-<id>.scope   (crio-conmon-<id>.scope: conmon)
//   cgroupfs driver  kubepods[/QOS]/pod<uid>/{<id>,crio-<id>}  (crio-conmon-<id>: conmon)
// QOS is burstable or besteffort; guaranteed pods sit directly below the kubepods root.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace fl::core {

struct KubeCgroup {
  std::string pod_uid;       // "0f1e2d3c-..." (RFC 4122, lowercase, with dashes)
  std::string container_id;  // 64 lowercase hex; empty: in the pod but in no container's cgroup
  // CRI-O's conmon for container_id. It watches the container from the host's network
  // namespace, so it never stands for the container or the pod.
  bool conmon = false;
  auto operator<=>(const KubeCgroup&) const = default;
};

// One cgroup path ("/kubepods.slice/..."). nullopt: not inside a pod.
std::optional<KubeCgroup> match_kube_cgroup_path(std::string_view path);

// The whole text of /proc/<pid>/cgroup: cgroup v2 ("0::/path") and v1 ("N:controllers:/path",
// named hierarchies included) lines, in any mix. nullopt when no line puts the process in a pod,
// or when lines disagree about the pod or the container (then nothing can be trusted). A line
// that only reaches the pod level yields to one that names the container; conmon on any line
// marks the process as conmon.
std::optional<KubeCgroup> match_kube_cgroup(std::string_view proc_cgroup);

// A Kubernetes pod UID as the API server prints it: 8-4-4-4-12 lowercase hex digits.
bool is_pod_uid(std::string_view s);
// A container id as runtimes name their cgroups: exactly 64 lowercase hex digits.
bool is_container_id(std::string_view s);

}  // namespace fl::core
