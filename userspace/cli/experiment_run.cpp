#include "cli/experiment_run.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "cli/client.h"
#include "cli/report_html.h"
#include "core/parse.h"
#include "protocol/protocol.h"

namespace fl::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Which range judges a point: `range`, `during` (the method runs), or either (the statistic is
// moving from one to the other, the probe's during.after after the first fault's start).
enum class Applies { range, transition, during };

struct SeriesPoint {
  int64_t t_ms;
  std::optional<double> value;
  bool in_range;
  Applies applies = Applies::range;
};

// One probe's samples and statistic over time, filled by its own thread.
struct ProbeState {
  const Probe* probe = nullptr;
  std::mutex mu;
  std::vector<ProbeSample> samples;
  std::vector<SeriesPoint> series;
  std::thread thread;
};

std::string fmt(double v) {
  std::ostringstream o;
  o.precision(4);
  o << v;
  return o.str();
}

std::string range_text(const Range& r) {
  if (r.min && r.max) return "[" + fmt(*r.min) + ", " + fmt(*r.max) + "]";
  if (r.min) return ">= " + fmt(*r.min);
  return "<= " + fmt(*r.max);
}

std::string point_text(const Probe& p, const SeriesPoint& pt) {
  const std::string unit = p.unit() == "ratio" ? "" : p.unit().empty() ? "" : " " + p.unit();
  const std::string value = pt.value ? fmt(*pt.value) + unit : std::string("no value (every sample failed)");
  std::string accepted = range_text(p.range);
  if (pt.applies == Applies::during) accepted = range_text(*p.during) + " while the method runs";
  if (pt.applies == Applies::transition) accepted = accepted + " or " + range_text(*p.during) + " (settling)";
  return "probe " + p.name + ": " + statistic_name(p.statistic) + " " + value + ", accepted " + accepted;
}

json range_json(const Range& r) {
  return json{{"min", r.min ? json(*r.min) : json(nullptr)}, {"max", r.max ? json(*r.max) : json(nullptr)}};
}

class Runner {
 public:
  Runner(const Experiment& e, const RunOptions& o, std::ostream& log) : e_(e), o_(o), log_(log) {}

  RunOutcome run();

 private:
  struct FaultRun {
    const ExperimentFault* f;
    std::optional<uint64_t> id;
    std::optional<int64_t> start_ms, end_ms;
    std::string ended_by = "not_started";
    bool active = false;
    // The apply was sent but its answer lost with the connection: the daemon may have applied
    // it, and only its name (unique among active faults) can find it.
    bool in_doubt = false;
    json counters = json::object();
    json targets = json::array();
  };

  int64_t now_ms() const { return std::chrono::duration_cast<milliseconds>(Clock::now() - t0_).count(); }
  int64_t unix_ms() const {
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  bool signalled() const { return o_.signal != nullptr && o_.signal->load() != 0; }
  void say(const std::string& line) {
    log_ << "[" << core::format_duration(milliseconds(now_ms())) << "] " << line << "\n" << std::flush;
  }

  void start_probes();
  void stop_probes();
  void probe_loop(ProbeState& st);
  Applies applies(const Probe& p, int64_t t) const;
  Result<json> call(const std::string& op, const json& params);
  bool reconnect();
  void refresh(FaultRun& fr);
  void heal_all(const std::string& why);
  std::optional<std::string> check_aborts();
  std::optional<std::string> first_out_of_range(int64_t from, int64_t to);
  bool recovered(int64_t since, std::string& which);
  void phase(const std::string& name, int64_t start, int64_t end, bool ok, const std::string& note) {
    phases_.push_back(json{{"name", name}, {"start_ms", start}, {"end_ms", end}, {"ok", ok}, {"note", note}});
  }
  RunOutcome finish(const std::string& verdict, const std::string& reason);
  json during_json(const Probe& p) const {
    if (!p.during) return nullptr;
    json j = range_json(*p.during);
    const int64_t from = during_from_.load(), to = during_to_.load();
    j["after_ms"] = p.during_after.count();
    j["from_ms"] = from >= 0 ? json(from) : json(nullptr);
    j["to_ms"] = from >= 0 && to >= 0 ? json(to) : json(nullptr);
    return j;
  }

  const Experiment& e_;
  const RunOptions& o_;
  std::ostream& log_;
  Clock::time_point t0_;
  int64_t started_unix_ms_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<ProbeState>> probes_;
  std::vector<FaultRun> faults_;
  // The method's window for the probes' `during` ranges: from the first fault's start (its apply
  // answered) to the end of the observation; -1 until known. While the first apply is in flight
  // (from apply_sent_) the fault may or may not be in force yet: a point then is accepted in
  // either range.
  std::atomic<int64_t> apply_sent_{-1}, during_from_{-1}, during_to_{-1};
  std::optional<Client> client_;
  bool reconnected_ = false;
  json phases_ = json::array();
  json abort_ = nullptr;
};

void Runner::probe_loop(ProbeState& st) {
  const Probe& p = *st.probe;
  for (int64_t k = 0; !stop_.load(); ++k) {
    const auto due = t0_ + p.interval * k;
    // A sample slower than the interval skips the ticks it overran instead of bunching up.
    if (Clock::now() > due + p.interval) continue;
    while (!stop_.load() && Clock::now() < due)
      std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(), milliseconds(20)));
    if (stop_.load()) break;
    const int64_t t = now_ms();
    ProbeSample s = take_sample(p);
    s.t_ms = t;
    std::lock_guard<std::mutex> lock(st.mu);
    st.samples.push_back(std::move(s));
    auto v = probe_statistic(p, st.samples);
    const Applies a = applies(p, t);
    const bool in_range = v.has_value() && (a == Applies::during       ? p.during->contains(*v)
                                             : a == Applies::transition ? p.range.contains(*v) || p.during->contains(*v)
                                                                        : p.range.contains(*v));
    st.series.push_back(SeriesPoint{t, v, in_range, a});
  }
}

