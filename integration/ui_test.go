package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-dr/bulwark/workflows"
)

// chromium returns the headless browser, or skips: CI installs it (.ci/run
// sets BULWARK_REQUIRE_CHROMIUM), so there a missing one is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("BULWARK_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is required (BULWARK_REQUIRE_CHROMIUM is set) but not installed")
	}
	t.Skip("chromium is not installed (.ci/run installs it)")
	return ""
}

// artifactDir is where tests leave files for people to look at:
// $BULWARK_ARTIFACTS, or integration/artifacts (ignored by git).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("BULWARK_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// The Web UI served with the embedded server lists a disaster recovery
// started with the CLI; headless Chromium renders the page, and a
// screenshot is kept.
func TestWebUIListsTheDisasterRecovery(t *testing.T) {
	browser := chromium(t)
	c := newClusterWithUI(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, "")), 0o600)
	newFinance(t, c.dir, 0)
	c.startWorker()
	c.mustCLI("backup", "finance")
	c.mustCLI("dr", "start", "inc-ui", "--scenario", "corruption")
	waitFor(t, 60*time.Second, func() bool {
		r, ok := drStatus(c, workflows.DRWorkflowID("inc-ui"))
		return ok && r.WaitingFor != ""
	})

	page := c.uiURL + "/namespaces/default/workflows"
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// The UI is a single-page app: virtual time lets its API calls
		// finish before the DOM is read.
		out, err := exec.CommandContext(ctx, browser, append([]string{"--headless", "--no-sandbox", "--disable-gpu",
			"--hide-scrollbars", "--window-size=1400,900", "--virtual-time-budget=20000"}, args...)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return string(out)
	}
	dom := run("--dump-dom", page)
	if !strings.Contains(dom, "dr/inc-ui") || !strings.Contains(dom, "DisasterRecoveryWorkflow") {
		t.Fatalf("the workflow list does not show the disaster recovery:\n%.2000s", dom)
	}
	shot := filepath.Join(artifactDir(t), "web-ui-disaster-recovery.png")
	run("--screenshot="+shot, page)
	if info, err := os.Stat(shot); err != nil || info.Size() < 10000 {
		t.Fatalf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot of the Web UI: %s", shot)
}
