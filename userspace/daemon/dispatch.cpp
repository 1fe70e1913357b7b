#include "daemon/dispatch.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <unistd.h>

#include <set>

#include <spdlog/spdlog.h>

#include "core/datapath_stats.h"
#include "core/validate.h"
#include "daemon/reset.h"
#include "protocol/protocol.h"

namespace fl::daemon {

using json = nlohmann::json;

namespace {

const char* kDaemonVersion = "0.1.0";

Result<std::string> fault_ref(const json& req) {
  auto it = req.find("fault");
  if (it == req.end()) return make_error(Errc::invalid_request, "missing \"fault\" (an id or a name)");
  if (it->is_number_unsigned()) return std::to_string(it->get<uint64_t>());
  if (!it->is_string() || it->get<std::string>().empty())
    return make_error(Errc::invalid_request, "\"fault\" must be a non-empty string (an id or a name)");
  return it->get<std::string>();
}

// The host namespace's own addresses (loopback and link-local left out): what a multi-host
// client compares a partition's sides with, to send each host only the part that concerns it.
json read_host_addresses() {
  json out = json::array();
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  std::set<std::string> seen;
  for (auto* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || (a->ifa_flags & IFF_LOOPBACK)) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = &reinterpret_cast<sockaddr_in6*>(a->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(in6)) continue;
      inet_ntop(AF_INET6, in6, buf, sizeof buf);
    } else {
      continue;
    }
    seen.insert(buf);
  }
  freeifaddrs(list);
  for (const auto& s : seen) out.push_back(s);
  return out;
}

// status is what a flood of requests costs most of: two rtnetlink dumps per status would make
// a client that pipelines thousands of them delay everyone else. A second-old list is fresh
// enough for a client about to send a partition.
json host_addresses() {
  static json cached;
  static uint64_t read_at = 0;
  const uint64_t now = monotonic_ns();
  if (read_at == 0 || now - read_at > 1000000000ull) {
    cached = read_host_addresses();
    read_at = now;
  }
  return cached;
}

// An optional unsigned member, with its name in the error.
// validate() and the policy blame FaultSpec and ResetSpec fields; on the wire the field is a path
// from the request's member, as the decoder's are ("fault.match.sport").
Error from_member(Error e, const char* member) {
  if (!e.field.empty()) e.field = std::string(member) + "." + e.field;
  return e;
}

Result<std::optional<uint64_t>> opt_uint(const json& req, const char* key) {
  auto it = req.find(key);
  if (it == req.end()) return std::optional<uint64_t>{};
  if (!it->is_number_unsigned()) return make_error(Errc::invalid_request, std::string("\"") + key + "\" must be an unsigned integer");
  return std::optional<uint64_t>{it->get<uint64_t>()};
}

}  // namespace

Dispatcher::Dispatcher(Engine& engine, KernelWorker& worker, Later later, EventBus* events, EventBus* worker_events,
                       std::function<void(std::optional<uint64_t>)> on_change)
    : engine_(engine),
      worker_(worker),
      later_(std::move(later)),
      events_(events),
      worker_events_(worker_events),
      on_change_(std::move(on_change)),
      started_ns_(monotonic_ns()) {}

std::string Dispatcher::handle(const Peer& peer, std::string_view line) {
  std::optional<uint64_t> id;
  auto req = proto::parse_request(line, &id);
  if (!req.ok()) return proto::reply_error(id, req.error());
  const uint64_t req_id = req->id;
  return bounded(on_loop(peer, std::move(*req)), req_id);
}

// Past what clients are told to accept (docs/PROTOCOL.md): say so instead of sending it.
std::string Dispatcher::bounded(std::string reply, uint64_t id) {
  if (reply.size() <= proto::kMaxReply) return reply;
  return proto::reply_error(id, make_error(Errc::resource_exhausted,
                                           "the reply would be " + std::to_string(reply.size()) +
                                               " bytes, over the limit of 16 MiB; ask for one fault at a time "
                                               "(get, or stats with \"fault\")"));
}

void Dispatcher::refused(EventBus* bus, const Peer& peer, const proto::Request& req, const Error& e) {
  if (!proto::op_is_mutating(req.op)) return;
  spdlog::info("{} by uid {} pid {} refused: {}: {}", req.op, peer.uid, peer.pid, errc_name(e.code), e.message);
  if (!bus) return;
  Event ev;
  ev.type = EventType::refused;
  ev.kind = req.op;
  ev.caller = Caller{peer.uid, peer.pid};
  ev.code = errc_name(e.code);
  ev.detail = e.message;
  bus->emit(std::move(ev));
}

