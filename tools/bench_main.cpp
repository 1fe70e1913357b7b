// fl_bench: the figures behind docs/BENCHMARKS.md. Driven by tools/bench.
//   fl_bench datapath      ns per packet through the program (BPF_PROG_TEST_RUN)
//   fl_bench apply SOCKET NETNS   apply/heal latency against a running faultlined
// Every figure is printed next to a baseline measured in the same run.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <nlohmann/json.hpp>

#include "core/plan.h"
#include "core/set_map.h"
#include "kernel/datapath.h"

using json = nlohmann::json;
using namespace fl;

namespace {

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Ethernet + IPv4 + UDP, 10.200.0.1 -> 10.200.0.2 (or 10.201.0.1 -> .2), port 5000 -> 6000.
std::vector<uint8_t> udp4_packet(uint8_t second_octet = 200) {
  std::vector<uint8_t> p(14 + 20 + 8 + 18, 0);
  p[12] = 0x08;
  p[13] = 0x00;
  uint8_t* ip = &p[14];
  ip[0] = 0x45;
  uint16_t tot = htons(20 + 8 + 18);
  std::memcpy(ip + 2, &tot, 2);
  ip[8] = 64;
  ip[9] = 17;
  uint8_t src[4] = {10, second_octet, 0, 1}, dst[4] = {10, second_octet, 0, 2};
  std::memcpy(ip + 12, src, 4);
  std::memcpy(ip + 16, dst, 4);
  uint8_t* udp = ip + 20;
  uint16_t sp = htons(5000), dp = htons(6000), ul = htons(8 + 18);
  std::memcpy(udp, &sp, 2);
  std::memcpy(udp + 2, &dp, 2);
  std::memcpy(udp + 4, &ul, 2);
  return p;
}

core::Cidr host4(uint32_t a) {
  core::Cidr c;
  c.family = 4;
  c.prefix = 32;
  c.addr[0] = a >> 24;
  c.addr[1] = a >> 16;
  c.addr[2] = a >> 8;
  c.addr[3] = a;
  return c;
}

// Average ns per run of the egress program, as the kernel measures it; the median of five
// rounds, because one round on a shared machine can catch a noisy neighbour.
double ns_per_packet(kernel::Datapath& dp, const std::vector<uint8_t>& pkt, uint32_t repeat, int* retval) {
  std::vector<double> rounds;
  for (int r = 0; r < 5; r++) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(), .data_size_in = static_cast<uint32_t>(pkt.size()),
                .repeat = static_cast<int>(repeat / 5));
    if (bpf_prog_test_run_opts(dp.egress_fd(), &o) != 0) {
      std::perror("BPF_PROG_TEST_RUN");
      return -1;
    }
    *retval = static_cast<int>(o.retval);
    rounds.push_back(static_cast<double>(o.duration));
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[2];
}

// Builds `faults` partitions whose sides together hold `cidrs` host CIDRs. The measured packet's
// two addresses sit in the same side of every fault, so each slot is evaluated in full and none
// drops: the cost of the scan itself.
int run_datapath() {
  kernel::install_libbpf_logger();
  const auto pkt = udp4_packet();
  const auto other = udp4_packet(201);
  const uint32_t repeat = 1000000;
  std::printf("# ns per packet through fl_egress, BPF_PROG_TEST_RUN, %u runs per figure (median of 5 rounds),"
              " IPv4/UDP, no drop\n", repeat);
  std::printf("# members: both addresses are in a side of every fault, so every fault is evaluated in full\n");
  std::printf("# others:  addresses in no node set (the rest of the node's traffic)\n");
  std::printf("%-8s %-7s %12s %10s %12s\n", "cidrs", "faults", "members ns", "vs 1 cidr", "others ns");
  for (int faults : {1, 8, 32}) {
    double base = 0;
    for (uint32_t cidrs : {1u, 1000u, 10000u, 65536u}) {
      auto dp = kernel::Datapath::load();
      if (!dp.ok()) {
        std::fprintf(stderr, "load: %s\n", dp.error().message.c_str());
        return 1;
      }
      (*dp)->set_lease(mono_ns() + 600ull * 1000000000ull);
      core::SetMap sets;
      // Side A of every fault holds both measured addresses; side B holds the filler.
      std::vector<core::Cidr> a = {host4(0x0AC80001), host4(0x0AC80002)};
      std::vector<core::Cidr> b;
      for (uint32_t i = 0; b.size() + a.size() < std::max<uint32_t>(cidrs, 3); i++) b.push_back(host4(0x0B000000 + i));
      for (int f = 0; f < faults; f++) {
        uint64_t bit_a = 1ull << (2 * f % 64), bit_b = 1ull << ((2 * f + 1) % 64);
        if (f < 32) {
          for (auto& ch : sets.add(a, bit_a)) (void)(*dp)->set_cidr(ch.cidr, ch.mask);
          if (f == 0)
            for (auto& ch : sets.add(b, bit_b)) (void)(*dp)->set_cidr(ch.cidr, ch.mask);
        }
        core::FaultSpec spec;
        spec.kind = core::FaultKind::partition;
        core::SlotBits bits;
        bits.sides = {bit_a, f == 0 ? bit_b : 1ull << 1};
        fl_slot s = core::plan_slot(spec, bits);
        s.gen = static_cast<uint32_t>(f + 1);
        (void)(*dp)->write_slot(static_cast<uint32_t>(f), s);
        (*dp)->activate_slot(static_cast<uint32_t>(f), mono_ns() + 600ull * 1000000000ull);
      }
      (*dp)->set_nslots(static_cast<uint32_t>(faults));
      int rv = 0;
      ns_per_packet(**dp, pkt, 100000, &rv);  // warm up
      double ns = ns_per_packet(**dp, pkt, repeat, &rv);
      if (rv != -1) std::fprintf(stderr, "unexpected verdict %d\n", rv);
      double ns_other = ns_per_packet(**dp, other, repeat, &rv);
      if (cidrs == 1) base = ns;
      std::printf("%-8u %-7d %12.1f %9.2fx %12.1f\n", cidrs, faults, ns, ns / base, ns_other);
    }
  }
  auto dp = kernel::Datapath::load();
  if (dp.ok()) {
    int rv = 0;
    (*dp)->set_lease(mono_ns() + 600ull * 1000000000ull);
    std::printf("%-8s %-7d %12.1f   (baseline: program attached, no fault)\n", "0", 0,
                ns_per_packet(**dp, pkt, repeat, &rv));
  }
  return 0;
}

