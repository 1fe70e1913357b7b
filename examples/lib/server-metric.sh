#!/usr/bin/env bash
# One metric of a chat server on the lab, for an exec probe (the runner runs on the host; the
# server listens inside the lab):
#
#   server-metric.sh NODE METRIC [DIVISOR]     e.g. server-metric.sh a process_resident_memory_bytes 1048576
#   server-metric.sh NODE METRIC --rate        a counter's increase per second since the last
#                                              call (state in ./.rate-NODE-METRIC; the first
#                                              call prints nothing)
#
# Uses $LAB (default fl-lab) and $FAULTCTL (default faultctl). Exit status 1 (no number) when
# the server cannot be read.
set -euo pipefail
node=$1 metric=$2 div=${3:-1}
lab=${LAB:-fl-lab}
fc=${FAULTCTL:-faultctl}
addr=$("$fc" -o json lab status --name "$lab" | jq -er --arg n "$node" '.nodes[] | select(.node == $n) | .ipv4')
value=$("$fc" lab exec --name "$lab" "$node" -- curl -sf --max-time 1 "http://$addr:9000/metrics" |
	awk -v m="$metric" '$1 == m { print $2; found = 1 } END { exit !found }')
if [[ $div != --rate ]]; then
	awk -v v="$value" -v d="$div" 'BEGIN { print v / d }'
	exit
fi
state=./.rate-$node-$metric
now=$(date +%s.%N)
prev=$(cat -- "$state" 2>/dev/null || true)
echo "$now $value" >"$state"
[[ -n $prev ]] || exit 1
awk -v p="$prev" -v now="$now" -v v="$value" 'BEGIN { split(p, a, " "); print (v - a[2]) / (now - a[1]) }'