std::string Dispatcher::on_loop(const Peer& peer, proto::Request req) {
  const uint64_t id = req.id;
  const std::string op = req.op;
  const proto::Op kind = req.kind;
  try {
    if (proto::op_info(kind).on_loop) {
      auto r = answer_on_loop(peer, req);
      if (!r.ok()) return proto::reply_error(id, r.error());
      return proto::reply_ok(id, *r);
    }
    // While the worker is in a job (an apply waiting for the verifier or a grace period), list
    // is answered from what the worker last published; when it is idle, with fresh counters.
    if (op == "list" && worker_.busy_since_ns() != 0) {
      auto r = list_from_snapshot();
      if (r.ok()) return bounded(proto::reply_ok(id, *r), id);
    }
    auto job = prepare(peer, std::move(req));
    if (!job.ok()) {
      refused(events_, peer, proto::Request{id, op, kind, {}}, job.error());
      return proto::reply_error(id, job.error());
    }
    std::vector<std::string> pods;
    if ((*job)->fault) pods = PodResolver::pod_names((*job)->fault->targets);
    if ((*job)->reset) pods = PodResolver::pod_names((*job)->reset->targets);
    if (!pods.empty() && resolver_) {
      const bool queued = resolver_->resolve(std::move(pods), [this, j = *job](kernel::PodAnswers answers) {
        // Gone meanwhile: nobody would learn the fault's id, so it is not made.
        if (later_.connected && !later_.connected(j->peer.client)) {
          spdlog::info("{} by uid {} pid {}: the client left before crictl answered; not run", j->req.op,
                       j->peer.uid, j->peer.pid);
          return;
        }
        to_worker(j, std::move(answers));
      });
      if (!queued) {
        auto e = make_error(Errc::resource_exhausted, std::to_string(PodResolver::kMaxQueued) +
                                                          " requests already wait for crictl to resolve pod: targets; "
                                                          "try again shortly, or name the pod by pod-uid:");
        refused(events_, peer, (*job)->req, e);
        return proto::reply_error(id, e);
      }
      // After queueing, still on this thread: the answer can only be delivered by the loop, after us.
      later_.defer(peer.client);
      return {};
    }
    later_.defer(peer.client);
    to_worker(std::move(*job), std::nullopt);
    return {};
  } catch (const std::exception& e) {
    spdlog::error("{}: internal error: {}", op, e.what());
    return proto::reply_error(id, make_error(Errc::internal, std::string("internal error: ") + e.what()));
  }
}

Result<Dispatcher::JobPtr> Dispatcher::prepare(const Peer& peer, proto::Request request) {
  const std::string& op = request.op;
  const json& req = request.body;
  if (proto::op_info(request.kind).mutating && !peer.may_mutate)
    return make_error(Errc::permission_denied,
                      op + " needs root or membership of the faultline group (uid " + std::to_string(peer.uid) + ")");
  auto job = std::make_shared<Job>();
  job->peer = peer;
  // No default in the switches on Op: an op added to protocol/ops.h and not handled here fails
  // the build (-Werror=switch on this file).
  switch (request.kind) {
  case proto::Op::apply: {
    auto it = req.find("fault");
    if (it == req.end() || !it->is_object())
      return make_error(Errc::invalid_request, "apply needs \"fault\": an object");
    auto spec = proto::fault_spec_from_json(*it);
    if (!spec.ok()) return spec.take_error();
    if (auto st = core::validate(*spec); !st.ok()) return from_member(st.take_error(), "fault");
    if (auto st = policy_.check(*spec); !st.ok()) return from_member(st.take_error(), "fault");
    job->fault = std::move(*spec);
    break;
  }
  case proto::Op::reset: {
    auto it = req.find("reset");
    if (it == req.end() || !it->is_object())
      return make_error(Errc::invalid_request, "reset needs \"reset\": an object");
    auto spec = proto::reset_spec_from_json(*it);
    if (!spec.ok()) return spec.take_error();
    if (auto st = core::validate_reset(*spec); !st.ok()) return from_member(st.take_error(), "reset");
    if (auto st = policy_.check(*spec); !st.ok()) return from_member(st.take_error(), "reset");
    job->reset = std::move(*spec);
    break;
  }
  case proto::Op::heal: {
    auto all = req.find("all");
    if (all != req.end() && all->is_boolean() && all->get<bool>()) {
      job->all = true;
    } else {
      auto ref = fault_ref(req);
      if (!ref.ok()) return make_error(Errc::invalid_request, ref.error().message + ", or \"all\": true");
      job->ref = std::move(*ref);
    }
    break;
  }
  case proto::Op::stats:
    if (!req.contains("fault")) break;
    [[fallthrough]];
  case proto::Op::get: {
    auto ref = fault_ref(req);
    if (!ref.ok()) return ref.take_error();
    job->ref = std::move(*ref);
    break;
  }
  case proto::Op::wait: {
    for (const auto& [k, v] : req.items())
      if (k != "op" && k != "id" && k != "fault" && k != "timeout_ms")
        return make_error(Errc::invalid_request, "wait: unknown member \"" + k + "\" (fault, timeout_ms)");
    auto ref = fault_ref(req);
    if (!ref.ok()) return ref.take_error();
    auto timeout = opt_uint(req, "timeout_ms");
    if (!timeout.ok()) return timeout.take_error();
    if (timeout->value_or(0) > 7ull * 24 * 3600 * 1000)
      return make_error(Errc::invalid_request, "\"timeout_ms\" must be at most 7 days");
    if (!watch_) return make_error(Errc::internal, "this daemon cannot wait");
    job->ref = std::move(*ref);
    job->timeout_ms = *timeout;
    break;
  }
  case proto::Op::list:
    break;
  case proto::Op::hello:
  case proto::Op::status:
  case proto::Op::events:
    return make_error(Errc::internal, op + " is answered on the loop, not by the worker");
  }
  // The request body is not needed past here; a 60,000-address spec is not carried twice.
  job->req = proto::Request{request.id, request.op, request.kind, {}};
  return job;
}

