package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
)

// The chaos campaign (issue #7). Each part is an ordinary test that makes a
// few runs (the smoke variant, part of `make test`) or, with
// BULWARK_CHAOS=full, the campaign's number of runs. Every run has a seed
// that decides everything random about it; BULWARK_CHAOS_SEED=<seed>
// replays exactly that run (a comma-separated list replays each), and BULWARK_CHAOS_RUNS=<n> overrides the number
// of runs. With BULWARK_CHAOS_RESULTS=<file> each part appends one JSON line
// to the file (chaos/report prints them as one table):
//
//	{"part":"crash points","runs":50,"survived":50,"failures":[{"seed":"…","detail":"…","replay":"…"}],"notes":"…"}

// chaosFull reports whether the full campaign runs (BULWARK_CHAOS=full).
func chaosFull() bool { return os.Getenv("BULWARK_CHAOS") == "full" }

// chaosRuns is the number of runs of a part: smoke normally, full under
// BULWARK_CHAOS=full; BULWARK_CHAOS_RUNS overrides both.
func chaosRuns(t *testing.T, smoke, full int) int {
	t.Helper()
	if v := os.Getenv("BULWARK_CHAOS_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BULWARK_CHAOS_RUNS=%q: want a positive number", v)
		}
		return n
	}
	if chaosFull() {
		return full
	}
	return smoke
}

// chaosSeedRuns is the number of fresh seeds a part with regression seeds
// makes: chaosRuns in full, or when BULWARK_CHAOS_RUNS says so; in the
// smoke variant the regressions count towards its runs, and at least one
// fresh seed is added.
func chaosSeedRuns(t *testing.T, smoke, full, regressions int) int {
	t.Helper()
	n := chaosRuns(t, smoke, full)
	if chaosFull() || os.Getenv("BULWARK_CHAOS_RUNS") != "" {
		return n
	}
	return max(1, n-regressions)
}

// chaosSeeds returns the seeds of n runs, derived from one base seed that
// is logged, or only those of BULWARK_CHAOS_SEED when it is set. regressions (seeds
// of failures found and fixed) come first, in every mode but a replay.
func chaosSeeds(t *testing.T, n int, regressions ...string) []string {
	t.Helper()
	if v := os.Getenv("BULWARK_CHAOS_SEED"); v != "" {
		seeds := strings.Split(v, ",")
		for _, s := range seeds {
			if _, err := parseSeed(s); err != nil {
				t.Fatalf("BULWARK_CHAOS_SEED=%q: %v", v, err)
			}
		}
		return seeds
	}
	base := uint64(time.Now().UnixNano())
	t.Logf("chaos: %d run(s) from base seed %016x, plus %d regression seed(s)", n, base, len(regressions))
	seeds := append([]string(nil), regressions...)
	r := rand.New(rand.NewPCG(base, 0x6368616f73))
	for range n {
		seeds = append(seeds, fmt.Sprintf("%016x", r.Uint64()))
	}
	return seeds
}

func parseSeed(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) != 16 {
		return 0, fmt.Errorf("a seed is 16 hex digits")
	}
	return v, nil
}

// seedRand is the random source of one run.
func seedRand(seed string) *rand.Rand {
	v, _ := parseSeed(seed)
	return rand.New(rand.NewPCG(v, v^0x9e3779b97f4a7c15))
}

// chaosPart collects one part's runs and reports them.
type chaosPart struct {
	Part     string         `json:"part"`
	Runs     int            `json:"runs"`
	Survived int            `json:"survived"`
	Failures []chaosFailure `json:"failures"`
	Notes    string         `json:"notes,omitempty"`

	test  string // the test that replays a seed
	start time.Time
	notes []string
}

// chaosFailure is one run that did not survive, with how to replay it.
type chaosFailure struct {
	Seed   string `json:"seed"`
	Detail string `json:"detail"`
	Replay string `json:"replay,omitempty"`
}

func newChaosPart(part, test string) *chaosPart {
	return &chaosPart{Part: part, test: test, start: time.Now(), Failures: []chaosFailure{}}
}

func (p *chaosPart) survived() { p.Runs++; p.Survived++ }

func (p *chaosPart) failed(t *testing.T, seed string, err error) {
	t.Helper()
	p.Runs++
	f := chaosFailure{Seed: seed, Detail: err.Error(),
		Replay: fmt.Sprintf("BULWARK_CHAOS_SEED=%s go test -count=1 ./integration -run '^%s$' -v", seed, p.test)}
	p.Failures = append(p.Failures, f)
	t.Errorf("seed %s failed: %v\nreplay: %s", seed, err, f.Replay)
}

func (p *chaosPart) note(format string, args ...any) {
	p.notes = append(p.notes, fmt.Sprintf(format, args...))
}

// record writes the part's line to BULWARK_CHAOS_RESULTS and logs it. It is
// deferred, so a part stopped by a fatal error is reported with the runs
// it made and says so.
func (p *chaosPart) record(t *testing.T) {
	if t.Failed() && len(p.Failures) == 0 {
		p.Failures = append(p.Failures, chaosFailure{Seed: "-", Detail: "the test stopped before its runs ended; see its log"})
	}
	p.notes = append(p.notes, fmt.Sprintf("%s in all", time.Since(p.start).Round(time.Second)))
	p.Notes = strings.Join(p.notes, "; ")
	line, err := json.Marshal(p)
	if err != nil {
		t.Error(err)
		return
	}
	t.Logf("chaos result: %s", line)
	path := os.Getenv("BULWARK_CHAOS_RESULTS")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
}

// killServer ends the embedded server with sig (SIGKILL: a crash; SIGTERM:
// an orderly stop), leaves it down for the given time, and starts it again
// on the same port and database.
func (c *cluster) killServer(sig syscall.Signal, down time.Duration) {
	c.t.Helper()
	if sig == syscall.SIGKILL {
		c.server.kill()
	} else {
		c.server.stop()
	}
	time.Sleep(down)
	c.server = start(c.t, "bulwark-temporal: frontend", filepath.Join(c.bin, "bulwark-temporal"), c.serverArgs...)
}

// workflowOpen reports whether a workflow's latest run is still running.
func workflowOpen(c *cluster, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := c.client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return false, err
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// treeBytes is the disk space the files under dir take (allocated blocks,
// so a sparse file written out of order counts what is written), and how
// many files there are.
func treeBytes(dir string) (int64, int) {
	var n int64
	var files int
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		files++
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += info.Size()
		}
		return nil
	})
	return n, files
}

// pendingWork names what a workflow is doing: its pending activities, and
// those of its pending children (a child with none is named itself);
// "between tasks" when nothing is pending.
func pendingWork(c *cluster, id string) string {
	var walk func(id string, depth int) []string
	walk = func(id string, depth int) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := c.client.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			return nil
		}
		var out []string
		for _, a := range d.GetPendingActivities() {
			out = append(out, a.GetActivityType().GetName())
		}
		for _, ch := range d.GetPendingChildren() {
			sub := []string(nil)
			if depth > 0 {
				sub = walk(ch.GetWorkflowId(), depth-1)
			}
			if len(sub) == 0 {
				sub = []string{ch.GetWorkflowTypeName()}
			}
			out = append(out, sub...)
		}
		return out
	}
	if w := walk(id, 2); len(w) > 0 {
		return strings.Join(w, "+")
	}
	return "between tasks"
}
