#include "kernel/interfaces.h"

#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fl::kernel {

Result<std::vector<Interface>> list_interfaces() {
  struct if_nameindex* names = if_nameindex();
  if (!names) return Error::sys(Errc::kernel_error, "list interfaces", errno);
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  std::vector<Interface> out;
  for (auto* p = names; p->if_index != 0 && p->if_name; ++p) {
    Interface i{p->if_name, static_cast<int>(p->if_index), false};
    struct ifreq ifr{};
    std::strncpy(ifr.ifr_name, p->if_name, IFNAMSIZ - 1);
    if (sock >= 0 && ioctl(sock, SIOCGIFFLAGS, &ifr) == 0) i.loopback = ifr.ifr_flags & IFF_LOOPBACK;
    struct ifreq hw{};
    std::strncpy(hw.ifr_name, p->if_name, IFNAMSIZ - 1);
    if (sock >= 0 && ioctl(sock, SIOCGIFHWADDR, &hw) == 0) {
      i.arphrd = hw.ifr_hwaddr.sa_family;
      i.ethernet = i.arphrd == ARPHRD_ETHER || i.arphrd == ARPHRD_LOOPBACK;  // lo carries an Ethernet header too
      std::memcpy(i.hwaddr.data(), hw.ifr_hwaddr.sa_data, i.hwaddr.size());
    }
    out.push_back(std::move(i));
  }
  if (sock >= 0) ::close(sock);
  if_freenameindex(names);
  return out;
}

DeviceLookup lookup_device(int ifindex) {
  char name[IF_NAMESIZE] = {};
  errno = 0;
  if (if_indextoname(static_cast<unsigned>(ifindex), name)) return {DeviceLookup::present, name, 0};
  int err = errno;
  if (err == ENODEV || err == ENXIO) return {DeviceLookup::gone, "", err};
  return {DeviceLookup::unknown, "", err ? err : EIO};
}

std::optional<bool> same_device(const Interface& was) {
  DeviceLookup d = lookup_device(was.index);
  if (d.state == DeviceLookup::unknown) return std::nullopt;
  if (d.state == DeviceLookup::gone || was.name != d.name) return false;
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return std::nullopt;
  struct ifreq hw{};
  static_assert(sizeof hw.ifr_name >= IF_NAMESIZE);
  std::strncpy(hw.ifr_name, d.name.c_str(), IF_NAMESIZE - 1);
  if (ioctl(sock, SIOCGIFHWADDR, &hw) != 0) {
    int err = errno;
    ::close(sock);
    if (err == ENODEV || err == ENXIO) return false;
    return true;  // name and index agree; the address cannot be read (no hardware address)
  }
  ::close(sock);
  return std::memcmp(was.hwaddr.data(), hw.ifr_hwaddr.sa_data, was.hwaddr.size()) == 0;
}

}  // namespace fl::kernel
