#include "daemon/events.h"

#include <chrono>
#include <exception>

#include <spdlog/spdlog.h>

namespace fl::daemon {

const char* event_type_name(EventType t) {
  switch (t) {
    case EventType::applied: return "applied";
    case EventType::healed: return "healed";
    case EventType::expired: return "expired";
    case EventType::gone: return "gone";
    case EventType::refused: return "refused";
    case EventType::lease_late: return "lease_late";
  }
  return "unknown";
}

nlohmann::json Event::to_json() const {
  nlohmann::json j = {{"seq", seq}, {"time_unix_ms", unix_ms}, {"type", event_type_name(type)}};
  if (fault_id) j["fault"] = fault_id;
  if (!name.empty()) j["name"] = name;
  if (!kind.empty()) j["kind"] = kind;
  if (!targets.empty()) j["targets"] = targets;
  if (caller) j["caller"] = {{"uid", caller->uid}, {"pid", caller->pid}};
  if (!code.empty()) j["code"] = code;
  if (!detail.empty()) j["detail"] = detail;
  if (type == EventType::applied || type == EventType::lease_late) j["duration_us"] = duration_ns / 1000;
  return j;
}

namespace {

// What a client sends ends up in events (a refused heal of a 1 MiB "name" carries it in its
// message): every record of it is kept, written and pushed, so each text has a bound.
void clip(std::string& s, size_t max) {
  if (s.size() <= max) return;
  s.resize(max);
  s += "...";
}

}  // namespace

uint64_t EventBus::emit(Event e) {
  clip(e.name, 256);
  clip(e.kind, 64);
  clip(e.code, 64);
  clip(e.detail, 1024);
  if (e.targets.size() > 64) {
    const size_t more = e.targets.size() - 64;
    e.targets.resize(64);
    e.targets.push_back("(" + std::to_string(more) + " more)");
  }
  for (auto& t : e.targets) clip(t, 256);
  e.seq = next_seq_++;
  e.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  for (auto& l : listeners_) {
    try {
      l(e);
    } catch (const std::exception& ex) {
      spdlog::error("event {} ({}): a listener failed: {}", e.seq, event_type_name(e.type), ex.what());
    }
  }
  return e.seq;
}

}  // namespace fl::daemon
