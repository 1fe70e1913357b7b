// What this daemon has attached to the kernel, on disk, so the next instance can remove what a
// killed one left. Written ahead of every attach and after every detach with write, fsync,
// rename, fsync(dir): a crash leaves either the old or the new file, never a torn one.
// tcx links die with their fd, so only legacy tc filters (and clsact qdiscs we created) can
// outlive us; tcx entries are kept for the record and for diagnostics. Shaping trees outlive
// us on every kernel: a root qdisc we replaced is journalled with what to put back, an ifb
// device with its name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace fl::daemon {

struct JournalEntry {
  // "attach": our programs on ifname; "root-qdisc": our HTB replaced ifname's root qdisc, which
  // saved_qdisc (SavedQdisc JSON) describes; "ifb": ifname is an ifb device we created.
  std::string what = "attach";
  std::string netns_path;  // how we reached the namespace
  uint64_t netns_dev = 0, netns_ino = 0;
  std::string ifname;
  int ifindex = 0;
  std::string mode;  // "tcx" or "tc"
  bool created_clsact = false;
  std::string saved_qdisc;
  bool operator==(const JournalEntry&) const = default;
};

struct JournalFile {
  std::string boot_id;
  int pid = 0;
  std::vector<JournalEntry> entries;
};

std::string current_boot_id();  // /proc/sys/kernel/random/boot_id

class Journal {
 public:
  // Creates state_dir (0700) if needed and takes an exclusive lock on it: one daemon per dir.
  static Result<Journal> open(const std::string& state_dir);
  Journal(Journal&&) noexcept;
  Journal& operator=(Journal&&) = delete;
  ~Journal();

  // What a previous instance recorded (empty when there is no journal).
  Result<JournalFile> load() const;
  Status add(const JournalEntry& e);
  Status remove(const JournalEntry& e);
  Status replace(const JournalEntry& old, const JournalEntry& now);  // one atomic write
  Status clear();
  const std::vector<JournalEntry>& entries() const { return current_.entries; }
  const std::string& path() const { return path_; }

 private:
  Journal() = default;
  Status write();
  std::string dir_, path_;
  int lock_fd_ = -1;
  JournalFile current_;
};

}  // namespace fl::daemon
