// Over 600 lines on purpose: faultctl's whole command line (every command's options, help and
// the checks that name an option), table-driven from one command table; the pieces are short
// and read best next to each other and to `faultctl --help`.
#include "cli/args.h"

#include <sys/un.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

#include <boost/program_options.hpp>

#include "cli/address_list.h"
#include "cli/matrix_file.h"
#include "cli/suggest.h"
#include "core/parse.h"
#include "core/validate.h"
#include "protocol/protocol.h"

namespace fl::cli {

namespace po = boost::program_options;
using json = nlohmann::json;

namespace {

// Name of the hidden option that collects positional arguments. It is registered, so PO would
// also accept it spelt as an option; parse_command() refuses that.
constexpr const char* kPositional = "positional-args";

using proto::Op;
using proto::op_info;

struct CommandInfo {
  const char* name;
  const char* synopsis;      // after "faultctl [GLOBAL OPTIONS] "
  std::string_view summary;  // one line, for the top-level help; an op's verb takes protocol/ops.h's
  const char* details;       // paragraphs for the command's help
  std::optional<Op> op;      // what the command sends; none for run, which drives several
};

// What every shaping command's help says about direction and kernel support. Macros, so that
// they join the string literals of kCommands at compile time.
#define FL_SHAPING_DIRECTION                                                                \
  "Shaping faults act where packets leave: without --direction they shape egress only.\n"
#define FL_NEEDS_NETEM                                                                      \
  FL_SHAPING_DIRECTION                                                                      \
  "Needs netem in the kernel (CONFIG_NET_SCH_NETEM); rate and loss work without it.\n\n"
#define FL_NETEM_FOR_SOME                                                                   \
  FL_SHAPING_DIRECTION                                                                      \
  "Delay, jitter, corrupt, duplicate and reorder need netem in the kernel\n"                 \
  "(CONFIG_NET_SCH_NETEM); rate and loss work without it.\n\n"

constexpr CommandInfo kCommands[] = {
    {"partition", "partition --side [NAME=]CIDR[,CIDR...] --side ... [--one-way] [OPTIONS]",
     "split nodes into sides that cannot reach each other",
     "Drops packets whose source and destination belong to different sides. An address may be\n"
     "in several sides (a bridge). With --one-way only packets from the first side to the\n"
     "others are dropped.\n\n"
     "The TCP connections a partition cuts hang until their own timeouts, as across a real\n"
     "network split. With --reset they are destroyed (SOCK_DESTROY) in each target as the\n"
     "partition starts, so both ends see a reset at once.\n\n"
     "A side's addresses are CIDRs, lab:[LAB/]NODE (a node of 'faultctl lab') or @FILE (one\n"
     "CIDR per line, '#' comments; @- reads stdin), comma-separated; --side NAME=@FILE and\n"
     "--side @FILE hold sets too large for one argument.\n\n"
     "Examples:\n"
     "  faultctl partition --side db=10.0.1.0/24 --side app=10.0.2.0/24 --for 30s\n"
     "  faultctl partition --side 10.0.0.1 --side 10.0.0.2,10.0.0.3 --one-way --proto tcp\n"
     "  faultctl partition --side a=10.0.1.0/24 --side b=10.0.2.0/24 --reset --target netns:node-a\n"
     "  faultctl partition --side lab:a,lab:b --side lab:c --target lab:a --target lab:b --for 1m\n"
     "  faultctl partition --side db=@db-nodes.txt --side app=10.0.1.0/24 --for 10m\n", Op::apply},
    {"loss", "loss PERCENT [--correlation PERCENT] [--seed N] [OPTIONS]",
     "drop a percentage of the matching packets",
     "Drops PERCENT (0 < PERCENT <= 100, \"30\" or \"30%\") of the packets that match the\n"
     "selectors, at random; --correlation makes consecutive decisions alike (bursts).\n"
     "A port (--sport, --dport) without --proto means TCP and UDP.\n\n"
     "Loss acts where packets leave: without --direction it drops on egress only, so a fault on\n"
     "every node judges each packet once, on its sender. With --direction both and targets at\n"
     "both ends a packet is judged twice (30 % becomes 51 %). The sender is not told of a drop:\n"
     "it looks like loss on the network.\n\n"
     "Examples:\n"
     "  faultctl loss 30 --dst 10.0.0.0/8 --proto udp --for 2m\n"
     "  faultctl loss 20 --dst 10.0.2.7 --dport 53 --for 7d\n"
     "  faultctl loss 5% --correlation 25 --seed 42 --target netns:pod-a\n", Op::apply},
    {"isolate", "isolate CIDR[,CIDR...] [OPTIONS]",
     "cut addresses off from every other address",
     "Drops traffic between the given addresses and every address outside them.\n\n"
     "Without --reset this is a node that went silent (powered off, cable pulled): its clients'\n"
     "connections hang until their own timeouts. With --reset the node's TCP connections in each\n"
     "target are destroyed as the isolation starts, so every client gets a reset at once and\n"
     "starts reconnecting, as when a pod dies; the reconnects then time out. Exempt traffic (SSH\n"
     "and DNS by default) keeps its connections.\n\n"
     "Examples:\n"
     "  faultctl isolate 10.0.0.7 --for 1m --name lonely-node\n"
     "  faultctl isolate 10.0.0.7 --reset --target netns:node-7 --for 1m\n", Op::apply},
    {"delay", "delay DURATION [--jitter DURATION] [--correlation PERCENT] [--distribution DIST] [OPTIONS]",
     "delay the matching packets",
     "Holds each matching packet for DURATION (\"100ms\", \"0.5ms\", \"250us\"; at most 60s).\n"
     "--jitter varies the delay by up to +-JITTER (at most DURATION, so no packet would need a\n"
     "negative delay); --correlation makes each packet's jitter follow the one before it, and\n"
     "--distribution (uniform, normal, pareto, paretonormal; default uniform) shapes it.\n\n"
     FL_NEEDS_NETEM
     "Examples:\n"
     "  faultctl delay 100ms --dst 10.0.2.0/24 --for 2m\n"
     "  faultctl delay 50ms --jitter 10ms --distribution normal --target netns:pod-a\n", Op::apply},
    {"rate", "rate RATE [--burst SIZE] [OPTIONS]", "limit the bandwidth of the matching packets",
     "Sends the matching packets at no more than RATE, in bits per second: 512kbit, 10mbit,\n"
     "1gbit (x1000; kibit, mibit, gibit are x1024). As in tc, bps, kbps, mbps and gbps are BYTES\n"
     "per second: 10mbps is 80mbit. A bare number is refused. --burst SIZE is how much may leave\n"
     "at once (1500, 32kb, 1mb: bytes, k = 1024; 1500 bytes to 64mb; default derived from RATE).\n\n"
     FL_SHAPING_DIRECTION
     "Works without netem (an HTB class).\n\n"
     "Examples:\n"
     "  faultctl rate 1mbit --dst 10.0.2.0/24\n"
     "  faultctl rate 100mbit --burst 64kb --dev eth0 --for 10m\n", Op::apply},
    {"corrupt", "corrupt PERCENT [OPTIONS]", "flip a bit in a percentage of the matching packets",
     "Flips one random bit in PERCENT (0 < PERCENT <= 100) of the matching packets, so that\n"
     "checksums fail at the receiver.\n\n"
     FL_NEEDS_NETEM
     "Example:\n"
     "  faultctl corrupt 1% --dst 10.0.2.0/24 --proto udp\n", Op::apply},
    {"duplicate", "duplicate PERCENT [OPTIONS]", "send a percentage of the matching packets twice",
     "Sends PERCENT (0 < PERCENT <= 100) of the matching packets twice.\n\n"
     FL_NEEDS_NETEM
     "Example:\n"
     "  faultctl duplicate 5 --dst 10.0.2.0/24\n", Op::apply},
    {"reorder", "reorder PERCENT --delay DURATION [--gap N] [OPTIONS]",
     "send some matching packets ahead of the others",
     "Delays the matching packets by DURATION but sends PERCENT of them at once, so those overtake\n"
     "the ones still waiting: netem cannot reorder without a delay. With --gap N, the N-1 packets\n"
     "after each one sent at once are always delayed, and only the Nth may go at once (with\n"
     "probability PERCENT).\n\n"
     FL_NEEDS_NETEM
     "Examples:\n"
     "  faultctl reorder 25 --delay 10ms --dst 10.0.2.0/24\n"
     "  faultctl reorder 50% --delay 5ms --gap 5\n", Op::apply},
    {"shape", "shape EFFECTS [OPTIONS]",
     "combine delay, rate, loss, corruption, duplication and reordering",
     "One fault that does several things to the matching packets. EFFECTS are the \"Shape\n"
     "options\" below, at least one; each means what it means for the single-purpose commands\n"
     "(see their --help). Loss is decided by faultline's BPF program before the packet is\n"
     "queued, as for 'faultctl loss'.\n\n"
     FL_NETEM_FOR_SOME
     "Examples:\n"
     "  faultctl shape --delay 40ms --jitter 5ms --rate 20mbit --loss 0.5 --dst 10.0.2.0/24\n"
     "  faultctl shape --rate 1mbit --loss 2 --loss-correlation 25 --for 10m\n", Op::apply},
    {"matrix", "matrix FILE [OPTIONS]",
     "give each pair of node groups its own delay, rate and loss",
     "Reads named sides and one profile per ordered pair of sides from FILE (\"-\" reads stdin),\n"
     "in YAML or JSON, and shapes the traffic from each side to another as its pair says. Pairs\n"
     "not listed are left alone. 2 to 8 sides; a side's addresses go in the file, so --src and\n"
     "--dst are not taken.\n\n"
     "  sides:                      # a map (order kept), or a list of {name: X, cidrs: [...]}\n"
     "    eu: [10.200.1.0/24, 10.200.9.7]\n"
     "    us: [10.200.2.0/24]\n"
     "    ap: 10.200.3.0/24,10.200.4.0/24     # a comma-separated string works too\n"
     "  pairs:\n"
     "    - {from: eu, to: us, delay: 80ms, jitter: 5ms, rate: 100mbit, loss: 0.1}\n"
     "    - {from: us, to: eu, delay: 80ms}\n"
     "    - {from: eu, to: ap, delay: 150ms, symmetric: true}   # and ap -> eu, the same\n\n"
     "Pair keys: from, to, symmetric (default false), delay, jitter, correlation, distribution,\n"
     "rate, burst, loss, loss-correlation, corrupt, duplicate, reorder, gap; values as for\n"
     "'faultctl shape'. Quote IPv6 addresses inside [...] lists.\n\n"
     FL_NETEM_FOR_SOME
     "Examples:\n"
     "  faultctl matrix wan.yaml --for 30m --target netns:node-1\n"
     "  generate-matrix | faultctl matrix - --name wan\n", Op::apply},
    {"reset", "reset SELECTORS|--all [--target TARGET...] [OPTIONS]",
     op_info(Op::reset).summary,
     "Destroys the established TCP connections that the selectors match, in each target, with\n"
     "SOCK_DESTROY: the local end fails with ECONNABORTED and the peer gets a RST (ECONNRESET),\n"
     "at once, as when the process at one end dies. Nothing stays in place afterwards, so new\n"
     "connections work at once. A connection matches when packets of it in either direction\n"
     "match, so --dst 10.0.0.7 takes every connection to and from 10.0.0.7. Connections with an\n"
     "exempt endpoint are left alone (SSH and DNS unless --no-default-exempt).\n"
     "A selector or --all is required: nothing resets a whole node by accident.\n"
     "Needs CONFIG_INET_DIAG_DESTROY in the kernel.\n\n"
     "Examples:\n"
     "  faultctl reset --dst 10.0.2.7 --dport 5432 --target netns:app-1\n"
     "  faultctl reset --src 10.0.1.0/24 --target pod:shop/cart-7d9f\n"
     "  faultctl reset --all --target netns:node-3\n", Op::reset},
    {"list", "list", op_info(Op::list).summary,
     "Columns: ID NAME KIND TARGETS EXPIRES MATCHED DROPPED EXEMPT, and DETAILS (what a shaping\n"
     "fault does) when the list has one. With -o json, a JSON array of fault objects.\n", Op::list},
    {"get", "get ID|NAME", op_info(Op::get).summary, "Shows a fault, active or recently ended.\n", Op::get},
    {"heal", "heal ID|NAME|--all", op_info(Op::heal).summary,
     "Removes the fault at once and prints the id of each fault healed.\n", Op::heal},
    {"stats", "stats [ID|NAME]", op_info(Op::stats).summary,
     "Reads the counters from the kernel now, for one fault or every active fault.\n", Op::stats},
    {"status", "status", op_info(Op::status).summary, "", Op::status},
    {"events", "events [--since SEQ] [--limit N] [--follow]", op_info(Op::events).summary,
     "Prints the events the daemon recorded, oldest first, one a line: time, sequence number,\n"
     "type (applied, healed, expired, gone, refused, lease_late), the fault, its targets and\n"
     "who asked (uid and pid). The record survives a daemon restart. With --follow, then\n"
     "prints each new event as it happens, until interrupted. With -o json, one JSON object a\n"
     "line.\n\n"
     "Examples:\n"
     "  faultctl events --limit 20\n"
     "  faultctl -o json events --follow\n", Op::events},
    {"run", "run [--dry-run] [--report-dir DIR] EXPERIMENT.yaml", "run an experiment: hypothesis, probes, faults, verdict",
     "Checks the steady state with the experiment's probes, applies its faults at their offsets\n"
     "(each with its duration, so the kernel ends it even if faultctl dies), observes, heals,\n"
     "checks recovery, and concludes: held, refuted, aborted or not_started. A probe that breaks\n"
     "an abort rule, SIGINT, SIGTERM or a lost daemon connection heal every fault at once.\n"
     "Writes DIR/report.json (default DIR: faultline-report-NAME). The file format is in\n"
     "docs/EXPERIMENTS.md; the whole file is checked before anything is contacted.\n\n"
     "Exit status: 0 held, 1 refuted, aborted or not started, 2 usage or invalid file.\n\n"
     "Examples:\n"
     "  faultctl run --dry-run docs/examples/experiment.yaml\n"
     "  faultctl run --report-dir /tmp/r docs/examples/experiment.yaml\n", std::nullopt},
    {"wait", "wait ID|NAME [--timeout DUR]", op_info(Op::wait).summary,
     "Returns when the fault has ended, and prints how (healed, expired or gone); at once if it\n"
     "has ended already. Exit status 0 when it ended, 4 when --timeout ran out first (the fault\n"
     "is left as it is), 1 when the daemon knows no such fault.\n\n"
     "Examples:\n"
     "  faultctl wait split\n"
     "  faultctl wait split --timeout 10m\n", Op::wait},
};

constexpr const CommandInfo* find_command(std::string_view name) {
  for (const auto& c : kCommands) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

// Every op with a verb in protocol/ops.h is a command here that sends it.
consteval bool every_verb_is_a_command() {
  for (const auto& o : proto::kOpTable) {
    if (o.verb.empty()) continue;
    const CommandInfo* c = find_command(o.verb);
    if (c == nullptr || c->op != o.op) return false;
  }
  return true;
}
static_assert(every_verb_is_a_command(), "an op's verb in protocol/ops.h has no command in kCommands");

bool is_shaping_cmd(std::string_view cmd) {
  return cmd == "delay" || cmd == "rate" || cmd == "corrupt" || cmd == "duplicate" || cmd == "reorder" ||
         cmd == "shape" || cmd == "matrix";
}

bool is_apply(std::string_view cmd) {
  const CommandInfo* c = find_command(cmd);
  return c != nullptr && c->op == Op::apply;
}

Error usage(std::string msg) { return make_error(Errc::invalid_argument, std::move(msg)); }

std::string hint(std::string_view cmd) {
  return cmd.empty() ? "\nTry 'faultctl --help'." : "\nTry 'faultctl " + std::string(cmd) + " --help'.";
}

constexpr const char* kSrcHelp =
    "source addresses: CIDRs, lab:[LAB/]NODE (a lab node's addresses) or @FILE (one CIDR per line, "
    "'-' for stdin), comma-separated";
constexpr const char* kDstHelp = "destination addresses, as for --src";

constexpr const char* kTargetHelp =
    "host, netns:NAME, netns-path:PATH, pid:PID, pod-uid:UID, container:ID, pod:NAMESPACE/NAME or "
    "lab:[LAB/]NODE (repeatable; default host)";

// Options are parsed as strings and converted with core/parse.h, so a bad value gets the same
// message the daemon would give, prefixed with the option that carried it.
po::options_description command_options(std::string_view cmd) {
  po::options_description all;
  if (cmd == "partition") {
    po::options_description o("Partition options");
    o.add_options()
        ("side", po::value<std::vector<std::string>>()->value_name("[NAME=]CIDRS"),
         "a side: its name (default s1, s2, ...) and addresses (CIDRs, lab:[LAB/]NODE or @FILE, "
         "comma-separated; or @FILE alone); at least two, repeatable")
        ("one-way", "drop only packets from the first side to the others")
        ("reset", "also destroy the TCP connections the partition cuts, so both ends see a reset");
    all.add(o);
  } else if (cmd == "loss") {
    po::options_description o("Loss options");
    o.add_options()
        ("correlation", po::value<std::string>()->value_name("PERCENT"),
         "how much each drop decision follows the previous one, 0 to under 100 (default 0)")
        ("seed", po::value<std::string>()->value_name("N"), "seed for reproducible decisions (decimal or 0x hex)");
    all.add(o);
  } else if (cmd == "delay" || cmd == "reorder" || cmd == "rate" || cmd == "shape") {
    po::options_description o(cmd == "shape" ? "Shape options (at least one)" : "Shaping options");
    auto add = o.add_options();
    if (cmd == "reorder" || cmd == "shape") {
      add("delay", po::value<std::string>()->value_name("DURATION"),
          cmd == "reorder" ? "how long the packets not sent at once wait (required)"
                           : "hold each packet this long (100ms, 0.5ms, 250us; at most 60s)");
    }
    if (cmd == "delay" || cmd == "shape") {
      add("jitter", po::value<std::string>()->value_name("DURATION"),
          "vary the delay by up to +-DURATION (at most the delay)")
         ("correlation", po::value<std::string>()->value_name("PERCENT"),
          "how much each packet's jitter follows the previous one's, 0 to under 100")
         ("distribution", po::value<std::string>()->value_name("DIST"),
          "uniform, normal, pareto or paretonormal (default uniform; needs --jitter)");
    }
    if (cmd == "shape") {
      add("rate", po::value<std::string>()->value_name("RATE"),
          "bandwidth: 512kbit, 10mbit, 1gbit (kbps, mbps are BYTES per second, as in tc)");
    }
    if (cmd == "rate" || cmd == "shape") {
      add("burst", po::value<std::string>()->value_name("SIZE"),
          "bytes that may leave at once: 1500, 32kb, 1mb (k = 1024; needs a rate)");
    }
    if (cmd == "shape") {
      add("loss", po::value<std::string>()->value_name("PERCENT"), "drop this share of the packets")
         ("loss-correlation", po::value<std::string>()->value_name("PERCENT"),
          "how much each drop decision follows the previous one, 0 to under 100 (needs --loss)")
         ("corrupt", po::value<std::string>()->value_name("PERCENT"), "flip a random bit in this share")
         ("duplicate", po::value<std::string>()->value_name("PERCENT"), "send this share twice")
         ("reorder", po::value<std::string>()->value_name("PERCENT"),
          "send this share at once, ahead of the delayed rest (needs --delay)");
    }
    if (cmd == "reorder" || cmd == "shape") {
      add("gap", po::value<std::string>()->value_name("N"),
          "only every Nth packet may be sent at once (needs reordering)");
    }
    all.add(o);
  }
  if (cmd == "isolate") {
    po::options_description o("Isolate options");
    o.add_options()("reset", "also destroy the isolated nodes' TCP connections, so their clients see a reset "
                             "at once instead of a hang");
    all.add(o);
  }
  if (cmd == "reset") {
    po::options_description sel("Selectors (which connections; a selector or --all is required)");
    sel.add_options()
        ("src", po::value<std::string>()->value_name("CIDRS"), kSrcHelp)
        ("dst", po::value<std::string>()->value_name("CIDRS"), kDstHelp)
        ("proto", po::value<std::string>()->value_name("PROTO"), "tcp or all (default all: only TCP has connections)")
        ("sport", po::value<std::string>()->value_name("P[-Q]"), "source port or range")
        ("dport", po::value<std::string>()->value_name("P[-Q]"), "destination port or range")
        ("all", "every TCP connection of the targets (no selector)")
        ("exempt", po::value<std::vector<std::string>>()->value_name("CIDR[/PROTO[:PORT]]"),
         "connections to or from this are never reset (repeatable; @FILE: one per line)")
        ("no-default-exempt", "do not exempt SSH (22), DNS (53) and 169.254.169.254");
    po::options_description tgt("Target (where)");
    tgt.add_options()("target", po::value<std::vector<std::string>>()->value_name("TARGET"), kTargetHelp);
    all.add(sel).add(tgt);
  }
  if (is_apply(cmd)) {
    const bool shaping = is_shaping_cmd(cmd);
    po::options_description sel("Selectors (which packets; default all)");
    auto add = sel.add_options();
    // A matrix's sides are its addresses; there is nothing left for --src and --dst to say.
    if (cmd != "matrix") {
      add("src", po::value<std::string>()->value_name("CIDRS"), kSrcHelp)
         ("dst", po::value<std::string>()->value_name("CIDRS"), kDstHelp);
    }
    add("proto", po::value<std::string>()->value_name("PROTO"), "tcp, udp, icmp or all (default all)")
        ("sport", po::value<std::string>()->value_name("P[-Q]"),
         "source port or range: TCP and UDP, or only the one --proto names")
        ("dport", po::value<std::string>()->value_name("P[-Q]"),
         "destination port or range: TCP and UDP, or only the one --proto names")
        ("direction", po::value<std::string>()->value_name("DIR"),
         shaping || cmd == "loss" ? "ingress, egress or both (default egress)"
                                  : "ingress, egress or both (default both)")
        ("new-only", "only new TCP connections (SYN without ACK); established ones keep working")
        ("exempt", po::value<std::vector<std::string>>()->value_name("CIDR[/PROTO[:PORT]]"),
         "traffic to or from this is never touched (repeatable; @FILE: one per line)")
        ("no-default-exempt", "do not exempt SSH (22), DNS (53) and 169.254.169.254");
    po::options_description tgt("Target (where)");
    tgt.add_options()
        ("target", po::value<std::vector<std::string>>()->value_name("TARGET"), kTargetHelp)
        ("dev", po::value<std::vector<std::string>>()->value_name("IFACE"),
         "interface (repeatable; default every non-loopback interface of each target)");
    po::options_description life("Lifetime");
    life.add_options()
        ("for", po::value<std::string>()->value_name("DURATION"),
         "500ms, 30s, 10m, 2h, 1h30m, 7d (default 5m, at most 7d)")
        ("name", po::value<std::string>()->value_name("NAME"), "name to refer to the fault by");
    all.add(sel).add(tgt);
    if (shaping) {
      po::options_description q("Qdisc");
      q.add_options()("replace-root",
                      "replace an interface's root qdisc that faultline would otherwise refuse to touch; "
                      "it is restored when the last shaping fault there ends");
      all.add(q);
    }
    all.add(life);
  }
  if (cmd == "heal") {
    po::options_description o("Heal options");
    o.add_options()("all", "heal every active fault");
    all.add(o);
  }
  if (cmd == "events") {
    po::options_description o("Events options");
    o.add_options()("since", po::value<std::string>()->value_name("SEQ"), "only events after this sequence number")(
        "limit", po::value<std::string>()->value_name("N"), "at most the N newest recorded events (1-1000, default 100)")(
        "follow", "then print every new event as it happens, until interrupted");
    all.add(o);
  }
  if (cmd == "wait") {
    po::options_description o("Wait options");
    o.add_options()("timeout", po::value<std::string>()->value_name("DUR"),
                    "give up after this long (exit status 4); default: wait as long as it takes");
    all.add(o);
  }
  if (cmd == "run") {
    po::options_description o("Run options");
    o.add_options()("dry-run", "print the plan and touch nothing (no daemon, no probe)")(
        "report-dir", po::value<std::string>()->value_name("DIR"), "where report.json goes (created if missing)");
    all.add(o);
  }
  po::options_description common("Options");
  common.add_options()("help,h", "show this help");
  all.add(common);
  return all;
}

std::string command_help(const CommandInfo& c) {
  std::ostringstream out;
  std::string summary(c.summary);
  summary[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(summary[0])));
  out << "Usage: faultctl [--socket PATH] [-o table|json] " << c.synopsis << "\n\n" << summary << ".\n";
  if (*c.details) out << "\n" << c.details;
  // An options_description without a caption starts with its own blank line.
  out << command_options(c.name);
  return out.str();
}

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

struct Parsed {
  po::variables_map vm;
  std::vector<std::string> positional;
};

Result<Parsed> parse_command(const std::string& cmd, const std::vector<std::string>& args) {
  po::options_description visible = command_options(cmd);
  po::options_description all;
  all.add(visible).add_options()(kPositional, po::value<std::vector<std::string>>());
  po::positional_options_description pos;
  pos.add(kPositional, -1);
  // No guessing: "--corr" must not silently mean --correlation, nor change meaning when an
  // option is added later.
  const int style = po::command_line_style::unix_style & ~po::command_line_style::allow_guessing;
  Parsed p;
  try {
    po::parsed_options parsed = po::command_line_parser(args).options(all).positional(pos).style(style).run();
    for (const auto& o : parsed.options) {
      if (o.string_key == kPositional && o.position_key < 0) {
        return usage(cmd + ": unrecognised option '--" + std::string(kPositional) + "'" + hint(cmd));
      }
    }
    po::store(parsed, p.vm);
    po::notify(p.vm);
  } catch (const po::unknown_option& e) {
    std::vector<std::string> names;
    for (const auto& o : visible.options()) names.push_back("--" + o->long_name());
    return usage(cmd + ": " + e.what() + did_you_mean(e.get_option_name(), names) + hint(cmd));
  } catch (const po::error& e) {
    return usage(cmd + ": " + e.what() + hint(cmd));
  }
  if (p.vm.count(kPositional)) p.positional = p.vm[kPositional].as<std::vector<std::string>>();
  return p;
}

const std::string* opt_string(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? &vm[name].as<std::string>() : nullptr;
}

std::vector<std::string> opt_strings(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::vector<std::string>>() : std::vector<std::string>{};
}

// Applies a parser to an option's value when the option was given, naming the option on error.
template <typename T, typename Parse>
Status parse_opt(const po::variables_map& vm, const char* name, Parse parse, T& dest) {
  const std::string* v = opt_string(vm, name);
  if (v == nullptr) return {};
  auto r = parse(*v);
  if (!r) return r.take_error().wrap(std::string("--") + name);
  dest = std::move(*r);
  return {};
}

}  // namespace

// The option that sets a FaultSpec or ResetSpec field, for this command; empty when none does.
std::string_view option_for_field(std::string_view cmd, std::string_view path) {
  static const std::pair<std::string_view, std::string_view> kFieldOption[] = {
      {"loss_percent", "PERCENT"}, {"correlation_percent", "--correlation"}, {"seed", "--seed"},
      {"one_way", "--one-way"},    {"match.src", "--src"},                   {"match.dst", "--dst"},
      {"match.proto", "--proto"},  {"match.sport", "--sport"},               {"match.dport", "--dport"},
      {"match.direction", "--direction"}, {"match.new_only", "--new-only"},  {"exempt", "--exempt"},
      {"targets", "--target"},     {"devs", "--dev"},                        {"duration", "--for"},
      {"name", "--name"},          {"replace_root", "--replace-root"},       {"reset", "--reset"},
      {"all", "--all"},
      {"shape.delay", "--delay"},  {"shape.jitter", "--jitter"},             {"shape.delay_correlation", "--correlation"},
      {"shape.distribution", "--distribution"}, {"shape.rate_bps", "--rate"}, {"shape.burst_bytes", "--burst"},
      {"shape.loss_percent", "--loss"}, {"shape.loss_correlation", "--loss-correlation"},
      {"shape.corrupt_percent", "--corrupt"}, {"shape.duplicate_percent", "--duplicate"},
      {"shape.reorder_percent", "--reorder"}, {"shape.reorder_gap", "--gap"},
  };
  // The single-purpose shaping commands take their main value as the positional argument.
  static const std::pair<std::string_view, std::pair<std::string_view, std::string_view>> kPositionalField[] = {
      {"delay", {"shape.delay", "DURATION"}},
      {"rate", {"shape.rate_bps", "RATE"}},
      {"corrupt", {"shape.corrupt_percent", "PERCENT"}},
      {"duplicate", {"shape.duplicate_percent", "PERCENT"}},
      {"reorder", {"shape.reorder_percent", "PERCENT"}},
  };
  auto matches = [&](std::string_view field) {
    return path.substr(0, field.size()) == field &&
           (path.size() == field.size() || path[field.size()] == '[' || path[field.size()] == '.');
  };
  std::string_view option;
  if (matches("sides") || matches("pairs")) {
    option = cmd == "partition" ? "--side" : cmd == "matrix" ? "FILE" : "CIDRS";
  } else {
    for (const auto& [field, opt] : kFieldOption) {
      if (matches(field)) option = opt;
    }
    for (const auto& [c, fo] : kPositionalField) {
      if (c == cmd && matches(fo.first)) option = fo.second;
    }
  }
  return option;
}

Error in_option_terms(std::string_view cmd, Error e) {
  std::string_view field = e.field;
  // The daemon's decoder and policy name fields from the request's root.
  for (std::string_view root : {"fault.", "reset."})
    if (field.starts_with(root)) field.remove_prefix(root.size());
  const std::string_view option = option_for_field(cmd, field);
  if (option.empty()) return e;
  // validate() and the decoder start the message with the path they blamed; say the option instead.
  for (const std::string& path : {e.field, std::string(field)}) {
    if (e.message.starts_with(path + ": ")) {
      e.message = std::string(option) + e.message.substr(path.size());
      break;
    }
  }
  return e;
}

namespace {

Result<uint32_t> parse_gap(std::string_view s) {
  auto r = core::parse_u64(s);
  if (!r) return r.take_error();
  if (*r > std::numeric_limits<uint32_t>::max()) {
    return make_error(Errc::invalid_argument, "invalid gap " + core::quote(s) + ": at most 4294967295");
  }
  return static_cast<uint32_t>(*r);
}

// The one positional argument of the single-purpose shaping commands.
Result<std::string> one_positional(const std::string& cmd, const Parsed& p, const char* name) {
  const auto& args = p.positional;
  if (args.empty()) return usage(cmd + ": missing " + name + hint(cmd));
  if (args.size() > 1) return usage(cmd + ": unexpected argument " + core::quote(args[1]) + hint(cmd));
  return args[0];
}

template <typename T, typename Parse>
Status parse_positional(const std::string& cmd, const Parsed& p, const char* name, Parse parse, T& dest) {
  auto arg = one_positional(cmd, p, name);
  if (!arg) return arg.take_error();
  auto r = parse(*arg);
  if (!r) return r.take_error().wrap(name);
  dest = std::move(*r);
  return {};
}

// --exempt, --no-default-exempt and --target, which faults and resets share.
Status parse_exempt_and_targets(const po::variables_map& vm, std::vector<core::Exemption>& exempt,
                                bool& default_exempt, std::vector<core::Target>& targets, AddressSources& src) {
  for (const auto& e : opt_strings(vm, "exempt")) {
    if (e.starts_with("@")) {
      auto text = src.read(e.substr(1));
      if (!text) return text.take_error().wrap("--exempt");
      auto rules = parse_exemption_lines(*text, e == "@-" ? "<stdin>" : e.substr(1));
      if (!rules) return rules.take_error().wrap("--exempt");
      exempt.insert(exempt.end(), rules->begin(), rules->end());
      continue;
    }
    auto r = core::parse_exemption(e);
    if (!r) return r.take_error().wrap("--exempt");
    exempt.push_back(*r);
  }
  default_exempt = vm.count("no-default-exempt") == 0;
  for (const auto& t : opt_strings(vm, "target")) {
    auto r = core::parse_target(t);
    if (!r) return r.take_error().wrap("--target");
    targets.push_back(std::move(*r));
  }
  return {};
}

Status build_shaping(const std::string& cmd, const Parsed& p, core::FaultSpec& spec, AddressSources& src) {
  const auto& vm = p.vm;
  core::ShapeProfile& sp = spec.shape;
  spec.replace_root = vm.count("replace-root") > 0;
  if (cmd == "delay") {
    spec.kind = core::FaultKind::delay;
    FL_TRY(parse_positional(cmd, p, "DURATION", core::parse_duration_us, sp.delay));
  } else if (cmd == "rate") {
    spec.kind = core::FaultKind::rate;
    FL_TRY(parse_positional(cmd, p, "RATE", core::parse_rate, sp.rate_bps));
  } else if (cmd == "corrupt") {
    spec.kind = core::FaultKind::corrupt;
    FL_TRY(parse_positional(cmd, p, "PERCENT", core::parse_percent, sp.corrupt_percent));
  } else if (cmd == "duplicate") {
    spec.kind = core::FaultKind::duplicate;
    FL_TRY(parse_positional(cmd, p, "PERCENT", core::parse_percent, sp.duplicate_percent));
  } else if (cmd == "reorder") {
    spec.kind = core::FaultKind::reorder;
    FL_TRY(parse_positional(cmd, p, "PERCENT", core::parse_percent, sp.reorder_percent));
    // Caught here rather than by validate so the message names the option to add.
    if (vm.count("delay") == 0) {
      return usage("reorder: missing --delay DURATION (netem reorders by sending some packets at once while "
                   "the rest wait the delay)" + hint(cmd));
    }
  } else if (cmd == "shape") {
    spec.kind = core::FaultKind::shape;
    if (!p.positional.empty()) {
      return usage("shape: unexpected argument " + core::quote(p.positional[0]) +
                   " (every effect is an option, like --delay 10ms)" + hint(cmd));
    }
  } else {  // matrix
    spec.kind = core::FaultKind::matrix;
    auto path = one_positional(cmd, p, "FILE");
    if (!path) return path.take_error();
    auto text = src.read(*path);
    if (!text) return usage("matrix: " + text.error().message);
    auto m = parse_matrix_file(*text, *path == "-" ? "<stdin>" : *path);
    if (!m) return usage("matrix: " + m.error().message);
    spec.sides = std::move(m->sides);
    spec.pairs = std::move(m->pairs);
    return {};
  }
  // Options each command registered; the rest are absent from vm.
  FL_TRY(parse_opt(vm, "delay", core::parse_duration_us, sp.delay));
  FL_TRY(parse_opt(vm, "jitter", core::parse_duration_us, sp.jitter));
  FL_TRY(parse_opt(vm, "correlation", core::parse_percent, sp.delay_correlation));
  FL_TRY(parse_opt(vm, "distribution", core::parse_distribution, sp.distribution));
  FL_TRY(parse_opt(vm, "rate", core::parse_rate, sp.rate_bps));
  FL_TRY(parse_opt(vm, "burst", core::parse_size, sp.burst_bytes));
  FL_TRY(parse_opt(vm, "loss", core::parse_percent, sp.loss_percent));
  FL_TRY(parse_opt(vm, "loss-correlation", core::parse_percent, sp.loss_correlation));
  FL_TRY(parse_opt(vm, "corrupt", core::parse_percent, sp.corrupt_percent));
  FL_TRY(parse_opt(vm, "duplicate", core::parse_percent, sp.duplicate_percent));
  FL_TRY(parse_opt(vm, "reorder", core::parse_percent, sp.reorder_percent));
  FL_TRY(parse_opt(vm, "gap", parse_gap, sp.reorder_gap));
  return {};
}

// Applies resolve_cidr_list to an option's value when the option was given, naming the option on
// error.
Status address_opt(const po::variables_map& vm, const char* name, AddressSources& src, std::vector<core::Cidr>& dest) {
  const std::string* v = opt_string(vm, name);
  if (v == nullptr) return {};
  auto r = resolve_cidr_list(*v, src);
  if (!r) return r.take_error().wrap(std::string("--") + name);
  dest = std::move(*r);
  return {};
}

Status build_fault(const std::string& cmd, const Parsed& p, core::FaultSpec& spec, AddressSources& src) {
  const auto& vm = p.vm;
  const auto& args = p.positional;
  spec = core::FaultSpec{};
  if (cmd == "partition") {
    spec.kind = core::FaultKind::partition;
    if (!args.empty()) {
      return usage("partition: unexpected argument " + core::quote(args[0]) +
                   " (sides are given with --side)" + hint(cmd));
    }
    const auto sides = opt_strings(vm, "side");
    for (size_t i = 0; i < sides.size(); ++i) {
      auto s = resolve_side(sides[i], i, src);
      if (!s) return s.take_error().wrap("--side");
      spec.sides.push_back(std::move(*s));
    }
    spec.one_way = vm.count("one-way") > 0;
    spec.reset = vm.count("reset") > 0;
  } else if (cmd == "loss") {
    spec.kind = core::FaultKind::loss;
    if (args.empty()) return usage("loss: missing PERCENT" + hint(cmd));
    if (args.size() > 1) return usage("loss: unexpected argument " + core::quote(args[1]) + hint(cmd));
    auto pct = core::parse_percent(args[0]);
    if (!pct) return pct.take_error().wrap("PERCENT");
    spec.loss_percent = *pct;
    FL_TRY(parse_opt(vm, "correlation", core::parse_percent, spec.correlation_percent));
    if (const std::string* seed = opt_string(vm, "seed")) {
      auto r = core::parse_u64(*seed);
      if (!r) return r.take_error().wrap("--seed");
      spec.seed = *r;
    }
  } else if (is_shaping_cmd(cmd)) {
    FL_TRY(build_shaping(cmd, p, spec, src));
  } else {
    spec.kind = core::FaultKind::isolate;
    if (args.empty()) return usage("isolate: missing CIDR[,CIDR...]" + hint(cmd));
    if (args.size() > 1) {
      return usage("isolate: unexpected argument " + core::quote(args[1]) + " (separate addresses with commas)" +
                   hint(cmd));
    }
    auto cidrs = resolve_cidr_list(args[0], src);
    if (!cidrs) return cidrs.take_error().wrap("CIDRS");
    spec.sides.push_back(core::Side{"", std::move(*cidrs)});
    spec.reset = vm.count("reset") > 0;
  }

  FL_TRY(address_opt(vm, "src", src, spec.match.src));
  FL_TRY(address_opt(vm, "dst", src, spec.match.dst));
  FL_TRY(parse_opt(vm, "proto", core::parse_proto, spec.match.proto));
  FL_TRY(parse_opt(vm, "sport", core::parse_port_range, spec.match.sport));
  FL_TRY(parse_opt(vm, "dport", core::parse_port_range, spec.match.dport));
  FL_TRY(parse_opt(vm, "direction", core::parse_direction, spec.match.direction));
  // The daemon's decoder decides the same for a request without a direction.
  core::normalize(spec, core::Given{.direction = vm.count("direction") > 0});
  spec.match.new_only = vm.count("new-only") > 0;
  FL_TRY(parse_exempt_and_targets(vm, spec.exempt, spec.default_exempt, spec.targets, src));
  spec.devs = opt_strings(vm, "dev");
  FL_TRY(parse_opt(vm, "for", core::parse_duration, spec.duration));
  if (const std::string* n = opt_string(vm, "name")) {
    FL_TRY_CTX(core::check_name(*n, "fault name"), "--name");
    spec.name = *n;
  }
  // The daemon validates again; doing it here turns a round trip into an immediate, local
  // error. validate() names FaultSpec fields; the user typed options, so say those.
  auto st = core::validate(spec);
  if (!st) return in_option_terms(cmd, st.take_error());
  return {};
}

Status build_reset(const Parsed& p, core::ResetSpec& spec, AddressSources& src) {
  const auto& vm = p.vm;
  const std::string cmd = "reset";
  if (!p.positional.empty()) {
    return usage("reset: unexpected argument " + core::quote(p.positional[0]) +
                 " (connections are chosen with --src, --dst, --sport and --dport)" + hint(cmd));
  }
  spec = core::ResetSpec{};
  FL_TRY(address_opt(vm, "src", src, spec.match.src));
  FL_TRY(address_opt(vm, "dst", src, spec.match.dst));
  FL_TRY(parse_opt(vm, "proto", core::parse_proto, spec.match.proto));
  FL_TRY(parse_opt(vm, "sport", core::parse_port_range, spec.match.sport));
  FL_TRY(parse_opt(vm, "dport", core::parse_port_range, spec.match.dport));
  spec.all = vm.count("all") > 0;
  const bool selector = vm.count("src") || vm.count("dst") || vm.count("sport") || vm.count("dport");
  if (!selector && !spec.all) {
    return usage("reset: give a selector (--src, --dst, --sport or --dport), or --all to reset every TCP "
                 "connection of the targets" + hint(cmd));
  }
  if (selector && spec.all) {
    return usage("reset: --all resets every TCP connection of the targets; leave it out to use selectors" +
                 hint(cmd));
  }
  FL_TRY(parse_exempt_and_targets(vm, spec.exempt, spec.default_exempt, spec.targets, src));
  auto st = core::validate_reset(spec);
  if (!st) return in_option_terms(cmd, st.take_error());
  return {};
}

// "7", "007" (both id 7) or a name. Ids are sent in canonical form so the daemon's string
// comparison cannot miss.
Result<std::string> parse_ref(const std::string& cmd, const std::string& s) {
  const bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    auto id = core::parse_u64(s);
    if (!id) return id.take_error().wrap(cmd + ": fault id");
    return std::to_string(*id);
  }
  FL_TRY_CTX(core::check_name(s, "fault name"), cmd);
  return s;
}

Status parse_global_value(Invocation& inv, const std::string& opt, const std::string& value, bool& socket_set) {
  if (opt == "--socket") {
    inv.socket = value;
    socket_set = true;
    return {};
  }
  inv.output_set = true;
  if (value == "table") {
    inv.output = Output::table;
  } else if (value == "json") {
    inv.output = Output::json;
  } else {
    return usage(opt + ": expected table or json, got " + core::quote(value) + hint(""));
  }
  return {};
}

constexpr const char* kLabCommand = "lab";

std::string unknown_global(const std::string& a) {
  std::vector<std::string> names(std::begin(kGlobalOptions), std::end(kGlobalOptions));
  const std::string opt = a.substr(0, a.find('='));
  std::string list;
  for (const char* o : {"--socket PATH", "-o/--output FMT", "--host SPEC", "--hosts FILE", "--ssh-config FILE",
                        "--no-narrow", "--version", "-h/--help"}) {
    list += (list.empty() ? "" : ", ") + std::string(o);
  }
  return "unrecognised option '" + a + "'" + did_you_mean(opt, names) + " (the global options, before the command, are " +
         list + "; a command's own options go after it)" + hint("");
}

// `faultctl [GLOBAL OPTIONS] lab ARGS` runs faultline-lab ARGS. The lab talks to no daemon, so
// --socket (and FAULTLINE_SOCKET) have nothing to say to it and are accepted; -o json is passed
// to `lab status`, the one lab command with JSON output, and refused elsewhere rather than
// ignored. --host/--hosts are refused by the caller (the lab is this machine's).
Status lab_invocation(Invocation& inv, const std::vector<std::string>& rest) {
  inv.lab_args = rest;
  if (rest.empty() || !inv.output_set) return {};
  const std::string& sub = rest[0];
  const bool help = std::find(rest.begin(), rest.end(), "--help") != rest.end() ||
                    std::find(rest.begin(), rest.end(), "-h") != rest.end();
  if (sub == "status") {
    inv.lab_args.insert(inv.lab_args.begin() + 1, {"-o", inv.output == Output::json ? "json" : "table"});
  } else if (inv.output == Output::json && !help && !sub.starts_with("-")) {
    return usage("-o json: 'faultctl lab " + sub + "' prints text only; of the lab commands only 'lab status' has "
                 "JSON output" + hint(""));
  }
  return {};
}

}  // namespace

