#include "kernel/attach.h"

#include "kernel/ifb.h"
#include "kernel/rtnl.h"
#include "kernel/tc_objects.h"

#include <linux/bpf.h>
#include <linux/pkt_sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

namespace fl::kernel {

namespace {

// Debian 12's headers (linux-libc-dev 6.1, libbpf 1.1) predate tcx; the values are kernel ABI.
constexpr uint32_t kBpfTcxIngress = 46;
constexpr uint32_t kBpfTcxEgress = 47;
constexpr uint32_t kBpfFBefore = 1U << 3;

struct TcxLinkCreate {  // the prefix of bpf_attr.link_create that tcx uses
  uint32_t prog_fd;
  uint32_t target_ifindex;
  uint32_t attach_type;
  uint32_t flags;
  uint32_t relative_fd;
  uint32_t pad;
  uint64_t expected_revision;
};

std::string hook_name(const Interface& ifc, bool ingress) {
  return std::string(ingress ? "ingress" : "egress") + " of " + ifc.name;
}

bpf_tc_hook make_hook(int ifindex, bpf_tc_attach_point point) {
  bpf_tc_hook h{};
  h.sz = sizeof h;
  h.ifindex = ifindex;
  h.attach_point = point;
  return h;
}

bpf_tc_opts our_opts(int prog_fd = 0) {
  bpf_tc_opts o{};
  o.sz = sizeof o;
  o.prog_fd = prog_fd;
  o.handle = kTcHandle;
  o.priority = kTcPriority;
  return o;
}

bool prog_is_ours(uint32_t prog_id) {
  int fd = bpf_prog_get_fd_by_id(prog_id);
  if (fd < 0) return false;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::strncmp(info.name, "fl_", 3) == 0;
  close(fd);
  return ours;
}

// Filters of any kind left on one clsact hook.
Result<int> count_filters(int ifindex, bool ingress) {
  auto nl = Rtnl::open();
  if (!nl.ok()) return nl.take_error();
  uint32_t parent = TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
  auto filters = dump_filters(*nl, ifindex, parent);
  if (!filters.ok()) return filters.take_error().wrap("list tc filters");
  return static_cast<int>(filters->size());
}

Status tc_detach_ours(int ifindex, bool ingress) {
  auto hook = make_hook(ifindex, ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  auto opts = our_opts();
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return {};  // nothing there, or no clsact
  if (err < 0) return Error::sys(Errc::kernel_error, "query tc filter", -err);
  if (!prog_is_ours(opts.prog_id)) {
    spdlog::warn("tc filter {:#x}/{} on ifindex {} is not ours (prog id {}); left in place",
                 kTcHandle, kTcPriority, ifindex, opts.prog_id);
    return {};
  }
  auto del = our_opts();
  err = bpf_tc_detach(&hook, &del);
  if (err < 0 && err != -ENOENT) return Error::sys(Errc::kernel_error, "detach tc filter", -err);
  return {};
}

Status maybe_remove_clsact(int ifindex) {
  auto in = count_filters(ifindex, true);
  auto out = count_filters(ifindex, false);
  if (!in.ok()) return in.take_error();
  if (!out.ok()) return out.take_error();
  if (*in > 0 || *out > 0) {
    spdlog::info("clsact on ifindex {} still holds {} other filter(s); left in place", ifindex, *in + *out);
    return {};
  }
  auto hook = make_hook(ifindex, static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  int err = bpf_tc_hook_destroy(&hook);
  if (err < 0 && err != -ENOENT && err != -EINVAL && err != -ENODEV)
    return Error::sys(Errc::kernel_error, "remove clsact qdisc", -err);
  return {};
}

}  // namespace

const char* attach_mode_name(AttachMode m) { return m == AttachMode::tcx ? "tcx" : "tc"; }

Result<int> tcx_attach(int ifindex, int prog_fd, bool ingress) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  TcxLinkCreate lc{};
  static_assert(sizeof(TcxLinkCreate) <= sizeof(attr));
  lc.prog_fd = static_cast<uint32_t>(prog_fd);
  lc.target_ifindex = static_cast<uint32_t>(ifindex);
  lc.attach_type = ingress ? kBpfTcxIngress : kBpfTcxEgress;
  // First in the chain: our verdict for "not ours" is TCX_NEXT, so CNI programs still run.
  lc.flags = kBpfFBefore;
  std::memcpy(&attr, &lc, sizeof lc);
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof attr));
  if (fd < 0) return Error::sys(Errc::kernel_error, "tcx link", errno);
  return fd;
}

