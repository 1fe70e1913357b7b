#!/usr/bin/env bash
# Runs the node-failure recipe on a four-node lab: fl-chat-servers on a, b and c (a full mesh),
# USERS users on node d spread over them (reconnecting with exponential backoff and full
# jitter, logging every attempt); then `faultctl run experiment.yaml`, which isolates node a;
# stops everything and says how the users came back and where report.json is.
#
#   examples/node-failure/run.sh                # isolate --reset: a crash, connections reset
#   MODE=silent examples/node-failure/run.sh    # isolate alone: a silent hang
#
# Environment: see examples/lib/chat-lab.sh (LAB, OUT, FAULTCTL, CHAT_BIN, FL_SOCKET), and
#   USERS=30 RATE=2           users and their messages per second each
#   STEADY DOWN RECOVERY      durations replacing the file's (5s, 15s, 10s)
# Exit status: 0 if the hypothesis held, 1 if refuted, 2 if aborted or not started, 3 if the
# recipe could not run.
RECIPE='node-failure'
NODES=(a b c d)
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=examples/lib/chat-lab.sh
source "$here/../lib/chat-lab.sh"
USERS=${USERS:-30}
RATE=${RATE:-2}
MODE=${MODE:-reset}
case $MODE in
reset) mode_sed=() ;;
silent) mode_sed=("s#^\(      cli: isolate .*\) --reset#\1#" "s#^name: node-failure#name: node-failure-silent#") ;;
*) die "MODE must be reset or silent, not $MODE" ;;
esac

chat_lab_init
start_servers a b c
start_client users d a b c -- --users "$USERS" --rate "$RATE" --log-connects
run_experiment "$here/experiment.yaml" "${mode_sed[@]}" \
	${STEADY:+"s#^steady_state: {duration: .*}#steady_state: {duration: $STEADY}#"} \
	${DOWN:+"s#^      duration: 15s#      duration: $DOWN#"} \
	${RECOVERY:+"s#^recovery: {within: .*}#recovery: {within: $RECOVERY}#"}
"$here/summary.sh" "$OUT/report/report.json" "$OUT/clients/users.jsonl" | tee "$OUT/summary.txt"
exit_for_verdict
