#include "fuzz/entries.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/parse.h"
#include "core/plan.h"
#include "core/validate.h"
#include "protocol/protocol.h"

namespace fl::fuzz {

namespace {

using proto::json;

// An invariant that does not hold is a finding like a memory error: abort so libFuzzer keeps the
// input, and the unit test that replays it dies with the same message.
[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz invariant broken: %s: %s\n", what, detail.c_str());
  std::abort();
}
#define FL_FUZZ_CHECK(cond, detail) \
  do {                              \
    if (!(cond)) fail(#cond, detail); \
  } while (0)

std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Every error a decoder returns goes out in a reply; producing it must never fail.
void encode_error(const Error& e) {
  FL_FUZZ_CHECK(!e.message.empty(), "empty error message");
  std::string line = proto::reply_error(std::nullopt, e);
  FL_FUZZ_CHECK(json::accept(line), line);
}

void fault_round_trip(const core::FaultSpec& spec) {
  json once = proto::fault_spec_to_json(spec);
  auto again = proto::fault_spec_from_json(once);
  FL_FUZZ_CHECK(again.ok(), again.ok() ? "" : again.error().message + " for " + once.dump());
  json twice = proto::fault_spec_to_json(*again);
  FL_FUZZ_CHECK(once == twice, once.dump() + " became " + twice.dump());
}

void reset_round_trip(const core::ResetSpec& spec) {
  json once = proto::reset_spec_to_json(spec);
  auto again = proto::reset_spec_from_json(once);
  FL_FUZZ_CHECK(again.ok(), again.ok() ? "" : again.error().message + " for " + once.dump());
  json twice = proto::reset_spec_to_json(*again);
  FL_FUZZ_CHECK(once == twice, once.dump() + " became " + twice.dump());
}

// What the daemon does with a valid fault before it touches the kernel.
void plan(const core::FaultSpec& spec) {
  core::SetNeeds needs = core::set_needs(spec);
  core::SlotBits bits;
  uint64_t next = 0;
  auto bit_for = [&next](const std::vector<core::Cidr>&) -> Result<uint64_t> {
    if (next >= 64) return make_error(Errc::resource_exhausted, "no bit left");
    return uint64_t{1} << next++;
  };
  if (!core::assign_set_bits(needs, bit_for, &bits).ok()) return;
  auto slots = core::plan_slots(spec, bits);
  FL_FUZZ_CHECK(!slots.empty(), "a valid fault planned into no slot");
  (void)core::exemptions_for(spec, {});
}

// No valid partition has a /0 in a side (validate.h says why).
void check_no_slash_zero_side(const core::FaultSpec& spec) {
  if (spec.kind != core::FaultKind::partition) return;
  for (const auto& side : spec.sides) {
    for (const auto& c : side.cidrs) {
      FL_FUZZ_CHECK(c.prefix != 0, "a /0 in a side of a valid partition: " + proto::fault_spec_to_json(spec).dump());
    }
  }
}

void validate_fault(core::FaultSpec spec) {
  auto st = core::validate(spec);
  if (!st.ok()) {
    encode_error(st.error());
    return;
  }
  check_no_slash_zero_side(spec);
  plan(spec);
  // What the daemon journals and lists must decode to a fault that is still valid: a restart
  // replays the journal through the same codec.
  auto again = proto::fault_spec_from_json(proto::fault_spec_to_json(spec));
  FL_FUZZ_CHECK(again.ok(), again.ok() ? "" : again.error().message);
  auto st2 = core::validate(*again);
  FL_FUZZ_CHECK(st2.ok(), st2.ok() ? "" : st2.error().message);
}

}  // namespace

void protocol_one(const uint8_t* data, size_t size) {
  std::optional<uint64_t> id;
  auto req = proto::parse_request(as_text(data, size), &id);
  if (!req.ok()) {
    encode_error(req.error());
    return;
  }
  FL_FUZZ_CHECK(req->body.is_object(), req->body.dump());
  (void)proto::reply_ok(req->id, req->body);
  if (auto f = req->body.find("fault"); f != req->body.end()) {
    auto spec = proto::fault_spec_from_json(*f);
    if (spec.ok()) {
      fault_round_trip(*spec);
    } else {
      FL_FUZZ_CHECK(spec.error().code != Errc::internal, spec.error().message);
      encode_error(spec.error());
    }
  }
  if (auto r = req->body.find("reset"); r != req->body.end()) {
    auto spec = proto::reset_spec_from_json(*r);
    if (spec.ok()) {
      reset_round_trip(*spec);
    } else {
      FL_FUZZ_CHECK(spec.error().code != Errc::internal, spec.error().message);
      encode_error(spec.error());
    }
  }
  // The client side reads the daemon's replies with the same JSON reader.
  (void)proto::parse_reply(as_text(data, size), req->id);
}

void validate_one(const uint8_t* data, size_t size) {
  // Through parse_request, as the daemon reads it: its depth limit is part of what keeps the
  // decoders safe.
  auto req = proto::parse_request(as_text(data, size), nullptr);
  if (!req.ok()) return;
  if (auto r = req->body.find("reset"); r != req->body.end() && r->is_object()) {
    auto spec = proto::reset_spec_from_json(*r);
    if (!spec.ok()) return;
    auto st = core::validate_reset(*spec);
    if (!st.ok()) encode_error(st.error());
    return;
  }
  auto f = req->body.find("fault");
  if (f == req->body.end()) return;
  auto spec = proto::fault_spec_from_json(*f);
  if (!spec.ok()) return;
  validate_fault(std::move(*spec));
}

void parse_one(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const uint8_t which = data[0];
  const std::string_view s = as_text(data + 1, size - 1);
  switch (which % 16) {
    case 0: {
      auto c = core::parse_cidr(s);
      if (!c.ok()) break;
      auto back = core::parse_cidr(c->str());
      FL_FUZZ_CHECK(back.ok() && *back == *c, c->str());
      break;
    }
    case 1: {
      auto l = core::parse_cidr_list(s);
      if (l.ok()) FL_FUZZ_CHECK(!l->empty(), std::string(s));
      break;
    }
    case 2: {
      auto d = core::parse_duration(s);
      if (!d.ok()) break;
      FL_FUZZ_CHECK(d->count() >= 0, std::to_string(d->count()));
      const std::string text = core::format_duration(*d);
      auto back = core::parse_duration(text);
      FL_FUZZ_CHECK(back.ok() && *back == *d, text + " for " + std::to_string(d->count()) + "ms");
      break;
    }
    case 3: {
      auto d = core::parse_duration_us(s);
      if (!d.ok()) break;
      FL_FUZZ_CHECK(d->count() >= 0, std::to_string(d->count()));
      const std::string text = core::format_duration_us(*d);
      auto back = core::parse_duration_us(text);
      FL_FUZZ_CHECK(back.ok() && *back == *d, text + " for " + std::to_string(d->count()) + "us");
      break;
    }
    case 4: {
      auto r = core::parse_rate(s);
      if (!r.ok()) break;
      const std::string text = core::format_rate(*r);
      auto back = core::parse_rate(text);
      FL_FUZZ_CHECK(back.ok() && *back == *r, text + " for " + std::to_string(*r) + "bit");
      break;
    }
    case 5: (void)core::parse_size(s); break;
    case 6: {
      auto p = core::parse_percent(s);
      if (p.ok()) FL_FUZZ_CHECK(*p >= 0 && *p <= 100, std::to_string(*p));
      break;
    }
    case 7: {
      auto p = core::parse_port_range(s);
      if (!p.ok()) break;
      auto back = core::parse_port_range(p->str());
      FL_FUZZ_CHECK(p->str() == "any" || (back.ok() && back->str() == p->str()), p->str());
      break;
    }
    case 8: {
      auto e = core::parse_exemption(s);
      if (!e.ok()) break;
      auto back = core::parse_exemption(e->str());
      FL_FUZZ_CHECK(back.ok() && back->str() == e->str(), e->str());
      break;
    }
    case 9: (void)core::parse_target(s); break;
    case 10: (void)core::parse_side(s, which / 16); break;
    case 11: {
      const std::string q = core::quote(s);
      for (unsigned char c : q) FL_FUZZ_CHECK(c >= 0x20 && c < 0x7f, q);
      break;
    }
    case 12: (void)core::check_name(s, "name"); break;
    case 13: (void)core::parse_u64(s); break;
    case 14: (void)core::parse_distribution(s); (void)core::parse_kind(s); break;
    case 15: (void)core::parse_proto(s); (void)core::parse_direction(s); break;
  }
}

}  // namespace fl::fuzz