void Dispatcher::client_gone(uint64_t client) {
  if (auto it = queued_.find(client); it != queued_.end()) it->second->store(true);
}

void Dispatcher::to_worker(JobPtr job, std::optional<kernel::PodAnswers> answers) {
  auto gone = std::make_shared<std::atomic<bool>>(false);
  const uint64_t client_id = job->peer.client, req_id = job->req.id;
  queued_[client_id] = gone;
  // What the client gets if the job throws past its own handling: an answer, not a silence that
  // holds its next requests forever.
  auto failed = [this, client_id, req_id, gone] {
    if (auto it = queued_.find(client_id); it != queued_.end() && it->second == gone) queued_.erase(it);
    later_.deliver(client_id, proto::reply_error(req_id, make_error(Errc::internal, "internal error")));
  };
  worker_.run([this, job = std::move(job), answers = std::move(answers), gone]() -> KernelWorker::Then {
    std::optional<kernel::ScopedPodAnswers> scope;
    if (answers) scope.emplace(&*answers);
    const std::string& op = job->req.op;
    const uint64_t id = job->req.id;
    const uint64_t client = job->peer.client;
    auto done = [this, client, gone] {
      if (auto it = queued_.find(client); it != queued_.end() && it->second == gone) queued_.erase(it);
    };
    // Gone while queued: nobody would learn the fault's id, so it is not made. A heal still runs:
    // ending faults is what a client that gave up would want too.
    if ((op == "apply" || op == "reset") && gone->load()) {
      spdlog::info("{} by uid {} pid {}: the client left before its turn; not run", op, job->peer.uid,
                   job->peer.pid);
      return done;
    }
    Result<json> r = make_error(Errc::internal, "not run");
    try {
      r = on_worker(*job);
    } catch (const std::exception& e) {
      spdlog::error("{}: internal error: {}", op, e.what());
      r = make_error(Errc::internal, std::string("internal error: ") + e.what());
    }
    if (!r.ok()) refused(worker_events_, job->peer, job->req, r.error());
    const bool changed = op == "apply" || op == "heal";
    // Before the reply goes: a client that saw its apply answered finds it in a list answered
    // from the snapshot.
    if (op == "list" && r.ok()) publish_faults(r->at("faults"), engine_.changes());
    else if (changed) no_throw_refresh();
    std::optional<uint64_t> next = changed ? engine_.next_expiry() : std::nullopt;
    // A wait for a fault still active is answered by the watch, from the loop: registered there
    // after every event this worker posted before, so the fault's end cannot slip past it.
    if (op == "wait" && r.ok() && r->value("state", "") == "active") {
      const uint64_t fault_id = r->at("id").get<uint64_t>();
      return [this, client, id, fault_id, timeout = job->timeout_ms.value_or(0), done] {
        done();
        // A client that left meanwhile must not hold a waiter (and its timer) until the fault ends.
        if (!later_.connected(client)) return;
        auto st = watch_->wait(client, id, fault_id, std::chrono::milliseconds(timeout));
        if (st.ok()) later_.resume(client);
        else later_.deliver(client, proto::reply_error(id, st.error()));
      };
    }
    std::string reply;
    if (!r.ok()) reply = proto::reply_error(id, r.error());
    else if (op == "wait") reply = proto::reply_ok(id, json{{"fault", *r}});
    else reply = bounded(proto::reply_ok(id, *r), id);
    return [this, client, reply = std::move(reply), changed, next, done]() mutable {
      done();
      later_.deliver(client, std::move(reply));
      if (changed) on_change_(next);
    };
  }, std::move(failed));
}

