// The protocol's operations, in one table: the codec's list of known ops, the daemon's
// authorisation and routing, and faultctl's commands all read it, so an op is added here once
// and a place that forgets it fails to build (the dispatcher's switches have no default) or
// fails tests/unit/ops_test.cpp.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace fl::proto {

enum class Op { hello, apply, list, get, heal, stats, status, reset, events, wait };

struct OpInfo {
  Op op;
  std::string_view name;  // on the wire: {"op": name}
  // Changes kernel state: needs root or the faultline group (docs/SAFETY.md), and a refusal is
  // recorded as an event.
  bool mutating;
  // Answered by the event loop at once, from what it holds; the others wait for the kernel
  // worker (daemon/dispatch.h).
  bool on_loop;
  // The faultctl command that sends this op as it is, and its line in `faultctl --help`; empty
  // when none does (hello is sent before every command; apply by partition, loss, ... which
  // build a fault, see cli/args.cpp).
  std::string_view verb;
  std::string_view summary;
};

inline constexpr OpInfo kOpTable[] = {
    {Op::hello, "hello", false, true, "", ""},
    {Op::apply, "apply", true, false, "", ""},
    {Op::list, "list", false, false, "list", "list active faults"},
    {Op::get, "get", false, false, "get", "show one fault"},
    {Op::heal, "heal", true, false, "heal", "remove a fault now, or all of them"},
    {Op::stats, "stats", false, false, "stats", "show fresh packet counters"},
    {Op::status, "status", false, true, "status", "show the daemon's version, lease, kernel features and faults"},
    {Op::reset, "reset", true, false, "reset", "reset matching TCP connections now"},
    {Op::events, "events", false, true, "events", "show what happened: applies, heals, expiries, refusals"},
    {Op::wait, "wait", false, false, "wait", "wait until a fault has ended"},
};

// The table is indexed by Op: op_info(Op::x).op == Op::x.
consteval bool op_table_in_order() {
  for (size_t i = 0; i < std::size(kOpTable); ++i)
    if (static_cast<size_t>(kOpTable[i].op) != i) return false;
  return true;
}
static_assert(op_table_in_order(), "kOpTable must list the ops in the order of enum Op");

constexpr const OpInfo& op_info(Op op) { return kOpTable[static_cast<size_t>(op)]; }

// nullptr for a name no op has.
constexpr const OpInfo* find_op(std::string_view name) {
  for (const auto& o : kOpTable)
    if (o.name == name) return &o;
  return nullptr;
}

// The names alone, in table order.
inline constexpr auto kOps = [] {
  std::array<std::string_view, std::size(kOpTable)> names{};
  for (size_t i = 0; i < names.size(); ++i) names[i] = kOpTable[i].name;
  return names;
}();

}  // namespace fl::proto
