// Shaping trees against the real kernel: our root HTB, classes and leaves, the user's root qdisc
// put back, ifb devices and the feature probe, in lab namespaces. Also the netem tables and the
// journal form of a saved qdisc, which need no root.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <numeric>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "integration/lab_util.h"
#include "kernel/features.h"
#include "kernel/netns.h"
#include "kernel/shaping.h"

namespace fl::test {
namespace {

using namespace std::chrono_literals;
using kernel::Tri;

#define REQUIRE_ROOT() \
  if (!require_root()) GTEST_SKIP() << "needs root (namespaces, qdiscs)"

// Enters a lab namespace on this thread for as long as it lives; the kernel:: calls act there.
class Inside {
 public:
  explicit Inside(const std::string& ns) {
    auto n = kernel::Netns::open_path("/run/netns/" + ns);
    if (!n.ok()) throw std::runtime_error("open " + ns + ": " + n.error().message);
    auto g = kernel::NetnsGuard::enter(*n);
    if (!g.ok()) throw std::runtime_error("enter " + ns + ": " + g.error().message);
    guard_.emplace(std::move(*g));
  }
  int ifindex(const std::string& dev) const { return static_cast<int>(if_nametoindex(dev.c_str())); }

 private:
  std::optional<kernel::NetnsGuard> guard_;
};

std::string tc(const Lab& lab, int node, const std::string& args) {
  Cmd r = sh("tc -n " + lab.ns(node) + " " + args);
  return r.out;
}

// Whether this kernel has a qdisc kind, asked of tc in a throwaway namespace: the independent
// answer probe_shaping must agree with. On an ifb when there is one, because on lo (MTU 65536)
// every TBF burst makes the kernel log that it is lower than the MTU.
bool tc_has_qdisc(const std::string& kind) {
  return sh("unshare -n sh -c 'if ip link add d0 type ifb 2>/dev/null; then dev=d0; else dev=lo; fi; "
            "tc qdisc add dev $dev root " + kind + "'").status == 0;
}

// Goodput (bit/s) of one TCP flow from lab node 0 to node 1 whose packets carry SO_PRIORITY prio,
// counted by the receiver over `window` after `warmup`.
double tcp_goodput(const Lab& lab, uint32_t prio, std::chrono::milliseconds warmup, std::chrono::milliseconds window) {
  static std::atomic<int> next_port{24000};
  int port = next_port++;
  std::atomic<bool> listening{false}, stop{false};
  double result = -1;
  std::string rx_err, tx_err;
  std::thread rx([&] {
    try {
      in_netns(lab.ns(1), [&] {
        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET, Lab::ip4(1).c_str(), &a.sin_addr);
        if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0) {
          rx_err = std::string("bind/listen: ") + strerror(errno);
          close(ls);
          stop = true;
          return;
        }
        listening = true;
        pollfd p{ls, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1) {
          rx_err = "no connection within 5 s";
          close(ls);
          stop = true;
          return;
        }
        int c = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
        timeval tv{0, 100'000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::vector<char> buf(1 << 16);
        auto t0 = std::chrono::steady_clock::now(), start = t0;
        bool counting = false;
        uint64_t bytes = 0;
        for (;;) {
          ssize_t n = recv(c, buf.data(), buf.size(), 0);
          auto now = std::chrono::steady_clock::now();
          if (!counting && now - t0 >= warmup) {
            counting = true;
            start = now;
            bytes = 0;
          }
          if (n > 0 && counting) bytes += static_cast<uint64_t>(n);
          if (counting && now - start >= window) {
            result = static_cast<double>(bytes) * 8 / std::chrono::duration<double>(now - start).count();
            break;
          }
          if (n == 0) {
            rx_err = "sender closed early";
            break;
          }
        }
        stop = true;
        close(c);
        close(ls);
      });
    } catch (const std::exception& e) {
      rx_err = e.what();
      stop = true;
    }
  });
  for (int i = 0; i < 500 && !listening && !stop; i++) std::this_thread::sleep_for(10ms);
  std::thread tx([&] {
    try {
      in_netns(lab.ns(0), [&] {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        // Values above 6 need CAP_NET_ADMIN; this is how the BPF program's choice looks to HTB.
        if (setsockopt(s, SOL_SOCKET, SO_PRIORITY, &prio, sizeof prio) != 0) {
          tx_err = std::string("SO_PRIORITY: ") + strerror(errno);
          close(s);
          return;
        }
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET, Lab::ip4(1).c_str(), &a.sin_addr);
        if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
          tx_err = std::string("connect: ") + strerror(errno);
          close(s);
          return;
        }
        timeval tv{0, 100'000};
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        std::vector<char> buf(1 << 16, 'x');
        while (!stop) send(s, buf.data(), buf.size(), MSG_NOSIGNAL);
        close(s);
      });
    } catch (const std::exception& e) {
      tx_err = e.what();
    }
  });
  tx.join();
  stop = true;
  rx.join();
  EXPECT_EQ(tx_err, "");
  EXPECT_EQ(rx_err, "");
  return result;
}