Result<json> Dispatcher::on_worker(const Job& job) {
  const std::string& op = job.req.op;
  const Caller caller{job.peer.uid, job.peer.pid};
  switch (job.req.kind) {
  case proto::Op::apply: {
    auto st = engine_.apply(*job.fault, caller);
    if (!st.ok()) return st.take_error();
    // The client has just sent the spec; echoing 10,000 CIDRs back costs more than the apply.
    st->erase("spec");
    return json{{"fault", *st}};
  }
  case proto::Op::heal: {
    std::vector<uint64_t> ids;
    if (job.all) {
      ids = engine_.heal_all(caller);
    } else {
      auto r = engine_.heal(job.ref, caller);
      if (!r.ok()) return r.take_error();
      ids = *r;
    }
    return json{{"healed", ids}};
  }
  case proto::Op::reset: {
    // Outside every NetnsGuard this thread is in the daemon's own namespace: what host means.
    auto host = kernel::Netns::self();
    if (!host.ok()) return host.take_error().wrap("reset");
    auto r = reset_connections(*job.reset, engine_.options().exemptions, *host);
    if (!r.ok()) return r.take_error();
    std::string where;
    for (const auto& t : job.reset->targets) where += (where.empty() ? "" : ",") + t.str();
    spdlog::info("reset by uid {} pid {} in {}: {} matched, {} destroyed, {} gone", job.peer.uid, job.peer.pid, where,
                 (*r)["matched"].get<size_t>(), (*r)["destroyed"].get<size_t>(), (*r)["gone"].get<size_t>());
    return r;
  }
  case proto::Op::list:
    return json{{"faults", engine_.list()}};
  case proto::Op::get: {
    auto r = engine_.get(job.ref);
    if (!r.ok()) return r.take_error();
    return json{{"fault", *r}};
  }
  case proto::Op::stats: {
    if (!job.ref.empty()) {
      auto r = engine_.get(job.ref);
      if (!r.ok()) return r.take_error();
      return json{{"faults", json::array({*r})}};
    }
    return json{{"faults", engine_.list()}};
  }
  case proto::Op::wait:
    return engine_.get(job.ref);  // the fault's status; the caller decides
  case proto::Op::hello:
  case proto::Op::status:
  case proto::Op::events:
    break;
  }
  return make_error(Errc::internal, op + " is answered on the loop, not by the worker");
}

void Dispatcher::no_throw_refresh() {
  try {
    refresh_faults();
  } catch (const std::exception& e) {
    spdlog::error("list snapshot: {}", e.what());
    std::lock_guard lock(faults_mu_);
    faults_at_ns_ = 0;  // a list while the worker is busy waits for it rather than read an old one
  }
}

void Dispatcher::publish_faults(json faults, uint64_t engine_changes) {
  const uint64_t now = monotonic_ns();
  std::lock_guard lock(faults_mu_);
  faults_ = std::move(faults);
  faults_at_ns_ = now;
  faults_changes_ = engine_changes;
}

Result<json> Dispatcher::list_from_snapshot() {
  const uint64_t now = monotonic_ns();
  json faults;
  uint64_t at = 0;
  {
    std::lock_guard lock(faults_mu_);
    if (faults_at_ns_ == 0) return make_error(Errc::internal, "no snapshot yet");
    // The worker changed the faults since (and may have told a client so): the list waits for it.
    if (faults_changes_ != engine_.changes()) return make_error(Errc::internal, "snapshot out of date");
    faults = faults_;
    at = faults_at_ns_;
  }
  const uint64_t age_ms = now > at ? (now - at) / 1000000 : 0;
  // The time left has run on since the reading; the counters have not.
  for (auto& f : faults) {
    auto left = f.value("expires_in_ms", int64_t{0});
    f["expires_in_ms"] = left > static_cast<int64_t>(age_ms) ? left - static_cast<int64_t>(age_ms) : 0;
  }
  return json{{"faults", std::move(faults)}, {"counters_age_ms", age_ms}};
}

