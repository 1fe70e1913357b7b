#!/usr/bin/env bash
# What each half's users saw, from their load clients' logs and the partition's window in
# report.json:
#
#   summary.sh REPORT LEFT.jsonl RIGHT.jsonl HALF_RATE USERS
#
# HALF_RATE is the messages per second one half sends, USERS the users per half. For each
# half: the messages from the other half received while the partition was on (only
# intervals wholly inside it, from 0.5 s after its start), and how long after the heal the
# first interval came in which the other half's messages arrived at 90% of their rate or more.
set -euo pipefail
report=$1 left=$2 right=$3 rate=$4 users=$5
read -r from to < <(jq -r '.started_unix_ms as $t0 | .faults[0] |
	"\(($t0 + .start_ms) / 1000) \(($t0 + .end_ms) / 1000)"' "$report")
half() { # NAME LOG OWN OTHER(json array)
	jq -rs --arg name "$1" --arg own "$3" --argjson other "$4" --argjson from "$from" --argjson to "$to" \
		--argjson rate "$rate" --argjson users "$users" '
	  [.[] | select(.type == "interval") | . + {
	     start: (.t - .interval_s),
	     cross: ([.received_by_origin[$other[]] // 0] | add)}] as $iv
	  | ($iv | map(select(.start >= $from + 0.5 and .t <= $to))) as $during
	  | ($iv | map(select(.start >= $to and .cross >= 0.9 * $rate * $users * .interval_s)) | first) as $back
	  | "\($name) (users on \($own)): \($during | map(.cross) | add // 0) messages from \($other | join(","))"
	    + " during the partition (\($during | length) s measured); "
	    + (if $back then "at \(($back.cross / ($rate * $users * $back.interval_s) * 100) | floor)% of their rate again"
	         + " \((($back.t - $to) * 10 | ceil) / 10) s after the heal"
	       else "not back at 90% of their rate by the end of the log" end)' "$2"
}
half left "$left" a,b,c '["d","e","f"]'
half right "$right" d,e,f '["a","b","c"]'
