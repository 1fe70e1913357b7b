// faultlined: loads the data path into target namespaces and serves faultctl on a Unix socket.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/parse.h"
#include "daemon/dispatch.h"
#include "daemon/engine.h"
#include "daemon/kernel_worker.h"
#include "daemon/event_loop.h"
#include "daemon/events.h"
#include "daemon/history.h"
#include "daemon/journal.h"
#include "daemon/leftovers.h"
#include "daemon/log_format.h"
#include "daemon/metrics.h"
#include "daemon/metrics_http.h"
#include "daemon/metrics_source.h"
#include "daemon/pod_resolver.h"
#include "daemon/server.h"
#include "daemon/watch.h"
#include "kernel/capabilities.h"
#include "kernel/pod_target.h"
#include "protocol/protocol.h"

namespace po = boost::program_options;
using namespace fl;

namespace {

struct Config {
  std::string socket = "/run/faultline/faultline.sock";
  std::string state_dir = "/var/lib/faultline";
  std::string group = "faultline";
  std::chrono::milliseconds lease{15000};
  std::chrono::milliseconds idle_timeout{60000};
  std::vector<core::Exemption> exemptions;
  std::optional<kernel::AttachMode> mode;
  spdlog::level::level_enum log_level = spdlog::level::info;
  bool check_only = false;
  bool cleanup_only = false;
  std::string crictl = "crictl";  // for pod:NAMESPACE/NAME targets
  std::optional<daemon::ListenAddress> metrics;  // --metrics: Prometheus endpoint, off by default
  daemon::Policy policy;                          // --require-default-exempt, --max-duration
};

constexpr int kExitUsage = 2;

// Command line -> validated, immutable Config. Every error names the flag and quotes the value.
Result<Config> parse_args(int argc, char** argv, bool* help) {
  po::options_description desc("faultlined options");
  std::string lease = "15s", idle = "60s", log_level = "info", mode = "auto", metrics, max_duration;
  std::vector<std::string> exempt;
  Config c;
  desc.add_options()
      ("help,h", "show this help")
      ("socket", po::value(&c.socket)->value_name("PATH"), "control socket (default /run/faultline/faultline.sock)")
      ("state-dir", po::value(&c.state_dir)->value_name("DIR"), "journal and lock (default /var/lib/faultline)")
      ("group", po::value(&c.group)->value_name("NAME|GID"),
       "group allowed to connect and change faults: a name (used if it exists), a numeric gid (used as is), "
       "or '' for root only (default faultline)")
      ("lease", po::value(&lease)->value_name("DUR"),
       "kernel lease: every fault turns off if the daemon stops renewing it for this long (default 15s)")
      ("exempt", po::value(&exempt)->value_name("SPEC"),
       "CIDR[/PROTO[:PORT]] that no fault may touch (repeatable), on top of each fault's own")
      ("log-level", po::value(&log_level)->value_name("LEVEL"), "trace|debug|info|warn|error (default info)")
      ("attach-mode", po::value(&mode)->value_name("MODE"), "auto|tcx|tc (default auto: tcx where the kernel has it)")
      ("idle-timeout", po::value(&idle)->value_name("DUR"), "disconnect clients silent this long (default 60s)")
      ("crictl", po::value(&c.crictl)->value_name("PATH"),
       "crictl, to resolve --target pod:NAMESPACE/NAME to a pod UID on this node (default: crictl in PATH)")
      ("metrics", po::value(&metrics)->value_name("ADDR:PORT"),
       "serve Prometheus metrics at http://ADDR:PORT/metrics (off by default), e.g. 127.0.0.1:9464 or "
       "[::1]:9464; numeric addresses only (docs/METRICS.md)")
      ("require-default-exempt",
       "refuse faults and resets that turn off the default exemptions (SSH, DNS, metadata address)")
      ("max-duration", po::value(&max_duration)->value_name("DUR"),
       "refuse faults that last longer than this (default: the protocol's 7d)")
      ("check-config", "validate the configuration, print it, and exit without touching the kernel")
      ("cleanup", "remove what a previous instance left in the kernel (from its journal) and exit, non-zero if "
                  "anything could not be read or removed; refused while another instance runs (systemd's "
                  "ExecStopPost)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_argument, e.what());
  }
  if (vm.count("help")) {
    std::cout << "usage: faultlined [options]\n\n" << desc << "\n";
    *help = true;
    return c;
  }
  c.check_only = vm.count("check-config") > 0;
  c.policy.require_default_exempt = vm.count("require-default-exempt") > 0;
  if (vm.count("max-duration")) {
    auto d = core::parse_duration(max_duration);
    if (!d.ok()) return d.take_error().wrap("--max-duration");
    if (*d < core::kMinDuration || *d > core::kMaxDuration)
      return make_error(Errc::invalid_argument, "--max-duration: must be between " + core::format_duration(core::kMinDuration) +
                                                    " and " + core::format_duration(core::kMaxDuration));
    c.policy.max_duration = *d;
  }
  c.cleanup_only = vm.count("cleanup") > 0;
  auto l = core::parse_duration(lease);
  if (!l.ok()) return l.take_error().wrap("--lease");
  // Renewed every third of the lease by a thread that does nothing else (daemon/lease_keeper.h);
  // one second leaves it a third of a second of scheduling slack per renewal.
  if (*l < std::chrono::seconds(1) || *l > std::chrono::hours(1))
    return make_error(Errc::invalid_argument, "--lease: must be between 1s and 1h");
  c.lease = *l;
  auto it = core::parse_duration(idle);
  if (!it.ok()) return it.take_error().wrap("--idle-timeout");
  c.idle_timeout = *it;
  for (const auto& e : exempt) {
    auto ex = core::parse_exemption(e);
    if (!ex.ok()) return ex.take_error().wrap("--exempt");
    c.exemptions.push_back(*ex);
  }
  if (mode == "tcx") c.mode = kernel::AttachMode::tcx;
  else if (mode == "tc") c.mode = kernel::AttachMode::tc;
  else if (mode != "auto") return make_error(Errc::invalid_argument, "--attach-mode: \"" + mode + "\" is not auto, tcx or tc");
  auto lvl = spdlog::level::from_str(log_level);
  if (lvl == spdlog::level::off && log_level != "off")
    return make_error(Errc::invalid_argument, "--log-level: \"" + log_level + "\" is not trace, debug, info, warn or error");
  c.log_level = lvl;
  if (vm.count("metrics")) {
    auto m = daemon::parse_listen_address(metrics);
    if (!m.ok()) return m.take_error().wrap("--metrics");
    c.metrics = *m;
  }
  if (auto g = daemon::parse_group(c.group); !g.ok()) return g.take_error().wrap("--group");
  if (c.socket.empty() || c.socket[0] != '/') return make_error(Errc::invalid_argument, "--socket: must be an absolute path");
  if (c.state_dir.empty() || c.state_dir[0] != '/')
    return make_error(Errc::invalid_argument, "--state-dir: must be an absolute path");
  // A relative path with '/' would resolve against our working directory, which nobody chose;
  // a bare name is looked up in PATH when a pod: target needs it. Its absence is not an error
  // here: only pod: targets need it, and they say so.
  if (c.crictl.empty() || (c.crictl.find('/') != std::string::npos && c.crictl[0] != '/'))
    return make_error(Errc::invalid_argument, "--crictl: \"" + c.crictl + "\" is neither an absolute path nor a bare name");
  return c;
}

void print_config(const Config& c) {
  std::printf("socket      %s\nstate-dir   %s\ngroup       %s\nlease       %s\nattach-mode %s\n",
              c.socket.c_str(), c.state_dir.c_str(), c.group.empty() ? "(none: root only)" : c.group.c_str(), core::format_duration(c.lease).c_str(),
              c.mode ? kernel::attach_mode_name(*c.mode) : "auto");
  std::printf("crictl      %s\n", c.crictl.c_str());
  std::printf("policy      default exemptions %s, longest fault %s\n",
              c.policy.require_default_exempt ? "required" : "may be turned off",
              core::format_duration(c.policy.max_duration.value_or(core::kMaxDuration)).c_str());
  std::printf("metrics     %s\n", c.metrics ? ("http://" + c.metrics->str() + "/metrics").c_str() : "off");
  for (const auto& e : c.exemptions) std::printf("exempt      %s\n", e.str().c_str());
  std::printf("defaults    ");
  for (const auto& e : core::default_exemptions()) std::printf("%s ", e.str().c_str());
  std::printf("(per fault, unless --no-default-exempt)\n");
}

// One log line per event, with who asked: what `faultctl events` shows, also in the journal of
// the service manager.
void log_event(const daemon::Event& e) {
  std::string who = e.caller ? fmt::format(" by uid {} pid {}", e.caller->uid, e.caller->pid) : std::string();
  std::string targets;
  for (const auto& t : e.targets) targets += (targets.empty() ? " on " : ",") + t;
  std::string fault = e.fault_id ? fmt::format(" fault {}", e.fault_id) : std::string();
  if (!e.name.empty()) fault += " (" + e.name + ")";
  std::string detail = e.detail.empty() ? std::string() : ": " + e.detail;
  if (!e.code.empty()) detail = ": " + e.code + detail;
  spdlog::info("event {} {}{} {}{}{}{}", e.seq, daemon::event_type_name(e.type), fault, e.kind, targets, who, detail);
}

// The soft descriptor limit up to the hard one: a daemon out of descriptors cannot open a
// target's namespace or even read which interface is gone. Returns the limit we run with.
uint64_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    const rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      spdlog::warn("raising the descriptor limit from {} to {}: {}", was, rl.rlim_max, std::strerror(errno));
      getrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_cur);
}

