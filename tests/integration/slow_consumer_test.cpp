// The slow-consumer recipe of README and docs/FAULTS.md: `rate` aimed at one client's address,
// on the egress of the server's namespace. One server pushes TCP to three clients at once;
// with the limit on client 1, client 1 gets the rate and the other two keep their goodput.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "integration/lab_util.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;

constexpr int kClients = 3;  // lab nodes 1..3; node 0 is the server
constexpr auto kWarmup = 1s;     // slow start, and the rate class's queue filling up
constexpr auto kMeasure = 3s;

int tcp_socket_in(const std::string& ns) {
  int fd = -1;
  in_netns(ns, [&] { fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  return fd;
}

sockaddr_in addr_of(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// Goodput in bit/s each client received from the server over kMeasure, after kWarmup, with all
// three transfers running at once. Sockets are made inside the namespaces and then driven from
// ordinary threads: a socket stays in the namespace it was created in.
std::vector<double> goodput(const Lab& lab, int port) {
  int lfd = tcp_socket_in(lab.ns(0));
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in la = addr_of("0.0.0.0", port);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 || listen(lfd, 8) != 0) {
    ADD_FAILURE() << "listen on port " << port << ": " << strerror(errno);
    close(lfd);
    return {};
  }
  std::vector<int> cfd(kClients, -1), sfd(kClients, -1);
  for (int c = 0; c < kClients; c++) {
    cfd[c] = tcp_socket_in(lab.ns(c + 1));
    sockaddr_in sa = addr_of(Lab::ip4(0), port);
    if (connect(cfd[c], reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ADD_FAILURE() << "client " << c + 1 << " connect: " << strerror(errno);
    }
    sfd[c] = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  }
  close(lfd);

  std::atomic<bool> stop{false};
  std::vector<std::atomic<uint64_t>> got(kClients);
  std::vector<std::thread> th;
  for (int c = 0; c < kClients; c++) {
    th.emplace_back([&, c] {  // the server's sender for client c
      std::vector<char> buf(64 * 1024, 'x');
      while (!stop) {
        pollfd p{sfd[c], POLLOUT, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        if (send(sfd[c], buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN) break;
      }
    });
    th.emplace_back([&, c] {  // client c
      std::vector<char> buf(256 * 1024);
      while (!stop) {
        pollfd p{cfd[c], POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(cfd[c], buf.data(), buf.size(), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN)) break;
        if (n > 0) got[c] += static_cast<uint64_t>(n);
      }
    });
  }
  std::this_thread::sleep_for(kWarmup);
  std::vector<uint64_t> start(kClients);
  for (int c = 0; c < kClients; c++) start[c] = got[c];
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(kMeasure);
  std::vector<uint64_t> end(kClients);
  for (int c = 0; c < kClients; c++) end[c] = got[c];
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stop = true;
  for (auto& t : th) t.join();
  for (int c = 0; c < kClients; c++) {
    close(sfd[c]);
    close(cfd[c]);
  }
  std::vector<double> bps(kClients);
  for (int c = 0; c < kClients; c++) bps[c] = static_cast<double>(end[c] - start[c]) * 8 / secs;
  return bps;
}

TEST(SlowConsumer, ARateOnOneClientsAddressLeavesTheOtherClientsAlone) {
  if (!require_root()) GTEST_SKIP() << "needs root (namespaces, faultlined)";
  Lab lab(1 + kClients);
  Daemon d;
  if (d.call("status")["features"].value("htb", "unknown") != "yes")
    GTEST_SKIP() << "this kernel has no HTB qdisc (CONFIG_NET_SCH_HTB): no rate";

  std::vector<double> base = goodput(lab, 15301);
  ASSERT_EQ(base.size(), size_t{kClients});

  Cmd r = faultctl(d, "rate 2mbit --dst " + Lab::ip4(1) + " --target " + lab.target(0) + " --for 2m --name slow");
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<double> slow = goodput(lab, 15302);
  ASSERT_EQ(slow.size(), size_t{kClients});
  EXPECT_EQ(faultctl(d, "heal slow").status, 0);

  std::printf("goodput, Mbit/s         client1   client2   client3\n");
  std::printf("  baseline             %8.1f  %8.1f  %8.1f\n", base[0] / 1e6, base[1] / 1e6, base[2] / 1e6);
  std::printf("  rate 2mbit on client1%8.2f  %8.1f  %8.1f\n", slow[0] / 1e6, slow[1] / 1e6, slow[2] / 1e6);
  RecordProperty("client1_shaped_bps", std::to_string(slow[0]));

  // Near the rate: what a bulk transfer through an HTB class gets (docs/FAULTS.md measured
  // within 1 % at 10mbit); the margin is for a 3 s window on a busy two-core machine.
  EXPECT_GT(slow[0], 1.4e6);
  EXPECT_LT(slow[0], 2.6e6);
  // The others get the CPU that client 1 no longer uses, so together they should do at least as
  // well as in the baseline. On a loaded two-core machine one 3 s window still swings by half
  // either way (seen: 0.54 to 1.6 times the baseline), so the bound is 0.3: what it guards
  // against, the limit reaching the others, shows as a fall by three orders of magnitude.
  double others_base = base[1] + base[2], others_slow = slow[1] + slow[2];
  std::printf("  the others together: %.2f times their baseline\n", others_slow / others_base);
  EXPECT_GT(others_slow, 0.3 * others_base) << "the other clients slowed down";
  for (int c = 1; c < kClients; c++)
    EXPECT_GT(slow[c], 10 * slow[0]) << "client " << c + 1 << " is held back like the slow one";
}

}  // namespace
}  // namespace fl::test