// ---------------------------------------------------------------- kernel

TEST(ShapingKernel, FreshVethIsNoqueueAndReplaceable) {
  REQUIRE_ROOT();
  Lab lab(1);
  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  ASSERT_GT(eth0, 0);
  auto q = kernel::read_root_qdisc(eth0);
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->kind, "noqueue");
  EXPECT_FALSE(q->ours);
  EXPECT_TRUE(kernel::check_replaceable(*q, eth0, "eth0", false).ok());
}

TEST(ShapingKernel, InstallRootIsOursIdempotentAndRestoresNoqueue) {
  REQUIRE_ROOT();
  Lab lab(1);
  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  auto saved = kernel::read_root_qdisc(eth0);
  ASSERT_TRUE(saved.ok()) << saved.error().message;

  auto st = kernel::install_root(eth0);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto q = kernel::read_root_qdisc(eth0);
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->kind, "htb");
  EXPECT_EQ(q->handle, uint32_t{kernel::kHtbMajor} << 16);
  EXPECT_TRUE(q->ours);
  EXPECT_TRUE(kernel::check_replaceable(*q, eth0, "eth0", false).ok());
  std::string classes = tc(lab, 0, "class show dev eth0");
  EXPECT_NE(classes.find("class htb fa17:1 root leaf 1:"), std::string::npos) << classes;
  EXPECT_NE(tc(lab, 0, "qdisc show dev eth0").find("qdisc pfifo 1: parent fa17:1"), std::string::npos);

  st = kernel::install_root(eth0);  // again: nothing changes, nothing fails
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(kernel::read_root_qdisc(eth0)->ours);

  st = kernel::restore_root(eth0, *saved);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto back = kernel::read_root_qdisc(eth0);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->kind, "noqueue");
  EXPECT_FALSE(back->ours);
  EXPECT_EQ(tc(lab, 0, "class show dev eth0"), "");
  // Restoring twice is harmless.
  st = kernel::restore_root(eth0, *saved);
  EXPECT_TRUE(st.ok()) << st.error().message;
}

