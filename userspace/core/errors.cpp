#include "core/result.h"

namespace fl {

const char* errc_name(Errc c) {
  switch (c) {
    case Errc::invalid_request: return "invalid_request";
    case Errc::unknown_op: return "unknown_op";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::unsupported_version: return "unsupported_version";
    case Errc::permission_denied: return "permission_denied";
    case Errc::not_found: return "not_found";
    case Errc::already_exists: return "already_exists";
    case Errc::resource_exhausted: return "resource_exhausted";
    case Errc::kernel_unsupported: return "kernel_unsupported";
    case Errc::kernel_error: return "kernel_error";
    case Errc::target_unavailable: return "target_unavailable";
    case Errc::internal: return "internal";
    case Errc::timeout: return "timeout";
  }
  return "internal";
}

}  // namespace fl
