#!/usr/bin/env bash
# Runs the partition recipe on a six-node lab: one fl-chat-server per node (a full mesh),
# USERS users on A-B-C (one load client on node a) and USERS on D-E-F (one on node d), then
# `faultctl run experiment.yaml`, then stops everything and says what the users saw and where
# report.json is.
#
#   examples/partition-chat/run.sh            # as root, faultlined running, from the repository
#
# Environment (all optional):
#   LAB=fl-lab          lab to use; made with `faultctl lab up --nodes 6` (and removed at the
#                       end) if it does not exist; an existing one needs nodes a..f
#   OUT=DIR             where logs, the rendered experiment and report/ go (default: a new
#                       /tmp/partition-chat.XXXXXX, kept)
#   FAULTCTL=PATH       default build/userspace/cli/faultctl, else faultctl in PATH
#   CHAT_BIN=DIR        where fl-chat-server and fl-chat-client are (default build/tools/chat)
#   FL_SOCKET=PATH      faultlined's socket, if not the default
#   USERS=10 RATE=5     users per half, messages per second per user
#   STEADY, PARTITION, RECOVERY: durations replacing the file's (5s, 15s, 10s)
#
# Exit status: 0 if the hypothesis held, 1 if refuted, 2 if aborted or not started, 3 if the
# recipe could not run.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/../.." && pwd)
LAB=${LAB:-fl-lab}
USERS=${USERS:-10}
RATE=${RATE:-5}
CHAT_BIN=${CHAT_BIN:-$root/build/tools/chat}
if [[ -z ${FAULTCTL:-} ]]; then
	FAULTCTL=$root/build/userspace/cli/faultctl
	[[ -x $FAULTCTL ]] || FAULTCTL=$(command -v faultctl || true)
fi
fc=("$FAULTCTL")
[[ -n ${FL_SOCKET:-} ]] && fc+=(--socket "$FL_SOCKET")

die() { echo "run.sh: $*" >&2; exit 3; }
[[ -x $FAULTCTL ]] || die "faultctl not found (build the tree, or set FAULTCTL)"
for b in fl-chat-server fl-chat-client; do
	[[ -x $CHAT_BIN/$b ]] || die "$CHAT_BIN/$b not found (build with tests on, or set CHAT_BIN)"
done
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
((EUID == 0)) || die "run as root (lab namespaces, faultlined's socket)"

OUT=${OUT:-$(mktemp -d /tmp/partition-chat.XXXXXX)}
mkdir -p "$OUT/clients" "$OUT/servers"

lab_made=0
pids=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
	local rc=$?
	trap '' INT TERM HUP
	set +e
	# Clients first (their summary line), then the servers; `lab down` would stop them too,
	# but a lab we did not make stays up, so we stop what we started ourselves.
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for ((i = 0; i < 30; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	((lab_made)) && "$FAULTCTL" lab down --name "$LAB" >/dev/null
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if ! "$FAULTCTL" lab status --name "$LAB" >/dev/null 2>&1; then
	lab_made=1
	"$FAULTCTL" lab up --name "$LAB" --nodes 6 >/dev/null
fi
status=$("$FAULTCTL" -o json lab status --name "$LAB")
declare -A ip
for n in a b c d e f; do
	ip[$n]=$(jq -er --arg n "$n" '.nodes[] | select(.node == $n) | .ipv4' <<<"$status") ||
		die "lab $LAB has no node $n (it needs six nodes, a..f)"
done

# One server per node; each dials the five others (the relay needs a full mesh). Short peer
# backoff: the heal is noticed within about a second.
for n in a b c d e f; do
	peers=()
	for m in a b c d e f; do [[ $m == "$n" ]] || peers+=(--peer "${ip[$m]}:7000"); done
	"$FAULTCTL" lab exec --name "$LAB" "$n" -- "$CHAT_BIN/fl-chat-server" --node "$n" \
		--listen "${ip[$n]}:8000" --metrics "${ip[$n]}:9000" --peer-listen "${ip[$n]}:7000" \
		"${peers[@]}" --peer-backoff-cap-ms 1000 >"$OUT/servers/$n.log" 2>&1 &
	pids+=($!)
done
links_up() {
	"$FAULTCTL" lab exec --name "$LAB" "$1" -- curl -sf --max-time 1 "http://${ip[$1]}:9000/metrics" 2>/dev/null |
		awk '$1 == "fl_chat_peer_links_up" { print $2 }'
}
for ((i = 0; ; i++)); do
	ready=1
	for n in a b c d e f; do [[ $(links_up "$n") == 5 ]] || ready=0; done
	((ready)) && break
	((i < 100)) || die "the chat servers did not form a full mesh within 10 s (logs in $OUT/servers)"
	sleep 0.1
done

# One load client per half, its users spread over that half's servers.
start_client() { # NAME NODE SERVER-NODES...
	local name=$1 node=$2 servers=()
	shift 2
	for m in "$@"; do servers+=(--server "${ip[$m]}:8000"); done
	"$FAULTCTL" lab exec --name "$LAB" "$node" -- "$CHAT_BIN/fl-chat-client" "${servers[@]}" \
		--room lobby --name "$name" --users "$USERS" --rate "$RATE" --interval 1 \
		>"$OUT/clients/$name.jsonl" 2>"$OUT/clients/$name.err" &
	pids+=($!)
}
start_client left a a b c
start_client right d d e f

# The experiment as run: this lab's node names, and the durations asked for.
sed -e "s#lab:\([a-f]\)#lab:$LAB/\1#g" \
	${STEADY:+-e "s#^steady_state: {duration: .*}#steady_state: {duration: $STEADY}#"} \
	${PARTITION:+-e "s#^      duration: 15s#      duration: $PARTITION#"} \
	${RECOVERY:+-e "s#^recovery: {within: .*}#recovery: {within: $RECOVERY}#"} \
	"$here/experiment.yaml" >"$OUT/experiment.yaml"
ln -sf "$here/chat-stat.sh" "$OUT/chat-stat.sh"

# The probes read the clients' logs relative to $OUT.
rc=0
(cd "$OUT" && "${fc[@]}" run --report-dir "$OUT/report" experiment.yaml) || rc=$?

# Stop the clients now: their summary lines close the logs that the summary below reads.
for p in "${pids[@]:6}"; do kill -TERM "$p" 2>/dev/null; done
wait "${pids[@]:6}" 2>/dev/null || true

report=$OUT/report/report.json
[[ -f $report ]] || die "no report.json in $OUT/report (faultctl run exited with $rc)"
"$here/summary.sh" "$report" "$OUT/clients/left.jsonl" "$OUT/clients/right.jsonl" $((USERS * RATE)) "$USERS" |
	tee "$OUT/clients/summary.txt"

case $(jq -r .verdict "$report") in
held) exit 0 ;;
refuted) exit 1 ;;
*) exit 2 ;;
esac