Result<InterfaceAttachment> InterfaceAttachment::attach(const Interface& ifc, int ingress_fd,
                                                        int egress_fd, AttachMode mode) {
  InterfaceAttachment a;
  a.ifc_ = ifc;
  a.mode_ = mode;
  if (mode == AttachMode::tcx) {
    auto in = tcx_attach(ifc.index, ingress_fd, true);
    if (!in.ok()) return in.take_error().wrap("attach " + hook_name(ifc, true));
    a.ingress_link_ = *in;
    auto out = tcx_attach(ifc.index, egress_fd, false);
    if (!out.ok()) return out.take_error().wrap("attach " + hook_name(ifc, false));  // ~a closes ingress
    a.egress_link_ = *out;
    return a;
  }

  auto hook = make_hook(ifc.index, BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err < 0 && err != -EEXIST)
    return Error::sys(Errc::kernel_error, "create clsact on " + ifc.name, -err);
  a.created_clsact_ = err == 0;
  for (bool ingress : {true, false}) {
    auto h = make_hook(ifc.index, ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
    auto opts = our_opts(ingress ? ingress_fd : egress_fd);
    err = bpf_tc_attach(&h, &opts);
    if (err < 0) {
      Error e = Error::sys(Errc::kernel_error, "attach " + hook_name(ifc, ingress), -err);
      if (err == -EEXIST)
        e.message += " (a filter with handle 0xfa17 priority 1 already exists: another faultlined?)";
      auto undo = a.detach();
      if (!undo.ok()) spdlog::error("undo partial attach on {}: {}", ifc.name, undo.error().message);
      return e;
    }
    (ingress ? a.tc_ingress_ : a.tc_egress_) = true;
  }
  return a;
}

InterfaceAttachment::InterfaceAttachment(InterfaceAttachment&& o) noexcept { *this = std::move(o); }

InterfaceAttachment& InterfaceAttachment::operator=(InterfaceAttachment&& o) noexcept {
  if (this != &o) {
    ifc_ = o.ifc_;
    mode_ = o.mode_;
    std::swap(ingress_link_, o.ingress_link_);
    std::swap(egress_link_, o.egress_link_);
    std::swap(tc_ingress_, o.tc_ingress_);
    std::swap(tc_egress_, o.tc_egress_);
    std::swap(created_clsact_, o.created_clsact_);
  }
  return *this;
}

InterfaceAttachment::~InterfaceAttachment() {
  // tcx links go away with their fd, in any namespace. Legacy filters need detach() inside the
  // namespace; if the owner could not do that, the journal still names them for the next start.
  if (ingress_link_ >= 0) close(ingress_link_);
  if (egress_link_ >= 0) close(egress_link_);
  if (tc_ingress_ || tc_egress_)
    spdlog::warn("tc filters on {} (ifindex {}) not detached; the journal keeps them for cleanup",
                 ifc_.name, ifc_.index);
}

Status InterfaceAttachment::detach() {
  if (ingress_link_ >= 0) close(ingress_link_);
  if (egress_link_ >= 0) close(egress_link_);
  ingress_link_ = egress_link_ = -1;
  if (mode_ != AttachMode::tc) return {};
  Status first;
  for (bool ingress : {true, false}) {
    bool& flag = ingress ? tc_ingress_ : tc_egress_;
    if (!flag) continue;
    auto st = tc_detach_ours(ifc_.index, ingress);
    if (st.ok())
      flag = false;
    else if (first.ok())
      first = st.take_error().wrap("detach " + hook_name(ifc_, ingress));
  }
  if (!first.ok()) return first;
  if (created_clsact_) {
    FL_TRY_CTX(maybe_remove_clsact(ifc_.index), "remove clsact on " + ifc_.name);
    created_clsact_ = false;
  }
  return {};
}

Result<bool> InterfaceAttachment::alive() const {
  if (mode_ == AttachMode::tcx) {
    for (int fd : {ingress_link_, egress_link_}) {
      if (fd < 0) return false;
      // Debian 12's headers have no tcx member in bpf_link_info's union; like xdp's, its first
      // field is the ifindex, which the kernel zeroes when the device goes away.
      bpf_link_info info{};
      uint32_t len = sizeof info;
      if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
        return Error::sys(Errc::kernel_error, "link info of " + ifc_.name, errno);
      if (info.xdp.ifindex != static_cast<uint32_t>(ifc_.index)) return false;
    }
    return true;
  }
  for (bool ingress : {true, false}) {
    if (!(ingress ? tc_ingress_ : tc_egress_)) return false;
    // Our handle and priority are enough here: the program's name would need one more lookup,
    // and a lookup that fails for a passing reason (EMFILE) must not count as "gone".
    auto hook = make_hook(ifc_.index, ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
    auto opts = our_opts();
    int err = bpf_tc_query(&hook, &opts);
    if (err == -ENOENT || err == -EINVAL || err == -ENODEV) return false;
    if (err < 0) return Error::sys(Errc::kernel_error, "query tc filter on " + ifc_.name, -err);
  }
  return true;
}

void InterfaceAttachment::forget() {
  if (ingress_link_ >= 0) close(ingress_link_);
  if (egress_link_ >= 0) close(egress_link_);
  ingress_link_ = egress_link_ = -1;
  tc_ingress_ = tc_egress_ = created_clsact_ = false;
}

Status remove_tc_leftovers(int ifindex, bool created_clsact) {
  FL_TRY(detach_ifb_mirred(ifindex));  // ingress shaping's redirect filter, if one was left
  FL_TRY_CTX(tc_detach_ours(ifindex, true), "ingress");
  FL_TRY_CTX(tc_detach_ours(ifindex, false), "egress");
  if (created_clsact) FL_TRY(maybe_remove_clsact(ifindex));
  return {};
}

Result<bool> tc_filter_present(int ifindex, bool ingress) {
  auto hook = make_hook(ifindex, ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
  auto opts = our_opts();
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL || err == -ENODEV) return false;
  if (err < 0) return Error::sys(Errc::kernel_error, "query tc filter", -err);
  return prog_is_ours(opts.prog_id);
}

}  // namespace fl::kernel
