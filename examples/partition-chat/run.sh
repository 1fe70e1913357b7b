#!/usr/bin/env bash
# Runs the partition recipe on a six-node lab: one fl-chat-server per node (a full mesh),
# USERS users on A-B-C (one load client on node a) and USERS on D-E-F (one on node d), then
# `faultctl run experiment.yaml`; stops everything and says what the users saw and where
# report.json is.
#
#   examples/partition-chat/run.sh        # as root, faultlined running, from a built tree
#
# Environment: see examples/lib/chat-lab.sh (LAB, OUT, FAULTCTL, CHAT_BIN, FL_SOCKET), and
#   USERS=10 RATE=5            users per half, messages per second per user
#   STEADY PARTITION RECOVERY  durations replacing the file's (5s, 15s, 10s)
# Exit status: 0 if the hypothesis held, 1 if refuted, 2 if aborted or not started, 3 if the
# recipe could not run.
RECIPE='partition-chat'
NODES=(a b c d e f)
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=examples/lib/chat-lab.sh
source "$here/../lib/chat-lab.sh"
USERS=${USERS:-10}
RATE=${RATE:-5}

chat_lab_init
start_servers a b c d e f
start_client left a a b c -- --users "$USERS" --rate "$RATE"
start_client right d d e f -- --users "$USERS" --rate "$RATE"
run_experiment "$here/experiment.yaml" \
	${STEADY:+"s#^steady_state: {duration: .*}#steady_state: {duration: $STEADY}#"} \
	${PARTITION:+"s#^      duration: 15s#      duration: $PARTITION#"} \
	${RECOVERY:+"s#^recovery: {within: .*}#recovery: {within: $RECOVERY}#"}
"$here/summary.sh" "$OUT/report/report.json" "$OUT/clients/left.jsonl" "$OUT/clients/right.jsonl" \
	$((USERS * RATE)) "$USERS" | tee "$OUT/summary.txt"
exit_for_verdict
