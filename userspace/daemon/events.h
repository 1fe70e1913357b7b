// What happened to faults and to the daemon, as one ordered stream. The engine and the
// dispatcher report; the log, `faultctl events`, the history that survives a restart and the
// metrics all listen. Every listener runs on the loop thread: the kernel worker reports to a bus
// of its own whose one listener posts each event here (daemon/main.cpp).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fl::daemon {

// Who asked, from SO_PEERCRED. Absent for what the daemon did by itself (an expiry, a target
// that went away, the heal at shutdown).
struct Caller {
  uid_t uid = 0;
  pid_t pid = 0;
};

enum class EventType : uint8_t {
  applied,     // a fault switched on
  healed,      // ended on request (heal, or every fault at shutdown)
  expired,     // ended because its time was up
  gone,        // ended because every target of it went away
  refused,     // a mutating request answered with an error
  lease_late,  // the lease was renewed later than planned: faults may have been off meanwhile
};
const char* event_type_name(EventType t);

struct Event {
  uint64_t seq = 0;      // stamped by the bus: strictly increasing, across restarts too
  int64_t unix_ms = 0;   // stamped by the bus
  EventType type = EventType::applied;
  uint64_t fault_id = 0;  // 0: no fault (a refusal, the lease)
  std::string name;       // the fault's name; may be empty
  std::string kind;       // the fault's kind, or the refused op
  std::vector<std::string> targets;
  std::optional<Caller> caller;
  std::string code;    // refused: the error code
  std::string detail;  // refused: the message; gone: why; lease_late: by how much
  uint64_t duration_ns = 0;  // applied: time the apply took; lease_late: the renewal gap
  // Ended faults: the final status (what `get` shows afterwards); null otherwise.
  nlohmann::json fault;

  // The wire form (docs/PROTOCOL.md, "events"): without `fault`, which `get` serves.
  nlohmann::json to_json() const;
};

class EventBus {
 public:
  using Listener = std::function<void(const Event&)>;

  // Listeners run in the order they were added, synchronously, on every emit. One that throws
  // is logged and the others still run: an observer must never undo what the engine did.
  void listen(Listener l) { listeners_.push_back(std::move(l)); }
  // Stamps seq and time, then tells every listener. Returns the stamped seq.
  uint64_t emit(Event e);
  // The next seq to stamp; the history sets it at start so numbers are never reused.
  void set_next_seq(uint64_t s) { next_seq_ = s; }
  uint64_t next_seq() const { return next_seq_; }

 private:
  std::vector<Listener> listeners_;
  uint64_t next_seq_ = 1;
};

}  // namespace fl::daemon
