package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bulwark-dr/bulwark/workflows"
)

// replayHistory fetches a finished workflow's history from the server and
// replays it against the current workflow code: a change that would break
// running workflows fails here. With BULWARK_RECORD_HISTORIES=<dir> the
// history is also saved there as <name>.json, which is how the golden
// histories under workflows/testdata are made.
func replayHistory(t *testing.T, c *cluster, wfID, runID, name string) {
	t.Helper()
	ctx := context.Background()
	it := c.client.GetWorkflowHistory(ctx, wfID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	r := worker.NewWorkflowReplayer()
	for _, wf := range workflows.All() {
		r.RegisterWorkflow(wf)
	}
	if err := r.ReplayWorkflowHistory(nil, h); err != nil {
		t.Fatalf("replay %s: %v", wfID, err)
	}
	if dir := os.Getenv("BULWARK_RECORD_HISTORIES"); dir != "" {
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
