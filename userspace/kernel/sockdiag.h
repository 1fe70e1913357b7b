// TCP connections of a network namespace, read and destroyed over NETLINK_SOCK_DIAG: the same
// requests `ss -K` sends, without forking it.
//
// What SOCK_DESTROY does (tcp_abort, checked on 6.18): the socket is closed at once with
// ECONNABORTED, so a process blocked on it returns that error. From ESTABLISHED, SYN_RECV,
// CLOSE_WAIT and FIN_WAIT1/2 the kernel sends a RST first, so the peer (in any namespace or on
// any host) fails with ECONNRESET as soon as the RST arrives; from SYN_SENT and LAST_ACK it sends
// nothing. The RST leaves through the namespace's egress hooks like any packet: a fault that
// drops the connection's packets and is already on drops the RST too, and the peer then hangs
// until its own timeouts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"

namespace fl::kernel {

struct TcpConn {
  // An IPv4 connection on an IPv6 socket (an address ::ffff:a.b.c.d) is reported as family 4,
  // which is what its packets carry and what a fault matches.
  uint8_t family = 4;
  std::array<uint8_t, 16> local{}, remote{};  // IPv4 in the first 4 bytes
  uint16_t lport = 0, rport = 0;              // host byte order
  uint8_t state = 0;                          // TCP_ESTABLISHED etc. (netinet/tcp.h)
  std::string str() const;  // "10.0.0.1:5000 -> 10.0.0.2:80 ESTABLISHED", "[fd00::1]:5000 -> ..."
};

struct DestroyResult {
  size_t matched = 0;    // connections match() accepted
  size_t destroyed = 0;  // of those, destroyed by us
  size_t gone = 0;       // of those, closed on their own between the dump and the destroy
};

// In the calling thread's network namespace: every TCP socket in a connected state
// (ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK; not LISTEN, not
// TIME_WAIT) for which match(conn) is true is destroyed with SOCK_DESTROY, by its cookie, so a
// new connection that reused the 4-tuple meanwhile is left alone (counted as gone). Errors:
// kernel_unsupported when the kernel cannot destroy sockets (no CONFIG_INET_DIAG_DESTROY) or
// has no socket diagnostics; permission_denied without CAP_NET_ADMIN; kernel_error otherwise.
// On an error part way through, the connections destroyed before it stay destroyed; the message
// says how many.
Result<DestroyResult> destroy_tcp(const std::function<bool(const TcpConn&)>& match);

// Whether this kernel can destroy TCP sockets (CONFIG_INET_DIAG_DESTROY), asked without
// destroying anything: what `--reset` checks before a fault changes anything.
Status probe_sock_destroy();

// The connected TCP sockets of the calling thread's namespace, as destroy_tcp sees them.
Result<std::vector<TcpConn>> list_tcp();

}  // namespace fl::kernel
