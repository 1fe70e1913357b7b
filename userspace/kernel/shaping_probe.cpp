#include "kernel/shaping_probe.h"

#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/tc_options.h"
#include "kernel/ifb.h"
#include "kernel/rtnl.h"
#include "kernel/tc_objects.h"

namespace fl::kernel {

namespace {

// yes on success; no when the kernel does not know the kind (ENOENT "Specified qdisc kind is
// unknown", or EOPNOTSUPP); unknown for anything else, which says nothing about the kind.
Tri classify(const Status& st) {
  if (st.ok()) return Tri::yes;
  int e = st.error().sys_errno;
  return e == ENOENT || e == EOPNOTSUPP ? Tri::no : Tri::unknown;
}

Tri probe_qdisc(Rtnl& nl, int ifindex, const std::string& kind, const std::vector<uint8_t>& opts) {
  Tri t = classify(put_qdisc(nl, ifindex, TC_H_ROOT, 0x10000, kind, opts, NLM_F_CREATE | NLM_F_REPLACE));
  if (t == Tri::yes) (void)del_tc(nl, RTM_DELQDISC, ifindex, TC_H_ROOT, 0x10000);
  return t;
}

}  // namespace

ShapingFeatures probe_shaping() {
  ShapingFeatures f;
  // The scratch namespace belongs to this thread alone and dies with it: nothing we add here is
  // visible anywhere else or outlives the probe. Missing sch_* modules are autoloaded by the
  // kernel on first use where it can; "no" means it could not.
  std::thread t([&f] {
    if (unshare(CLONE_NEWNET) != 0) {
      spdlog::debug("shaping probe: unshare(CLONE_NEWNET): {}", std::strerror(errno));
      return;
    }
    auto nl = Rtnl::open();
    if (!nl.ok()) return;
    // Probe on an ifb (MTU 1500) when there is one: on lo (MTU 65536) any TBF burst is "lower
    // than the device MTU" and the kernel logs a warning.
    int dev = static_cast<int>(if_nametoindex("lo"));
    f.ifb = classify(add_ifb(*nl, "flprobe0"));
    if (f.ifb == Tri::yes)
      if (int i = static_cast<int>(if_nametoindex("flprobe0")); i > 0) dev = i;
    if (dev <= 0) return;

    f.htb = probe_qdisc(*nl, dev, "htb", core::htb_root_options());
    // 1 mbit, a 10 kB bucket and a 10 kB queue
    f.tbf = probe_qdisc(*nl, dev, "tbf", core::tbf_options(125'000, 10'000, 10'000));
    tc_netem_qopt nq{};
    nq.limit = 1000;
    std::vector<uint8_t> netem(sizeof nq);
    std::memcpy(netem.data(), &nq, sizeof nq);
    f.netem = probe_qdisc(*nl, dev, "netem", netem);
    f.fq = probe_qdisc(*nl, dev, "fq", {});
  });
  t.join();
  return f;
}

}  // namespace fl::kernel
