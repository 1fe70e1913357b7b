// The journal file: what the next start reads to remove what a killed daemon left. Names are
// bytes (any but '/', ':' and whitespace), a failed write changes nothing, a removal that cannot
// be written is kept until it can, and one bad entry costs only that entry.
#include "daemon/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fl::daemon {
namespace {

using json = nlohmann::json;

JournalEntry entry(const std::string& ifname, int ifindex) {
  JournalEntry e;
  e.netns_path = "/run/netns/x";
  e.netns_dev = 4;
  e.netns_ino = 4026532000;
  e.ifname = ifname;
  e.ifindex = ifindex;
  e.mode = "tc";
  return e;
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fl-journal-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    reopen();
  }
  void TearDown() override {
    j_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // A new Journal on the same directory, as the next start would open it.
  void reopen() {
    j_.reset();
    auto j = Journal::open(dir_);
    ASSERT_TRUE(j.ok()) << j.error().message;
    j_.emplace(std::move(*j));
  }
  JournalFile on_disk() {
    auto f = j_->load();
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
    return f.ok() ? *f : JournalFile{};
  }
  std::string text() {
    std::ifstream f(dir_ + "/journal.json");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  void write_text(const std::string& s) { std::ofstream(dir_ + "/journal.json") << s; }
  // The next write fails: rename's source cannot be opened for writing.
  void break_writes() { ASSERT_EQ(mkdir((dir_ + "/journal.json.tmp").c_str(), 0700), 0); }
  void mend_writes() { ASSERT_EQ(rmdir((dir_ + "/journal.json.tmp").c_str()), 0); }

  std::string dir_;
  std::optional<Journal> j_;
};

TEST_F(JournalTest, NameThatIsNotUtf8IsWrittenAndReadBackByteForByte) {
  const JournalEntry weird = entry(std::string("\xff\xfe", 2), 7);
  JournalEntry path = entry("eth0", 2);
  path.netns_path = std::string("/run/netns/\xc3(", 13);  // an invalid two-byte sequence
  ASSERT_TRUE(j_->add(weird).ok());
  ASSERT_TRUE(j_->add(path).ok());
  // The file is strict JSON (any reader can parse it) and a later write still works.
  EXPECT_FALSE(json::parse(text(), nullptr, false).is_discarded()) << text();
  ASSERT_TRUE(j_->add(entry("eth1", 3)).ok());
  reopen();
  JournalFile f = on_disk();
  EXPECT_TRUE(f.problems.empty());
  ASSERT_EQ(f.entries.size(), 3u);
  EXPECT_EQ(f.entries[0], weird);
  EXPECT_EQ(f.entries[1], path);
  EXPECT_EQ(f.entries[2].ifname, "eth1");
}

TEST_F(JournalTest, Utf8NamesStayReadableAndVersionOneJournalsStillRead) {
  ASSERT_TRUE(j_->add(entry("\xc3\xa9th0", 2)).ok());  // "éth0": valid UTF-8, written as is
  EXPECT_NE(text().find("\"ifname\": \"\xc3\xa9th0\""), std::string::npos) << text();
  EXPECT_EQ(text().find("ifname_hex"), std::string::npos) << text();
  write_text(R"({"version":1,"boot_id":"b","pid":9,"attachments":[{"netns_path":"/run/netns/a","netns_dev":1,
    "netns_ino":2,"ifname":"eth0","ifindex":3,"mode":"tc","created_clsact":true}]})");
  JournalFile f = on_disk();
  EXPECT_TRUE(f.problems.empty());
  ASSERT_EQ(f.entries.size(), 1u);
  EXPECT_EQ(f.entries[0].what, "attach");
  EXPECT_EQ(f.entries[0].ifname, "eth0");
  EXPECT_TRUE(f.entries[0].created_clsact);
  EXPECT_EQ(f.pid, 9);
}

TEST_F(JournalTest, FailedAddChangesNeitherMemoryNorDisk) {
  ASSERT_TRUE(j_->add(entry("eth0", 2)).ok());
  const std::string before = text();
  break_writes();
  EXPECT_FALSE(j_->add(entry("eth1", 3)).ok());
  EXPECT_EQ(j_->entries().size(), 1u);
  EXPECT_EQ(text(), before);
  EXPECT_FALSE(j_->replace(entry("eth0", 2), entry("eth0", 9)).ok());
  EXPECT_EQ(j_->entries().at(0).ifindex, 2);
  EXPECT_FALSE(j_->clear().ok());
  EXPECT_EQ(j_->entries().size(), 1u);
  EXPECT_EQ(text(), before);
  mend_writes();
  // Nothing stuck: the next writes work and hold exactly what memory holds.
  ASSERT_TRUE(j_->add(entry("eth1", 3)).ok());
  EXPECT_EQ(on_disk().entries, j_->entries());
  EXPECT_EQ(j_->entries().size(), 2u);
}

