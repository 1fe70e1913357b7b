#!/usr/bin/env bash
# What happened to the slow user, from report.json and its load client's log (--log-connects):
#
#   summary.sh REPORT SLOW.jsonl OVERFLOWS
#
# The server's side: its longest client queue (probe longest-queue-messages) grows while the
# limit is on and falls to 0 when the server cuts the slow user off at its bound; the first
# such fall is when the bound acted. OVERFLOWS is the server's overflow counter at the end
# (read by run.sh). The user's side: its first lost connection. The server's reset reaches
# it late: it waits behind the data already queued on the slowed link.
set -euo pipefail
report=$1 log=$2 overflows=$3
read -r t0 from to < <(jq -r '.started_unix_ms as $t0 | .faults[0] |
	"\($t0) \(($t0 + .start_ms) / 1000) \(($t0 + .end_ms) / 1000)"' "$report")
jq -r --argjson t0 "$t0" --argjson from "$from" --argjson to "$to" --arg overflows "$overflows" '
  [.probes[] | select(.name == "longest-queue-messages") | .series[] | select(.value != null)
   | . + {t: (($t0 + .t_ms) / 1000)}] as $s
  | [range(1; $s | length) | select($s[.].t >= $from and $s[.].t <= $to + 0.5
                                    and $s[. - 1].value > 0 and $s[.].value == 0) | $s[. - 1]] | first
  | "server: the slow user was cut off at the bound "
    + (if . then "about \(((.t - $from) * 10 | ceil) / 10) s after the limit began (longest queue \(.value) just before)"
       else "not while the limit was on (as far as the queue probe saw)" end)
    + "; overflow disconnects in all: \($overflows)"' "$report"
jq -rs --argjson from "$from" --argjson to "$to" '
  [.[] | select(.type == "disconnect" and .t >= $from)] as $d
  | "slow user: " + (if ($d | length) > 0
      then "first lost its connection \((($d[0].t - $from) * 10 | ceil) / 10) s after the limit began (\($d[0].error))"
      else "never lost its connection" end)' "$log"
