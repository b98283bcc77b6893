#!/usr/bin/env bash
# run.sh — the reliability campaign of issue #7 (`make chaos`), on the
# embedded Temporal server:
#
#   1. go test ./integration -run TestChaos   crash points (SIGKILLed workers),
#      server restarts, the soak and the secrets scan, in full (BULWARK_CHAOS=full)
#   2. go test ./activities -run TestStorageFault   storage faults
#   3. chaos/fuzz.sh                          every fuzzer for FUZZTIME (default 5m),
#      alongside parts 1 and 2, FUZZ_JOBS (default 4) at a time
#   4. go run ./chaos/report                  one table of every part
#
# Every part appends one JSON line to the results file
# (BULWARK_CHAOS_RESULTS, default a new file in a new temporary directory,
# next to each part's log). A failing part does not stop the others; the
# exit status is non-zero when any part failed or is missing from the table.
# The binaries must be built first (`make chaos` does).
#
#   CHAOS_TIMEOUT   go test timeout of the integration part (default 90m)
#   FUZZTIME        per fuzzer (default 5m; see chaos/fuzz.sh)
#   BULWARK_CHAOS_RUNS   overrides the number of runs of the seeded parts
set -uo pipefail # no -e: one failing part must not end the campaign

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
GO=${GO:-go}
export BULWARK_CHAOS=full
export BULWARK_BIN_DIR=${BULWARK_BIN_DIR:-$ROOT/bin}
export BULWARK_TEMPORAL_BIN=${BULWARK_TEMPORAL_BIN:-$BULWARK_BIN_DIR/bulwark-temporal}
for b in bulwark bulwark-worker bulwark-temporal; do
	if [ ! -x "$BULWARK_BIN_DIR/$b" ]; then
		echo "chaos: $BULWARK_BIN_DIR/$b is missing: run make build (or make chaos)" >&2
		exit 2
	fi
done

OUT=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-chaos.XXXXXX") || exit 2
export BULWARK_CHAOS_RESULTS=${BULWARK_CHAOS_RESULTS:-$OUT/results.jsonl}
: >"$BULWARK_CHAOS_RESULTS" || exit 2
export FUZZ_LOG_DIR=${FUZZ_LOG_DIR:-$OUT/fuzz}
echo "chaos: results in $BULWARK_CHAOS_RESULTS, logs in $OUT"

status=0
campaign_start=$(date +%s)

# part NAME CMD... runs one part, its full output to $OUT/NAME.log and the
# lines that matter (each run, each result, failures) to the terminal.
part() {
	local name=$1
	shift
	local start rc
	start=$(date +%s)
	echo
	echo "=== chaos: $name: $*"
	"$@" 2>&1 | tee "$OUT/$name.log" |
		grep --line-buffered -E '^(--- |FAIL|ok |PASS)|run [0-9]+/[0-9]+|chaos result|seed .* failed|^[Ff]uzz|replay:'
	rc=${PIPESTATUS[0]}
	echo "=== chaos: $name: exit $rc in $(($(date +%s) - start))s (log: $OUT/$name.log)"
	if [ "$rc" -ne 0 ]; then
		status=1
	fi
}

# The fuzzers run alongside the other parts, FUZZ_JOBS at a time with one
# worker each (default 4 × 1): 19 fuzzers × 5 minutes one after another
# would take 95 minutes; this way each still fuzzes for FUZZTIME of wall
# time, and the table's exec counts say how much work each got.
fuzz_pid=
if [ -x chaos/fuzz.sh ]; then
	echo "=== chaos: fuzzing in the background: chaos/fuzz.sh (log: $OUT/fuzzing.log)"
	FUZZ_JOBS=${FUZZ_JOBS:-4} FUZZ_PARALLEL=${FUZZ_PARALLEL:-1} ./chaos/fuzz.sh >"$OUT/fuzzing.log" 2>&1 &
	fuzz_pid=$!
else
	echo "chaos: chaos/fuzz.sh is missing or not executable: no fuzzing" >&2
	status=1
fi
part integration "$GO" test -count=1 -timeout "${CHAOS_TIMEOUT:-90m}" ./integration -run 'TestChaos' -v
part storage-faults "$GO" test -count=1 ./activities -run 'TestStorageFault' -v
if [ -n "$fuzz_pid" ]; then
	echo
	echo "=== chaos: waiting for the fuzzers"
	wait "$fuzz_pid"
	rc=$?
	sed -n '/^fuzzer /,$p' "$OUT/fuzzing.log"
	echo "=== chaos: fuzzing: exit $rc (log: $OUT/fuzzing.log)"
	if [ "$rc" -ne 0 ]; then
		status=1
	fi
fi

echo
echo "=== chaos: the campaign took $(($(date +%s) - campaign_start))s"
echo
"$GO" run ./chaos/report "$BULWARK_CHAOS_RESULTS" || status=1
exit $status
