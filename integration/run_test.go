package integration

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bulwark-dr/bulwark/activities"
)

// runIn runs `bulwark run …` in dir, as `make run` does.
func runIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "bulwark"), append([]string{"run"}, args...)...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("bulwark run %v: %v\nstdout: %s\nstderr: %s", args, err, out.String(), errOut.String())
	}
	return out.String()
}

func TestMakeRunBacksUpTheDemoDatabaseAndASecondRunAddsOne(t *testing.T) {
	dir := t.TempDir()
	first := runIn(t, dir)
	for _, want := range []string{"of finance", "verified ok", "stored", "ratio", "duration", "image hash", "Restore it with:"} {
		if !strings.Contains(first, want) {
			t.Errorf("summary lacks %q:\n%s", want, first)
		}
	}
	runIn(t, dir)
	var list activities.ListOutput
	if err := json.Unmarshal([]byte(runIn(t, dir, "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Backups) != 2 {
		t.Fatalf("after two runs: %d backups listed, want 2", len(list.Backups))
	}

	// The restore command printed by the first run works as printed.
	m := regexp.MustCompile(`(?m)^\s+\S+ run (restore finance \S+ --to \S+)$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("no restore command in:\n%s", first)
	}
	out := runIn(t, dir, strings.Fields(m[1])...)
	if !strings.Contains(out, "matches the manifest") {
		t.Fatalf("restore: %s", out)
	}
}
