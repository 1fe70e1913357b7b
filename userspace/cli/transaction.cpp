#include "cli/transaction.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "cli/format.h"
#include "core/parse.h"
#include "core/printable.h"

namespace fl::cli {

using json = nlohmann::json;

namespace {

// One host of a fan-out: its connection, and how it last failed.
struct HostRun {
  const Host* host = nullptr;
  std::string socket;  // the daemon's, on the host
  std::unique_ptr<HostConnection> conn;
  std::optional<Error> error;
  bool unreachable = false;  // the failure was the connection's, not the daemon's answer

  std::string name() const { return host->name(); }
  void failed(Error e, bool lost) {
    error = std::move(e);
    unreachable = lost;
  }
  // "HOST: code: message" for an answer, "HOST: message" for a connection that failed.
  std::string describe() const {
    if (!error) return name() + ": ok";
    if (unreachable) return name() + ": " + error->message;
    return name() + ": " + errc_name(error->code) + ": " + error->message;
  }
};

// One thread per host, at most kMaxParallelHosts at a time. No exception leaves a worker: it
// becomes that host's error.
void for_each_host(std::vector<HostRun>& runs, const std::function<void(HostRun&)>& fn) {
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < runs.size();) {
      try {
        fn(runs[i]);
      } catch (const std::exception& e) {
        runs[i].failed(make_error(Errc::internal, std::string("internal error: ") + e.what()), false);
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t n = std::min(runs.size(), kMaxParallelHosts);
  for (size_t t = 0; t + 1 < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
}

// A call on the host's connection; on failure, records it and returns nullopt.
std::optional<json> host_call(HostRun& r, const std::string& op, const json& params) {
  auto res = r.conn->call(op, params);
  if (res) return std::move(*res);
  const bool lost = r.conn->lost();
  r.failed(res.take_error(), lost);
  return std::nullopt;
}

bool open_host(HostRun& r, const std::string& default_socket, const Connector& connector) {
  r.socket = r.host->socket.empty() ? default_socket : r.host->socket;
  r.conn = connector(*r.host, r.socket);
  if (auto st = r.conn->connect(); !st) {
    r.failed(st.take_error(), true);
    return false;
  }
  const Call hello = hello_call();
  return host_call(r, hello.op, hello.params).has_value();
}

// Unreachable beats refused: "is the host there?" is the first thing to look at.
int worst_exit(const std::vector<HostRun>& runs) {
  int code = kFanOutOk;
  for (const auto& r : runs) {
    if (r.error) code = std::max(code, r.unreachable ? kFanOutUnreachable : kFanOutRefused);
  }
  return code;
}

// Left-aligned columns, the last one unpadded.
std::string two_columns(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [a, b] : rows) width = std::max(width, core::printable(a).size());
  std::string out;
  for (const auto& [a, b] : rows) {
    const std::string shown = core::printable(a);
    out += shown + std::string(width - shown.size() + 2, ' ') + core::printable(b) + "\n";
  }
  return out;
}

// The fault an apply reply reports, when it names it by an id we can heal it by.
std::optional<json> applied_fault(const json& result) {
  auto f = result.is_object() ? result.find("fault") : result.end();
  if (!result.is_object() || f == result.end() || !f->is_object()) return std::nullopt;
  auto id = f->find("id");
  if (id == f->end() || !id->is_number_unsigned()) return std::nullopt;
  return *f;
}

int fan_out_apply(const Invocation& inv, std::vector<HostRun>& runs, const Connector& connector,
                  bool allow_narrowing, const FanOutOutput& output) {
  const core::FaultSpec& spec = *inv.fault;
  // The addresses a daemon reports are its host namespace's: they say nothing about a fault
  // with --target netns:, pod:, container:..., which goes to every host whole, as it does with
  // --no-narrow. Such a host is never skipped.
  const bool narrow = allow_narrowing && narrowable(spec);
  std::vector<std::optional<core::FaultSpec>> specs(runs.size());
  for_each_host(runs, [&](HostRun& r) {
    if (!open_host(r, inv.socket, connector)) return;
    const size_t i = static_cast<size_t>(&r - runs.data());
    if (!narrow) {
      specs[i] = spec;
      return;
    }
    auto status = host_call(r, "status", json::object());
    if (!status) return;
    auto own = status_addresses(*status);
    if (!own) return r.failed(own.take_error(), false);
    // A daemon too old to list its addresses gets the whole partition: the same drops, only
    // bigger maps.
    specs[i] = *own ? narrow_for_host(spec, **own) : spec;
  });
  // Every line carries the status faultctl exits with, since -o json's error object takes its
  // exit_status and code from the first.
  if (const int code = worst_exit(runs); code != kFanOutOk) {
    for (const auto& r : runs) {
      if (r.error) output.fail(code, r.describe(), false);
    }
    output.fail(code, "nothing was applied", false);
    return code;
  }

  std::vector<std::optional<json>> applied(runs.size());
  for_each_host(runs, [&](HostRun& r) {
    const size_t i = static_cast<size_t>(&r - runs.data());
    if (!specs[i]) return;
    Invocation one = inv;
    one.fault = specs[i];
    const Call call = command_call(one);
    auto result = host_call(r, call.op, call.params);
    if (!result) return;
    applied[i] = applied_fault(*result);
    if (applied[i]) return;
    // Applied, as far as the daemon is concerned, but we cannot tell which fault to heal.
    r.failed(make_error(Errc::internal, "malformed reply from faultlined: no fault id; the fault may be in place there"),
             false);
  });

  const int code = worst_exit(runs);
  if (code == kFanOutOk) {
    if (inv.output == Output::json) {
      json out = json::object();
      for (size_t i = 0; i < runs.size(); ++i) {
        out[runs[i].name()] = applied[i] ? *applied[i] : json{{"skipped", kSkipped}};
      }
      return output.out(format_json(out));
    }
    std::vector<std::pair<std::string, std::string>> rows = {{"HOST", "FAULT"}};
    for (size_t i = 0; i < runs.size(); ++i) {
      if (applied[i]) {
        if (const std::string reset = format_apply_reset(*applied[i]); !reset.empty()) {
          output.note(core::printable(runs[i].name()) + ": " + reset);
        }
      }
      rows.emplace_back(runs[i].name(), applied[i] ? (*applied[i])["id"].dump() : std::string("skipped: ") + kSkipped);
    }
    return output.out(two_columns(rows));
  }

  // Roll back, on the hosts that answered the apply with a fault id. The others are not asked:
  // one that refused has nothing of ours, one whose reply named no id gives nothing to heal by,
  // and one that was lost cannot be asked (its fault, if the apply got there, ends by itself).
  const std::string expiry = "it ends by itself within " + core::format_duration(spec.duration);
  for (const auto& r : runs) {
    if (!r.error) continue;
    std::string line = r.describe();
    if (r.unreachable) line += "; if the fault was applied there before the connection broke, " + expiry;
    output.fail(code, line, true);
  }
  std::vector<std::optional<Error>> heal_errors(runs.size());
  for_each_host(runs, [&](HostRun& r) {
    const size_t i = static_cast<size_t>(&r - runs.data());
    if (!applied[i] || r.error) return;
    // By the id this host gave the fault: ids are per daemon, and a name may be shared with a
    // fault that was there before.
    if (!host_call(r, "heal", json{{"fault", std::to_string((*applied[i])["id"].get<uint64_t>())}})) {
      heal_errors[i] = r.error;
    }
  });
  for (size_t i = 0; i < runs.size(); ++i) {
    if (!applied[i]) continue;
    const std::string id = (*applied[i])["id"].dump();
    if (heal_errors[i]) {
      output.fail(code, "could not heal fault " + id + " on " + runs[i].describe() + "; " + expiry, true);
    } else {
      output.fail(code, "healed fault " + id + " on " + runs[i].name() + ", where it had been applied", false);
    }
  }
  return code;
}

// Read ops (and heal): the same request everywhere, one block of output per host.
int fan_out_other(const Invocation& inv, std::vector<HostRun>& runs, const Connector& connector,
                  const FanOutOutput& output) {
  const Call call = command_call(inv);
  std::vector<std::optional<json>> results(runs.size());
  for_each_host(runs, [&](HostRun& r) {
    if (open_host(r, inv.socket, connector)) {
      results[static_cast<size_t>(&r - runs.data())] = host_call(r, call.op, call.params);
    }
    // Nothing more to ask: keep at most one ssh per worker, not one per host.
    r.conn.reset();
  });
  if (inv.output == Output::json) {
    json out = json::object();
    for (size_t i = 0; i < runs.size(); ++i) {
      HostRun& r = runs[i];
      if (results[i]) {
        auto part = output.shown_part(call.op, *results[i]);
        if (part) {
          out[r.name()] = std::move(*part);
          continue;
        }
        r.failed(part.take_error(), false);
      }
      out[r.name()] = json{{"error", {{"code", errc_name(r.error->code)}, {"message", r.error->message}}},
                           {"unreachable", r.unreachable}};
    }
    const int st = output.out(format_json(out));
    return st != kFanOutOk ? st : worst_exit(runs);
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    HostRun& r = runs[i];
    if (const int st = output.out((i == 0 ? "== " : "\n== ") + core::printable(r.name()) + "\n"); st != kFanOutOk)
      return st;
    if (results[i]) {
      auto text = output.render(inv, call.op, *results[i]);
      if (text) {
        if (const int st = output.out(*text); st != kFanOutOk) return st;
        continue;
      }
      r.failed(text.take_error(), false);
    }
    output.fail(kFanOutRefused, r.describe(), true);
  }
  return worst_exit(runs);
}

}  // namespace

int fan_out(const Invocation& inv, const std::vector<Host>& hosts, bool narrow, const Connector& connector,
            const FanOutOutput& output) {
  std::vector<HostRun> runs(hosts.size());
  for (size_t i = 0; i < runs.size(); ++i) runs[i].host = &hosts[i];
  return inv.fault ? fan_out_apply(inv, runs, connector, narrow, output) : fan_out_other(inv, runs, connector, output);
}

}  // namespace fl::cli
