#include "daemon/journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace fl::daemon {

using json = nlohmann::json;

namespace {

constexpr int kVersion = 2;  // 2: byte strings that are not UTF-8 also as "<member>_hex"

// Strict UTF-8, as nlohmann's writer checks it: no overlong forms, no surrogates, nothing
// past U+10FFFF.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xbf;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) len = 1;
    else if (c == 0xe0) { len = 2; lo = 0xa0; }
    else if (c >= 0xe1 && c <= 0xec) len = 2;
    else if (c == 0xed) { len = 2; hi = 0x9f; }
    else if (c >= 0xee && c <= 0xef) len = 2;
    else if (c == 0xf0) { len = 3; lo = 0x90; }
    else if (c >= 0xf1 && c <= 0xf3) len = 3;
    else if (c == 0xf4) { len = 3; hi = 0x8f; }
    else return false;
    if (i + len >= n) return false;
    for (size_t k = 1; k <= len; k++) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf)) return false;
    }
    i += len + 1;
  }
  return true;
}

std::string to_hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::string from_hex(const std::string& hex, const char* member) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2) throw std::runtime_error(std::string(member) + "_hex: odd number of hex digits");
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) throw std::runtime_error(std::string(member) + "_hex: not hex");
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

// A byte string as the member itself (lossy if it must be) and, if it is not UTF-8, exactly.
void put_bytes(json& j, const char* member, const std::string& v) {
  j[member] = v;
  if (!valid_utf8(v)) j[std::string(member) + "_hex"] = to_hex(v);
}

std::string get_bytes(const json& j, const char* member) {
  if (auto h = j.find(std::string(member) + "_hex"); h != j.end()) return from_hex(h->get<std::string>(), member);
  return j.at(member).get<std::string>();
}

json entry_json(const JournalEntry& e) {
  json j = json::object();
  put_bytes(j, "netns_path", e.netns_path);
  j["netns_dev"] = e.netns_dev;
  j["netns_ino"] = e.netns_ino;
  put_bytes(j, "ifname", e.ifname);
  j["ifindex"] = e.ifindex;
  j["mode"] = e.mode;
  j["created_clsact"] = e.created_clsact;
  j["what"] = e.what;
  put_bytes(j, "saved_qdisc", e.saved_qdisc);
  return j;
}

JournalEntry entry_of(const json& e) {
  JournalEntry je;
  je.netns_path = get_bytes(e, "netns_path");
  je.netns_dev = e.at("netns_dev").get<uint64_t>();
  je.netns_ino = e.at("netns_ino").get<uint64_t>();
  je.ifname = get_bytes(e, "ifname");
  je.ifindex = e.at("ifindex").get<int>();
  je.mode = e.at("mode").get<std::string>();
  je.created_clsact = e.at("created_clsact").get<bool>();
  // Journals of version 1 without these members hold attachments only.
  je.what = e.value("what", std::string("attach"));
  if (je.what != "attach" && je.what != "root-qdisc" && je.what != "ifb")
    throw std::runtime_error("what: \"" + je.what + "\" is not attach, root-qdisc or ifb");
  je.saved_qdisc = e.contains("saved_qdisc") || e.contains("saved_qdisc_hex") ? get_bytes(e, "saved_qdisc") : "";
  return je;
}

// A short, printable quote of what could not be read, for the log.
std::string quote(const json& j) {
  std::string s = j.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s;
}

// Removes one element equal to v from list; false if there is none.
bool erase_one(std::vector<JournalEntry>& list, const JournalEntry& v) {
  auto it = std::find(list.begin(), list.end(), v);
  if (it == list.end()) return false;
  list.erase(it);
  return true;
}

}  // namespace

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
  j.boot_id_ = current_boot_id();
  j.pid_ = getpid();
  return j;
}

Journal::Journal(Journal&& o) noexcept
    : dir_(std::move(o.dir_)),
      path_(std::move(o.path_)),
      lock_fd_(o.lock_fd_),
      boot_id_(std::move(o.boot_id_)),
      pid_(o.pid_),
      entries_(std::move(o.entries_)),
      pending_(std::move(o.pending_)) {
  o.lock_fd_ = -1;
}

