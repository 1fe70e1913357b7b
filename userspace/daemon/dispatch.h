// One request line in, one reply line out: protocol v1 on top of the Engine. Authorisation is
// per operation: apply, heal and reset need root or the faultline group.
//
// Threads: handle() runs on the event loop. What it can answer from there (hello, status,
// events, and every refusal of a request that is malformed, not allowed or out of policy) it
// answers at once; everything that touches the engine or the kernel is deferred to the kernel
// worker (daemon/kernel_worker.h) and delivered when done, so the loop never waits for the
// verifier, a grace period or an fsync.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/engine.h"
#include "daemon/history.h"
#include "daemon/kernel_worker.h"
#include "daemon/pod_resolver.h"
#include "daemon/policy.h"
#include "daemon/server.h"
#include "daemon/watch.h"
#include "protocol/protocol.h"

namespace fl::daemon {

class Dispatcher {
 public:
  // How a request is answered later: the server's defer(), deliver() and resume().
  struct Later {
    std::function<void(uint64_t client)> defer;
    std::function<bool(uint64_t client, std::string reply)> deliver;
    std::function<bool(uint64_t client)> connected;
    std::function<void(uint64_t client)> resume;  // deferred, answered by someone else (wait)
  };
  // The engine is touched only on worker. events is the loop's bus (refusals found on the loop);
  // worker_events is where the worker reports (the engine reports there too), forwarded to the
  // loop by the owner. on_change runs on the loop after every apply and heal, with the earliest
  // expiry the worker saw afterwards, so the owner can re-arm the expiry timer.
  Dispatcher(Engine& engine, KernelWorker& worker, Later later, EventBus* events, EventBus* worker_events,
             std::function<void(std::optional<uint64_t> next_expiry)> on_change);
  // Serve `events` from history and `events --follow`/`wait` through watch; without them those
  // ops answer that the daemon keeps no history.
  void set_history(const History* h) { history_ = h; }
  void set_watch(Watch* w) { watch_ = w; }
  // With it, an apply or reset naming pod: targets asks crictl on the resolver's thread first;
  // without, they are refused (neither the loop nor the kernel worker may run crictl).
  void set_pod_resolver(PodResolver* r) { resolver_ = r; }
  // The operator's limits on what clients may ask for; shown by status.
  void set_policy(const Policy& p) { policy_ = p; }
  // An empty string: the reply comes later (Server::send, or Server::deliver).
  std::string handle(const Peer& peer, std::string_view line);
  // The data path's program-wide counters (Engine::program_stats) as the worker last read them:
  // status shows them from the loop without waiting for the worker. Any thread.
  void publish_datapath(const std::array<uint64_t, FL_STAT_MAX>& counts);
  // The active faults as the worker last read them (Engine::list), for `list` while the worker is
  // busy: the loop answers from it, saying how old it is (counters_age_ms), instead of making
  // the client wait behind a slow apply. Call on the worker after a job that may have changed
  // the faults (expiry, reconciliation); the dispatcher's own jobs do it themselves.
  // faults must be what Engine::list() showed at engine_changes (Engine::changes()): a snapshot
  // from before a change the worker has made (and perhaps told as an event) is not used.
  void publish_faults(nlohmann::json faults, uint64_t engine_changes);
  void refresh_faults() {
    const uint64_t at = engine_.changes();
    publish_faults(engine_.list(), at);
  }
  // The server closed this client (loop thread): an apply or reset of it still queued for the
  // worker is not run, since nobody would learn what it did.
  void client_gone(uint64_t client);

 private:
  // What the loop checked and parsed, handed to the worker.
  struct Job {
    Peer peer;
    proto::Request req;
    std::optional<core::FaultSpec> fault;
    std::optional<core::ResetSpec> reset;
    std::string ref;  // heal, get, stats, wait: the fault; empty with heal all or a plain stats
    bool all = false;
    std::optional<uint64_t> timeout_ms;  // wait
  };
  using JobPtr = std::shared_ptr<Job>;

  std::string on_loop(const Peer& peer, proto::Request req);
  Result<nlohmann::json> answer_on_loop(const Peer& peer, const proto::Request& req);
  // Checks and parses everything that needs no kernel: a refusal from here changes nothing.
  Result<JobPtr> prepare(const Peer& peer, proto::Request req);
  void to_worker(JobPtr job, std::optional<kernel::PodAnswers> answers);
  Result<nlohmann::json> on_worker(const Job& job);
  void refused(EventBus* bus, const Peer& peer, const proto::Request& req, const Error& e);
  static std::string bounded(std::string reply, uint64_t id);
  Result<nlohmann::json> events(const Peer& peer, const proto::Request& req);

  Engine& engine_;
  KernelWorker& worker_;
  Later later_;
  EventBus* events_;
  EventBus* worker_events_;
  std::function<void(std::optional<uint64_t>)> on_change_;
  const History* history_ = nullptr;
  Watch* watch_ = nullptr;
  PodResolver* resolver_ = nullptr;
  Policy policy_;
  uint64_t started_ns_;
  // Clients with a job queued or running on the worker, each with the flag client_gone() sets
  // (each client has one at most: the server holds its next requests until the reply). Loop only.
  std::unordered_map<uint64_t, std::shared_ptr<std::atomic<bool>>> queued_;
  Result<nlohmann::json> list_from_snapshot();
  void no_throw_refresh();
  std::mutex faults_mu_;
  nlohmann::json faults_ = nlohmann::json::array();
  uint64_t faults_at_ns_ = 0;  // 0: nothing published yet
  uint64_t faults_changes_ = 0;  // Engine::changes() when faults_ was read
  std::mutex datapath_mu_;
  std::array<uint64_t, FL_STAT_MAX> datapath_{};
  uint64_t datapath_at_ns_ = 0;
};

}  // namespace fl::daemon
