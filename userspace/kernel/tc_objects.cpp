#include "kernel/tc_objects.h"

#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstdio>

#include <netlink/attr.h>
#include <netlink/msg.h>

namespace fl::kernel {

namespace {

TcObject parse_tc(nlmsghdr* h) {
  TcObject o;
  auto* t = static_cast<tcmsg*>(nlmsg_data(h));
  o.ifindex = t->tcm_ifindex;
  o.handle = t->tcm_handle;
  o.parent = t->tcm_parent;
  o.info = t->tcm_info;
  nlattr* tb[TCA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0) return o;
  if (tb[TCA_KIND]) o.kind = nla_get_string(tb[TCA_KIND]);
  if (tb[TCA_OPTIONS]) {
    auto* p = static_cast<const uint8_t*>(nla_data(tb[TCA_OPTIONS]));
    o.options.assign(p, p + nla_len(tb[TCA_OPTIONS]));
    if (o.kind == "bpf") {
      nlattr* bt[TCA_BPF_MAX + 1] = {};
      if (nla_parse_nested(bt, TCA_BPF_MAX, tb[TCA_OPTIONS], nullptr) >= 0 && bt[TCA_BPF_NAME])
        o.bpf_name = nla_get_string(bt[TCA_BPF_NAME]);
    }
  }
  o.stab = tb[TCA_STAB] != nullptr;
  return o;
}

Result<std::vector<TcObject>> dump(Rtnl& nl, int type, int reply_type, int ifindex, uint32_t parent) {
  RtMsg m(type, NLM_F_DUMP, tc_header(ifindex, parent));
  std::vector<TcObject> out;
  FL_TRY(nl.talk(m, [&](nlmsghdr* h) {
    if (h->nlmsg_type != reply_type) return;
    TcObject o = parse_tc(h);
    if (o.ifindex == ifindex) out.push_back(std::move(o));
  }));
  return out;
}

}  // namespace

std::string hex_handle(uint32_t h) {
  char buf[24];
  if (TC_H_MIN(h) == 0)
    std::snprintf(buf, sizeof buf, "%x:", TC_H_MAJ(h) >> 16);
  else
    std::snprintf(buf, sizeof buf, "%x:%x", TC_H_MAJ(h) >> 16, TC_H_MIN(h));
  return buf;
}

std::string dev_name(int ifindex) {
  char buf[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(ifindex), buf)) return buf;
  return "ifindex " + std::to_string(ifindex);
}

tcmsg tc_header(int ifindex, uint32_t parent, uint32_t handle, uint32_t info) {
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = parent;
  t.tcm_handle = handle;
  t.tcm_info = info;
  return t;
}

Result<std::vector<TcObject>> dump_qdiscs(Rtnl& nl, int ifindex) {
  return dump(nl, RTM_GETQDISC, RTM_NEWQDISC, ifindex, 0);
}

Result<std::vector<TcObject>> dump_filters(Rtnl& nl, int ifindex, uint32_t parent) {
  return dump(nl, RTM_GETTFILTER, RTM_NEWTFILTER, ifindex, parent);
}

Status put_qdisc(Rtnl& nl, int ifindex, uint32_t parent, uint32_t handle, const std::string& kind,
                 const std::vector<uint8_t>& options, int flags, int overhead) {
  RtMsg m(RTM_NEWQDISC, flags, tc_header(ifindex, parent, handle));
  m.put_string(TCA_KIND, kind);
  if (!options.empty()) m.put(TCA_OPTIONS, options);
  if (overhead != 0) {
    tc_sizespec sz{};
    sz.overhead = overhead;
    sz.linklayer = TC_LINKLAYER_ETHERNET;
    m.begin_nest(TCA_STAB).put(TCA_STAB_BASE, &sz, sizeof sz).end_nest();
  }
  if (!m.ok()) return make_error(Errc::internal, "netlink message for " + kind + " does not fit");
  return nl.talk(m);
}

Status put_htb_class(Rtnl& nl, int ifindex, uint32_t parent, uint32_t classid, const std::vector<uint8_t>& options,
                     int flags) {
  RtMsg m(RTM_NEWTCLASS, flags, tc_header(ifindex, parent, classid));
  m.put_string(TCA_KIND, "htb").put(TCA_OPTIONS, options);
  if (!m.ok()) return make_error(Errc::internal, "netlink message for htb class does not fit");
  return nl.talk(m);
}

Status del_tc(Rtnl& nl, int type, int ifindex, uint32_t parent, uint32_t handle, uint32_t info) {
  RtMsg m(type, 0, tc_header(ifindex, parent, handle, info));
  return nl.talk(m);
}

}  // namespace fl::kernel
