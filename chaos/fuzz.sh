#!/usr/bin/env bash
# fuzz.sh — the fuzzing part of the reliability campaign (issue #7): runs
# every fuzz test of the repository, one after another, each for FUZZTIME.
#
#   chaos/fuzz.sh                      every Fuzz* function in ./...
#   chaos/fuzz.sh ./repository         only those of some packages
#   FUZZTIME=5s chaos/fuzz.sh          a quick pass (default 5m each)
#   FUZZ_MATCH=Manifest chaos/fuzz.sh  only fuzzers whose name matches
#   FUZZ_JOBS=4 FUZZ_PARALLEL=1 chaos/fuzz.sh   four fuzzers at a time, one worker each
#
# Fuzzers run one after another by default: each one already uses every
# core (FUZZ_PARALLEL workers, default all of them). Go minimises every input
# that finds new coverage for up to -fuzzminimizetime (60 s by default),
# without executing anything new meanwhile; FUZZ_MINIMIZETIME (default 10s)
# bounds that, so that a run spends its time fuzzing. Go never times out a
# single input: an input that hangs shows only as executions that stop
# counting, so a fuzzer whose count stands still for FUZZ_STALL_LIMIT
# seconds (default 180) fails as a possible hang. A crash in one fuzzer does
# not stop the others. For each fuzzer the duration, the number of
# executions (the last "execs:" of its output) and the outcome are recorded;
# the output of every run is kept in FUZZ_LOG_DIR (default a new temporary
# directory), and for a crash Go writes the failing input to the package's
# testdata/fuzz/<Fuzzer>/<file>: that file is the replay seed,
#
#   go test -run '^<Fuzzer>$/<file>' <pkg>
#
# When BULWARK_CHAOS_RESULTS names a file, one JSON line is appended to it:
#   {"part":"fuzzing","runs":N,"survived":N,"failures":[{"seed":"<pkg> <Fuzzer> testdata/fuzz/<Fuzzer>/<file>","detail":"..."}],"notes":"..."}
# The exit status is non-zero when any fuzzer crashed or could not run.
set -uo pipefail # no -e: one failing fuzzer must not end the campaign

cd "$(dirname "$0")/.." || exit 2

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5m}
FUZZ_MATCH=${FUZZ_MATCH:-}
FUZZ_PARALLEL=${FUZZ_PARALLEL:-}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_MINIMIZETIME=${FUZZ_MINIMIZETIME:-10s}
FUZZ_STALL_LIMIT=${FUZZ_STALL_LIMIT:-180}
LOG_DIR=${FUZZ_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/bulwark-fuzz.XXXXXX")}
mkdir -p "$LOG_DIR" || exit 2

trap 'echo; echo "fuzz.sh: interrupted; logs in $LOG_DIR" >&2; exit 130' INT TERM

# json_string prints its argument as a JSON string literal.
json_string() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	s=$(printf '%s' "$s" | LC_ALL=C tr -d '\000-\010\013\014\016-\037')
	printf '"%s"' "$s"
}

