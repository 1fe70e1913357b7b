# shellcheck shell=bash
# Shared helpers for the faultline entry scripts (tools/setup, tools/test,
# tools/demo). Sourced, never executed. The caller has already set
# `set -euo pipefail` and FL_PROG (the name used in messages).

# The repository root, derived from this file's location so that every script
# works from any working directory and from any checkout (CI clones elsewhere).
FL_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
FL_BUILD="$FL_ROOT/build"
# shellcheck disable=SC2034  # FL_BUILD is used by the scripts that source this
readonly FL_ROOT FL_BUILD

fl_say() { printf 'faultline %s: %s\n' "$FL_PROG" "$*"; }
fl_warn() { printf 'faultline %s: warning: %s\n' "$FL_PROG" "$*" >&2; }
fl_err() { printf 'faultline %s: error: %s\n' "$FL_PROG" "$*" >&2; }
fl_die() {
	fl_err "$@"
	exit 1
}

# fl_require_root [exit-status]: most of what we do (apt, namespaces, BPF)
# needs CAP_SYS_ADMIN and CAP_NET_ADMIN; say so plainly instead of failing
# halfway through with EPERM.
fl_require_root() {
	if [[ $EUID -ne 0 ]]; then
		fl_err "must run as root (try: sudo $0)"
		exit "${1:-2}"
	fi
}

# Monotonic-enough wall clock in microseconds. EPOCHREALTIME (bash 5) avoids a
# fork; its decimal separator follows the locale, so strip every non-digit.
fl_now_us() { printf '%s\n' "${EPOCHREALTIME//[!0-9]/}"; }

# fl_fmt_secs START_US END_US: "12.3 s".
fl_fmt_secs() {
	local d=$(($2 - $1))
	printf '%d.%d s' $((d / 1000000)) $((d % 1000000 / 100000))
}

# fl_netns_in_use NAME: true if anything may still need the named namespace.
# A stale namespace from a killed run is one nobody is inside of and nobody
# holds open; deleting anything else could pull the floor from under a test
# or a demo that is still running (possibly from another checkout).
fl_netns_in_use() {
	local name=$1 ino
	# Our scripts and tests name namespaces <prefix>-<pid>-...: if that pid is
	# alive, the run that made it may still be using it, even at a moment when
	# no process is inside it. A reused pid only errs on the side of keeping.
	if [[ $name =~ ^fl(demo|test)-([0-9]+)- ]] && [[ -d /proc/${BASH_REMATCH[2]} ]]; then
		return 0
	fi
	ino=$(stat -L -c %i -- "/run/netns/$name" 2>/dev/null) || return 1
	# Any thread inside it (setns is per thread, so `ip netns pids`, which only
	# looks at the main thread, is not enough) or any open fd to it (a daemon
	# keeps one per target) counts as a user. One find, not a fork per fd.
	[[ -n $(find /proc/[0-9]*/task/[0-9]*/ns/net /proc/[0-9]*/fd -maxdepth 1 \
		-lname "net:\[$ino\]" -print -quit 2>/dev/null) ]]
}

# fl_clean_stale_netns PREFIX...: delete namespaces whose names start with one
# of the prefixes and that nothing uses any more. Prints what it removed, or
# what it kept and why.
fl_clean_stale_netns() {
	local line name prefix
	while read -r line; do
		name=${line%% *}
		[[ -n $name ]] || continue
		for prefix in "$@"; do
			[[ $name == "$prefix"* ]] || continue
			if fl_netns_in_use "$name"; then
				fl_say "keeping namespace $name: still in use"
			elif ip netns delete "$name" 2>/dev/null; then
				fl_say "removed stale namespace $name"
			else
				fl_warn "could not remove stale namespace $name"
			fi
			break
		done
	done < <(ip netns list 2>/dev/null)
}
