// The netlink layer (kernel/rtnl.h) on the real kernel: a refusal carries errno and the
// kernel's extended-ack text, a socket opened for another namespace acts there and nowhere
// else, and addresses added through it read back. Everything happens in namespaces this test
// unshares on its own threads; they die with their last fd.
#include <fcntl.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "integration/lab_util.h"
#include "kernel/ifb.h"
#include "kernel/rtnl.h"
#include "kernel/rtnl_link.h"
#include "kernel/tc_objects.h"

namespace fl {
namespace {

// A fresh network namespace, held by an fd (no name, nothing under /run/netns to clean up).
int scratch_netns() {
  int fd = -1;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) == 0) fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  });
  t.join();
  return fd;
}

TEST(Rtnl, RefusalCarriesErrnoAndExtendedAck) {
  if (!test::require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  int ns = scratch_netns();
  ASSERT_GE(ns, 0);
  auto nl = kernel::Rtnl::open_in(ns, "scratch");
  ::close(ns);
  ASSERT_TRUE(nl.ok()) << nl.error().message;
  // lo of the scratch namespace is ifindex 1. An unknown kind is refused with ENOENT and the
  // kernel's reason, which libnl's nl_send_sync would have dropped.
  auto st = kernel::put_qdisc(*nl, 1, TC_H_ROOT, 0x10000, "flnosuchqdisc", {}, NLM_F_CREATE | NLM_F_REPLACE);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().sys_errno, ENOENT) << st.error().message;
  EXPECT_NE(st.error().message.find("(kernel: Specified qdisc kind is unknown)"), std::string::npos)
      << st.error().message;
  // ENODEV for a name nobody has is an answer ("no such device"), not a failure.
  auto link = kernel::get_link(*nl, 0, "flnosuchdev0");
  ASSERT_TRUE(link.ok()) << link.error().message;
  EXPECT_FALSE(link->has_value());
}

TEST(Rtnl, SocketActsInItsOwnNamespaceOnly) {
  if (!test::require_root()) GTEST_SKIP() << "needs root (network namespaces)";
  int ns = scratch_netns();
  ASSERT_GE(ns, 0);
  auto nl = kernel::Rtnl::open_in(ns, "scratch");
  ASSERT_TRUE(nl.ok()) << nl.error().message;
  std::string name = "flrt" + std::to_string(getpid() % 100000);
  auto st = kernel::add_ifb(*nl, name);
  if (!st.ok() && (st.error().sys_errno == EOPNOTSUPP || st.error().sys_errno == ENOENT)) {
    ::close(ns);
    GTEST_SKIP() << "no ifb driver in this kernel: " << st.error().message;
  }
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(if_nametoindex(name.c_str()), 0u) << "created in the test's own namespace";
  auto link = kernel::get_link(*nl, 0, name);
  ASSERT_TRUE(link.ok() && link->has_value());
  EXPECT_EQ((*link)->kind, "ifb");
  EXPECT_TRUE((*link)->flags & IFF_UP);

  ASSERT_TRUE(kernel::add_address(*nl, (*link)->index, "10.200.9.1/24").ok());
  auto v6 = kernel::add_address(*nl, (*link)->index, "fd00:200::9/64");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  auto again = kernel::add_address(*nl, (*link)->index, "10.200.9.1/24");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().sys_errno, EEXIST);
  EXPECT_EQ(kernel::add_address(*nl, (*link)->index, "10.200.9.300/24").error().code, Errc::invalid_argument);
  auto addrs = kernel::global_addresses(*nl, (*link)->index);
  ASSERT_TRUE(addrs.ok()) << addrs.error().message;
  std::sort(addrs->begin(), addrs->end());
  EXPECT_EQ(*addrs, (std::vector<std::string>{"10.200.9.1/24", "fd00:200::9/64"}));

  ASSERT_TRUE(kernel::del_link(*nl, (*link)->index).ok());
  auto gone = kernel::get_link(*nl, 0, name);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  ::close(ns);
}

}  // namespace
}  // namespace fl
