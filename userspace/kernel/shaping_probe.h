// Which shaping pieces this kernel has, probed once at start (features.cpp reports them).
#pragma once

#include "kernel/features.h"

namespace fl::kernel {

// HTB, TBF, netem, fq and ifb, probed in a scratch network namespace (a short-lived thread that
// unshares one), so nothing is left behind on the host. Tri::unknown when the probe itself failed.
struct ShapingFeatures {
  Tri netem = Tri::unknown, htb = Tri::unknown, tbf = Tri::unknown, fq = Tri::unknown, ifb = Tri::unknown;
};
ShapingFeatures probe_shaping();

}  // namespace fl::kernel
