// Kernel features, probed once at start into a plain struct that tests can build by hand to
// reach fallback paths.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace fl::kernel {

enum class Tri : uint8_t { no, yes, unknown };
const char* tri_name(Tri t);

struct Features {
  Tri tcx = Tri::unknown;      // BPF_TCX_INGRESS/EGRESS links (6.6+)
  Tri clsact = Tri::unknown;   // sch_clsact + cls_bpf, the legacy path
  Tri btf = Tri::unknown;      // /sys/kernel/btf/vmlinux
  Tri bpf_loop = Tri::unknown; // our program needs it (5.17+)
  // Shaping building blocks, probed in a scratch network namespace (see probe_shaping).
  Tri netem = Tri::unknown;    // delay, jitter, corrupt, duplicate, reorder
  Tri htb = Tri::unknown;      // every shaping fault: our root qdisc and its classes
  Tri tbf = Tri::unknown;
  Tri fq = Tri::unknown;
  Tri ifb = Tri::unknown;      // ingress shaping (redirect to an ifb's egress)
  std::string kernel_release;

  nlohmann::json to_json() const;
  std::string summary() const;  // one line for the start-up log
};

// Needs CAP_BPF/CAP_NET_ADMIN; what cannot be probed is reported as unknown, never guessed.
Features probe_features();

}  // namespace fl::kernel
