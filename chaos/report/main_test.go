package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	all := `{"part":"crash points","runs":50,"survived":50,"failures":[],"notes":"20s per run"}
{"part":"server restarts","runs":10,"survived":10,"failures":[]}
{"part":"storage faults","runs":84,"survived":84,"failures":[]}
{"part":"soak","runs":30,"survived":30,"failures":[]}
{"part":"fuzzing","runs":6,"survived":6,"failures":[]}
{"part":"secrets","runs":120,"survived":120,"failures":[]}
`
	for _, tc := range []struct {
		name, results string
		code          int
		want          []string
	}{
		{"all parts pass", all, 0, []string{"crash points", "50/50", "10/10", "PASSED", "crash points: 20s per run"}},
		{"a failure with its replay", strings.Replace(all, `"runs":10,"survived":10,"failures":[]`,
			`"runs":10,"survived":9,"failures":[{"seed":"00000000000000ff","detail":"the runbook\nstarted over"}]`, 1), 1,
			[]string{"9/10", "FAILED", "seed 00000000000000ff: the runbook started over",
				"BULWARK_CHAOS_SEED=00000000000000ff go test -count=1 ./integration -run '^TestChaosServerRestarts$' -v"}},
		{"a fuzzing crash", strings.Replace(all, `"runs":6,"survived":6,"failures":[]`,
			`"runs":6,"survived":5,"failures":[{"seed":"./repository FuzzParseManifest testdata/fuzz/FuzzParseManifest/abc123","detail":"panic"}]`, 1), 1,
			[]string{"go test -count=1 -run '^FuzzParseManifest$/abc123' ./repository"}},
		{"a part missing", strings.Replace(all, `{"part":"soak","runs":30,"survived":30,"failures":[]}`+"\n", "", 1), 1,
			[]string{"soak", "MISSING", "FAILED"}},
		{"a part without runs", strings.Replace(all, `"runs":6,"survived":6`, `"runs":0,"survived":0`, 1), 1, []string{"NO RUNS"}},
		{"a line that is not JSON", all + "panic: oops\n", 1, []string{"unreadable: line 7"}},
		{"a part run twice adds up", all + `{"part":"crash points","runs":3,"survived":3,"failures":[]}` + "\n", 0, []string{"53/53"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "results.jsonl")
			os.WriteFile(path, []byte(tc.results), 0o600)
			var out, errOut bytes.Buffer
			if code := run([]string{path}, &out, &errOut); code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out.String(), errOut.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run(nil, &out, &errOut); code != 2 {
		t.Errorf("no file: exit %d", code)
	}
}