Applies Runner::applies(const Probe& p, int64_t t) const {
  const int64_t sent = apply_sent_.load(), from = during_from_.load(), to = during_to_.load();
  // The end is included: the observation the verdict judges runs up to and including it.
  if (!p.during || sent < 0 || t < sent || (to >= 0 && t > to)) return Applies::range;
  if (from < 0 || t < from + p.during_after.count()) return Applies::transition;
  return Applies::during;
}

void Runner::start_probes() {
  for (const auto& p : e_.probes) {
    auto st = std::make_unique<ProbeState>();
    st->probe = &p;
    probes_.push_back(std::move(st));
  }
  for (auto& st : probes_) st->thread = std::thread([this, s = st.get()] { probe_loop(*s); });
}

void Runner::stop_probes() {
  stop_ = true;
  for (auto& st : probes_) {
    if (st->thread.joinable()) st->thread.join();
  }
}

Result<json> Runner::call(const std::string& op, const json& params) {
  if (!client_) return make_error(Errc::internal, "no connection to faultlined");
  // The connection is made with a short timeout (a daemon that is not there is reported at once),
  // but a reply may take as long as for any faultctl command: the first apply on a cold
  // namespace loads a data path (seconds on a busy node), and a heal waits for grace periods.
  auto r = client_->call(op, params, kReplyTimeout);
  if (!r && client_->lost()) client_.reset();
  return r;
}

// Once per run: a daemon that went away and came back can still be asked to heal.
bool Runner::reconnect() {
  if (client_) return true;
  if (reconnected_) return false;
  reconnected_ = true;
  say("connection to faultlined lost; reconnecting once to heal");
  auto c = Client::connect(o_.socket, std::chrono::seconds(5));
  if (!c) return false;
  const Call hello = hello_call();
  if (!c->call(hello.op, hello.params)) return false;
  client_.emplace(std::move(*c));
  return true;
}

void Runner::refresh(FaultRun& fr) {
  if (!fr.id) return;
  auto r = call("get", json{{"fault", std::to_string(*fr.id)}});
  if (!r) return;
  const json& f = (*r)["fault"];
  if (f.contains("counters")) fr.counters = f["counters"];
  if (f.contains("targets")) fr.targets = f["targets"];
  const std::string state = f.value("state", "active");
  if (state == "active") return;
  fr.active = false;
  if (fr.end_ms) return;  // we ended it, and know why
  fr.end_ms = f.contains("ended_unix_ms") ? f["ended_unix_ms"].get<int64_t>() - started_unix_ms_ : now_ms();
  fr.ended_by = state == "healed" ? "heal" : "expiry";  // expired, or gone with its targets
}

