#!/usr/bin/env bash
# One number from an fl-chat-client log (one JSON object a line), for an exec probe:
#
#   chat-stat.sh LOG p99                 p99 delivery latency (ms) of the last interval
#   chat-stat.sh LOG in-half NODE...     messages received from NODEs' servers over the
#                                        messages this client's users sent times its users:
#                                        1.0 when every user received every message of its
#                                        half (only this client sends through NODEs)
#   chat-stat.sh LOG field NAME          a number of the last interval (disconnects, connected)
#   chat-stat.sh LOG since-all-connected
#                                        seconds since the last interval that ended with
#                                        every user connected (0: the last one did)
#   chat-stat.sh LOG cross NODE... --expect N
#                                        messages received from NODEs over N per second
#
# Exit status 1 (no number) when the log has no complete interval yet or the interval
# measured nothing: the probe's sample then fails rather than reads as 0.
set -euo pipefail
log=$1 what=$2
shift 2
expect=0
origins=()
while (($#)); do
	case $1 in
	--expect) expect=$2; shift 2 ;;
	*) origins+=("$1"); shift ;;
	esac
done
# The last complete interval line: the client writes whole lines, but a read may catch the
# newest one half written.
if [[ $what == since-all-connected ]]; then
	# The whole log: the last interval with all users connected may be long ago.
	grep -a '^{"type":"interval"' -- "$log" | grep -a '}$' |
		jq -ers '(last.t) - ([.[] | select(.connected == .users)] | last.t // first.t - first.elapsed_s)'
	exit
fi
line=$(tail -c 65536 -- "$log" 2>/dev/null | grep -a '^{"type":"interval"' | grep -a '}$' | tail -n 1) || exit 1
[[ -n $line ]] || exit 1
origins_json=$(printf '%s\n' "${origins[@]}" | jq -R . | jq -sc .)
jq -er --argjson o "$origins_json" --arg what "$what" --argjson expect "$expect" '
  def from_origins: [.received_by_origin[$o[]] // 0] | add;
  if $what == "p99" then .latency_ms.p99
  elif $what == "in-half" then (if .sent > 0 and .users > 0 then from_origins / (.sent * .users) else null end)
  elif $what == "field" then .[$o[0]]
  elif $what == "cross" then (if $expect > 0 then from_origins / ($expect * .interval_s) else null end)
  else error("unknown statistic " + $what) end
  | if . == null then error("nothing measured") else . end' <<<"$line"
