// What this daemon has attached to the kernel, on disk, so the next instance can remove what a
// killed one left. Written ahead of every attach and after every detach with write, fsync,
// rename, fsync(dir): a crash leaves either the old or the new file, never a torn one.
// tcx links die with their fd, so only legacy tc filters (and clsact qdiscs we created) can
// outlive us; tcx entries are kept for the record and for diagnostics. Shaping trees outlive
// us on every kernel: a root qdisc we replaced is journalled with what to put back, an ifb
// device with its name.
//
// Names are bytes. Interface names come from the kernel, which accepts any bytes but '/', ':'
// and whitespace, and anyone with a namespace of their own can name a device "\xff\xfe". A name
// that is not valid UTF-8 is written lossily (U+FFFD) in its usual member for people to read,
// plus exactly in hex in a "<member>_hex" member, which the reader prefers; so every name can
// be written and reads back byte for byte, and older journals (no _hex members) still read.
//
// Memory and disk agree after every call, whatever fails: a change is written first and kept
// in memory only once the file holds it. No call throws.
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

// The namespace an entry that could not be read still names (its path, device and inode were
// readable): the cleanup looks for our objects there by their marks.
struct JournalNetns {
  std::string path;
  uint64_t dev = 0, ino = 0;
};

struct JournalFile {
  std::string boot_id;
  int pid = 0;
  std::vector<JournalEntry> entries;  // every entry that could be read
  // One line per thing that could not be read (the whole file, or one entry: which, and why).
  std::vector<std::string> problems;
  std::vector<JournalNetns> unread_netns;  // named by entries that could not be read
};

std::string current_boot_id();  // /proc/sys/kernel/random/boot_id

class Journal {
 public:
  // Creates state_dir (0700) if needed and takes an exclusive lock on it: one daemon per dir.
  static Result<Journal> open(const std::string& state_dir);
  Journal(Journal&&) noexcept;
  Journal& operator=(Journal&&) = delete;
  ~Journal();

  // What a previous instance recorded (empty when there is no journal). An entry that cannot be
  // read is skipped and named in problems; the others are still returned. Fails only when the
  // file exists but cannot be read at all (an I/O error).
  Result<JournalFile> load() const;
  // Moves the file aside as journal.json.bad-<UTC time> for inspection; returns the new path.
  Result<std::string> keep_aside() const;

  // On failure nothing changes, in memory or on disk.
  Status add(const JournalEntry& e);
  // On failure e stays (in memory as on disk) and is taken out by the next write that succeeds
  // (any call here, or retry()): its kernel object is gone, and an entry too many only makes
  // the next start look for nothing, where an entry too few could leak a filter.
  Status remove(const JournalEntry& e);
  Status replace(const JournalEntry& old, const JournalEntry& now);  // one atomic write
  Status clear();
  // Writes out the removals that failed before; a no-op when there are none.
  Status retry();
  // What the file holds (removals not yet written included).
  const std::vector<JournalEntry>& entries() const { return entries_; }
  size_t pending_removals() const { return pending_.size(); }
  const std::string& path() const { return path_; }

 private:
  Journal() = default;
  // Writes entries_ + add - (pending_ + drop) and commits it to memory on success.
  Status commit(std::vector<JournalEntry> next, std::vector<JournalEntry> drop);
  Status write(const std::vector<JournalEntry>& entries) const noexcept;
  std::string dir_, path_;
  int lock_fd_ = -1;
  std::string boot_id_;
  int pid_ = 0;
  std::vector<JournalEntry> entries_;
  std::vector<JournalEntry> pending_;  // in entries_ and on disk, but their objects are gone
};

}  // namespace fl::daemon