// ---- apply/heal latency ----

class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::perror("connect");
      std::exit(1);
    }
  }
  ~Client() { close(fd_); }
  json call(json req) {
    req["id"] = id_++;
    std::string line = req.dump() + "\n";
    if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::exit(1);
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        json r = json::parse(buf_.substr(0, nl));
        buf_.erase(0, nl + 1);
        return r;
      }
      char tmp[65536];
      ssize_t n = read(fd_, tmp, sizeof tmp);
      if (n <= 0) std::exit(1);
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  uint64_t id_ = 1;
  std::string buf_;
};

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[i];
}

int run_apply(const std::string& socket, const std::string& netns, int runs) {
  Client c(socket);
  auto side = [](uint32_t base) {
    json cidrs = json::array();
    for (uint32_t i = 0; i < 1000; i++) {
      uint32_t a = base + i;
      cidrs.push_back(std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
                      std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255));
    }
    return cidrs;
  };
  json fault = {{"kind", "partition"},
                {"sides", {{{"name", "a"}, {"cidrs", side(0x0AC80100)}}, {{"name", "b"}, {"cidrs", side(0x0AC81100)}}}},
                {"targets", {"netns:" + netns}},
                {"duration_ms", 60000}};
  // Two series. cold: nothing else is active on the target, so every apply attaches the program
  // and every heal detaches it. warm: another fault stays on (as in an experiment that stacks
  // faults), so apply and heal only touch maps.
  auto series = [&](const char* label) -> int {
    std::vector<double> apply, heal, status;
    for (int i = 0; i < runs; i++) {
      auto t0 = std::chrono::steady_clock::now();
      json r = c.call({{"op", "apply"}, {"fault", fault}});
      auto t1 = std::chrono::steady_clock::now();
      if (!r.value("ok", false)) {
        std::fprintf(stderr, "apply failed: %s\n", r.dump().c_str());
        return 1;
      }
      uint64_t id = r["result"]["fault"]["id"];
      json h = c.call({{"op", "heal"}, {"fault", std::to_string(id)}});
      auto t2 = std::chrono::steady_clock::now();
      c.call({{"op", "status"}});
      auto t3 = std::chrono::steady_clock::now();
      if (!h.value("ok", false)) return 1;
      apply.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      heal.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      status.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
    }
    auto row = [&](const char* name, const std::vector<double>& v) {
      std::printf("%-6s %-30s %8.3f %8.3f %8.3f\n", label, name, pct(v, 0.5), pct(v, 0.99),
                  *std::max_element(v.begin(), v.end()));
    };
    row("apply (acknowledged = active)", apply);
    row("heal", heal);
    row("status (round-trip baseline)", status);
    return 0;
  };
  std::printf("# apply/heal of a 2-side partition, 1,000 CIDRs per side, one netns target, %d runs each\n", runs);
  std::printf("%-6s %-30s %8s %8s %8s\n", "series", "operation (ms)", "p50", "p99", "max");
  if (series("cold") != 0) return 1;
  json keeper = {{"kind", "loss"}, {"loss", {{"percent", 1.0}}}, {"match", {{"proto", "udp"}, {"dport", "9"}}},
                 {"targets", {"netns:" + netns}}, {"duration_ms", 600000}, {"name", "bench-keeper"}};
  json k = c.call({{"op", "apply"}, {"fault", keeper}});
  if (!k.value("ok", false)) return 1;
  int rc = series("warm");
  c.call({{"op", "heal"}, {"fault", "bench-keeper"}});
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "datapath") return run_datapath();
  if (argc >= 4 && std::string(argv[1]) == "apply")
    return run_apply(argv[2], argv[3], argc >= 5 ? std::atoi(argv[4]) : 500);
  std::fprintf(stderr, "usage: fl_bench datapath | fl_bench apply SOCKET NETNS [RUNS]\n");
  return 2;
}
