#include "daemon/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace fl::daemon {

using json = nlohmann::json;

std::string current_boot_id() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

Result<Journal> Journal::open(const std::string& state_dir) {
  if (mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Error::sys(Errc::internal, "create state dir " + state_dir, errno);
  struct stat st{};
  if (stat(state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error(Errc::internal, "state dir " + state_dir + " is not a directory");
  // Whoever can write here can make the next start "clean up" filters on interfaces of their
  // choosing: only root (or whoever runs us) may own it, and nobody else may write to it.
  if (st.st_uid != 0 && st.st_uid != geteuid())
    return make_error(Errc::permission_denied, "state dir " + state_dir + " is owned by uid " +
                                                   std::to_string(st.st_uid) + "; refusing to use it");
  if (st.st_mode & (S_IWOTH | S_IWGRP))
    return make_error(Errc::permission_denied,
                      "state dir " + state_dir + " is writable by group or others; refusing to use it");
  Journal j;
  j.dir_ = state_dir;
  j.path_ = state_dir + "/journal.json";
  std::string lock = state_dir + "/lock";
  j.lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (j.lock_fd_ < 0) return Error::sys(Errc::internal, "open " + lock, errno);
  if (flock(j.lock_fd_, LOCK_EX | LOCK_NB) != 0)
    return Error::sys(Errc::already_exists,
                      "lock " + lock + " (another faultlined uses this state dir)", errno);
  j.current_.boot_id = current_boot_id();
  j.current_.pid = getpid();
  return j;
}

Journal::Journal(Journal&& o) noexcept
    : dir_(std::move(o.dir_)), path_(std::move(o.path_)), lock_fd_(o.lock_fd_), current_(std::move(o.current_)) {
  o.lock_fd_ = -1;
}

Journal::~Journal() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<JournalFile> Journal::load() const {
  std::ifstream f(path_);
  if (!f) return JournalFile{};
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    json j = json::parse(ss.str());
    JournalFile out;
    out.boot_id = j.at("boot_id").get<std::string>();
    out.pid = j.at("pid").get<int>();
    for (const auto& e : j.at("attachments")) {
      JournalEntry je;
      je.netns_path = e.at("netns_path").get<std::string>();
      je.netns_dev = e.at("netns_dev").get<uint64_t>();
      je.netns_ino = e.at("netns_ino").get<uint64_t>();
      je.ifname = e.at("ifname").get<std::string>();
      je.ifindex = e.at("ifindex").get<int>();
      je.mode = e.at("mode").get<std::string>();
      je.created_clsact = e.at("created_clsact").get<bool>();
      // Journals of version 1 without these members hold attachments only.
      je.what = e.value("what", std::string("attach"));
      je.saved_qdisc = e.value("saved_qdisc", std::string());
      out.entries.push_back(std::move(je));
    }
    return out;
  } catch (const std::exception& ex) {
    return make_error(Errc::internal, "journal " + path_ + " is unreadable: " + ex.what());
  }
}

Status Journal::add(const JournalEntry& e) {
  current_.entries.push_back(e);
  auto st = write();
  if (!st.ok()) current_.entries.pop_back();
  return st;
}

Status Journal::remove(const JournalEntry& e) {
  auto it = std::find(current_.entries.begin(), current_.entries.end(), e);
  if (it == current_.entries.end()) return {};
  current_.entries.erase(it);
  return write();
}

Status Journal::replace(const JournalEntry& old, const JournalEntry& now) {
  auto it = std::find(current_.entries.begin(), current_.entries.end(), old);
  if (it == current_.entries.end()) return add(now);
  JournalEntry saved = *it;
  *it = now;
  auto st = write();
  if (!st.ok()) *it = saved;
  return st;
}

Status Journal::clear() {
  current_.entries.clear();
  return write();
}

Status Journal::write() {
  json arr = json::array();
  for (const auto& e : current_.entries)
    arr.push_back({{"netns_path", e.netns_path},
                   {"netns_dev", e.netns_dev},
                   {"netns_ino", e.netns_ino},
                   {"ifname", e.ifname},
                   {"ifindex", e.ifindex},
                   {"mode", e.mode},
                   {"created_clsact", e.created_clsact},
                   {"what", e.what},
                   {"saved_qdisc", e.saved_qdisc}});
  json j = {{"version", 1}, {"boot_id", current_.boot_id}, {"pid", current_.pid}, {"attachments", arr}};
  std::string data = j.dump(1) + "\n";
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::sys(Errc::internal, "write journal " + tmp, errno);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Error::sys(Errc::internal, "write journal " + tmp, e);
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    return Error::sys(Errc::internal, "fsync journal", e);
  }
  ::close(fd);
  if (rename(tmp.c_str(), path_.c_str()) != 0) return Error::sys(Errc::internal, "rename journal", errno);
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace fl::daemon