std::string version_text(Output output) {
  if (output == Output::json) {
    return json{{"faultctl", FL_VERSION}, {"protocol", proto::kVersion}}.dump(2) + "\n";
  }
  return std::string("faultctl ") + FL_VERSION + " (protocol " + std::to_string(proto::kVersion) + ")\n";
}

std::string top_help() {
  std::ostringstream out;
  out << "Usage: faultctl [GLOBAL OPTIONS] COMMAND [ARGS...]\n\n"
         "Injects network faults (partitions, packet loss, isolation, delay, rate limits, corruption,\n"
         "duplication, reordering, latency matrices) through faultlined.\n\n"
         "Commands:\n";
  for (const auto& c : kCommands) {
    std::string name = c.name;
    name.resize(12, ' ');
    out << "  " << name << c.summary << "\n";
  }
  out << "\nGlobal options (before COMMAND):\n"
         "  --socket PATH       control socket (default $" << kSocketEnv << ", else\n"
         "                      " << kDefaultSocket << ")\n"
         "  --host [ssh://][USER@]HOST[:PORT]\n"
         "                      send the command to faultlined on HOST over ssh (repeatable)\n"
         "  --hosts FILE        one host per line, as for --host\n"
         "  --ssh-config FILE   ssh configuration for --host/--hosts\n"
         "  --no-narrow         send each host the whole partition, not only its own part\n"
         "                      (for hosts that route or bridge other nodes' traffic);\n"
         "                      with hosts, --socket is the remote daemons' socket\n"
         "  -o, --output FMT    table or json (default table); under json an error is\n"
         "                      {\"error\": {\"code\", \"message\", \"exit_status\"}} on stdout\n"
         "  --version           print faultctl's version and protocol version\n"
         "  -h, --help          show this help\n"
         "Global options work before every command, 'lab' included.\n\n"
         "Local lab: 'faultctl lab up|down|exec|status' (see 'faultctl lab --help').\n"
         "Run 'faultctl COMMAND --help' for the options of a command.\n\n"
         "Exit status: 0 done, 1 refused by the daemon, 2 usage error, 3 daemon unreachable.\n";
  return out.str();
}

