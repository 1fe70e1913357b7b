#!/usr/bin/env bash
# Runs the slow-consumer recipe on a three-node lab: one fl-chat-server on node a (bounded
# queues: 64 messages per client, a 16 KiB socket send buffer), USERS busy users on node b,
# one listening user on node c; then `faultctl run experiment.yaml`, which slows a's traffic
# to c; stops everything and says what happened to the slow user and where report.json is.
#
#   examples/slow-consumer/run.sh         # as root, faultlined running, from a built tree
#
# Environment: see examples/lib/chat-lab.sh (LAB, OUT, FAULTCTL, CHAT_BIN, FL_SOCKET), and
#   USERS=10 RATE=10     busy users and their messages per second each (200-byte padding)
#   STEADY SLOW RECOVERY durations replacing the file's (5s, 15s, 10s)
# Exit status: 0 if the hypothesis held, 1 if refuted, 2 if aborted or not started, 3 if the
# recipe could not run.
RECIPE='slow-consumer'
NODES=(a b c)
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=examples/lib/chat-lab.sh
source "$here/../lib/chat-lab.sh"
USERS=${USERS:-10}
RATE=${RATE:-10}

chat_lab_init
start_servers a -- --client-sndbuf 16384 --max-queue-messages 64
start_client busy b a -- --users "$USERS" --rate "$RATE" --payload-bytes 200
start_client slow c a -- --users 1 --rate 0 --log-connects
run_experiment "$here/experiment.yaml" \
	${STEADY:+"s#^steady_state: {duration: .*}#steady_state: {duration: $STEADY}#"} \
	${SLOW:+"s#^      duration: 15s#      duration: $SLOW#"} \
	${RECOVERY:+"s#^recovery: {within: .*}#recovery: {within: $RECOVERY}#"}
overflows=$(metric a fl_chat_overflow_disconnects_total)
"$here/summary.sh" "$OUT/report/report.json" "$OUT/clients/slow.jsonl" "${overflows:-unknown}" | tee "$OUT/summary.txt"
exit_for_verdict
