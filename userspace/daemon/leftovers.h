// What a previous instance left in the kernel, removed before we serve (and by --cleanup).
// First by the journal: each entry's namespace is re-opened and checked (device and inode), its
// interface checked (name and index), and only then is our object removed. Then, if any part of
// the journal could not be read, by our marks: in the daemon's own namespace and in every
// namespace the journal still names (read entries, and unread ones whose namespace could be
// read), whatever carries our mark is removed (root HTB fa17:, ifb devices named flifb*, cls_bpf
// filters with our handle and an fl_ program, the ifb redirect filter). tcx links are not
// looked for: they die with the process that held them.
#pragma once

#include <string>
#include <vector>

#include "daemon/journal.h"
#include "kernel/netns.h"

namespace fl::daemon {

struct CleanupReport {
  size_t removed = 0;       // objects removed by their journal entry
  size_t swept = 0;         // objects removed by their mark
  std::string kept_aside;   // where an unreadable journal went, if one did
  // What could not be read or removed, one line each. Empty: everything of ours is gone.
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

// Call with the journal's lock held (Journal::open), before the engine exists. Leaves in the
// journal what could not be removed, so the next start tries again.
CleanupReport clean_leftovers(Journal& journal, const kernel::Netns& host);

// In the calling thread's namespace: removes every object that carries our mark. Adds to
// *removed what it removed; one line per failure to *problems (prefixed with label).
void sweep_marked(const std::string& label, size_t* removed, std::vector<std::string>* problems);

}  // namespace fl::daemon
