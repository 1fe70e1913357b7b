// fl_flood: the UDP flood of `tools/bench compare`, counted at the receiver.
//   fl_flood recv PORT SECONDS            counts datagrams to PORT until SECONDS have passed
//   fl_flood send DST PORT SIZE SECONDS   sends SIZE-byte datagrams to DST:PORT for SECONDS
// Each prints one line of "key value" pairs. recv: packets, the span between its first and last
// datagram, and its own CPU time; send: datagrams offered (sent, or refused by the stack, as an
// iptables DROP refuses with EPERM), the span, and its own CPU time. The bench adds the two CPU
// times to the softirq time of /proc/stat, where the kernel books most of a veth's packet work.
// No control connection: a partition that drops the flood must not stall the tool (iperf3's TCP
// control channel would be dropped along with its data).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) { return static_cast<uint64_t>(t.tv_sec) * 1000000ull + static_cast<uint64_t>(t.tv_usec); };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

// Batches of 64: one system call per batch keeps the tool's own cost small next to the kernel's
// per-packet work, which is what the bench compares.
constexpr unsigned kBatch = 64;

int do_recv(int port, double secs) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int big = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("fl_flood recv: bind");
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  std::vector<char> buf(kBatch * 2048);
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  for (unsigned i = 0; i < kBatch; i++) {
    iov[i] = {&buf[i * 2048], 2048};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const uint64_t end = mono_ns() + static_cast<uint64_t>(secs * 1e9);
  uint64_t packets = 0, first = 0, last = 0;
  for (uint64_t now = mono_ns(); now < end; now = mono_ns()) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>((end - now) / 1000000 + 1)) <= 0) continue;
    int n = recvmmsg(fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) continue;
    last = mono_ns();
    if (packets == 0) first = last;
    packets += static_cast<uint64_t>(n);
  }
  std::printf("packets %llu span_ns %llu cpu_us %llu\n", static_cast<unsigned long long>(packets),
              static_cast<unsigned long long>(last - first), static_cast<unsigned long long>(cpu_us()));
  return 0;
}

int do_send(const char* dst, int port, int size, double secs) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || inet_pton(AF_INET, dst, &a.sin_addr) != 1 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::fprintf(stderr, "fl_flood send: cannot use %s:%d: %s\n", dst, port, std::strerror(errno));
    return 1;
  }
  std::vector<char> payload(static_cast<size_t>(size), 'x');
  mmsghdr msgs[kBatch]{};
  iovec iov[kBatch]{};
  for (unsigned i = 0; i < kBatch; i++) {
    iov[i] = {payload.data(), payload.size()};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const uint64_t start = mono_ns(), end = start + static_cast<uint64_t>(secs * 1e9);
  uint64_t offered = 0, refused = 0, now = start;
  while (now < end) {
    for (int k = 0; k < 16; k++) {
      int n = sendmmsg(fd, msgs, kBatch, 0);
      if (n > 0) {
        offered += static_cast<uint64_t>(n);
      } else if (errno == EPERM || errno == ENOBUFS || errno == ECONNREFUSED) {
        // The first datagram of the batch went through the stack and was dropped there.
        offered++;
        refused++;
      } else if (errno != EINTR && errno != EAGAIN) {
        std::perror("fl_flood send: sendmmsg");
        return 1;
      }
    }
    now = mono_ns();
  }
  std::printf("offered %llu refused %llu span_ns %llu cpu_us %llu\n", static_cast<unsigned long long>(offered),
              static_cast<unsigned long long>(refused), static_cast<unsigned long long>(now - start),
              static_cast<unsigned long long>(cpu_us()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "recv") return do_recv(std::atoi(argv[2]), std::atof(argv[3]));
  if (argc == 6 && std::string(argv[1]) == "send")
    return do_send(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atof(argv[5]));
  std::fprintf(stderr, "usage: fl_flood recv PORT SECONDS | fl_flood send DST PORT SIZE SECONDS\n");
  return 2;
}
