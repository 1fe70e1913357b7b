#include "cli/watch.h"

#include <cstdio>
#include <exception>
#include <ctime>

#include "core/printable.h"

namespace fl::cli {

using json = nlohmann::json;
using core::printable;

namespace {

std::string utc_ms(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

// Names, targets and a refusal's message carry other people's bytes (core/printable.h).
std::string str(const json& e, const char* key) {
  auto it = e.find(key);
  return it != e.end() && it->is_string() ? printable(it->get<std::string>()) : std::string();
}

// A daemon that has been waiting this long is still there; the bound only turns a silent,
// dead connection into an error eventually.
constexpr std::chrono::milliseconds kForever{8ll * 24 * 3600 * 1000};

}  // namespace

std::string format_event(const json& e) {
  std::string out = utc_ms(e.value("time_unix_ms", int64_t{0})) + " #" + std::to_string(e.value("seq", uint64_t{0})) +
                    " " + str(e, "type");
  if (auto id = e.find("fault"); id != e.end() && id->is_number_unsigned()) {
    out += " fault " + std::to_string(id->get<uint64_t>());
    if (std::string n = str(e, "name"); !n.empty()) out += " (" + n + ")";
  }
  if (std::string k = str(e, "kind"); !k.empty()) out += " " + k;
  if (auto t = e.find("targets"); t != e.end() && t->is_array() && !t->empty()) {
    std::string list;
    for (const auto& x : *t)
      if (x.is_string()) list += (list.empty() ? "" : ",") + printable(x.get<std::string>());
    out += " on " + list;
  }
  if (auto c = e.find("caller"); c != e.end() && c->is_object())
    out += " by uid " + std::to_string(c->value("uid", 0u)) + " pid " + std::to_string(c->value("pid", 0));
  if (std::string code = str(e, "code"); !code.empty()) out += ": " + code;
  if (std::string d = str(e, "detail"); !d.empty()) out += ": " + d;
  if (str(e, "type") == "applied") {
    char took[48];
    std::snprintf(took, sizeof took, " (%.1f ms)", static_cast<double>(e.value("duration_us", uint64_t{0})) / 1000.0);
    out += took;
  }
  return out + "\n";
}

Status run_events(Client& client, const EventsOptions& opts, std::ostream& out) {
  json params = json::object();
  if (opts.since) params["since"] = *opts.since;
  if (opts.limit) params["limit"] = *opts.limit;
  if (opts.follow) params["follow"] = true;
  auto print = [&](const json& result) -> Status {
    auto evs = result.find("events");
    if (evs == result.end() || !evs->is_array())
      return make_error(Errc::internal, "malformed reply from faultlined: no \"events\" array");
    for (const auto& e : *evs) {
      // One odd event (a member of an unexpected type) must not end a long --follow.
      std::string line;
      try {
        line = opts.json ? e.dump(-1, ' ', false, json::error_handler_t::replace) + "\n" : format_event(e);
      } catch (const std::exception& ex) {
        line = std::string("(an event faultctl cannot show: ") + ex.what() + ")\n";
      }
      out << line;
    }
    out.flush();
    if (!out) return make_error(Errc::internal, "cannot write to stdout");
    return {};
  };
  auto first = client.call("events", params);
  if (!first) return first.take_error();
  FL_TRY(print(*first));
  while (opts.follow) {
    auto more = client.next(kForever);
    if (!more) return more.take_error();
    FL_TRY(print(*more));
  }
  return {};
}

Status run_wait(Client& client, const WaitOptions& opts, std::ostream& out) {
  json params = {{"fault", opts.fault}};
  if (opts.timeout) params["timeout_ms"] = opts.timeout->count();
  // The daemon keeps the time; ours only has to outlast its answer.
  auto wait_for = opts.timeout ? *opts.timeout + std::chrono::seconds(30) : kForever;
  auto r = client.call("wait", params, wait_for);
  if (!r) return r.take_error();
  auto f = r->find("fault");
  if (f == r->end() || !f->is_object()) return make_error(Errc::internal, "malformed reply from faultlined: no \"fault\"");
  if (opts.json) {
    out << f->dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::string name = f->value("name", "");
    out << "fault " << f->value("id", uint64_t{0}) << (name.empty() ? "" : " (" + printable(name) + ")") << " "
        << printable(f->value("state", "?")) << "\n";
  }
  out.flush();
  if (!out) return make_error(Errc::internal, "cannot write to stdout");
  return {};
}

}  // namespace fl::cli
