// The kubelet's cgroup layouts, as /proc/<pid>/cgroup shows them, matched to pod and container.
#include "core/cgroup_layout.h"

#include <gtest/gtest.h>

#include <string>

namespace fl::core {
namespace {

const std::string kUid = "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9";
const std::string kUidSlice = "0f1e2d3c_4b5a_6978_8695_a4b3c2d1e0f9";  // systemd's spelling
const std::string kId = "3b7e1f0c9a8d2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";

std::string v2(const std::string& path) { return "0::" + path + "\n"; }

TEST(CgroupLayout, EveryKubeletLayout) {
  struct Case {
    const char* name;
    std::string text;
    KubeCgroup want;
  };
  const std::string sd = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidSlice + ".slice/";
  const Case cases[] = {
      {"v2 systemd containerd burstable", v2(sd + "cri-containerd-" + kId + ".scope"), {kUid, kId, false}},
      {"v2 systemd CRI-O burstable", v2(sd + "crio-" + kId + ".scope"), {kUid, kId, false}},
      {"v2 systemd CRI-O conmon", v2(sd + "crio-conmon-" + kId + ".scope"), {kUid, kId, true}},
      {"v2 systemd docker", v2(sd + "docker-" + kId + ".scope"), {kUid, kId, false}},
      {"v2 systemd guaranteed",
       v2("/kubepods.slice/kubepods-pod" + kUidSlice + ".slice/cri-containerd-" + kId + ".scope"),
       {kUid, kId, false}},
      {"v2 systemd besteffort",
       v2("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidSlice + ".slice/crio-" +
          kId + ".scope"),
       {kUid, kId, false}},
      {"v2 systemd pod level only", v2(sd.substr(0, sd.size() - 1)), {kUid, "", false}},
      {"crun's sub-cgroup below the container",
       v2(sd + "crio-" + kId + ".scope/container"),
       {kUid, kId, false}},
      {"v2 cgroupfs containerd burstable", v2("/kubepods/burstable/pod" + kUid + "/" + kId), {kUid, kId, false}},
      {"v2 cgroupfs guaranteed", v2("/kubepods/pod" + kUid + "/" + kId), {kUid, kId, false}},
      {"v2 cgroupfs besteffort CRI-O", v2("/kubepods/besteffort/pod" + kUid + "/crio-" + kId), {kUid, kId, false}},
      {"v2 cgroupfs CRI-O conmon", v2("/kubepods/besteffort/pod" + kUid + "/crio-conmon-" + kId), {kUid, kId, true}},
      {"kind: below kubelet.slice",
       v2("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
          "kubelet-kubepods-besteffort-pod" + kUidSlice + ".slice/cri-containerd-" + kId + ".scope"),
       {kUid, kId, false}},
      {"kind: guaranteed below kubelet.slice",
       v2("/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" + kUidSlice + ".slice/cri-containerd-" +
          kId + ".scope"),
       {kUid, kId, false}},
      {"nested in a docker container", v2("/docker/" + kId + "/kubepods/burstable/pod" + kUid + "/" + kId),
       {kUid, kId, false}},
      {"outside our cgroup namespace", v2("/../../kubepods/pod" + kUid + "/" + kId), {kUid, kId, false}},
      {"v1 cgroupfs, every controller",
       "12:pids:/kubepods/burstable/pod" + kUid + "/" + kId + "\n11:memory:/kubepods/burstable/pod" + kUid + "/" +
           kId + "\n1:name=systemd:/kubepods/burstable/pod" + kUid + "/" + kId + "\n0::/\n",
       {kUid, kId, false}},
      {"v1 systemd, only name=systemd",
       "5:cpu,cpuacct:/\n1:name=systemd:" + sd + "cri-containerd-" + kId + ".scope\n0::/init.scope\n",
       {kUid, kId, false}},
      {"v1: a controller at pod level, another at the container",
       "3:cpu:/kubepods/pod" + kUid + "\n2:memory:/kubepods/pod" + kUid + "/" + kId + "\n",
       {kUid, kId, false}},
      {"v1: conmon on one line marks the process",
       "3:cpu:/kubepods/pod" + kUid + "/crio-" + kId + "\n2:memory:/kubepods/pod" + kUid + "/crio-conmon-" + kId +
           "\n",
       {kUid, kId, true}},
      {"no trailing newline", "0::/kubepods/pod" + kUid + "/" + kId, {kUid, kId, false}},
      {"path with ':'", "0::/x:y/kubepods/pod" + kUid + "/" + kId + "\n", {kUid, kId, false}},
      {"unknown runtime below the pod: pod only", v2("/kubepods/pod" + kUid + "/kata-" + kId), {kUid, "", false}},
      {"short id below the pod: pod only", v2("/kubepods/pod" + kUid + "/" + kId.substr(0, 12)), {kUid, "", false}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto m = match_kube_cgroup(c.text);
    ASSERT_TRUE(m.has_value()) << c.text;
    EXPECT_EQ(m->pod_uid, c.want.pod_uid);
    EXPECT_EQ(m->container_id, c.want.container_id);
    EXPECT_EQ(m->conmon, c.want.conmon);
  }
}

TEST(CgroupLayout, NotAPod) {
  const std::string upper = "0F1E2D3C-4B5A-6978-8695-A4B3C2D1E0F9";
  const std::string cases[] = {
      "",
      "\n\n",
      "0::/\n",
      "0::/init.scope\n",
      "0::/system.slice/containerd.service\n",
      "0::/user.slice/user-0.slice/session-1.scope\n",
      "0::/kubepods.slice\n",
      "0::/kubepods.slice/kubepods-burstable.slice\n",
      "0::/kubepods/burstable\n",
      "0::/kubepods/burstable/notapod\n",
      "0::/kubepods/pod" + upper + "/" + kId + "\n",                  // UIDs are lower case
      "0::/kubepods/pod" + kUidSlice + "/" + kId + "\n",              // cgroupfs keeps the dashes
      "0::/kubepods.slice/kubepods-pod" + kUid + ".slice/x\n",        // systemd writes '_'
      "0::/kubepods/pod" + kUid.substr(0, 35) + "/" + kId + "\n",    // one digit short
      "0::/kubepods/pod" + kUid + "x/" + kId + "\n",
      "0::/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod" + kUidSlice + ".slice\n",
      "0::/kubepods.slice/other-pod" + kUidSlice + ".slice\n",
      "0::/notkubepods/pod" + kUid + "/" + kId + "\n",
      "0::/pod" + kUid + "/" + kId + "\n",                            // no kubepods root
      "0::kubepods/pod" + kUid + "/" + kId + "\n",                    // not a path
      "x::/kubepods/pod" + kUid + "/" + kId + "\n",                   // not a hierarchy id
      ":/kubepods/pod" + kUid + "\n",
      "garbage without colons\n",
      std::string("0::/kubepods/pod\0", 17) + kUid,
      // Below a systemd user delegation: any user can make these names.
      "0::/user.slice/user-1000.slice/user@1000.service/kubepods.slice/kubepods-pod" + kUidSlice +
          ".slice/cri-containerd-" + kId + ".scope\n",
      "0::/user.slice/kubepods/pod" + kUid + "/" + kId + "\n",
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c);
    EXPECT_FALSE(match_kube_cgroup(c).has_value());
  }
}

TEST(CgroupLayout, LinesThatDisagreeAreDistrusted) {
  const std::string other_uid = "11111111-2222-3333-4444-555555555555";
  const std::string other_id(64, 'a');
  EXPECT_FALSE(match_kube_cgroup("2:cpu:/kubepods/pod" + kUid + "/" + kId + "\n1:name=systemd:/kubepods/pod" +
                                 other_uid + "/" + kId + "\n"));
  EXPECT_FALSE(match_kube_cgroup("2:cpu:/kubepods/pod" + kUid + "/" + kId + "\n1:name=systemd:/kubepods/pod" +
                                 kUid + "/" + other_id + "\n"));
}

TEST(CgroupLayout, InnermostPodWins) {
  const std::string inner_uid = "11111111-2222-3333-4444-555555555555";
  auto m = match_kube_cgroup_path("/kubepods/pod" + kUid + "/" + kId + "/kubelet.slice/kubelet-kubepods.slice/"
                                  "kubelet-kubepods-pod11111111_2222_3333_4444_555555555555.slice");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->pod_uid, inner_uid);
  EXPECT_EQ(m->container_id, "");
}

TEST(CgroupLayout, UidAndIdShapes) {
  EXPECT_TRUE(is_pod_uid(kUid));
  EXPECT_FALSE(is_pod_uid(kUidSlice));
  EXPECT_FALSE(is_pod_uid("0F1E2D3C-4B5A-6978-8695-A4B3C2D1E0F9"));
  EXPECT_FALSE(is_pod_uid(kUid + "0"));
  EXPECT_FALSE(is_pod_uid("0f1e2d3c4b5a69788695a4b3c2d1e0f9"));
  EXPECT_FALSE(is_pod_uid("0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0fg"));
  EXPECT_TRUE(is_container_id(kId));
  EXPECT_FALSE(is_container_id(kId.substr(0, 63)));
  EXPECT_FALSE(is_container_id(kId + "0"));
  EXPECT_FALSE(is_container_id(std::string(64, 'A')));
  EXPECT_FALSE(is_container_id(std::string(63, 'a') + "g"));
}

}  // namespace
}  // namespace fl::core