Journal::~Journal() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<JournalFile> Journal::load() const {
  std::ifstream f(path_);
  if (!f) {
    if (errno == ENOENT) return JournalFile{};
    return Error::sys(Errc::internal, "read journal " + path_, errno);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return make_error(Errc::internal, "read journal " + path_ + ": I/O error");
  JournalFile out;
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    out.problems.push_back("journal " + path_ + " is not a JSON object; none of its entries can be read");
    return out;
  }
  if (auto b = j.find("boot_id"); b != j.end() && b->is_string())
    out.boot_id = b->get<std::string>();
  else
    out.problems.push_back("journal " + path_ + ": boot_id missing or not a string; taken as this boot's");
  if (auto p = j.find("pid"); p != j.end() && p->is_number_integer()) out.pid = p->get<int>();
  auto list = j.find("attachments");
  if (list == j.end() || !list->is_array()) {
    out.problems.push_back("journal " + path_ + ": attachments missing or not an array");
    return out;
  }
  for (size_t i = 0; i < list->size(); i++) {
    const json& e = (*list)[i];
    try {
      if (!e.is_object()) throw std::runtime_error("not an object");
      out.entries.push_back(entry_of(e));
    } catch (const std::exception& ex) {
      out.problems.push_back("journal " + path_ + ": entry " + std::to_string(i) + " skipped (" + ex.what() +
                             "): " + quote(e));
      // Where it was is still worth knowing: the cleanup looks there for our marks.
      try {
        JournalNetns ns{get_bytes(e, "netns_path"), e.at("netns_dev").get<uint64_t>(),
                        e.at("netns_ino").get<uint64_t>()};
        out.unread_netns.push_back(std::move(ns));
      } catch (const std::exception&) {
      }
    }
  }
  return out;
}

Result<std::string> Journal::keep_aside() const {
  char stamp[32];
  time_t now = time(nullptr);
  struct tm tm{};
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::string to = path_ + ".bad-" + stamp;
  // Two in one second (a --cleanup right after a failed start) must not overwrite the first.
  for (int n = 1; access(to.c_str(), F_OK) == 0; n++) to = path_ + ".bad-" + stamp + "-" + std::to_string(n);
  if (rename(path_.c_str(), to.c_str()) != 0) return Error::sys(Errc::internal, "move " + path_ + " to " + to, errno);
  return to;
}

Status Journal::commit(std::vector<JournalEntry> next, std::vector<JournalEntry> drop) {
  for (const auto& d : drop) erase_one(next, d);
  FL_TRY(write(next));
  entries_ = std::move(next);
  pending_.clear();
  return {};
}

Status Journal::add(const JournalEntry& e) {
  try {
    auto drop = pending_;
    auto next = entries_;
    // The object is back (the same interface attached again): its pending removal is void.
    if (!erase_one(drop, e)) next.push_back(e);
    return commit(std::move(next), std::move(drop));
  } catch (const std::exception& ex) {
    return make_error(Errc::internal, std::string("journal: ") + ex.what());
  }
}

Status Journal::remove(const JournalEntry& e) {
  try {
    if (std::count(entries_.begin(), entries_.end(), e) <=
        std::count(pending_.begin(), pending_.end(), e))
      return {};
    auto drop = pending_;
    drop.push_back(e);
    auto st = commit(entries_, drop);
    if (!st.ok()) pending_ = std::move(drop);
    return st;
  } catch (const std::exception& ex) {
    return make_error(Errc::internal, std::string("journal: ") + ex.what());
  }
}

Status Journal::replace(const JournalEntry& old, const JournalEntry& now) {
  try {
    auto drop = pending_;
    auto next = entries_;
    auto it = std::find(next.begin(), next.end(), old);
    if (it == next.end() || std::count(drop.begin(), drop.end(), old) > 0) return add(now);
    *it = now;
    return commit(std::move(next), std::move(drop));
  } catch (const std::exception& ex) {
    return make_error(Errc::internal, std::string("journal: ") + ex.what());
  }
}

Status Journal::clear() {
  try {
    return commit({}, {});
  } catch (const std::exception& ex) {
    return make_error(Errc::internal, std::string("journal: ") + ex.what());
  }
}

Status Journal::retry() {
  if (pending_.empty()) return {};
  try {
    return commit(entries_, pending_);
  } catch (const std::exception& ex) {
    return make_error(Errc::internal, std::string("journal: ") + ex.what());
  }
}

Status Journal::write(const std::vector<JournalEntry>& entries) const noexcept {
  std::string data;
  try {
    json arr = json::array();
    for (const auto& e : entries) arr.push_back(entry_json(e));
    json j = {{"version", kVersion}, {"boot_id", boot_id_}, {"pid", pid_}, {"attachments", arr}};
    // Every byte string is UTF-8 or has its exact _hex twin: replacing cannot lose anything.
    data = j.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
  } catch (const std::exception& ex) {
    return make_error(Errc::internal, std::string("encode journal: ") + ex.what());
  }
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
