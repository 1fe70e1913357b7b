#include "unit/engine_rig_util.h"

#include <stdexcept>

#include "core/validate.h"
#include "protocol/protocol.h"

namespace fl::test {

core::FaultSpec engine_spec(const nlohmann::json& j) {
  auto spec = proto::fault_spec_from_json(j);
  if (!spec.ok()) throw std::runtime_error(spec.error().message);
  auto st = core::validate(*spec);
  if (!st.ok()) throw std::runtime_error(st.error().message);
  return *spec;
}

EngineRig::EngineRig() {
  k.add_ns("a", {"eth0", "eth1"});
  k.add_ns("b", {"eth0"});
  daemon::EngineOptions o;
  o.spare_datapaths = 0;
  o.clock = [this] { return now_ns; };
  o.wall_clock_ms = [this] { return wall_ms; };
  kernel::Features f;
  f.tcx = f.clsact = f.netem = f.htb = f.ifb = kernel::Tri::yes;
  f.kernel_release = "fake";
  auto e = daemon::Engine::create(o, f, nullptr, k.port());
  if (!e.ok()) throw std::runtime_error(e.error().message);
  engine = std::move(*e);
}

EngineRig::~EngineRig() { engine.reset(); }

}  // namespace fl::test
