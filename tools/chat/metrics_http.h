// The /metrics endpoint: one GET per connection, Prometheus text format 0.0.4.
#pragma once

#include "server.h"

namespace fl::chat {

void serve_metrics(Server& srv, tcp::socket sock);

// Resident set size of this process in bytes, from /proc/self/statm (0 if unreadable).
uint64_t resident_bytes();

}  // namespace fl::chat