Result<Invocation> parse_args(const std::vector<std::string>& args, const char* env_socket,
                              const ReadFile& read_file) {
  try {
    Invocation inv;
    bool socket_set = false;
    size_t i = 0;
    // Global options are scanned by hand: they must stop at the command, so that a command's
    // own options (and its --help) are never taken for global ones.
    for (; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a == "--") {
        ++i;
        break;
      }
      if (a.size() < 2 || a[0] != '-') break;
      if (a == "-h" || a == "--help") {
        inv.help = true;
        inv.help_text = top_help();
        return inv;
      }
      if (a == "--version") {
        inv.version = true;
        continue;
      }
      std::string opt, value;
      if (a == "--socket" || a == "-o" || a == "--output") {
        if (i + 1 >= args.size()) return usage("option '" + a + "' needs a value" + hint(""));
        opt = a == "-o" ? "--output" : a;
        value = args[++i];
      } else if (a.rfind("--socket=", 0) == 0 || a.rfind("--output=", 0) == 0) {
        opt = a.substr(0, a.find('='));
        value = a.substr(a.find('=') + 1);
      } else if (a.rfind("-o", 0) == 0) {
        opt = "--output";
        value = a.substr(2);
      } else {
        return usage(unknown_global(a));
      }
      FL_TRY(parse_global_value(inv, opt, value, socket_set));
    }
    if (!socket_set && env_socket != nullptr && *env_socket != '\0') inv.socket = env_socket;
    const char* socket_source = socket_set ? "--socket" : (env_socket && *env_socket ? kSocketEnv : "socket");
    if (inv.socket.empty()) return usage(std::string(socket_source) + ": empty path");
    if (inv.socket.size() >= sizeof(sockaddr_un::sun_path)) {
      return usage(std::string(socket_source) + ": path is " + std::to_string(inv.socket.size()) +
                   " bytes; a Unix socket path has at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1));
    }

    if (i >= args.size()) {
      if (inv.version) return inv;
      return usage("missing command" + hint(""));
    }
    if (inv.version) return usage("--version takes no command (got " + core::quote(args[i]) + ")" + hint(""));
    inv.command = args[i];
    const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
    if (inv.command == kLabCommand) {
      FL_TRY(lab_invocation(inv, rest));
      return inv;
    }
    const CommandInfo* info = find_command(inv.command);
    if (info == nullptr) {
      std::vector<std::string> names = {kLabCommand};
      for (const auto& c : kCommands) names.emplace_back(c.name);
      return usage("unknown command " + core::quote(inv.command) + did_you_mean(inv.command, names) + hint(""));
    }
    if (wants_help(rest)) {
      inv.help = true;
      inv.help_text = command_help(*info);
      return inv;
    }

    auto parsed = parse_command(inv.command, rest);
    if (!parsed) return parsed.take_error();
    const auto& pos = parsed->positional;
    const std::string& cmd = inv.command;
    AddressSources sources(read_file);

    if (is_apply(cmd)) {
      core::FaultSpec spec;
      FL_TRY(build_fault(cmd, *parsed, spec, sources));
      inv.fault = std::move(spec);
    } else if (cmd == "reset") {
      core::ResetSpec spec;
      FL_TRY(build_reset(*parsed, spec, sources));
      inv.reset = std::move(spec);
    } else if (cmd == "get") {
      if (pos.empty()) return usage("get: missing ID or NAME" + hint(cmd));
      if (pos.size() > 1) return usage("get: unexpected argument " + core::quote(pos[1]) + hint(cmd));
      auto ref = parse_ref(cmd, pos[0]);
      if (!ref) return ref.take_error();
      inv.ref = std::move(*ref);
    } else if (cmd == "heal") {
      inv.all = parsed->vm.count("all") > 0;
      if (inv.all && !pos.empty()) {
        return usage("heal: give ID|NAME or --all, not both (got " + core::quote(pos[0]) + " and --all)" + hint(cmd));
      }
      if (!inv.all && pos.empty()) return usage("heal: missing ID or NAME (or --all)" + hint(cmd));
      if (pos.size() > 1) return usage("heal: unexpected argument " + core::quote(pos[1]) + hint(cmd));
      if (!inv.all) {
        auto ref = parse_ref(cmd, pos[0]);
        if (!ref) return ref.take_error();
        inv.ref = std::move(*ref);
      }
    } else if (cmd == "stats") {
      if (pos.size() > 1) return usage("stats: unexpected argument " + core::quote(pos[1]) + hint(cmd));
      if (!pos.empty()) {
        auto ref = parse_ref(cmd, pos[0]);
        if (!ref) return ref.take_error();
        inv.ref = std::move(*ref);
      }
    } else if (cmd == "events") {
      if (!pos.empty()) return usage("events: unexpected argument " + core::quote(pos[0]) + hint(cmd));
      auto number = [&](const char* opt, uint64_t lo, uint64_t hi) -> Result<std::optional<uint64_t>> {
        if (!parsed->vm.count(opt)) return std::optional<uint64_t>{};
        const std::string v = parsed->vm[opt].as<std::string>();
        uint64_t n = 0;
        bool ok = !v.empty() && v.size() <= 19 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (ok) n = std::stoull(v);
        if (!ok || n < lo || n > hi)
          return usage("events: --" + std::string(opt) + " " + core::quote(v) + ": expected a number from " +
                       std::to_string(lo) + " to " + std::to_string(hi) + hint(cmd));
        return std::optional<uint64_t>{n};
      };
      auto since = number("since", 0, UINT64_MAX / 2);
      if (!since) return since.take_error();
      auto limit = number("limit", 1, 1000);
      if (!limit) return limit.take_error();
      inv.since = *since;
      inv.limit = *limit;
      inv.follow = parsed->vm.count("follow") > 0;
    } else if (cmd == "wait") {
      if (pos.empty()) return usage("wait: missing ID or NAME" + hint(cmd));
      if (pos.size() > 1) return usage("wait: unexpected argument " + core::quote(pos[1]) + hint(cmd));
      auto ref = parse_ref(cmd, pos[0]);
      if (!ref) return ref.take_error();
      inv.ref = std::move(*ref);
      if (parsed->vm.count("timeout")) {
        auto d = core::parse_duration(parsed->vm["timeout"].as<std::string>());
        if (!d) return usage("wait: --timeout: " + d.error().message + hint(cmd));
        if (d->count() <= 0 || *d > std::chrono::hours(24 * 7))
          return usage("wait: --timeout: must be more than 0 and at most 7d" + hint(cmd));
        inv.timeout = *d;
      }
    } else if (cmd == "run") {
      if (pos.empty()) return usage("run: missing EXPERIMENT file" + hint(cmd));
      if (pos.size() > 1) return usage("run: unexpected argument " + core::quote(pos[1]) + hint(cmd));
      inv.file = pos[0];
      inv.dry_run = parsed->vm.count("dry-run") > 0;
      if (const std::string* d = opt_string(parsed->vm, "report-dir")) {
        if (d->empty()) return usage("run: --report-dir: empty path" + hint(cmd));
        inv.report_dir = *d;
      }
    } else if (!pos.empty()) {  // list, status
      return usage(cmd + ": unexpected argument " + core::quote(pos[0]) + hint(cmd));
    }
    return inv;
  } catch (const std::exception& e) {
    // PO and the standard library may throw on paths we did not foresee; a usage error is the
    // honest answer, a crash is not.
    return usage(std::string("cannot parse the command line: ") + e.what());
  }
}

Call hello_call() { return Call{"hello", json{{"version", proto::kVersion}}}; }

Call command_call(const Invocation& inv) {
  Call c;
  if (inv.fault) {
    c.op = "apply";
    c.params["fault"] = proto::fault_spec_to_json(*inv.fault);
    return c;
  }
  if (inv.reset) {
    c.op = "reset";
    c.params["reset"] = proto::reset_spec_to_json(*inv.reset);
    return c;
  }
  const CommandInfo* info = find_command(inv.command);
  c.op = info != nullptr && info->op ? std::string(op_info(*info->op).name) : inv.command;
  if (inv.command == "heal" && inv.all) {
    c.params["all"] = true;
  } else if (!inv.ref.empty()) {
    c.params["fault"] = inv.ref;
  }
  return c;
}

}  // namespace fl::cli
