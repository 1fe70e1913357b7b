// The network devices of the namespace the calling thread is in: listing them, and telling
// whether one we saw is still the same device.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace fl::kernel {

struct Interface {
  std::string name;
  int index = 0;
  bool loopback = false;
  bool ethernet = true;  // frames start with an Ethernet header (ARPHRD_ETHER), as we parse them
  int arphrd = 1;
  std::array<uint8_t, 6> hwaddr{};  // with name and index, tells a re-created device from the one we saw
};

// The device with this index in the calling thread's namespace. Only ENODEV/ENXIO from the
// kernel mean it is gone; any other failure (EMFILE when we are out of descriptors, ENOMEM) says
// nothing about the device, and whoever asked must keep its state and ask again later.
struct DeviceLookup {
  enum State { present, gone, unknown } state = unknown;
  std::string name;  // when present
  int err = 0;       // when unknown
};
DeviceLookup lookup_device(int ifindex);

// Whether the device `was` describes is still there in the calling thread's namespace: same
// index, same name, same hardware address. A device deleted and re-created under the same name
// and index gets a new random address (veth, dummy, macvlan), unless someone sets it by hand.
// nullopt: we cannot tell now (see lookup_device).
std::optional<bool> same_device(const Interface& was);

// Interfaces of the namespace the calling thread is in.
Result<std::vector<Interface>> list_interfaces();

}  // namespace fl::kernel
