#!/usr/bin/env bash
# How the users of the failed node came back, from their load client's log (--log-connects)
# and the fault's window in report.json:
#
#   summary.sh REPORT USERS.jsonl
#
# Per user that lost its connection after the fault was asked for (its planned start: the reset
# happens inside the apply, before its reply): the time from then to
# the loss, and from the loss to its next successful connection; the peak attempts per second;
# and the survivors' peak accepts per second (from the probes).
set -euo pipefail
report=$1 log=$2
read -r from < <(jq -r '(.started_unix_ms + .faults[0].planned_start_ms) / 1000' "$report")
jq -rs --argjson from "$from" '
  [.[] | select(.t >= $from)] as $l
  | [$l[] | select(.type == "disconnect")] as $lost
  | [$lost[] | . as $d | {user, lost: (.t - $from),
       back: ([$l[] | select(.type == "connect" and .ok and .user == $d.user and .t > $d.t)] | first | if . then .t - $d.t else null end)}]
    | group_by(.user) | map(first) as $u
  | "users who lost their server: \($u | length); lost it \($u | map(.lost) | min // 0 | . * 10 | floor / 10)"
    + "-\($u | map(.lost) | max // 0 | . * 10 | ceil / 10) s after the failure; back "
    + (if ($u | map(select(.back == null)) | length) > 0 then "NOT ALL (\($u | map(select(.back == null)) | length) never)"
       else "\($u | map(.back) | min // 0 | . * 10 | floor / 10)-\($u | map(.back) | max // 0 | . * 10 | ceil / 10) s after the loss" end)
    + "; peak attempts \([$l[] | select(.type == "interval") | .connect_attempts_per_s] | max // 0 | . * 10 | round / 10)/s"' "$log"
jq -r '[.probes[] | select(.name | endswith("accepts-per-s")) | "\(.name | split("-")[0]) \([.series[].value | numbers] | max // 0 | . * 10 | round / 10)/s"]
  | "survivors peak accepts: " + join(", ")' "$report"