int run(const Config& cfg) {
  const uint64_t fd_limit = raise_fd_limit();
  // Freed client buffers go back to the system at once rather than staying in the heap: the
  // bound on buffered bytes (ServerOptions::max_buffered) is then a bound on what we hold.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  // Bound first: a taken port or an address not on this host stops us before any kernel change.
  // Not for --cleanup, which serves nothing and must work whoever holds the port.
  std::optional<daemon::MetricsListener> metrics_listener;
  if (cfg.metrics && !cfg.cleanup_only) {
    auto l = daemon::MetricsListener::bind(*cfg.metrics);
    if (!l.ok()) {
      spdlog::critical("--metrics: {}", l.error().message);
      return kExitUsage;
    }
    metrics_listener.emplace(std::move(*l));
  }
  auto journal = daemon::Journal::open(cfg.state_dir);
  if (!journal.ok()) {
    spdlog::critical("{}", journal.error().message);
    return 1;
  }
  kernel::install_libbpf_logger();
  // Not fatal: a missing capability fails the first operation that needs it, with its own error;
  // this line says why up front.
  for (const auto& c : kernel::missing_capabilities())
    spdlog::warn("missing capability {} ({}): faults that need it will fail", c.name, c.why);
  auto features = kernel::probe_features();
  spdlog::info("{}", features.summary());
  if (features.bpf_loop == kernel::Tri::no) {
    spdlog::critical("this kernel lacks bpf_loop (needs Linux 5.17 or later)");
    return 1;
  }
  {
    auto host = kernel::Netns::self();
    if (!host.ok()) {
      spdlog::critical("{}", host.error().message);
      return 1;
    }
    auto report = daemon::clean_leftovers(*journal, *host);
    if (!report.ok())
      spdlog::error("cleaning leftovers: {} thing(s) could not be read or removed (above)", report.problems.size());
    // The journal lock is held here, so a running instance cannot be cleaned from under. A
    // service manager must hear that something may be left behind.
    if (cfg.cleanup_only) return report.ok() ? 0 : 1;
  }

  {
    kernel::PodTargetOptions pods;
    pods.crictl = cfg.crictl;
    // crictl runs on a worker thread (daemon/pod_resolver.h), never on the loop: its timeout
    // only bounds how long one apply waits, not the lease.
    kernel::set_pod_target_options(std::move(pods));
  }
  // Declared before the engine: the engine reports to it until its last heal at shutdown.
  daemon::EventBus events;
  daemon::metrics::EventCounts metric_counts;  // outlives the engine, which reports until its end
  events.listen(log_event);
  auto history = daemon::History::open(cfg.state_dir);
  if (!history.ok()) {
    spdlog::critical("history: {}", history.error().message);
    return 1;
  }
  events.set_next_seq((*history)->next_seq());
  events.listen([h = history->get()](const daemon::Event& e) { h->record(e); });
  events.listen([&metric_counts](const daemon::Event& e) { metric_counts.on(e); });
  auto loop = daemon::EventLoop::create();
  if (!loop.ok()) {
    spdlog::critical("{}", loop.error().message);
    return 1;
  }
  daemon::EventLoop& ev = **loop;
  daemon::Engine* eng_ptr = nullptr;  // set below; posted work runs only once the loop runs
  daemon::EngineOptions eo;
  eo.lease = cfg.lease;
  // The lease thread noticed that it renewed late: the whole process was stopped or starved,
  // and past the whole lease every fault was off meanwhile. Reported from the loop.
  eo.on_lease_late = [&ev, &events, &eng_ptr, lease = cfg.lease](uint64_t gap) {
    ev.post([&events, &eng_ptr, lease, gap] {
      const uint64_t every = static_cast<uint64_t>((lease / 3).count()) * 1000000ull;
      daemon::Event e;
      e.type = daemon::EventType::lease_late;
      e.duration_ns = gap;
      e.detail = "lease renewed " + std::to_string(gap / 1000000) + " ms after the last renewal (planned every " +
                 std::to_string(every / 1000000) + " ms, lease " + std::to_string(lease.count()) + " ms)" +
                 (gap >= static_cast<uint64_t>(lease.count()) * 1000000ull && eng_ptr && eng_ptr->active_count() > 0
                      ? ": every fault was off meanwhile"
                      : "");
      events.emit(std::move(e));
    });
  };
  eo.exemptions = cfg.exemptions;
  eo.force_mode = cfg.mode;
  auto engine = daemon::Engine::create(eo, features, &*journal);
  if (!engine.ok()) {
    spdlog::critical("{}", engine.error().message);
    return 1;
  }
  spdlog::info("attach mode {}, lease {}", kernel::attach_mode_name((*engine)->attach_mode()),
               core::format_duration(cfg.lease));

  daemon::Engine& eng = **engine;
  eng_ptr = &eng;
  eng.set_events(&events);
  eng.restore_history((*history)->next_fault_id(), (*history)->ended());
  daemon::Watch watch(ev);
  events.listen([&watch](const daemon::Event& e) { watch.on_event(e); });
  // On any return from here the engine stops reporting before the watch goes (an engine
  // destroyed with faults heals them, and those events would reach a destroyed watch).
  struct Unhook {
    daemon::Engine& e;
    ~Unhook() { e.set_events(nullptr); }
  } unhook{eng};

  // Every call into the engine runs on the kernel worker from here until shutdown; the loop
  // only hands work over and acts on what comes back (daemon/kernel_worker.h). It may never run
  // crictl either: pod: targets are resolved before a job gets here.
  daemon::KernelWorker worker(ev, [] { kernel::forbid_crictl_on_this_thread(); });
  // What the engine and the worker report, told on the loop (every listener is loop-only).
  daemon::EventBus worker_events;
  worker_events.listen([&ev, &events](const daemon::Event& e) { ev.post([&events, e] { events.emit(e); }); });
  eng.set_events(&worker_events);
  // On any return from here the worker stops first (its jobs use everything declared above),
  // then what it handed back is run, then the engine reports straight to the loop's bus.
  struct StopWorker {
    daemon::KernelWorker& w;
    daemon::Engine& e;
    daemon::EventBus& bus;
    bool done = false;
    void now() {
      if (done) return;
      done = true;
      w.stop();
      e.set_events(&bus);
    }
    ~StopWorker() { now(); }
  } stop_worker{worker, eng, events};

  // The expiry timer, armed on the loop with what the worker last saw as the earliest end. The
  // kernel ends every fault on time by itself; this is when the daemon forgets it.
  // Set once the dispatcher exists: what `list` answers while the worker is busy, refreshed after
  // the worker's own jobs change the faults.
  std::function<void()> refresh_list = [] {};
  daemon::EventLoop::TimerId expiry_timer = 0;
  bool expiry_job = false;  // one expire_due at a time on the worker
  std::function<void(std::optional<uint64_t>)> arm_expiry = [&](std::optional<uint64_t> next) {
    if (expiry_timer) ev.cancel_timer(expiry_timer);
    expiry_timer = 0;
    if (!next || expiry_job) return;
    uint64_t now = daemon::monotonic_ns();
    auto in = std::chrono::milliseconds(*next > now ? (*next - now) / 1000000 + 1 : 1);
    auto t = ev.add_timer(in, std::chrono::milliseconds(0), [&] {
      expiry_timer = 0;
      expiry_job = true;
      worker.run([&]() -> daemon::KernelWorker::Then {
        if (eng.expire_due() > 0) refresh_list();
        auto next_end = eng.next_expiry();
        return [&arm_expiry, &expiry_job, next_end] {
          expiry_job = false;
          arm_expiry(next_end);
        };
      }, [&] {
        // Tried again in a second rather than never.
        expiry_job = false;
        arm_expiry(daemon::monotonic_ns() + 1000000000ull);
      });
    });
    if (t.ok()) expiry_timer = *t;
    else spdlog::error("expiry timer: {}", t.error().message);
  };

  daemon::ServerOptions so;
  so.socket_path = cfg.socket;
  so.group = cfg.group;
  so.idle_timeout = cfg.idle_timeout;
  so.max_line = proto::kMaxLine;
  so.max_reply = proto::kMaxReply;
  so.max_clients = daemon::max_clients_for(fd_limit);
  spdlog::info("descriptor limit {}: up to {} clients", fd_limit, so.max_clients);
  std::unique_ptr<daemon::Dispatcher> dispatcher;
  auto server = daemon::Server::start(ev, so, [&](const daemon::Peer& p, std::string_view line) {
    return dispatcher->handle(p, line);
  });
  if (!server.ok()) {
    spdlog::critical("{}", server.error().message);
    return 1;
  }
  {
    daemon::Server* srv = server->get();
    dispatcher = std::make_unique<daemon::Dispatcher>(
        eng, worker,
        daemon::Dispatcher::Later{[srv](uint64_t c) { srv->defer(c); },
                                  [srv](uint64_t c, std::string reply) { return srv->deliver(c, std::move(reply)); },
                                  [srv](uint64_t c) { return srv->connected(c); },
                                  [srv](uint64_t c) { srv->resume(c); }},
        &events, &worker_events, arm_expiry);
  }
  dispatcher->publish_datapath(eng.program_stats());  // no worker job has run yet
  dispatcher->publish_faults(nlohmann::json::array(), eng.changes());
  refresh_list = [&dispatcher] { dispatcher->refresh_faults(); };
  dispatcher->set_history(history->get());
  dispatcher->set_watch(&watch);
  dispatcher->set_policy(cfg.policy);
  (*server)->set_overlong_reply([] {
    return proto::reply_error(std::nullopt, make_error(Errc::invalid_request, "request line exceeds 4 MiB"));
  });
  {
    daemon::Server* srv = server->get();
    watch.set_io({[srv](uint64_t c, std::string line) { return srv->send(c, std::move(line)); },
                  [srv](uint64_t c, bool held) { srv->hold(c, held); }});
    srv->set_close_hook([&watch, &dispatcher](uint64_t c) {
      watch.forget(c);
      dispatcher->client_gone(c);
    });
  }
  // crictl for pod: targets runs on this worker; the loop thread itself may never run it.
  daemon::PodResolver pod_resolver(ev);
  kernel::forbid_crictl_on_this_thread();
  dispatcher->set_pod_resolver(&pod_resolver);
  (*server)->set_internal_error_reply(
      [] { return proto::reply_error(std::nullopt, make_error(Errc::internal, "internal error")); });
  std::unique_ptr<daemon::MetricsHttp> metrics_http;
  // A scrape's fault counters are read by the kernel worker, at most once per half second
  // however many peers ask; scrapes arriving meanwhile wait for that one reading.
  struct MetricsCache {
    std::string body;
    uint64_t at = 0;
    bool reading = false;
    std::vector<daemon::MetricsHttp::Reply> waiting;
  } metrics_cache;
  if (metrics_listener) {
    daemon::Server* srv = server->get();
    auto m = daemon::MetricsHttp::start(
        ev, std::move(*metrics_listener),
        daemon::MetricsHttp::AsyncRender([&, srv](daemon::MetricsHttp::Reply reply) {
          const uint64_t now = daemon::monotonic_ns();
          if (metrics_cache.at != 0 && now - metrics_cache.at < 500000000ull) return reply(metrics_cache.body);
          // The worker is reading already (behind a long apply, perhaps): an earlier reading now
          // beats a scrape that times out.
          if (metrics_cache.reading && metrics_cache.at != 0) return reply(metrics_cache.body);
          metrics_cache.waiting.push_back(std::move(reply));
          if (metrics_cache.reading) return;
          metrics_cache.reading = true;
          worker.run([&, srv]() -> daemon::KernelWorker::Then {
            auto snap = std::make_shared<daemon::metrics::Snapshot>(daemon::metrics::snapshot(eng, metric_counts, 0));
            return [&, srv, snap] {
              // The event counts are the loop's; rendered here, with them as they are now.
              snap->clients = srv->client_count();
              metrics_cache.body = daemon::metrics::render(*snap);
              metrics_cache.at = daemon::monotonic_ns();
              metrics_cache.reading = false;
              auto waiting = std::move(metrics_cache.waiting);
              metrics_cache.waiting.clear();
              for (auto& r : waiting) r(metrics_cache.body);
            };
          }, [&] {
            // The waiting scrapes get their connection's timeout; the next one tries again.
            metrics_cache.reading = false;
            metrics_cache.waiting.clear();
          });
        }));
    if (!m.ok()) {
      spdlog::critical("--metrics: {}", m.error().message);
      return 1;
    }
    metrics_http = std::move(*m);
    spdlog::info("metrics at http://{}/metrics", metrics_http->address());
  }

  // Targets and interfaces that vanish under a fault (a pod deleted, a veth re-created) are
  // noticed within a second and their faults end as "gone", so a dead namespace is not kept
  // alive by our fd until the fault's end.
  bool reconcile_job = false;
  uint64_t warned_busy = 0;  // the job in progress was warned about (its start)
  const uint64_t stall_ns = static_cast<uint64_t>(eng.stall_limit().count()) * 1000000ull;
  auto reconcile = ev.add_timer(std::chrono::seconds(1), std::chrono::seconds(1), [&] {
    // The heartbeat counts the worker's progress too: a job in progress since `busy` vouches for
    // the daemon only up to its start, so one stuck past the stall limit lets the lease lapse.
    const uint64_t busy = worker.busy_since_ns();
    if (busy == 0) eng.loop_alive();
    else eng.loop_alive(busy);
    if (busy != 0 && busy != warned_busy && daemon::monotonic_ns() - busy > stall_ns / 2) {
      warned_busy = busy;
      spdlog::warn("kernel worker: one job has run for {} s; at {} s the lease is let lapse",
                   (daemon::monotonic_ns() - busy) / 1000000000ull, stall_ns / 1000000000ull);
    }
    if (reconcile_job) return;
    reconcile_job = true;
    worker.run([&]() -> daemon::KernelWorker::Then {
      // A removal the journal could not write (a full disk) is written as soon as it can be.
      if (journal->pending_removals() > 0)
        if (auto st = journal->retry(); st.ok()) spdlog::info("journal: pending removals written");
      const bool changed = eng.active_count() > 0 && eng.reconcile() > 0;
      // Also unchanged: the counters a list shows while the worker is busy are then at most
      // about a second old.
      if (changed || eng.active_count() > 0) refresh_list();
      dispatcher->publish_datapath(eng.program_stats());
      auto next = changed ? eng.next_expiry() : std::nullopt;
      return [&, changed, next] {
        reconcile_job = false;
        if (changed) arm_expiry(next);
      };
    }, [&] { reconcile_job = false; });
  });
  if (!reconcile.ok()) {
    spdlog::critical("reconcile timer: {}", reconcile.error().message);
    return 1;
  }
  // Every signal that would end us without cleanup ends us with it.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
    auto st = ev.on_signal(sig, [&, sig] {
      spdlog::info("signal {}: healing every fault and exiting", sig);
      ev.stop();
    });
    if (!st.ok()) {
      spdlog::critical("signal {}: {}", sig, st.error().message);
      return 1;
    }
  }
  spdlog::info("faultlined listening on {}", cfg.socket);
  ev.run();

  // The job in progress finishes (an apply half-done is not cut); what it and earlier jobs
  // handed back runs now: their events reach the history, their replies the clients.
  stop_worker.now();
  ev.drain_posted();
  // The heals at shutdown are still recorded, but no client is left to push them to.
  watch.set_io({});
  metrics_http.reset();
  server->reset();
  auto st = eng.shutdown();
  if (!st.ok()) spdlog::error("shutdown: {}", st.error().message);
  engine->reset();
  if (auto js = journal->retry(); !js.ok()) spdlog::error("journal: {}", js.error().message);
  if (journal->entries().empty()) {
    spdlog::info("faultlined stopped; nothing of ours is left attached");
  } else {
    spdlog::error("faultlined stopped; {} attachment(s) could not be removed and stay in {} for the next start",
                  journal->entries().size(), journal->path());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("faultlined");
  spdlog::set_default_logger(logger);
  spdlog::set_formatter(daemon::escaping_formatter("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v"));
  bool help = false;
  auto cfg = parse_args(argc, argv, &help);
  if (!cfg.ok()) {
    std::fprintf(stderr, "faultlined: %s\n", cfg.error().message.c_str());
    return kExitUsage;
  }
  if (help) return 0;
  spdlog::set_level(cfg->log_level);
  if (cfg->check_only) {
    print_config(*cfg);
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  // Block the shutdown signals before any thread exists (the grace-period thread inherits this
  // mask), so only the event loop's signalfd ever takes them and cleanup always runs.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  sigaddset(&stop_signals, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (geteuid() != 0) spdlog::warn("not running as root: loading BPF programs will likely fail");
  return run(*cfg);
}