TEST(ShapingKernel, RateClassShapesItsTrafficAndOnlyIts) {
  REQUIRE_ROOT();
  Lab lab(2);
  int eth0;
  {
    Inside in(lab.ns(0));
    eth0 = in.ifindex("eth0");
    ASSERT_TRUE(kernel::install_root(eth0).ok());
    core::ShapeProfile p;
    p.rate_bps = 5'000'000;
    auto st = kernel::add_class(eth0, kernel::slot_minor(0), p);
    ASSERT_TRUE(st.ok()) << st.error().message;
    // Adding it again (a restarted daemon re-applying) updates it in place.
    st = kernel::add_class(eth0, kernel::slot_minor(0), p);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }
  std::string classes = tc(lab, 0, "class show dev eth0");
  EXPECT_NE(classes.find("class htb fa17:2 root leaf 2: prio 0 rate 5Mbit ceil 5Mbit"), std::string::npos)
      << classes;

  double shaped = tcp_goodput(lab, kernel::class_id(kernel::slot_minor(0)), 700ms, 2000ms);
  // A functional check, not an accuracy test: TCP goodput sits a few percent under the rate.
  EXPECT_GT(shaped, 0.5 * 5e6);
  EXPECT_LT(shaped, 1.1 * 5e6);
  double unshaped = tcp_goodput(lab, 0, 300ms, 700ms);
  EXPECT_GT(unshaped, 5 * 5e6) << "default-class traffic must not be limited";
  std::printf("[          ] 5mbit class: %.2f Mbit/s goodput; default class: %.0f Mbit/s\n", shaped / 1e6,
              unshaped / 1e6);

  Inside in(lab.ns(0));
  auto st = kernel::delete_class(eth0, kernel::slot_minor(0));
  EXPECT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(tc(lab, 0, "class show dev eth0").find("fa17:2"), std::string::npos);
  st = kernel::delete_class(eth0, kernel::slot_minor(0));
  EXPECT_TRUE(st.ok()) << "a missing class is already gone: " << st.error().message;
  EXPECT_TRUE(kernel::restore_root(eth0, kernel::SavedQdisc{"noqueue"}).ok());
  st = kernel::delete_class(eth0, kernel::slot_minor(0));
  EXPECT_TRUE(st.ok()) << "no root of ours either: " << st.error().message;
}

TEST(ShapingKernel, ForeignTbfIsRefusedThenReplacedAndRestored) {
  REQUIRE_ROOT();
  Lab lab(1);
  Cmd add = sh("tc -n " + lab.ns(0) + " qdisc add dev eth0 root handle 8001: tbf rate 5mbit burst 32kbit latency 400ms");
  ASSERT_EQ(add.status, 0) << add.out;
  std::string before = tc(lab, 0, "qdisc show dev eth0");

  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  auto saved = kernel::read_root_qdisc(eth0);
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(saved->kind, "tbf");
  EXPECT_EQ(saved->handle, 0x80010000u);
  EXPECT_FALSE(saved->ours);
  EXPECT_FALSE(saved->options.empty());

  auto refused = kernel::check_replaceable(*saved, eth0, "eth0", false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::already_exists);
  const std::string& msg = refused.error().message;
  for (const char* want : {"eth0", "tbf", "8001:", "--replace-root", "restored"})
    EXPECT_NE(msg.find(want), std::string::npos) << "missing '" << want << "' in: " << msg;
  EXPECT_TRUE(kernel::check_replaceable(*saved, eth0, "eth0", true).ok());

  auto st = kernel::install_root(eth0);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(kernel::read_root_qdisc(eth0)->ours);

  st = kernel::restore_root(eth0, *saved);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto back = kernel::read_root_qdisc(eth0);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->kind, "tbf");
  EXPECT_EQ(back->handle, saved->handle);
  EXPECT_EQ(back->options, saved->options) << "same rate, burst and limit";
  EXPECT_EQ(tc(lab, 0, "qdisc show dev eth0"), before);
}

// TCA_OPTIONS of an fq_codel: u32 attributes.
std::vector<uint8_t> u32_attrs(std::initializer_list<std::pair<uint16_t, uint32_t>> attrs) {
  std::vector<uint8_t> out;
  for (auto [type, v] : attrs) {
    uint16_t hdr[2] = {8, type};
    auto* h = reinterpret_cast<uint8_t*>(hdr);
    out.insert(out.end(), h, h + 4);
    auto* p = reinterpret_cast<uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
  }
  return out;
}

