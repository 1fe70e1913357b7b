// The socket file and who may use it: its directory's ownership and mode, a stale socket left by
// a crashed daemon, the group allowed to connect. Only what touches the file system and the
// peer's credentials; the connections themselves are server.h's.
#pragma once

#include <sys/types.h>
#include <sys/un.h>

#include <optional>
#include <string>

#include "core/result.h"

namespace fl::daemon {

// Who besides root may connect and change faults: a group by name (used if it exists, resolved
// once at start), a numeric gid (used as is, no lookup), or nobody (empty: root only).
struct GroupSpec {
  std::string name;          // empty with no gid: root only
  std::optional<gid_t> gid;  // a numeric spec
};
// "" -> root only; all digits -> that gid; otherwise a group name. Errors quote the value.
Result<GroupSpec> parse_group(const std::string& s);

std::string mode_str(mode_t m);  // "0750"
std::string parent_dir(const std::string& path);
// path's length was checked against sun_path before.
sockaddr_un make_addr(const std::string& path);
// nullopt for "" or a group that does not exist or cannot be looked up.
std::optional<gid_t> lookup_group(const std::string& name);
// Refuses a directory anyone but its owner (root or us) may write to.
Status check_dir(const std::string& dir);
// Creates dir 0750 (group gid) if missing, then check_dir.
Status prepare_dir(const std::string& dir, std::optional<gid_t> gid);
// Removes a socket file no daemon listens on; refuses a live one or a file that is not a socket.
Status clear_stale_socket(const std::string& path);
// Whether gid is among the peer's groups (SO_PEERGROUPS).
bool peer_in_group(int fd, gid_t gid);

}  // namespace fl::daemon
