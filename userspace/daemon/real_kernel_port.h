// The kernel port the daemon runs with: each call is the kernel/ function of the same name.
#pragma once

#include <memory>

#include "core/result.h"
#include "daemon/kernel_port.h"

namespace fl::daemon {

// spare_datapaths: loaded ahead so a first fault need not wait for the verifier.
Result<std::unique_ptr<KernelPort>> make_real_kernel_port(size_t spare_datapaths);

}  // namespace fl::daemon
