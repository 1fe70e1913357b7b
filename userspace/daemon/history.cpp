#include "daemon/history.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <spdlog/spdlog.h>

namespace fl::daemon {

using json = nlohmann::json;

namespace {

constexpr const char* kFile = "history.jsonl";

// Names of interfaces and namespaces are bytes, not text: one that is not UTF-8 must not make
// a record impossible to write. Invalid bytes become U+FFFD in the record only.
std::string dump_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool is_end(const std::string& type) { return type == "healed" || type == "expired" || type == "gone"; }

}  // namespace

Result<std::unique_ptr<History>> History::open(const std::string& state_dir, HistoryLimits limits) {
  std::unique_ptr<History> h(new History());
  h->limits_ = limits;
  h->path_ = state_dir + "/" + kFile;
  h->load();
  h->fd_ = ::open(h->path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (h->fd_ < 0) return Error::sys(Errc::internal, "open " + h->path_, errno);
  struct stat st{};
  if (fstat(h->fd_, &st) == 0) h->file_size_ = static_cast<size_t>(st.st_size);
  // A last line cut short by a crash has no newline: end it, or the next record would be glued
  // to it and lost with it.
  if (h->file_size_ > 0) {
    char last = '\n';
    if (pread(h->fd_, &last, 1, static_cast<off_t>(h->file_size_ - 1)) == 1 && last != '\n') h->append_line("\n", false);
  }
  h->compact_at_ = limits.max_file;
  // A file that has only grown since the last start is made small again before it is used.
  if (h->file_size_ > limits.max_file) h->compact();
  return h;
}

History::~History() {
  if (fd_ >= 0) ::close(fd_);
}

void History::load() {
  std::ifstream in(path_);
  if (!in) return;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    lineno++;
    if (line.empty()) continue;
    try {
      json j = json::parse(line);
      if (!j.is_object()) throw std::runtime_error("not an object");
      if (auto n = j.find("next_fault_id"); n != j.end())
        next_fault_id_ = std::max(next_fault_id_, n->get<uint64_t>());
      if (auto n = j.find("next_seq"); n != j.end()) next_seq_ = std::max(next_seq_, n->get<uint64_t>());
      if (auto f = j.find("ended"); f != j.end()) {
        next_fault_id_ = std::max(next_fault_id_, f->at("id").get<uint64_t>() + 1);
        ended_.push_front(*f);
      }
      if (auto e = j.find("event"); e != j.end()) {
        const uint64_t seq = e->at("seq").get<uint64_t>();
        next_seq_ = std::max(next_seq_, seq + 1);
        if (auto id = e->find("fault"); id != e->end()) next_fault_id_ = std::max(next_fault_id_, id->get<uint64_t>() + 1);
        events_.push_back(*e);
        if (auto f = j.find("fault"); f != j.end() && f->is_object()) ended_.push_front(*f);
      }
    } catch (const std::exception& ex) {
      skipped_++;
      spdlog::warn("{}:{}: skipped an unreadable history line ({})", path_, lineno, ex.what());
    }
    while (events_.size() > limits_.events) events_.pop_front();
    while (ended_.size() > limits_.ended) ended_.pop_back();
  }
  if (!events_.empty() || !ended_.empty())
    spdlog::info("history: {} event(s) and {} ended fault(s) from {}; next fault id {}", events_.size(),
                 ended_.size(), path_, next_fault_id_);
}

json History::since(uint64_t seq, size_t limit) const {
  json out = json::array();
  auto first = std::find_if(events_.begin(), events_.end(),
                            [&](const json& e) { return e.at("seq").get<uint64_t>() > seq; });
  size_t n = static_cast<size_t>(events_.end() - first);
  if (n > limit) first += static_cast<std::ptrdiff_t>(n - limit);
  for (auto it = first; it != events_.end(); ++it) out.push_back(*it);
  return out;
}

// The status as `get` shows it, without a spec too big to be worth keeping (a partition of
// 60,000 CIDRs): the record says it was left out.
json History::fault_record(const json& fault) const {
  json f = fault;
  if (auto s = f.find("spec"); s != f.end() && dump_line(*s).size() > limits_.max_fault_spec) {
    f.erase("spec");
    f["spec_omitted"] = true;
  }
  return f;
}

void History::record(const Event& e) {
  json wire = e.to_json();
  json line = {{"event", wire}};
  next_seq_ = std::max(next_seq_, e.seq + 1);
  if (e.fault_id) next_fault_id_ = std::max(next_fault_id_, e.fault_id + 1);
  if (is_end(event_type_name(e.type)) && e.fault.is_object()) {
    json rec = fault_record(e.fault);
    line["fault"] = rec;
    ended_.push_front(std::move(rec));
    while (ended_.size() > limits_.ended) ended_.pop_back();
  }
  events_.push_back(std::move(wire));
  while (events_.size() > limits_.events) events_.pop_front();
  // An applied fault's id must be on disk before anyone can see it, or a crash could hand it
  // out again; the rest need not wait for the disk.
  append_line(dump_line(line) + "\n", e.type == EventType::applied);
  if (file_size_ > compact_at_) compact();
}

void History::append_line(const std::string& line, bool sync) {
  if (fd_ < 0) {
    if (!write_failed_) spdlog::error("history {}: not open; events are kept in memory only", path_);
    write_failed_ = true;
    return;
  }
  if (!write_all(fd_, line)) {
    const int err = errno;
    // A line written in part would glue the next one to it; take it back.
    if (ftruncate(fd_, static_cast<off_t>(file_size_)) != 0) file_size_ += line.size();
    if (!write_failed_) spdlog::error("history {}: {}; events are kept in memory only", path_, std::strerror(err));
    write_failed_ = true;
    return;
  }
  file_size_ += line.size();
  if (sync && fdatasync(fd_) != 0) {
    if (!write_failed_) spdlog::error("history {}: fdatasync: {}", path_, std::strerror(errno));
    write_failed_ = true;
    return;
  }
  if (write_failed_) spdlog::info("history {}: writing again", path_);
  write_failed_ = false;
}

// Write what is kept to a new file, then rename it over the old one: a crash in between
// leaves one complete file or the other.
void History::compact() {
  // Whatever happens below, not again before the file has grown well past this point: a kept
  // state near the bound, or a disk that refuses, must not cost a rewrite per event.
  compact_at_ = std::max(limits_.max_file, 2 * file_size_);
  const std::string tmp = path_ + ".new";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    spdlog::error("history: open {}: {}", tmp, std::strerror(errno));
    return;
  }
  std::string out = dump_line(json{{"next_fault_id", next_fault_id_}, {"next_seq", next_seq_}}) + "\n";
  for (auto it = ended_.rbegin(); it != ended_.rend(); ++it) out += dump_line(json{{"ended", *it}}) + "\n";
  for (const auto& e : events_) out += dump_line(json{{"event", e}}) + "\n";
  if (!write_all(fd, out) || fsync(fd) != 0 || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    spdlog::error("history: rewrite {}: {}", path_, std::strerror(errno));
    ::close(fd);
    ::unlink(tmp.c_str());
    return;
  }
  // The rename itself must reach the disk, or a crash could bring back the old file without
  // the ids synced into the new one since.
  const std::string dir = path_.substr(0, path_.find_last_of('/'));
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    if (fsync(dfd) != 0) spdlog::warn("history: fsync {}: {}", dir, std::strerror(errno));
    ::close(dfd);
  }
  ::close(fd_);
  fd_ = fd;  // the new file, already open for appending
  file_size_ = out.size();
  compact_at_ = std::max(limits_.max_file, 2 * file_size_);
}

}  // namespace fl::daemon