TEST_F(JournalTest, RemovalThatCannotBeWrittenKeepsTheEntryUntilItCanBe) {
  const JournalEntry a = entry("eth0", 2), b = entry("eth1", 3);
  ASSERT_TRUE(j_->add(a).ok());
  ASSERT_TRUE(j_->add(b).ok());
  break_writes();
  EXPECT_FALSE(j_->remove(a).ok());
  // Memory says what the disk says: the entry is still there, so a later attempt can remove it.
  ASSERT_EQ(j_->entries().size(), 2u);
  EXPECT_EQ(j_->entries(), on_disk().entries);
  EXPECT_EQ(j_->pending_removals(), 1u);
  EXPECT_FALSE(j_->retry().ok());
  EXPECT_EQ(j_->entries().size(), 2u);
  mend_writes();
  ASSERT_TRUE(j_->retry().ok());
  ASSERT_EQ(j_->entries().size(), 1u);
  EXPECT_EQ(j_->entries()[0], b);
  EXPECT_EQ(on_disk().entries, j_->entries());
  EXPECT_EQ(j_->pending_removals(), 0u);
}

TEST_F(JournalTest, PendingRemovalGoesWithTheNextWriteOrIsVoidedByTheSameAdd) {
  const JournalEntry a = entry("eth0", 2), b = entry("eth1", 3);
  ASSERT_TRUE(j_->add(a).ok());
  ASSERT_TRUE(j_->add(b).ok());
  break_writes();
  EXPECT_FALSE(j_->remove(a).ok());
  EXPECT_FALSE(j_->remove(b).ok());
  mend_writes();
  // a is attached again before anything was written: it must stay, b must go.
  ASSERT_TRUE(j_->add(a).ok());
  ASSERT_EQ(j_->entries().size(), 1u);
  EXPECT_EQ(j_->entries()[0], a);
  EXPECT_EQ(on_disk().entries, j_->entries());
}

TEST_F(JournalTest, OneBadEntryCostsOnlyThatEntry) {
  write_text(R"({"version":2,"boot_id":"b","pid":9,"attachments":[
    {"netns_path":"/run/netns/a","netns_dev":1,"netns_ino":2,"ifname":"eth0","ifindex":3,"mode":"tc","created_clsact":false},
    {"netns_path":"/run/netns/b","netns_dev":5,"netns_ino":6,"ifname":"eth0","ifindex":"three","mode":"tc","created_clsact":false},
    {"netns_path":"/run/netns/c","netns_dev":1,"netns_ino":7,"ifname_hex":"zz","ifname":"x","ifindex":4,"mode":"tc","created_clsact":false},
    17,
    {"netns_path":"/run/netns/d","netns_dev":1,"netns_ino":8,"ifname":"eth1","ifindex":5,"mode":"tc","created_clsact":false}]})");
  JournalFile f = on_disk();
  ASSERT_EQ(f.entries.size(), 2u);
  EXPECT_EQ(f.entries[0].netns_path, "/run/netns/a");
  EXPECT_EQ(f.entries[1].netns_path, "/run/netns/d");
  ASSERT_EQ(f.problems.size(), 3u);
  EXPECT_NE(f.problems[0].find("entry 1 skipped"), std::string::npos) << f.problems[0];
  EXPECT_NE(f.problems[0].find("three"), std::string::npos) << f.problems[0];
  EXPECT_NE(f.problems[1].find("entry 2 skipped"), std::string::npos) << f.problems[1];
  EXPECT_NE(f.problems[2].find("entry 3 skipped"), std::string::npos) << f.problems[2];
  // Where the unreadable ones were is still known, so the cleanup can look there by marks.
  ASSERT_EQ(f.unread_netns.size(), 2u);
  EXPECT_EQ(f.unread_netns[0].path, "/run/netns/b");
  EXPECT_EQ(f.unread_netns[0].ino, 6u);
  EXPECT_EQ(f.unread_netns[1].path, "/run/netns/c");
}

TEST_F(JournalTest, FileThatIsNotJsonIsAProblemNotAnEmptyJournal) {
  write_text("{\"version\":2,\"attachments\":[{\"netns_pa");
  JournalFile f = on_disk();
  EXPECT_TRUE(f.entries.empty());
  ASSERT_EQ(f.problems.size(), 1u);
  EXPECT_NE(f.problems[0].find("not a JSON object"), std::string::npos) << f.problems[0];
}

TEST_F(JournalTest, KeepAsideMovesTheFileForInspection) {
  write_text("garbage");
  auto aside = j_->keep_aside();
  ASSERT_TRUE(aside.ok()) << aside.error().message;
  EXPECT_NE(aside->find("/journal.json.bad-"), std::string::npos) << *aside;
  EXPECT_NE(access((dir_ + "/journal.json").c_str(), F_OK), 0);
  std::ifstream kept(*aside);
  std::string s;
  std::getline(kept, s);
  EXPECT_EQ(s, "garbage");
  write_text("garbage 2");
  auto again = j_->keep_aside();  // the same second: not over the first
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *aside);
}

}  // namespace
}  // namespace fl::daemon
