// Command report prints the table of a chaos campaign (`make chaos`, issue
// #7) from the JSON lines its parts append to the results file, one per
// part:
//
//	{"part":"crash points","runs":50,"survived":50,"failures":[{"seed":"…","detail":"…","replay":"…"}],"notes":"…"}
//
// Usage:
//
//	go run ./chaos/report [-expect part,part,…] RESULTS-FILE
//
// It prints one table — each part's runs, survivors and failures, and the
// command that replays each failure — and exits 1 when a run failed, a
// line cannot be read, or an expected part is missing or made no run.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// DefaultParts are the parts a full campaign has, in the order printed.
var DefaultParts = []string{"crash points", "server restarts", "storage faults", "soak", "fuzzing", "secrets"}

// Failure is one run that failed.
type Failure struct {
	Seed   string `json:"seed"`
	Detail string `json:"detail"`
	Replay string `json:"replay,omitempty"`
}

// Part is one part's line of results.
type Part struct {
	Part     string    `json:"part"`
	Runs     int       `json:"runs"`
	Survived int       `json:"survived"`
	Failures []Failure `json:"failures"`
	Notes    string    `json:"notes,omitempty"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	expect := fs.String("expect", strings.Join(DefaultParts, ","), "comma-separated parts that must be present")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: report [-expect part,…] RESULTS-FILE")
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "report:", err)
		return 2
	}
	defer f.Close()
	parts, problems := Read(f)
	var want []string
	for _, p := range strings.Split(*expect, ",") {
		if p = strings.TrimSpace(p); p != "" {
			want = append(want, p)
		}
	}
	if !Print(stdout, parts, want, problems) {
		return 1
	}
	return 0
}

// Read parses the results, one JSON object a line. Lines of the same part
// (a part run twice) are added up. problems lists the lines that could not
// be read.
func Read(r io.Reader) (parts []*Part, problems []string) {
	byName := map[string]*Part{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var p Part
		if err := json.Unmarshal([]byte(line), &p); err != nil || p.Part == "" {
			problems = append(problems, fmt.Sprintf("line %d is not a part's result: %.80s", n, line))
			continue
		}
		if old, ok := byName[p.Part]; ok {
			old.Runs += p.Runs
			old.Survived += p.Survived
			old.Failures = append(old.Failures, p.Failures...)
			old.Notes = strings.TrimPrefix(old.Notes+" | "+p.Notes, " | ")
			continue
		}
		byName[p.Part] = &p
		parts = append(parts, &p)
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, "read: "+err.Error())
	}
	return parts, problems
}

// Print writes the table and reports whether the campaign passed: every
// run survived, every expected part made runs, every line was read.
func Print(w io.Writer, parts []*Part, expect []string, problems []string) bool {
	ok := len(problems) == 0
	byName := map[string]*Part{}
	for _, p := range parts {
		byName[p.Part] = p
	}
	// Expected parts first, in their order, then any others.
	var order []string
	seen := map[string]bool{}
	for _, name := range expect {
		order, seen[name] = append(order, name), true
	}
	for _, p := range parts {
		if !seen[p.Part] {
			order, seen[p.Part] = append(order, p.Part), true
		}
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tRUNS\tSURVIVED\tFAILED\tVERDICT")
	for _, name := range order {
		p := byName[name]
		switch {
		case p == nil:
			ok = false
			fmt.Fprintf(tw, "%s\t-\t-\t-\tMISSING\n", name)
		case p.Runs == 0:
			ok = false
			fmt.Fprintf(tw, "%s\t0\t0\t%d\tNO RUNS\n", name, len(p.Failures))
		default:
			failed := p.Runs - p.Survived
			verdict := "ok"
			if failed > 0 || len(p.Failures) > 0 {
				ok, verdict = false, "FAILED"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%d\t%s\n", name, p.Runs, p.Survived, p.Runs, max(failed, len(p.Failures)), verdict)
		}
	}
	tw.Flush()
	for _, name := range order {
		if p := byName[name]; p != nil && p.Notes != "" {
			fmt.Fprintf(w, "\n%s: %s", name, p.Notes)
		}
	}
	fmt.Fprintln(w)
	var lines []string
	for _, name := range order {
		p := byName[name]
		if p == nil {
			continue
		}
		for _, f := range p.Failures {
			lines = append(lines, fmt.Sprintf("  %s, seed %s: %s\n    replay: %s", name, orDash(f.Seed), oneLine(f.Detail, 400), replay(name, f)))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nFailures (%d):\n%s\n", len(lines), strings.Join(lines, "\n"))
	}
	for _, p := range problems {
		fmt.Fprintln(w, "unreadable:", p)
	}
	if ok {
		fmt.Fprintln(w, "\nchaos campaign: PASSED")
	} else {
		fmt.Fprintln(w, "\nchaos campaign: FAILED")
	}
	return ok
}

// replay is the command that replays a failure: the one its part wrote,
// or the part's usual one.
func replay(part string, f Failure) string {
	if f.Replay != "" {
		return f.Replay
	}
	if f.Seed == "" || f.Seed == "-" {
		return "(no seed: see the part's log)"
	}
	tests := map[string]string{
		"crash points":    "./integration -run '^TestChaosCrashPoints$'",
		"server restarts": "./integration -run '^TestChaosServerRestarts$'",
		"soak":            "./integration -run '^TestChaosSoak$'",
		"secrets":         "./integration -run '^TestChaosSecrets$'",
		"storage faults":  "./activities -run '^TestStorageFaults$'",
	}
	if t, ok := tests[part]; ok {
		return fmt.Sprintf("BULWARK_CHAOS_SEED=%s go test -count=1 %s -v", f.Seed, t)
	}
	if part == "fuzzing" {
		// "<pkg> <Fuzzer> testdata/fuzz/<Fuzzer>/<file>"
		if fields := strings.Fields(f.Seed); len(fields) == 3 {
			file := fields[2][strings.LastIndex(fields[2], "/")+1:]
			return fmt.Sprintf("go test -count=1 -run '^%s$/%s' %s", fields[1], file, fields[0])
		}
	}
	return "seed " + f.Seed
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
