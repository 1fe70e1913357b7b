# shellcheck shell=bash
# Shared by the recipes' run.sh (sourced): a lab, the chat servers of tools/chat on it, load
# clients, the experiment rendered for this lab and run, and a cleanup that stops everything
# it started (and removes the lab if it made it), on any exit, Ctrl-C included.
#
# The caller sets NODES (the lab's nodes it needs) and RECIPE (a name), then calls
# chat_lab_init, start_servers, start_client..., run_experiment. Environment, all optional:
#   LAB=fl-lab        lab to use; made with `faultctl lab up --nodes N` if missing (removed at
#                     the end); an existing one needs the nodes
#   OUT=DIR           logs, the rendered experiment and report/ (default /tmp/RECIPE.XXXXXX)
#   FAULTCTL=PATH     default build/userspace/cli/faultctl, else faultctl in PATH
#   CHAT_BIN=DIR      fl-chat-server and fl-chat-client (default build/tools/chat)
#   FL_SOCKET=PATH    faultlined's socket, if not the default
set -euo pipefail

lib_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$lib_dir/../.." && pwd)
LAB=${LAB:-fl-lab}
CHAT_BIN=${CHAT_BIN:-$repo_root/build/tools/chat}
if [[ -z ${FAULTCTL:-} ]]; then
	FAULTCTL=$repo_root/build/userspace/cli/faultctl
	[[ -x $FAULTCTL ]] || FAULTCTL=$(command -v faultctl || true)
fi
export LAB FAULTCTL
fc=("$FAULTCTL")
[[ -n ${FL_SOCKET:-} ]] && fc+=(--socket "$FL_SOCKET")

die() { echo "$RECIPE: $*" >&2; exit 3; }

lab_made=0
server_pids=()
client_pids=()
declare -A ip