void Dispatcher::publish_datapath(const std::array<uint64_t, FL_STAT_MAX>& counts) {
  const uint64_t now = monotonic_ns();
  std::lock_guard lock(datapath_mu_);
  datapath_ = counts;
  datapath_at_ns_ = now;
}

Result<json> Dispatcher::answer_on_loop(const Peer& peer, const proto::Request& request) {
  const json& req = request.body;
  switch (request.kind) {
  case proto::Op::hello: {
    auto v = req.find("version");
    if (v != req.end() && (!v->is_number_integer() || v->get<int64_t>() != proto::kVersion))
      return make_error(Errc::unsupported_version,
                        "this daemon speaks protocol version " + std::to_string(proto::kVersion));
    return json{{"protocol", proto::kVersion}, {"daemon", std::string("faultlined ") + kDaemonVersion}};
  }
  case proto::Op::status: {
    // Only what the engine fixed at start, the lease keeper's expiry, atomics and what the
    // worker published: the loop reads nothing the kernel worker may be changing.
    uint64_t now = monotonic_ns();
    uint64_t lease = engine_.lease_expires_ns();
    json ex = json::array();
    for (const auto& e : engine_.options().exemptions) ex.push_back(e.str());
    json features = engine_.features().to_json();
    const uint64_t busy = worker_.busy_since_ns();
    json datapath = json::object();
    uint64_t datapath_at = 0;
    {
      std::lock_guard lock(datapath_mu_);
      for (const auto& st : core::kDatapathStats) datapath[st.name] = datapath_[st.index];
      datapath_at = datapath_at_ns_;
    }
    return json{{"daemon", kDaemonVersion},
                {"protocol", proto::kVersion},
                {"pid", getpid()},
                {"uptime_ms", (now - started_ns_) / 1000000},
                {"lease_ms", engine_.options().lease.count()},
                {"lease_remaining_ms", lease > now ? (lease - now) / 1000000 : 0},
                {"attach_mode", kernel::attach_mode_name(engine_.attach_mode())},
                {"features", features},
                {"faults_active", engine_.active_count()},
                {"kernel_worker_busy_ms", busy != 0 && now > busy ? (now - busy) / 1000000 : 0},
                {"datapath", datapath},
                {"datapath_age_ms", datapath_at != 0 && now > datapath_at ? (now - datapath_at) / 1000000 : 0},
                {"exemptions", ex},
                {"policy", policy_.to_json()},
                {"addresses", host_addresses()}};
  }
  case proto::Op::events:
    return events(peer, request);
  case proto::Op::apply:
  case proto::Op::list:
  case proto::Op::get:
  case proto::Op::heal:
  case proto::Op::stats:
  case proto::Op::reset:
  case proto::Op::wait:
    break;
  }
  return make_error(Errc::internal, request.op + " is answered by the kernel worker, not on the loop");
}

// {"op":"events","since":SEQ,"limit":N,"follow":true}: the recorded events after SEQ (the newest
// `limit`, 100 by default), then, with follow, every new one as it happens.
Result<json> Dispatcher::events(const Peer& peer, const proto::Request& request) {
  const json& req = request.body;
  for (const auto& [k, v] : req.items())
    if (k != "op" && k != "id" && k != "since" && k != "limit" && k != "follow")
      return make_error(Errc::invalid_request, "events: unknown member \"" + k + "\" (since, limit, follow)");
  auto since = opt_uint(req, "since");
  if (!since.ok()) return since.take_error();
  auto limit = opt_uint(req, "limit");
  if (!limit.ok()) return limit.take_error();
  if (*limit && (**limit == 0 || **limit > 1000))
    return make_error(Errc::invalid_request, "\"limit\" must be between 1 and 1000");
  bool follow = false;
  if (auto f = req.find("follow"); f != req.end()) {
    if (!f->is_boolean()) return make_error(Errc::invalid_request, "\"follow\" must be true or false");
    follow = f->get<bool>();
  }
  if (!history_) return make_error(Errc::internal, "this daemon keeps no history");
  json out = {{"events", history_->since(since->value_or(0), limit->value_or(100))},
              {"next_seq", history_->next_seq()}};
  if (follow) {
    if (!watch_) return make_error(Errc::internal, "this daemon cannot stream events");
    FL_TRY(watch_->follow(peer.client, request.id));
    out["follow"] = true;
  }
  return out;
}

}  // namespace fl::daemon