TEST(ShapingKernel, KernelDefaultsAreReplaceableAndOthersAreNot) {
  REQUIRE_ROOT();
  Lab lab(1);
  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  for (const char* kind : {"noqueue", "pfifo_fast", "mq"})
    EXPECT_TRUE(kernel::check_replaceable(kernel::SavedQdisc{kind}, eth0, "eth0", false).ok()) << kind;
  auto pfifo = kernel::check_replaceable(kernel::SavedQdisc{"pfifo", 0x10000}, eth0, "eth0", false);
  ASSERT_FALSE(pfifo.ok());
  EXPECT_NE(pfifo.error().message.find("root qdisc pfifo (handle 1:)"), std::string::npos) << pfifo.error().message;

  // fq_codel as the kernel dumps its defaults on a 1500-byte-MTU Ethernet device (codel's
  // 1024 ns clock turns 5 ms and 100 ms into 4999 and 99999 us).
  enum : uint16_t { target = 1, limit, interval, ecn, flows, quantum, ce_threshold, drop_batch, memory_limit };
  auto defaults = u32_attrs({{target, 4999}, {limit, 10240}, {interval, 99999}, {ecn, 1}, {quantum, 1514},
                             {drop_batch, 64}, {memory_limit, 32u << 20}, {flows, 1024}});
  kernel::SavedQdisc fq{"fq_codel", 0, defaults};
  auto st = kernel::check_replaceable(fq, eth0, "eth0", false);
  EXPECT_TRUE(st.ok()) << st.error().message;
  fq.options.resize(fq.options.size() + 8, 0);  // an attribute of a newer kernel (type 0 here) is ignored
  EXPECT_TRUE(kernel::check_replaceable(fq, eth0, "eth0", false).ok());

  fq.options = defaults;
  auto tuned = u32_attrs({{target, 10000}});
  fq.options.insert(fq.options.begin(), tuned.begin(), tuned.end());
  fq.options.erase(fq.options.begin() + 8, fq.options.begin() + 16);  // drop the default target
  st = kernel::check_replaceable(fq, eth0, "eth0", false);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("non-default parameters (target(us) 10000)"), std::string::npos)
      << st.error().message;
  fq.options = defaults;
  auto ce = u32_attrs({{ce_threshold, 1000}});
  fq.options.insert(fq.options.end(), ce.begin(), ce.end());
  EXPECT_FALSE(kernel::check_replaceable(fq, eth0, "eth0", false).ok()) << "ce_threshold set";
}

TEST(ShapingKernel, RestoreAddsBackADefaultTheKernelDoesNotAttachHere) {
  REQUIRE_ROOT();
  Lab lab(1);
  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  ASSERT_TRUE(kernel::install_root(eth0).ok());
  // A veth gets noqueue when our root goes; a saved pfifo_fast (say, from before someone set
  // txqueuelen) has to be added back explicitly.
  auto st = kernel::restore_root(eth0, kernel::SavedQdisc{"pfifo_fast"});
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto back = kernel::read_root_qdisc(eth0);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->kind, "pfifo_fast");
  EXPECT_EQ(tc(lab, 0, "class show dev eth0").find("fa17:"), std::string::npos);
}

