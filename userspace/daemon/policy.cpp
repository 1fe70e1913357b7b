#include "daemon/policy.h"

#include "core/parse.h"

namespace fl::daemon {

namespace {

Status exemptions_kept(bool default_exempt, bool required) {
  if (required && !default_exempt)
    return field_error(Errc::permission_denied, "default_exempt",
                       "false is refused by this daemon's policy (faultlined "
                       "--require-default-exempt): SSH, DNS and the metadata address always pass");
  return {};
}

}  // namespace

Status Policy::check(const core::FaultSpec& spec) const {
  FL_TRY(exemptions_kept(spec.default_exempt, require_default_exempt));
  if (max_duration && spec.duration > *max_duration)
    return field_error(Errc::permission_denied, "duration",
                       core::format_duration(spec.duration) + " is above this daemon's policy maximum " +
                           core::format_duration(*max_duration) + " (faultlined --max-duration)");
  return {};
}

Status Policy::check(const core::ResetSpec& spec) const {
  return exemptions_kept(spec.default_exempt, require_default_exempt);
}

nlohmann::json Policy::to_json() const {
  return {{"require_default_exempt", require_default_exempt},
          {"max_duration_ms", max_duration ? nlohmann::json(max_duration->count()) : nlohmann::json(nullptr)}};
}

}  // namespace fl::daemon
