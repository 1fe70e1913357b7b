#include "kernel/features.h"

#include <linux/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kernel/attach.h"
#include "kernel/shaping.h"

namespace fl::kernel {

namespace {

// r0 = -1 (TC_ACT_UNSPEC); exit
int load_trivial_cls() {
  struct bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, -1},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "fl_probe", "GPL", insns, 2, nullptr);
}

Tri probe_tcx() {
  int prog = load_trivial_cls();
  if (prog < 0) return Tri::unknown;
  // No device has ifindex ~0: a kernel with tcx looks for it (ENODEV), one without rejects the
  // attach type first (EINVAL).
  auto r = tcx_attach(static_cast<int>(~0u), prog, true);
  close(prog);
  if (r.ok()) {
    close(*r);
    return Tri::yes;
  }
  if (r.error().sys_errno == ENODEV) return Tri::yes;
  if (r.error().sys_errno == EINVAL) return Tri::no;
  return Tri::unknown;
}

Tri probe_helper(enum bpf_func_id id) {
  int r = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, id, nullptr);
  return r > 0 ? Tri::yes : r == 0 ? Tri::no : Tri::unknown;
}

}  // namespace

const char* tri_name(Tri t) {
  switch (t) {
    case Tri::no: return "no";
    case Tri::yes: return "yes";
    default: return "unknown";
  }
}

Features probe_features() {
  Features f;
  struct utsname u{};
  if (uname(&u) == 0) f.kernel_release = u.release;
  f.tcx = probe_tcx();
  f.btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? Tri::yes : Tri::no;
  f.bpf_loop = probe_helper(BPF_FUNC_loop);
  int prog = load_trivial_cls();
  f.clsact = prog >= 0 ? Tri::yes : Tri::unknown;  // cls_bpf programs load; clsact checked on use
  if (prog >= 0) close(prog);
  auto s = probe_shaping();
  f.netem = s.netem;
  f.htb = s.htb;
  f.tbf = s.tbf;
  f.fq = s.fq;
  f.ifb = s.ifb;
  return f;
}

nlohmann::json Features::to_json() const {
  return {{"kernel", kernel_release},
          {"tcx", tri_name(tcx)},
          {"clsact", tri_name(clsact)},
          {"btf", tri_name(btf)},
          {"bpf_loop", tri_name(bpf_loop)},
          {"netem", tri_name(netem)},
          {"htb", tri_name(htb)},
          {"tbf", tri_name(tbf)},
          {"fq", tri_name(fq)},
          {"ifb", tri_name(ifb)}};
}

std::string Features::summary() const {
  return "kernel " + kernel_release + ": tcx=" + tri_name(tcx) + " clsact=" + tri_name(clsact) +
         " btf=" + tri_name(btf) + " bpf_loop=" + tri_name(bpf_loop) + " netem=" + tri_name(netem) +
         " htb=" + tri_name(htb) + " tbf=" + tri_name(tbf) + " fq=" + tri_name(fq) + " ifb=" + tri_name(ifb);
}

}  // namespace fl::kernel
