#!/usr/bin/env bash
# One metric of a chat server on the lab, for an exec probe (the runner runs on the host; the
# server listens inside the lab):
#
#   server-metric.sh NODE METRIC [DIVISOR]     e.g. server-metric.sh a process_resident_memory_bytes 1048576
#
# Uses $LAB (default fl-lab) and $FAULTCTL (default faultctl). Exit status 1 (no number) when
# the server cannot be read.
set -euo pipefail
node=$1 metric=$2 div=${3:-1}
lab=${LAB:-fl-lab}
fc=${FAULTCTL:-faultctl}
addr=$("$fc" -o json lab status --name "$lab" | jq -er --arg n "$node" '.nodes[] | select(.node == $n) | .ipv4')
"$fc" lab exec --name "$lab" "$node" -- curl -sf --max-time 1 "http://$addr:9000/metrics" |
	awk -v m="$metric" -v d="$div" '$1 == m { print $2 / d; found = 1 } END { exit !found }'
