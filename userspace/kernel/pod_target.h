// Kubernetes targets on this node, without the API server: pod-uid:UID and container:ID are
// found by reading every /proc/<pid>/cgroup and matching the kubelet's cgroup layout
// (core/cgroup_layout.h); the namespace is then opened through /proc/<pid>/ns/net of a process
// that matched. pod:NAMESPACE/NAME is first turned into the pod's UID by asking the node's
// container runtime with crictl.
//
// Reading another process's ns/net needs CAP_SYS_PTRACE (ptrace read access), and entering the
// namespace later needs CAP_SYS_ADMIN; faultlined runs as root with both.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "core/cgroup_layout.h"
#include "core/model.h"
#include "core/result.h"
#include "kernel/netns.h"

namespace fl::kernel {

struct PodTargetOptions {
  // crictl for pod:NAMESPACE/NAME: a bare name is looked up in PATH each time it is needed (so
  // installing crictl later works without a restart); a name with '/' is used as it is.
  std::string crictl = "crictl";
  std::chrono::milliseconds crictl_timeout{5000};
  size_t crictl_max_output = 8u << 20;  // a node with thousands of pods prints a few MB
};

// Set once at start (faultlined --crictl); Netns::open reads it for every pod: target.
void set_pod_target_options(PodTargetOptions o);
PodTargetOptions pod_target_options();

// A Kubernetes target, found: the namespace, the process it was opened through, and what the
// target resolved to.
struct PodNetns {
  Netns ns;
  pid_t pid = 0;
  std::string pod_uid;
  std::string container_id;  // the full id; empty for a pod target
};

// crictl's answers for pod:NAMESPACE/NAME targets, got ahead of time on a thread that may wait
// (daemon/pod_resolver.h): by "NAMESPACE/NAME", the pod's UID or why there is none.
using PodAnswers = std::map<std::string, Result<std::string>>;

// While one is alive on a thread, open_pod_target takes pod: answers from `answers` instead of
// running crictl. Nests; null answers nothing.
class ScopedPodAnswers {
 public:
  explicit ScopedPodAnswers(const PodAnswers* answers);
  ~ScopedPodAnswers();
  ScopedPodAnswers(const ScopedPodAnswers&) = delete;
  ScopedPodAnswers& operator=(const ScopedPodAnswers&) = delete;

 private:
  const PodAnswers* prev_;
};
bool pod_answers_in_scope();

// For the event loop's and the kernel worker's threads: crictl may take seconds, so there a
// pod: target without an answer in scope is an internal error instead of a wait.
void forbid_crictl_on_this_thread();

// pod-uid, container and pod targets (any other kind is an internal error). host is the
// daemon's own namespace: a pod or container in it runs with hostNetwork: true and is refused,
// so a fault meant for one pod can never land on the whole node.
Result<PodNetns> open_pod_target(const core::Target& t, const Netns& host,
                                 const PodTargetOptions& opts = pod_target_options());

// pod:NAMESPACE/NAME -> the pod's UID: runs `crictl pods --namespace NS --name NAME -o json`
// (no shell, bounded time and output) and picks the one pod with exactly that name.
Result<std::string> resolve_pod_uid(std::string_view ns, std::string_view name,
                                    const PodTargetOptions& opts = pod_target_options());

// The choice resolve_pod_uid makes from crictl's JSON ({"items":[{"metadata":{"name",
// "namespace","uid"},"state":"SANDBOX_READY"},...]}): exact name and namespace (crictl's --name
// is a regular expression), a ready sandbox preferred over stopped ones (a restarted pod keeps
// its old sandboxes for a while). None: target_unavailable; several pods: invalid_argument.
Result<std::string> pick_pod_uid(std::string_view crictl_json, std::string_view ns,
                                 std::string_view name);

// target_still_there() for the Kubernetes kinds (netns.h).
bool pod_target_still_there(const core::Target& spec, const Netns& held);

}  // namespace fl::kernel
