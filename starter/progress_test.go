package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/config"
)

func TestProgressBarDrawsHeartbeatProgress(t *testing.T) {
	var out bytes.Buffer
	bar := &progressBar{w: &out, label: "backup"}
	bar.draw(activities.Progress{Phase: "backup", Chunk: 64, Offset: 256 << 20, Total: 1 << 30})
	got := out.String()
	for _, want := range []string{"\rbackup", "[#######.......................]", " 25.0%", "256.0 MiB / 1.0 GiB", "chunk 64"} {
		if !strings.Contains(got, want) {
			t.Errorf("bar %q lacks %q", got, want)
		}
	}
	out.Reset()
	bar.draw(activities.Progress{Phase: "restore", Offset: 2 << 30, Total: 1 << 30}) // never past 100%
	if !strings.Contains(out.String(), "100.0%") {
		t.Errorf("bar %q", out.String())
	}
	out.Reset()
	bar.clear()
	if s := out.String(); !strings.HasPrefix(s, "\r") || strings.TrimSpace(s) != "" {
		t.Errorf("clear wrote %q", s)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536 << 10: "1.5 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// The config bulwark init writes parses, and carries the strategy's
// schedule table.
func TestDemoConfigParses(t *testing.T) {
	c, err := config.Parse(filepath.Join(t.TempDir(), "bulwark.yaml"), []byte(demoConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Schedules) != 4 || c.Databases[0].RPO == 0 {
		t.Fatalf("schedules %d, rpo %v", len(c.Schedules), c.Databases[0].RPO)
	}
}