# slug names a package in log file names: ./activities/sqlexport → activities_sqlexport.
slug() {
	local s=${1#./}
	s=${s//\//_}
	printf '%s' "${s:-root}"
}

# human prints a number of seconds as 5m02s.
human() {
	local s=$1
	if ((s >= 60)); then
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	else
		printf '%ds' "$s"
	fi
}

# stall prints the longest time, in seconds, that a fuzz log's execution
# count stood still ("fuzz: elapsed: 1m3s, execs: 1234 (…)" lines).
stall() {
	awk '/^fuzz: elapsed: .*execs: [0-9]/ {
		match($0, /elapsed: [0-9hms.]+/); e = substr($0, RSTART + 9, RLENGTH - 9)
		t = 0
		while (match(e, /^[0-9.]+[hms]/)) {
			u = substr(e, RLENGTH, 1); v = substr(e, 1, RLENGTH - 1) + 0
			t += v * (u == "h" ? 3600 : (u == "m" ? 60 : 1)); e = substr(e, RLENGTH + 1)
		}
		match($0, /execs: [0-9]+/); x = substr($0, RSTART + 7, RLENGTH - 7) + 0
		if (!seen || x != last) { seen = 1; last = x; since = t } else if (t - since > max) { max = t - since }
	} END { printf "%d\n", max }' "$1"
}

# deadline_race reports whether a failed run is the race in Go's fuzzing
# coordinator at the end of -fuzztime (go.dev/issue/75804, fixed in Go 1.27;
# this repository builds with 1.26): the run ends at FUZZTIME with the bare
# message "context deadline exceeded" and writes no failing input. It shows
# under CPU contention, as when make chaos runs fuzzers alongside the rest.
deadline_race() {
	grep -q 'Failing input written to' "$1" && return 1
	local msgs
	msgs=$(grep -v -e '^fuzz: ' -e '^=== ' -e '^FAIL' -e '^exit status' -e '^\s*--- FAIL' -e '^\s*$' "$1" | sed 's/^\s*//')
	[[ $msgs == "context deadline exceeded" ]]
}

# main runs the campaign. The whole script is read before it starts, so an
# edit of this file while a campaign runs cannot change what it does.
main() {
	# --- inventory: every Fuzz* function, per package -------------------------
	patterns=("$@")
	if ((${#patterns[@]} == 0)); then
		patterns=(./...)
	fi
	mapfile -t dirs < <($GO list -f '{{.Dir}}' "${patterns[@]}") || {
		echo "fuzz.sh: go list failed" >&2
		exit 2
	}
	root=$(pwd)
	targets=() # "<pkg> <Fuzzer>", pkg relative (./repository)
	list_failures=()
	for dir in "${dirs[@]}"; do
		# Only packages with a fuzz function in a test file are compiled to list them.
		grep -qs '^func Fuzz' "$dir"/*_test.go || continue
		pkg=./${dir#"$root"/}
		[[ $dir == "$root" ]] && pkg=.
		if ! out=$($GO test -list '^Fuzz' "$pkg" 2>&1); then
			list_failures+=("$pkg")
			printf '%s\n' "$out" >"$LOG_DIR/list-$(slug "$pkg").log"
			continue
		fi
		while read -r name; do
			[[ $name == Fuzz* ]] || continue
			[[ -z $FUZZ_MATCH || $name =~ $FUZZ_MATCH ]] || continue
			targets+=("$pkg $name")
		done <<<"$out"
	done

	if ((${#targets[@]} == 0 && ${#list_failures[@]} == 0)); then
		echo "fuzz.sh: no fuzz test matches (packages: ${patterns[*]}; FUZZ_MATCH=$FUZZ_MATCH)" >&2
		exit 2
	fi
	echo "fuzz.sh: ${#targets[@]} fuzzers × $FUZZTIME, $FUZZ_JOBS at a time; logs in $LOG_DIR"

	# --- campaign ---------------------------------------------------------------
	rows=()     # table rows
	failures=() # JSON objects
	survived=0
	deadline_races=0
	total_execs=0
	# Fuzzers run FUZZ_JOBS at a time (default 1: one after another, each
	# with every core). More lanes finish a campaign sooner on a machine
	# that has other work; each fuzzer still runs FUZZTIME of wall time, and
	# the table's exec counts show what each got.
	run_one() {
		local i=$1 pkg=${targets[$1]% *} name=${targets[$1]#* }
		local log="$LOG_DIR/$(slug "$pkg").$name.log"
		local args=(test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZ_MINIMIZETIME")
		[[ -n $FUZZ_PARALLEL ]] && args+=(-parallel "$FUZZ_PARALLEL")
		local start=$(date +%s)
		$GO "${args[@]}" "$pkg" >"$log" 2>&1
		local rc=$?
		echo "$rc $(($(date +%s) - start))" >"$LOG_DIR/.result.$i"
	}
	for i in "${!targets[@]}"; do
		while (($(jobs -rp | wc -l) >= FUZZ_JOBS)); do
			wait -n
		done
		run_one "$i" &
	done
	wait
	for i in "${!targets[@]}"; do
		t=${targets[$i]}
		pkg=${t% *}
		name=${t#* }
		log="$LOG_DIR/$(slug "$pkg").$name.log"
		printf '%-34s %-28s ' "$name" "$pkg"
		read -r rc secs <"$LOG_DIR/.result.$i" || {
			rc=1
			secs=0
		}
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
		execs=${execs:-0}
		total_execs=$((total_execs + execs))
		stalled=$(stall "$log")
		if ((rc == 0 && stalled >= FUZZ_STALL_LIMIT)); then
			result=HANG
			failures+=("{\"seed\":$(json_string "$pkg $name (no corpus entry: the hanging input is not saved)"),\"detail\":$(json_string "no new execution for ${stalled}s: an input may hang (go test -fuzz never times out one input) (log: $log)")}")
		elif ((rc == 0)); then
			result=ok
			survived=$((survived + 1))
		elif deadline_race "$log"; then
			result="ok (Go's end-of-fuzztime race, go.dev/issue/75804: no input failed)"
			survived=$((survived + 1))
			deadline_races=$((deadline_races + 1))
		else
			result=CRASH
			# "Failing input written to testdata/fuzz/FuzzX/0123…" names the seed.
			seed=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$log" | tail -n 1)
			if [[ -z $seed ]]; then
				# An entry of the existing corpus failed before fuzzing began.
				entry=$(sed -n 's/.*failure while testing seed corpus entry: \(.*\)$/\1/p' "$log" | tail -n 1)
				if [[ -n $entry && -f $pkg/testdata/fuzz/$entry ]]; then
					seed=testdata/fuzz/$entry
				elif [[ -n $entry ]]; then
					seed="$entry (an f.Add seed, or the cached corpus in $($GO env GOCACHE)/fuzz)"
				fi
			fi
			if [[ -z $seed ]]; then
				result=FAIL
				seed="(no corpus entry written; see $log)"
			fi
			# The first lines of the failure: the test's message or the panic.
			detail=$(grep -v -e '^fuzz: elapsed' -e '^fuzz: minimizing' -e '^=== ' -e '^FAIL' -e '^exit status' -e '^ok ' \
				-e '^\s*--- FAIL' -e 'Failing input written to' -e 'failure while testing seed corpus' -e 'To re-run' -e '^\s*go test -run' -e '^\s*$' "$log" | head -n 6 | sed 's/^\s*//' | paste -sd ' ' -)
			detail=${detail:0:600}
			failures+=("{\"seed\":$(json_string "$pkg $name $seed"),\"detail\":$(json_string "$detail (log: $log)")}")
		fi
		((stalled >= 30)) && result+=" (no new execution for ${stalled}s)"
		row=$(printf '%-34s %-28s %8s %12s  %s' "$name" "$pkg" "$(human "$secs")" "$execs" "$result")
		rows+=("$row")
		printf '%8s %12s  %s\n' "$(human "$secs")" "$execs" "$result"
	done
	for pkg in "${list_failures[@]}"; do
		log="$LOG_DIR/list-$(slug "$pkg").log"
		failures+=("{\"seed\":$(json_string "$pkg (fuzzers could not be listed)"),\"detail\":$(json_string "$(head -n 6 "$log" | paste -sd ' ' -) (log: $log)")}")
		rows+=("$(printf '%-34s %-28s %8s %12s  %s' "(go test -list)" "$pkg" - - "BUILD FAILED")")
	done

	# --- report -----------------------------------------------------------------
	runs=$((${#targets[@]} + ${#list_failures[@]}))
	echo
	printf '%-34s %-28s %8s %12s  %s\n' fuzzer package time execs result
	printf '%s\n' "${rows[@]}"
	echo
	echo "$survived of $runs fuzzers survived $FUZZTIME each; $total_execs executions in all. Logs: $LOG_DIR"
	if ((${#failures[@]} > 0)); then
		echo "Replay a crash with: go test -run '^<Fuzzer>\$/<file>' <pkg> (the file under <pkg>/testdata/fuzz/<Fuzzer>/)"
	fi

	if [[ -n ${BULWARK_CHAOS_RESULTS:-} ]]; then
		joined=$(
			IFS=,
			printf '%s' "${failures[*]}"
		)
		notes="${#targets[@]} fuzzers × ≥$FUZZTIME, $FUZZ_JOBS at a time, $total_execs execs"
		((deadline_races > 0)) && notes+="; $deadline_races ended by Go's fuzztime deadline race (go.dev/issue/75804), no input failed"
		printf '{"part":"fuzzing","runs":%d,"survived":%d,"failures":[%s],"notes":%s}\n' \
			"$runs" "$survived" "$joined" "$(json_string "$notes")" >>"$BULWARK_CHAOS_RESULTS"
	fi

	((${#failures[@]} == 0))
}

main "$@"
exit
