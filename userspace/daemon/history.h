// The daemon's memory across restarts: recent events (what `faultctl events` replays), the final
// status of recently ended faults (what `get` shows for them), and the numbers that must never
// go back (event seq, fault ids). One append-only file of JSON lines in the state directory,
// rewritten compactly when it grows. It is a record, not a safety mechanism: the journal says
// what is in the kernel; this says what happened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "daemon/events.h"

namespace fl::daemon {

struct HistoryLimits {
  size_t events = 1000;          // kept in memory and after a compaction
  size_t ended = 64;             // final statuses of ended faults
  size_t max_file = 4u << 20;    // past this the file is rewritten with what is kept
  size_t max_fault_spec = 64u << 10;  // a bigger spec (huge CIDR lists) is left out of the record
};

class History {
 public:
  // Reads state_dir/history.jsonl if there is one. A line that cannot be read (a write cut short
  // by a crash, a hand edit) is skipped with a warning; the rest still counts.
  static Result<std::unique_ptr<History>> open(const std::string& state_dir, HistoryLimits limits = {});
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  uint64_t next_seq() const { return next_seq_; }
  uint64_t next_fault_id() const { return next_fault_id_; }
  // Final statuses of ended faults, newest first.
  std::vector<nlohmann::json> ended() const { return {ended_.begin(), ended_.end()}; }
  // Events after seq (their wire form), oldest first; at most limit of the newest.
  nlohmann::json since(uint64_t seq, size_t limit) const;
  size_t skipped_lines() const { return skipped_; }
  const std::string& path() const { return path_; }

  // An EventBus listener: keeps the event and appends it to the file. Write errors are logged
  // once and the record goes on in memory; they never fail what caused the event.
  void record(const Event& e);

 private:
  History() = default;
  void load();
  void append_line(const std::string& line, bool sync);
  void compact();
  nlohmann::json fault_record(const nlohmann::json& fault) const;

  HistoryLimits limits_;
  std::string path_;
  int fd_ = -1;
  size_t file_size_ = 0;
  size_t compact_at_ = 0;  // the next compaction: never below twice what the last one kept
  bool write_failed_ = false;
  size_t skipped_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t next_fault_id_ = 1;
  std::deque<nlohmann::json> events_;  // wire form, oldest first
  std::deque<nlohmann::json> ended_;   // newest first
};

}  // namespace fl::daemon