stop_pids() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "$@"; do
		for ((i = 0; i < 30; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	return 0
}

# shellcheck disable=SC2317  # invoked by the trap
chat_lab_cleanup() {
	local rc=$?
	trap '' INT TERM HUP
	set +e
	# Clients first (their summary line), then the servers. `lab down` would stop them too,
	# but a lab we did not make stays up, so we stop what we started ourselves.
	stop_pids "${client_pids[@]}"
	stop_pids "${server_pids[@]}"
	((lab_made)) && "$FAULTCTL" lab down --name "$LAB" >/dev/null
	exit "$rc"
}

chat_lab_init() {
	[[ -x $FAULTCTL ]] || die "faultctl not found (build the tree, or set FAULTCTL)"
	local b n status
	for b in fl-chat-server fl-chat-client; do
		[[ -x $CHAT_BIN/$b ]] || die "$CHAT_BIN/$b not found (build with tests on, or set CHAT_BIN)"
	done
	command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
	command -v curl >/dev/null || die "curl is needed (apt-get install curl)"
	((EUID == 0)) || die "run as root (lab namespaces, faultlined's socket)"
	OUT=${OUT:-$(mktemp -d "/tmp/$RECIPE.XXXXXX")}
	mkdir -p "$OUT/clients" "$OUT/servers"
	trap chat_lab_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	if ! "$FAULTCTL" lab status --name "$LAB" >/dev/null 2>&1; then
		lab_made=1
		# shellcheck disable=SC2153  # NODES is the caller's
		"$FAULTCTL" lab up --name "$LAB" --nodes "${#NODES[@]}" >/dev/null
	fi
	status=$("$FAULTCTL" -o json lab status --name "$LAB")
	for n in "${NODES[@]}"; do
		ip[$n]=$(jq -er --arg n "$n" '.nodes[] | select(.node == $n) | .ipv4' <<<"$status") ||
			die "lab $LAB has no node $n (it needs nodes ${NODES[*]})"
	done
}

metric() { # NODE NAME: one metric of NODE's server (no labels)
	"$FAULTCTL" lab exec --name "$LAB" "$1" -- curl -sf --max-time 1 "http://${ip[$1]}:9000/metrics" 2>/dev/null |
		awk -v m="$2" '$1 == m { print $2 }'
}

# start_servers NODE... [-- SERVER-OPTIONS...]: one server per NODE, a full mesh among them,
# then waits until every link is up. Short peer backoff: a heal is noticed within a second.
start_servers() {
	local nodes=() extra=() n m i ready peers
	while (($#)) && [[ $1 != -- ]]; do nodes+=("$1"); shift; done
	(($#)) && shift && extra=("$@")
	for n in "${nodes[@]}"; do
		peers=()
		for m in "${nodes[@]}"; do [[ $m == "$n" ]] || peers+=(--peer "${ip[$m]}:7000"); done
		"$FAULTCTL" lab exec --name "$LAB" "$n" -- "$CHAT_BIN/fl-chat-server" --node "$n" \
			--listen "${ip[$n]}:8000" --metrics "${ip[$n]}:9000" --peer-listen "${ip[$n]}:7000" \
			"${peers[@]}" --peer-backoff-cap-ms 1000 "${extra[@]}" >"$OUT/servers/$n.log" 2>&1 &
		server_pids+=($!)
	done
	for ((i = 0; ; i++)); do
		ready=1
		for n in "${nodes[@]}"; do [[ $(metric "$n" fl_chat_peer_links_up) == $((${#nodes[@]} - 1)) ]] || ready=0; done
		((ready)) && break
		((i < 100)) || die "the chat servers did not come up within 10 s (logs in $OUT/servers)"
		sleep 0.1
	done
}

# start_client NAME NODE SERVER-NODES... [-- CLIENT-OPTIONS...]: one fl-chat-client on NODE,
# its users spread over SERVER-NODES' servers, its lines in $OUT/clients/NAME.jsonl.
start_client() {
	local name=$1 node=$2 servers=() extra=()
	shift 2
	while (($#)) && [[ $1 != -- ]]; do servers+=(--server "${ip[$1]}:8000"); shift; done
	(($#)) && shift && extra=("$@")
	"$FAULTCTL" lab exec --name "$LAB" "$node" -- "$CHAT_BIN/fl-chat-client" "${servers[@]}" \
		--room lobby --name "$name" --interval 1 "${extra[@]}" \
		>"$OUT/clients/$name.jsonl" 2>"$OUT/clients/$name.err" &
	client_pids+=($!)
}

# run_experiment FILE [SED-EXPRESSION...]: renders FILE for this lab (lab:X becomes lab:$LAB/X)
# with the given substitutions, runs it in $OUT (the probes' paths are relative to it), then
# stops the clients so that their logs are complete. Sets verdict_rc to faultctl run's status.
run_experiment() {
	local file=$1 e=()
	shift
	for x in "$@"; do e+=(-e "$x"); done
	sed -e "s#lab:\([a-z]\)\b#lab:$LAB/\1#g" "${e[@]}" "$file" >"$OUT/experiment.yaml"
	ln -sf "$lib_dir/chat-stat.sh" "$OUT/chat-stat.sh"
	ln -sf "$lib_dir/server-metric.sh" "$OUT/server-metric.sh"
	verdict_rc=0
	(cd "$OUT" && "${fc[@]}" run --report-dir "$OUT/report" experiment.yaml) || verdict_rc=$?
	stop_pids "${client_pids[@]}"
	client_pids=()
	[[ -f $OUT/report/report.json ]] || die "no report.json in $OUT/report (faultctl run exited with $verdict_rc)"
}

# The recipe's exit status from the verdict: 0 held, 1 refuted, 2 aborted or not started.
exit_for_verdict() {
	case $(jq -r .verdict "$OUT/report/report.json") in
	held) exit 0 ;;
	refuted) exit 1 ;;
	*) exit 2 ;;
	esac
}
