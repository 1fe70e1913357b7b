#include "kernel/ifb.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <sys/socket.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "kernel/rtnl.h"
#include "kernel/rtnl_link.h"
#include "kernel/tc_objects.h"

namespace fl::kernel {

namespace {

constexpr uint32_t kIfbTxqlen = 1000;
constexpr uint32_t kClsactIngress = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);
uint32_t mirred_info() { return TC_H_MAKE(uint32_t{kMirredPriority} << 16, htons(ETH_P_ALL)); }

// ENOENT, EINVAL (no clsact), ENODEV: the filter is not there.
bool absent(int err) { return err == ENOENT || err == EINVAL || err == ENODEV; }

}  // namespace

Status add_ifb(Rtnl& nl, const std::string& name) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  RtMsg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifi);
  m.put_string(IFLA_IFNAME, name).put_u32(IFLA_TXQLEN, kIfbTxqlen);
  m.begin_nest(IFLA_LINKINFO).put_string(IFLA_INFO_KIND, "ifb").end_nest();
  return nl.talk(m);
}

std::string ifb_name(int for_ifindex) { return kIfbPrefix + std::to_string(for_ifindex); }

Result<int> create_ifb(int for_ifindex) {
  std::string name = ifb_name(for_ifindex);
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  for (int attempt = 0; attempt < 2; attempt++) {
    auto have = get_link(*nl, 0, name);
    if (!have.ok()) return have.take_error().wrap("look up " + name);
    if (*have) {
      const LinkInfo& l = **have;
      if (l.kind != "ifb")
        return make_error(Errc::already_exists,
                          "create ifb " + name + ": a " + (l.kind.empty() ? "non-virtual" : l.kind) +
                              " device of that name exists; faultline uses only ifb devices of its own");
      if (!(l.flags & IFF_UP)) FL_TRY_CTX(set_link_up(*nl, l.index), "set " + name + " up");
      return l.index;
    }
    if (attempt) break;
    auto st = add_ifb(*nl, name);
    if (!st.ok()) {
      Error e = st.take_error();
      if (e.sys_errno == EEXIST) continue;  // raced with someone: look again
      if (e.sys_errno == EOPNOTSUPP || e.sys_errno == ENOENT)
        e.code = Errc::kernel_unsupported;  // "Unknown device type": no ifb driver
      return std::move(e).wrap("create ifb " + name);
    }
  }
  return make_error(Errc::kernel_error, "create ifb " + name + ": created but not found afterwards");
}

Status delete_link(int ifindex) {
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  std::string dev = dev_name(ifindex);
  auto st = del_link(*nl, ifindex);
  if (!st.ok() && st.error().sys_errno != ENODEV) return st.take_error().wrap("delete link " + dev);
  return {};
}

Status attach_ifb_mirred(int ifindex, int prog_fd, int ifb_ifindex) {
  std::string dev = dev_name(ifindex);
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  tc_mirred parms{};
  parms.action = TC_ACT_STOLEN;
  parms.eaction = TCA_EGRESS_REDIR;
  parms.ifindex = static_cast<uint32_t>(ifb_ifindex);
  // REPLACE: a leftover of a killed instance (same handle and priority) is taken over.
  RtMsg m(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE, tc_header(ifindex, kClsactIngress, kMirredHandle, mirred_info()));
  m.put_string(TCA_KIND, "bpf")
      .begin_nest(TCA_OPTIONS)
      .put_u32(TCA_BPF_FD, static_cast<uint32_t>(prog_fd))
      .put_string(TCA_BPF_NAME, "fl_ifb_match")
      .put_u32(TCA_BPF_FLAGS, 0)  // classic mode: the actions run
      .begin_nest(TCA_BPF_ACT)
      .begin_nest(1)
      .put_string(TCA_ACT_KIND, "mirred")
      .begin_nest(TCA_ACT_OPTIONS)
      .put(TCA_MIRRED_PARMS, &parms, sizeof parms)
      .end_nest()
      .end_nest()
      .end_nest()
      .end_nest();
  if (!m.ok()) return make_error(Errc::internal, "netlink message for the ifb filter does not fit");
  FL_TRY_CTX(nl->talk(m), "add ifb redirect filter (mirred) on " + dev + " ingress");
  return {};
}

Status detach_ifb_mirred(int ifindex) {
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  // Ours only: priority 2, handle 0xfa18, a cls_bpf filter running fl_ifb_match.
  auto listed = dump_filters(*nl, ifindex, kClsactIngress);
  if (!listed.ok()) {
    // No device, no clsact: no filter of ours either.
    if (absent(listed.error().sys_errno)) return {};
    return listed.take_error().wrap("list ingress filters of " + dev_name(ifindex));
  }
  bool ours = false, foreign = false;
  for (const TcObject& o : *listed) {
    if (o.handle != kMirredHandle || TC_H_MAJ(o.info) >> 16 != kMirredPriority) continue;
    (o.kind == "bpf" && o.bpf_name.rfind("fl_ifb_match", 0) == 0 ? ours : foreign) = true;
  }
  if (foreign) spdlog::warn("{}: a filter at priority 2 handle 0xfa18 is not faultline's; left alone", dev_name(ifindex));
  if (!ours) return {};
  auto st = del_tc(*nl, RTM_DELTFILTER, ifindex, kClsactIngress, kMirredHandle, mirred_info());
  // Gone already (with its device or its clsact): what we wanted.
  if (st.ok() || absent(st.error().sys_errno)) return {};
  return st.take_error().wrap("delete ifb redirect filter on " + dev_name(ifindex));
}

}  // namespace fl::kernel
