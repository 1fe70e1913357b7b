#include "daemon/socket_file.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

namespace fl::daemon {

std::string mode_str(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string parent_dir(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

sockaddr_un make_addr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());  // length checked at start
  return addr;
}

// A lookup failure (NSS down, say) is treated like a missing group: the socket then admits root
// only, which fails closed.
std::optional<gid_t> lookup_group(const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::vector<char> buf(1024);
  for (;;) {
    group gr{};
    group* res = nullptr;
    int rc = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &res);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) {
      spdlog::warn("looking up group {}: {}; only root may use the socket", name,
                   std::strerror(rc));
      return std::nullopt;
    }
    if (res == nullptr) return std::nullopt;
    return gr.gr_gid;
  }
}

// The socket's permissions are only as good as the directory's: whoever can write there can
// replace the socket with their own, or put a symlink where it is about to be. So only its
// owner (root, or the user running the daemon) may write there: no group, not even ours, and no
// sticky world-writable directory like /tmp. Stricter than chrony's UTI_CheckDirPermissions,
// which accepts a group-writable directory.
Status check_dir(const std::string& dir) {
  struct stat st{};
  if (lstat(dir.c_str(), &st) < 0) return Error::sys(Errc::internal, "stat " + dir, errno);
  if (!S_ISDIR(st.st_mode))
    return make_error(Errc::invalid_argument, "socket directory " + dir + " is not a directory");
  if (st.st_uid != 0 && st.st_uid != geteuid())
    return make_error(Errc::permission_denied,
                      "socket directory " + dir + " is owned by uid " + std::to_string(st.st_uid) +
                          ", expected root or uid " + std::to_string(geteuid()));
  if (st.st_mode & S_IWOTH)
    return make_error(Errc::permission_denied, "socket directory " + dir +
                                                   " is writable by others (mode " +
                                                   mode_str(st.st_mode) + ")");
  if (st.st_mode & S_IWGRP)
    return make_error(Errc::permission_denied,
                      "socket directory " + dir + " is writable by group " +
                          std::to_string(st.st_gid) + " (mode " + mode_str(st.st_mode) +
                          "); only its owner may write there");
  return {};
}

Status prepare_dir(const std::string& dir, std::optional<gid_t> gid) {
  if (mkdir(dir.c_str(), 0750) == 0) {
    // mkdir's mode went through the umask; say exactly what we mean.
    if (chmod(dir.c_str(), 0750) < 0) return Error::sys(Errc::internal, "chmod " + dir, errno);
    if (gid && chown(dir.c_str(), static_cast<uid_t>(-1), *gid) < 0)
      spdlog::warn("chgrp {} to gid {}: {}; group members cannot reach the socket", dir, *gid,
                   std::strerror(errno));
    spdlog::info("created socket directory {}", dir);
  } else if (errno != EEXIST) {
    return Error::sys(Errc::internal, "create socket directory " + dir, errno);
  }
  return check_dir(dir);
}

// A socket file outlives a crashed daemon. Connecting tells a stale one (ECONNREFUSED) from a
// live one; anything that is not a socket is someone else's file and is left alone.
Status clear_stale_socket(const std::string& path) {
  struct stat st{};
  if (lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return {};
    return Error::sys(Errc::internal, "stat " + path, errno);
  }
  if (!S_ISSOCK(st.st_mode))
    return make_error(Errc::invalid_argument,
                      path + " exists and is not a socket; refusing to replace it");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::sys(Errc::internal, "socket", errno);
  sockaddr_un addr = make_addr(path);
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = rc == 0 ? 0 : errno;
  close(fd);
  // EAGAIN: the listener's backlog is full, so it is very much alive.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
    return make_error(Errc::already_exists, "another faultlined is already listening on " + path);
  if (err != ECONNREFUSED) return Error::sys(Errc::internal, "probe existing socket " + path, err);
  if (unlink(path.c_str()) < 0 && errno != ENOENT)
    return Error::sys(Errc::internal, "remove stale socket " + path, errno);
  spdlog::info("removed stale socket {}", path);
  return {};
}

bool peer_in_group(int fd, gid_t gid) {
  std::vector<gid_t> groups(32);
  // ERANGE reports the size needed; the list is fixed at connect time, so one retry suffices.
  for (int attempt = 0; attempt < 3; ++attempt) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return std::find(groups.begin(), groups.end(), gid) != groups.end();
    }
    if (errno != ERANGE) {
      spdlog::debug("SO_PEERGROUPS on fd {}: {}", fd, std::strerror(errno));
      return false;
    }
    groups.resize(len / sizeof(gid_t) + 1);
  }
  return false;
}

Result<GroupSpec> parse_group(const std::string& s) {
  GroupSpec g;
  if (s.empty()) return g;
  if (s.find_first_not_of("0123456789") == std::string::npos) {
    // A number is a gid, as chown takes it, with no name service involved: what a container
    // image and the node agree on even when their /etc/group files differ.
    if (s.size() > 10) return make_error(Errc::invalid_argument, "gid \"" + s + "\" is out of range");
    unsigned long v = std::stoul(s);
    if (v >= 0xffffffffUL) return make_error(Errc::invalid_argument, "gid \"" + s + "\" is out of range");
    g.gid = static_cast<gid_t>(v);
    return g;
  }
  // POSIX portable names plus what useradd accepts; anything else is a typo or an attack on a log.
  bool ok = s.size() <= 32 && s[0] != '-';
  for (char ch : s)
    ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '_' || ch == '-' || ch == '.');
  if (!ok)
    return make_error(Errc::invalid_argument,
                      "\"" + s + "\" is neither a group name ([A-Za-z0-9_.-], at most 32, not starting with '-') nor a numeric gid");
  g.name = s;
  return g;
}

}  // namespace fl::daemon
