package devserver_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/bulwark-dr/bulwark/devserver"
)

const taskQueue = "devserver-test"

// Greet is the test workflow: it runs the Shout activity on its input.
func Greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var loud string
	if err := workflow.ExecuteActivity(ctx, Shout, name).Get(ctx, &loud); err != nil {
		return "", err
	}
	return "hello " + loud, nil
}

// Shout is the test activity.
func Shout(_ context.Context, s string) (string, error) {
	return strings.ToUpper(s), nil
}

var quietLogger = sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))

func startServer(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	began := time.Now()
	srv, err := devserver.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("server ready at %s in %v", srv.FrontendHostPort(), time.Since(began).Round(time.Millisecond))
	return srv
}

func stopServer(t *testing.T, srv *devserver.Server) {
	t.Helper()
	began := time.Now()
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("server stopped in %v", time.Since(began).Round(time.Millisecond))
}

// connect dials the server and starts a worker for Greet and Shout. The returned function stops
// both; call it before stopping the server, whose shutdown otherwise logs the workers' cut polls.
func connect(t *testing.T, hostPort, namespace string) (client.Client, func()) {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: hostPort, Namespace: namespace, Logger: quietLogger})
	if err != nil {
		t.Fatalf("dial %s: %v", hostPort, err)
	}
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(Greet)
	w.RegisterActivityWithOptions(Shout, activity.RegisterOptions{Name: "Shout"})
	if err := w.Start(); err != nil {
		c.Close()
		t.Fatalf("start worker: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			w.Stop()
			c.Close()
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// runGreet runs Greet to completion under workflowID and returns its run id.
func runGreet(t *testing.T, c client.Client, workflowID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflowID, TaskQueue: taskQueue}, Greet, "bulwark")
	if err != nil {
		t.Fatalf("start workflow %s: %v", workflowID, err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow %s: %v", workflowID, err)
	}
	if got != "hello BULWARK" {
		t.Fatalf("workflow %s returned %q, want %q", workflowID, got, "hello BULWARK")
	}
	return run.GetRunID()
}

func TestInMemory(t *testing.T) {
	srv := startServer(t, devserver.Options{UI: true})
	t.Cleanup(func() { stopServer(t, srv) })

	c, _ := connect(t, srv.FrontendHostPort(), devserver.DefaultNamespace)
	runGreet(t, c, "in-memory")

	t.Run("Schedule", func(t *testing.T) {
		testSchedule(t, c)
	})
	t.Run("WebUI", func(t *testing.T) {
		resp, err := http.Get(srv.UIAddress() + "/api/v1/namespaces")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s/api/v1/namespaces: %s", srv.UIAddress(), resp.Status)
		}
	})
}