TEST(ShapingKernel, RestoreLeavesSomeoneElsesNewRootAlone) {
  REQUIRE_ROOT();
  Lab lab(1);
  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  ASSERT_TRUE(kernel::install_root(eth0).ok());
  Cmd r = sh("tc -n " + lab.ns(0) + " qdisc replace dev eth0 root handle 9: tbf rate 1mbit burst 32kbit latency 50ms");
  ASSERT_EQ(r.status, 0) << r.out;
  auto st = kernel::restore_root(eth0, kernel::SavedQdisc{"noqueue"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("tbf (handle 9:)"), std::string::npos) << st.error().message;
  EXPECT_EQ(kernel::read_root_qdisc(eth0)->kind, "tbf");
}

TEST(ShapingKernel, NetemLeafOrAClearRefusal) {
  REQUIRE_ROOT();
  bool netem = tc_has_qdisc("netem");
  Lab lab(1);
  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  ASSERT_TRUE(kernel::install_root(eth0).ok());
  core::ShapeProfile p;
  p.delay = 10ms;
  p.jitter = 2ms;
  p.distribution = core::Distribution::normal;
  p.reorder_percent = 5;
  p.rate_bps = 20'000'000;
  uint16_t minor = kernel::slot_minor(1);
  auto st = kernel::add_class(eth0, minor, p);
  std::string leaf = tc(lab, 0, "qdisc show dev eth0 parent fa17:3");
  if (!netem) {
    ASSERT_FALSE(st.ok()) << "this kernel has no netem, yet the leaf was added";
    EXPECT_EQ(st.error().code, Errc::kernel_unsupported);
    EXPECT_NE(st.error().message.find("netem"), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("fa17:3"), std::string::npos) << st.error().message;
    EXPECT_EQ(tc(lab, 0, "class show dev eth0").find("fa17:3"), std::string::npos)
        << "the class of a failed leaf must not stay";
    std::printf("[          ] no netem here, refused with: %s\n", st.error().message.c_str());
    return;
  }
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_NE(leaf.find("qdisc netem 3: parent fa17:3"), std::string::npos) << leaf;
  EXPECT_NE(leaf.find("limit 10000"), std::string::npos) << leaf;
  EXPECT_NE(leaf.find("delay 10ms"), std::string::npos) << leaf;
  EXPECT_NE(leaf.find("reorder 5%"), std::string::npos) << leaf;
  EXPECT_NE(leaf.find("gap 1"), std::string::npos) << leaf;

  // The same slot without netem needs: the leaf becomes a pfifo.
  core::ShapeProfile rate_only;
  rate_only.rate_bps = 20'000'000;
  st = kernel::add_class(eth0, minor, rate_only);
  ASSERT_TRUE(st.ok()) << st.error().message;
  leaf = tc(lab, 0, "qdisc show dev eth0 parent fa17:3");
  EXPECT_NE(leaf.find("qdisc pfifo 3: parent fa17:3"), std::string::npos) << leaf;
  // And back to netem, with every table.
  for (auto d : {core::Distribution::pareto, core::Distribution::paretonormal, core::Distribution::uniform}) {
    p.distribution = d;
    st = kernel::add_class(eth0, minor, p);
    ASSERT_TRUE(st.ok()) << core::distribution_name(d) << ": " << st.error().message;
  }
  EXPECT_NE(tc(lab, 0, "qdisc show dev eth0 parent fa17:3").find("netem"), std::string::npos);
  EXPECT_TRUE(kernel::delete_class(eth0, minor).ok());
  EXPECT_TRUE(kernel::restore_root(eth0, kernel::SavedQdisc{"noqueue"}).ok());
}

TEST(ShapingKernel, IfbCreateAdoptDelete) {
  REQUIRE_ROOT();
  Lab lab(1);
  Inside in(lab.ns(0));
  int eth0 = in.ifindex("eth0");
  std::string name = kernel::ifb_name(eth0);
  EXPECT_EQ(name, "flifb" + std::to_string(eth0));
  auto ifb = kernel::create_ifb(eth0);
  ASSERT_TRUE(ifb.ok()) << ifb.error().message;
  EXPECT_EQ(in.ifindex(name), *ifb);
  Cmd show = sh("ip -n " + lab.ns(0) + " -d link show " + name);
  EXPECT_NE(show.out.find("state UNKNOWN"), std::string::npos) << show.out;  // up (ifb has no carrier state)
  EXPECT_NE(show.out.find("qlen 1000"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("ifb"), std::string::npos) << show.out;

  auto again = kernel::create_ifb(eth0);  // a leftover of ours is adopted
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *ifb);

  // Our root works on it as on any device.
  ASSERT_TRUE(kernel::install_root(*ifb).ok());
  EXPECT_TRUE(kernel::read_root_qdisc(*ifb)->ours);

  EXPECT_TRUE(kernel::delete_link(*ifb).ok());
  EXPECT_EQ(in.ifindex(name), 0);
  EXPECT_TRUE(kernel::delete_link(*ifb).ok()) << "already gone is fine";

  // A device of another kind with our name is not ours to use.
  Cmd br = sh("ip -n " + lab.ns(0) + " link add " + name + " type bridge");
  ASSERT_EQ(br.status, 0) << br.out;
  auto refused = kernel::create_ifb(eth0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::already_exists);
  EXPECT_NE(refused.error().message.find("bridge"), std::string::npos) << refused.error().message;
}

TEST(ShapingKernel, ProbeAgreesWithTc) {
  REQUIRE_ROOT();
  auto f = kernel::probe_shaping();
  auto expect = [](const char* what, Tri got, bool has) {
    EXPECT_NE(got, Tri::unknown) << what << ": the probe itself failed";
    EXPECT_EQ(got, has ? Tri::yes : Tri::no) << what;
  };
  expect("htb", f.htb, tc_has_qdisc("htb"));
  expect("tbf", f.tbf, tc_has_qdisc("tbf rate 1mbit burst 10kb limit 10kb"));
  expect("netem", f.netem, tc_has_qdisc("netem"));
  expect("fq", f.fq, tc_has_qdisc("fq"));
  expect("ifb", f.ifb, sh("unshare -n ip link add flprobe type ifb").status == 0);
  std::printf("[          ] htb=%s tbf=%s netem=%s fq=%s ifb=%s\n", kernel::tri_name(f.htb), kernel::tri_name(f.tbf),
              kernel::tri_name(f.netem), kernel::tri_name(f.fq), kernel::tri_name(f.ifb));

  auto all = kernel::probe_features();
  EXPECT_EQ(all.htb, f.htb);
  EXPECT_EQ(all.netem, f.netem);
  auto j = all.to_json();
  for (const char* k : {"netem", "htb", "tbf", "fq", "ifb"}) EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_NE(all.summary().find("netem="), std::string::npos);
}

// ---------------------------------------------------------------- no root needed

// ShapingDistribution (the netem tables) is in tests/unit/tc_options_test.cpp.

TEST(ShapingSavedQdisc, JsonRoundTrip) {
  kernel::SavedQdisc q{"tbf", 0x80010000u, {0x00, 0x01, 0xab, 0xff}, false};
  auto j = q.to_json();
  EXPECT_EQ(j["options"], "0001abff");
  EXPECT_EQ(j["kind"], "tbf");
  EXPECT_EQ(j["handle"], 0x80010000u);
  auto back = kernel::SavedQdisc::from_json(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->kind, q.kind);
  EXPECT_EQ(back->handle, q.handle);
  EXPECT_EQ(back->options, q.options);
  EXPECT_EQ(back->ours, q.ours);

  kernel::SavedQdisc ours{"htb", 0xfa170000u, {}, true};
  auto b2 = kernel::SavedQdisc::from_json(ours.to_json());
  ASSERT_TRUE(b2.ok());
  EXPECT_TRUE(b2->ours);
  EXPECT_TRUE(b2->options.empty());

  for (const char* bad : {R"([])", R"({"handle":0})", R"({"kind":"tbf","handle":-1})",
                          R"({"kind":"tbf","handle":4294967296})", R"({"kind":"tbf","handle":0,"options":"abc"})",
                          R"({"kind":"tbf","handle":0,"options":"zz"})", R"({"kind":"tbf","handle":0,"ours":1})"}) {
    auto r = kernel::SavedQdisc::from_json(nlohmann::json::parse(bad));
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::invalid_argument) << bad;
    }
  }
}

}  // namespace
}  // namespace fl::test

