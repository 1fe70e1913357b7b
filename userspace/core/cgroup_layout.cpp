#include "core/cgroup_layout.h"

#include <vector>

namespace fl::core {

namespace {

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool strip_prefix(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

bool strip_suffix(std::string_view& s, std::string_view suffix) {
  if (!s.ends_with(suffix)) return false;
  s.remove_suffix(suffix.size());
  return true;
}

// The systemd driver writes the UID with '_' for '-' because '-' separates a slice's parents.
std::optional<std::string> uid_from_slice(std::string_view s) {
  if (s.find('-') != std::string_view::npos) return std::nullopt;
  std::string uid(s);
  for (char& c : uid) {
    if (c == '_') c = '-';
  }
  if (!is_pod_uid(uid)) return std::nullopt;
  return uid;
}

// The component right below a pod: a container's cgroup, or conmon's, or nothing we know.
void match_container(std::string_view c, KubeCgroup& out) {
  std::string_view id = c;
  bool conmon = false;
  if (strip_suffix(id, ".scope")) {
    // systemd driver: <runtime>-<id>.scope. crio-conmon- before crio-, which it starts with.
    if (strip_prefix(id, "crio-conmon-")) conmon = true;
    else if (!strip_prefix(id, "cri-containerd-") && !strip_prefix(id, "crio-") &&
             !strip_prefix(id, "docker-"))
      return;
  } else {
    // cgroupfs driver: containerd and docker use the bare id, CRI-O prefixes it.
    if (strip_prefix(id, "crio-conmon-")) conmon = true;
    else strip_prefix(id, "crio-");
  }
  if (!is_container_id(id)) return;
  out.container_id = std::string(id);
  out.conmon = conmon;
}

// A pod found with its kubepods root at components[root].
std::optional<KubeCgroup> match_from_root(const std::vector<std::string_view>& comps, size_t root) {
  std::string_view r = comps[root];
  size_t pod = root + 1;
  KubeCgroup out;
  if (r == "kubepods") {
    if (pod < comps.size() && (comps[pod] == "burstable" || comps[pod] == "besteffort")) ++pod;
    if (pod >= comps.size()) return std::nullopt;
    std::string_view p = comps[pod];
    if (!strip_prefix(p, "pod") || !is_pod_uid(p)) return std::nullopt;
    out.pod_uid = std::string(p);
  } else {
    // "kubepods.slice", or a prefixed one such as kind's "kubelet-kubepods.slice": every slice
    // below repeats its parent's name, so the parent's name is what the children start with.
    std::string parent(r.substr(0, r.size() - std::string_view(".slice").size()));
    if (pod < comps.size()) {
      for (const char* qos : {"-burstable", "-besteffort"}) {
        if (comps[pod] == parent + qos + ".slice") {
          parent += qos;
          ++pod;
          break;
        }
      }
    }
    if (pod >= comps.size()) return std::nullopt;
    std::string_view p = comps[pod];
    if (!strip_prefix(p, parent + "-pod") || !strip_suffix(p, ".slice")) return std::nullopt;
    auto uid = uid_from_slice(p);
    if (!uid) return std::nullopt;
    out.pod_uid = std::move(*uid);
  }
  if (pod + 1 < comps.size()) match_container(comps[pod + 1], out);
  return out;
}

bool is_kubepods_root(std::string_view c) {
  return c == "kubepods" || c == "kubepods.slice" || c.ends_with("-kubepods.slice");
}

}  // namespace

bool is_pod_uid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_lower_hex(s[i])) return false;
  }
  return true;
}

bool is_container_id(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!is_lower_hex(c)) return false;
  }
  return true;
}

std::optional<KubeCgroup> match_kube_cgroup_path(std::string_view path) {
  const auto comps = components(path);
  // Innermost first: in a cluster nested inside a pod (kind in Kubernetes) the process belongs
  // to the inner pod as far as the inner kubelet, and the user, are concerned.
  for (size_t i = comps.size(); i > 0; --i) {
    if (!is_kubepods_root(comps[i - 1])) continue;
    if (auto m = match_from_root(comps, i - 1)) {
      // systemd delegates user@UID.service (under user.slice) to that user, who may build any
      // directory names below it: a kubepods tree there is not the kubelet's, and must neither
      // pass for a pod nor make a real one ambiguous.
      for (size_t k = 0; k + 1 < i; ++k)
        if (comps[k] == "user.slice" || comps[k].starts_with("user@")) return std::nullopt;
      return m;
    }
  }
  return std::nullopt;
}

std::optional<KubeCgroup> match_kube_cgroup(std::string_view text) {
  std::optional<KubeCgroup> found;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    // "hierarchy-id:controllers:path"; the path may itself contain ':'.
    const size_t c1 = line.find(':');
    if (c1 == std::string_view::npos || c1 == 0) continue;
    const size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    bool digits = true;
    for (char c : line.substr(0, c1)) digits = digits && c >= '0' && c <= '9';
    const std::string_view path = line.substr(c2 + 1);
    if (!digits || !path.starts_with('/')) continue;
    auto m = match_kube_cgroup_path(path);
    if (!m) continue;
    if (!found) {
      found = std::move(m);
      continue;
    }
    if (m->pod_uid != found->pod_uid) return std::nullopt;
    if (!m->container_id.empty()) {
      if (found->container_id.empty()) found->container_id = m->container_id;
      else if (m->container_id != found->container_id) return std::nullopt;
    }
    found->conmon = found->conmon || m->conmon;
  }
  return found;
}

}  // namespace fl::core
