package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/workflows"
)

// A scheduled run that breaches its RPO alerts through a webhook whose
// receiver is down at first: the Notify activity retries until it is up,
// and every attempt carries the same idempotency key.
func TestPipelineAlertReachesAWebhookThatWasDown(t *testing.T) {
	var (
		mu       sync.Mutex
		attempts int
		keys     []string
		events   []map[string]any
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		if attempts == 1 {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		var ev map[string]any
		json.Unmarshal(body, &ev)
		events = append(events, ev)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	// The URL would carry a token in real life: it reaches the worker
	// through the environment, never the config file.
	t.Setenv("BULWARK_TEST_WEBHOOK", receiver.URL+"/hooks/s3cret-token")

	c := newCluster(t, "")
	os.WriteFile(c.config, []byte(configFor(c.dir, `    rpo: 1ms
notifications:
  channels:
    - name: ops
      webhook: {url_env: BULWARK_TEST_WEBHOOK}
  routes:
    rpo_breach: [ops]
`)), 0o600)
	newFinance(t, c.dir, 0)
	c.startWorker()

	run, err := c.client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: "pipeline/finance/test", TaskQueue: activities.WorkflowQueue,
	}, workflows.PipelineWorkflow, workflows.PipelineRequest{Database: "finance", Host: "e2e", Type: "full", Verify: true, RPO: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res workflows.PipelineResult
	err = run.Get(ctx, &res)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "PipelineFailed" || app.Details(&res) != nil {
		t.Fatalf("a 1 ms RPO must fail the run: %v", err)
	}
	if !res.Breached || len(res.Alerts) != 1 || res.Alerts[0] != "rpo_breach sent" {
		t.Fatalf("result %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Fatalf("%d attempts with keys %v: want a retry with the same key", attempts, keys)
	}
	if len(events) != 1 || events[0]["kind"] != "rpo_breach" || events[0]["database"] != "finance" {
		t.Fatalf("events %+v", events)
	}
}