// testSchedule creates a schedule, triggers it, waits for the workflow it starts to complete, and
// deletes it. Schedules run on the server's internal worker service.
func testSchedule(t *testing.T, c client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   "nightly-backup",
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 24 * time.Hour}}},
		Action: &client.ScheduleWorkflowAction{
			ID:        "nightly-backup-run",
			Workflow:  Greet,
			Args:      []any{"bulwark"},
			TaskQueue: taskQueue,
		},
		Paused: true,
	})
	if err != nil {
		t.Fatalf("create schedule: %v", err)
	}
	desc, err := h.Describe(ctx)
	if err != nil {
		t.Fatalf("describe schedule: %v", err)
	}
	if !desc.Schedule.State.Paused {
		t.Errorf("schedule not paused")
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatalf("trigger schedule: %v", err)
	}
	var started *client.ScheduleWorkflowExecution
	for started == nil {
		if desc, err = h.Describe(ctx); err != nil {
			t.Fatalf("describe schedule: %v", err)
		}
		if n := len(desc.Info.RecentActions); n > 0 {
			started = desc.Info.RecentActions[n-1].StartWorkflowResult
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("schedule took no action: %v", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	var got string
	if err := c.GetWorkflow(ctx, started.WorkflowID, started.FirstExecutionRunID).Get(ctx, &got); err != nil {
		t.Fatalf("scheduled workflow %s: %v", started.WorkflowID, err)
	}
	if err := h.Delete(ctx); err != nil {
		t.Fatalf("delete schedule: %v", err)
	}
}

func TestFilePersistence(t *testing.T) {
	dbFile := filepath.Join(t.TempDir(), "state", "temporal.db") // parent directory does not exist
	const namespace = "bulwark-test"

	srv := startServer(t, devserver.Options{DBFile: dbFile, Namespaces: []string{namespace}})
	c, disconnect := connect(t, srv.FrontendHostPort(), namespace)
	runID := runGreet(t, c, "persisted")
	disconnect()
	stopServer(t, srv)

	// Restart on the same file without naming the namespace: it must still be there, with the
	// history of the workflow that ran before.
	srv = startServer(t, devserver.Options{DBFile: dbFile})
	t.Cleanup(func() { stopServer(t, srv) })
	c2, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: namespace, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	desc, err := c2.DescribeWorkflowExecution(ctx, "persisted", runID)
	if err != nil {
		t.Fatalf("describe workflow after restart: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("workflow status after restart = %v, want COMPLETED", got)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]devserver.Options{
		"log level": {LogLevel: "loud"},
		"ip":        {IP: "not-an-ip"},
		"port":      {Port: 70000},
		"namespace": {Namespaces: []string{" "}},
	} {
		if srv, err := devserver.Start(opts); err == nil {
			_ = srv.Stop()
			t.Errorf("%s: Start succeeded, want an error", name)
		}
	}
}

// TestStartDevServer runs the bulwark-temporal binary named by BULWARK_TEMPORAL_BIN as the SDK's
// dev server, twice on the same database file.
func TestStartDevServer(t *testing.T) {
	bin := os.Getenv("BULWARK_TEMPORAL_BIN")
	if bin == "" {
		t.Skip("BULWARK_TEMPORAL_BIN is not set")
	}
	dbFile := filepath.Join(t.TempDir(), "sdk.db")
	hostKey := temporal.NewSearchAttributeKeyKeyword("BulwarkHost")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ds, stopDS := startDevServer(ctx, t, bin, dbFile)
	c, disconnect := connect(t, ds.FrontendHostPort(), devserver.DefaultNamespace)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    "sdk-dev-server",
		TaskQueue:             taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(hostKey.ValueSet("db1")),
	}, Greet, "bulwark")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	disconnect()
	stopDS()

	// A new process on the same file still has the workflow.
	ds, stopDS = startDevServer(ctx, t, bin, dbFile)
	desc, err := ds.Client().DescribeWorkflowExecution(ctx, "sdk-dev-server", run.GetRunID())
	if err != nil {
		t.Fatalf("describe workflow after restart: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("workflow status after restart = %v, want COMPLETED", got)
	}
	stopDS()
}

// startDevServer starts bin through testsuite.StartDevServer, checks its ready line, and returns it
// with a function that stops it and checks that it exits with status 0.
func startDevServer(ctx context.Context, t *testing.T, bin, dbFile string) (*testsuite.DevServer, func()) {
	t.Helper()
	var stdout syncBuffer
	began := time.Now()
	ds, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:     bin,
		ClientOptions:    &client.Options{Logger: quietLogger},
		DBFilename:       dbFile,
		LogLevel:         "error",
		SearchAttributes: temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("BulwarkHost").ValueSet("")),
		ExtraArgs:        []string{"--namespace", "bulwark"},
		Stdout:           &stdout,
	})
	if err != nil {
		t.Fatalf("StartDevServer: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ds.Client().Close()
			if err := ds.Stop(); err != nil {
				t.Errorf("stop dev server (expects exit status 0): %v", err)
			}
		})
	}
	t.Cleanup(stop)
	t.Logf("dev server ready at %s in %v", ds.FrontendHostPort(), time.Since(began).Round(time.Millisecond))

	want := "bulwark-temporal: frontend " + ds.FrontendHostPort() + "\n"
	for !strings.Contains(stdout.String(), want) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if got := stdout.String(); got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	return ds, stop
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