void Runner::heal_all(const std::string& why) {
  for (auto& fr : faults_) {
    if (!(fr.active && fr.id) && !fr.in_doubt) continue;
    const std::string ref = fr.id ? std::to_string(*fr.id) : fr.f->name;
    auto r = call("heal", json{{"fault", ref}});
    if (!r && !client_ && reconnect()) r = call("heal", json{{"fault", ref}});
    if (r) {
      if (!fr.id && r->contains("healed") && !(*r)["healed"].empty()) fr.id = (*r)["healed"][0].get<uint64_t>();
      fr.active = false;
      fr.in_doubt = false;
      fr.end_ms = now_ms();
      fr.ended_by = why;
      say("healed " + fr.f->name + " (fault " + ref + ")");
    } else if (r.error().code != Errc::not_found) {  // not_found: it ended by itself meanwhile
      say("could not heal " + fr.f->name + ": " + r.error().message + "; the kernel ends it within " +
          core::format_duration(fr.f->duration) + " of its start");
    } else {
      fr.in_doubt = false;
    }
  }
  // The counters of every fault that ran, as the daemon keeps them after the end.
  for (auto& fr : faults_) refresh(fr);
}

std::optional<std::string> Runner::check_aborts() {
  const int64_t now = now_ms();
  for (const auto& rule : e_.aborts) {
    for (auto& st : probes_) {
      if (st->probe->name != rule.probe) continue;
      std::lock_guard<std::mutex> lock(st->mu);
      const auto& s = st->series;
      if (s.empty() || s.back().in_range) continue;
      size_t run = 0;
      while (run < s.size() && !s[s.size() - 1 - run].in_range) ++run;
      const SeriesPoint& first_out = s[s.size() - run];
      // Only what the method caused counts: the steady state was in range when it began.
      const bool hit = rule.samples > 0 ? run >= rule.samples : now - first_out.t_ms >= rule.for_time.count();
      if (hit) {
        abort_ = json{{"t_ms", now}, {"probe", rule.probe}, {"rule", rule.describe()}, {"healed", json::array()}};
        return point_text(*st->probe, s.back()) + ", " + rule.describe();
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> Runner::first_out_of_range(int64_t from, int64_t to) {
  for (auto& st : probes_) {
    std::lock_guard<std::mutex> lock(st->mu);
    for (const auto& pt : st->series) {
      if (pt.t_ms >= from && pt.t_ms <= to && !pt.in_range) {
        return point_text(*st->probe, pt) + " at t+" + core::format_duration(milliseconds(pt.t_ms));
      }
    }
  }
  return std::nullopt;
}

// Every probe's statistic, computed over samples taken after `since` only, with its window
// full, in range.
bool Runner::recovered(int64_t since, std::string& which) {
  for (auto& st : probes_) {
    std::lock_guard<std::mutex> lock(st->mu);
    std::vector<ProbeSample> after;
    for (const auto& s : st->samples) {
      if (s.t_ms >= since) after.push_back(s);
    }
    auto v = probe_statistic(*st->probe, after);
    if (after.size() < st->probe->window || !v || !st->probe->range.contains(*v)) {
      which = point_text(*st->probe, SeriesPoint{0, v, false});
      return false;
    }
  }
  return true;
}

RunOutcome Runner::finish(const std::string& verdict, const std::string& reason) {
  stop_probes();
  RunOutcome out;
  out.verdict = verdict;
  out.reason = reason;
  json report = {{"format", 1},
                 {"experiment", {{"name", e_.name}, {"hypothesis", e_.hypothesis}, {"file", e_.file}}},
                 {"started_unix_ms", started_unix_ms_},
                 {"ended_unix_ms", unix_ms()},
                 {"verdict", verdict},
                 {"reason", reason},
                 {"phases", phases_}};
  json probes = json::array();
  for (auto& st : probes_) {
    const Probe& p = *st->probe;
    std::lock_guard<std::mutex> lock(st->mu);
    json samples = json::array(), series = json::array();
    for (const auto& s : st->samples) {
      samples.push_back(json{{"t_ms", s.t_ms}, {"ok", s.ok}, {"value", s.value}, {"error", s.error}});
    }
    for (const auto& pt : st->series) {
      series.push_back(
          json{{"t_ms", pt.t_ms}, {"value", pt.value ? json(*pt.value) : json(nullptr)}, {"in_range", pt.in_range}});
    }
    probes.push_back(json{{"name", p.name},
                          {"kind", probe_kind_name(p.kind)},
                          {"target", p.target()},
                          {"statistic", statistic_name(p.statistic)},
                          {"unit", p.unit()},
                          {"range", range_json(p.range)},
                          {"during", during_json(p)},
                          {"interval_ms", p.interval.count()},
                          {"window", p.window},
                          {"samples", std::move(samples)},
                          {"series", std::move(series)}});
  }
  report["probes"] = std::move(probes);
  json faults = json::array();
  for (const auto& fr : faults_) {
    faults.push_back(json{{"name", fr.f->name},
                          {"kind", core::kind_name(fr.f->spec.kind)},
                          {"cli", fr.f->cli},
                          {"targets", fr.targets},
                          {"id", fr.id ? json(*fr.id) : json(nullptr)},
                          {"planned_start_ms", (e_.steady_state + fr.f->start).count()},
                          {"planned_duration_ms", fr.f->duration.count()},
                          {"start_ms", fr.start_ms ? json(*fr.start_ms) : json(nullptr)},
                          {"end_ms", fr.end_ms ? json(*fr.end_ms) : json(nullptr)},
                          {"ended_by", fr.ended_by},
                          {"counters", fr.counters}});
  }
  report["faults"] = std::move(faults);
  report["abort"] = abort_;
  out.report = report;

  std::error_code ec;
  const std::string dir = o_.report_dir;
  std::filesystem::create_directories(dir, ec);
  // Each written to a temporary name and renamed, so a reader never sees half a report.
  auto write = [&](const std::string& path, const std::string& text) -> bool {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << text;
      f.flush();
      if (!f) {
        out.report_error = "cannot write " + tmp + ": " + (ec ? ec.message() : std::strerror(errno));
        return false;
      }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      out.report_error = "cannot rename " + tmp + ": " + std::strerror(errno);
      return false;
    }
    return true;
  };
  if (write(dir + "/report.json", report.dump(2, ' ', false, json::error_handler_t::replace) + "\n"))
    out.report_path = dir + "/report.json";
  // The page is drawn from the very JSON just written: what it shows is what the file says.
  if (auto html = render_report_html(report); !html) {
    if (out.report_error.empty()) out.report_error = "report.html: " + html.error().message;
  } else if (write(dir + "/report.html", *html)) {
    out.html_path = dir + "/report.html";
  }
  return out;
}

RunOutcome Runner::run() {
  for (const auto& f : e_.faults) faults_.push_back(FaultRun{&f});
  std::stable_sort(faults_.begin(), faults_.end(),
                   [](const FaultRun& a, const FaultRun& b) { return a.f->start < b.f->start; });

  t0_ = Clock::now();
  started_unix_ms_ = unix_ms();
  // The daemon is reached before anything is measured: a run that cannot inject never starts.
  {
    auto c = Client::connect(o_.socket, std::chrono::seconds(5));
    if (!c) return finish("not_started", "cannot reach faultlined: " + c.error().message);
    client_.emplace(std::move(*c));
    const Call hello = hello_call();
    if (auto h = call(hello.op, hello.params); !h)
      return finish("not_started", "faultlined refused hello: " + h.error().message);
  }
  t0_ = Clock::now();
  started_unix_ms_ = unix_ms();
  say("experiment " + e_.name + ": steady state for " + core::format_duration(e_.steady_state));
  start_probes();

  const auto tick = milliseconds(10);
  const int64_t steady_end = e_.steady_state.count();
  while (now_ms() < steady_end) {
    if (signalled()) {
      phase("steady_state", 0, now_ms(), false, "interrupted");
      return finish("aborted", "interrupted by signal " + std::to_string(o_.signal->load()) + " before any fault");
    }
    std::this_thread::sleep_for(tick);
  }
  // The last point of each probe decides: its window is full (the file is refused otherwise).
  std::string not_met;
  for (auto& st : probes_) {
    std::lock_guard<std::mutex> lock(st->mu);
    if (st->series.empty()) {
      not_met = "probe " + st->probe->name + ": no sample in the steady state";
    } else if (!st->series.back().in_range) {
      not_met = point_text(*st->probe, st->series.back());
    }
    if (!not_met.empty()) break;
  }
  if (!not_met.empty()) {
    phase("steady_state", 0, now_ms(), false, not_met);
    return finish("not_started", "steady state not met: " + not_met);
  }
  phase("steady_state", 0, now_ms(), true, "every probe in range");
  say("steady state met; injecting");

  const int64_t method_start = now_ms();
  // A slow apply (a busy daemon takes seconds to attach) must not shorten what is observed: the
  // observation lasts at least until every applied fault's own end.
  int64_t method_end = steady_end + e_.method_duration.count();
  size_t next = 0;
  int64_t last_refresh = now_ms();
  int64_t inject_end = -1;
  std::string abort_reason, abort_by = "abort";
  while (now_ms() < method_end) {
    if (signalled()) {
      abort_reason = "interrupted by signal " + std::to_string(o_.signal->load());
      abort_by = "signal";
      break;
    }
    if (auto hit = check_aborts()) {
      abort_reason = *hit;
      break;
    }
    while (next < faults_.size() && now_ms() >= steady_end + faults_[next].f->start.count()) {
      FaultRun& fr = faults_[next++];
      const json params = {{"fault", proto::fault_spec_to_json(fr.f->spec)}};
      if (apply_sent_.load() < 0) apply_sent_ = now_ms();
      auto r = call("apply", params);
      if (!r) {
        fr.in_doubt = !client_;
        abort_reason =
            "fault " + fr.f->name + ": " + (client_ ? "apply refused: " : "connection lost: ") + r.error().message;
        abort_by = "abort";
        break;
      }
      const json& f = (*r)["fault"];
      fr.id = f.value("id", uint64_t{0});
      fr.start_ms = now_ms();
      if (during_from_.load() < 0) during_from_ = *fr.start_ms;
      fr.active = true;
      method_end = std::max(method_end, *fr.start_ms + (e_.method_duration - fr.f->start).count());
      fr.ended_by = "expiry";
      if (f.contains("targets")) fr.targets = f["targets"];
      say("applied " + fr.f->name + " (fault " + std::to_string(*fr.id) + ") for " +
          core::format_duration(fr.f->duration));
      if (next == faults_.size()) inject_end = now_ms();
    }
    if (!abort_reason.empty()) break;
    // Counters now and then, and a broken connection noticed while there is still time to heal.
    if (now_ms() - last_refresh >= 1000) {
      last_refresh = now_ms();
      for (auto& fr : faults_) {
        if (fr.active) refresh(fr);
      }
      if (!client_) {
        abort_reason = "connection to faultlined lost";
        break;
      }
    }
    std::this_thread::sleep_for(tick);
  }
  if (inject_end < 0) inject_end = now_ms();
  const int64_t observe_end = now_ms();
  if (apply_sent_.load() >= 0) during_to_ = observe_end;
  phase("inject", method_start, inject_end, abort_reason.empty(), "");
  phase("observe", inject_end, observe_end, abort_reason.empty(), abort_reason);

  if (!abort_reason.empty()) {
    say("aborting: " + abort_reason);
    if (!abort_.is_object()) {
      abort_ = json{{"t_ms", now_ms()}, {"probe", nullptr}, {"rule", abort_reason}, {"healed", json::array()}};
    }
    const int64_t heal_start = now_ms();
    heal_all(abort_by);
    if (abort_.is_object()) {
      for (const auto& fr : faults_) {
        if (fr.id && fr.ended_by == abort_by) abort_["healed"].push_back(*fr.id);
      }
    }
    const bool all_healed = std::none_of(faults_.begin(), faults_.end(), [](const FaultRun& f) { return f.active; });
    phase("heal", heal_start, now_ms(), all_healed,
          all_healed ? "every fault healed at the abort"
                     : "some faults could not be healed; the kernel ends them at their expiry");
    return finish("aborted", abort_reason);
  }

  const int64_t heal_start = now_ms();
  heal_all("heal");
  const bool all_healed = std::none_of(faults_.begin(), faults_.end(), [](const FaultRun& f) { return f.active; });
  const int64_t heal_end = now_ms();
  phase("heal", heal_start, heal_end, all_healed,
        all_healed ? "" : "some faults could not be healed; the kernel ends them at their expiry");
  if (!client_ && !all_healed) return finish("aborted", "connection to faultlined lost at the heal");

  const std::optional<std::string> observed = first_out_of_range(method_start, observe_end);
  say("recovery: probes must be back in range within " + core::format_duration(e_.recovery_within));
  std::string which;
  bool ok = false;
  while (now_ms() < heal_end + e_.recovery_within.count()) {
    if (signalled()) {
      phase("recovery", heal_end, now_ms(), false, "interrupted");
      return finish("aborted", "interrupted by signal " + std::to_string(o_.signal->load()) + " during recovery");
    }
    if ((ok = recovered(heal_end, which))) break;
    std::this_thread::sleep_for(tick);
  }
  phase("recovery", heal_end, now_ms(), ok, ok ? "every probe back in range" : "not recovered: " + which);
  if (observed)
    return finish("refuted",
                  *observed + (ok ? "" : "; and not recovered within " + core::format_duration(e_.recovery_within)));
  if (!ok)
    return finish("refuted",
                  "not recovered within " + core::format_duration(e_.recovery_within) + " of the heal: " + which);
  return finish("held", "every probe stayed in range while the faults were on, and was in range again " +
                            core::format_duration(milliseconds(now_ms() - heal_end)) + " after the heal");
}

}  // namespace

RunOutcome run_experiment(const Experiment& e, const RunOptions& o, std::ostream& log) {
  Runner r(e, o, log);
  return r.run();
}

}  // namespace fl::cli
