package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/term"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/config"
)

// session is a loaded config and a connected client.
type session struct {
	cfg *config.Config
	c   client.Client
	g   *globals
}

func connect(g *globals) (*session, error) {
	cfg, err := config.Load(g.config)
	if err != nil {
		return nil, err
	}
	opts, err := cfg.ClientOptions(g.address, g.namespace, g.profile)
	if err != nil {
		return nil, err
	}
	opts.Logger = quietLogger{}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (%v); start one with `make serve`, or use `bulwark run <command>` for the embedded server", opts.HostPort, err)
	}
	return &session{cfg: cfg, c: c, g: g}, nil
}

func (s *session) Close() { s.c.Close() }

// start starts a workflow on the workflow queue. Workflow ids are business
// keys: when one with the same id is running, start attaches to it rather
// than running the same operation twice, and says so.
func (s *session) start(ctx context.Context, id string, wf any, arg any) (client.WorkflowRun, error) {
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                activities.WorkflowQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionTimeout: 48 * time.Hour,
	}, wf, arg)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		fmt.Fprintf(s.g.stderr, "%s is already running (run %s); following it instead of starting another\n", id, already.RunId)
		return s.c.GetWorkflow(ctx, id, already.RunId), nil
	}
	if err != nil {
		return nil, fmt.Errorf("start workflow %s: %w", id, err)
	}
	return run, nil
}

// wait waits for a run's result, drawing a progress bar from the heartbeats
// of its activities (and of its children's) when stderr is a terminal.
func (s *session) wait(ctx context.Context, run client.WorkflowRun, label string, result any) error {
	done := make(chan struct{})
	var bar *progressBar
	if !s.g.json && isTerminal(s.g.stderr) {
		bar = &progressBar{w: s.g.stderr, label: label}
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if p, ok := s.progress(ctx, run.GetID(), run.GetRunID()); ok {
						bar.draw(p)
					}
				}
			}
		}()
	}
	err := run.Get(ctx, result)
	close(done)
	if bar != nil {
		bar.clear()
	}
	return explain(err)
}

// progress finds the heartbeat of the activity a workflow (or its running
// child) is waiting on.
func (s *session) progress(ctx context.Context, id, runID string) (activities.Progress, bool) {
	var p activities.Progress
	for depth := 0; depth < 3; depth++ {
		desc, err := s.c.DescribeWorkflowExecution(ctx, id, runID)
		if err != nil {
			return p, false
		}
		for _, a := range desc.GetPendingActivities() {
			if d := a.GetHeartbeatDetails(); d != nil && len(d.GetPayloads()) > 0 {
				if converter.GetDefaultDataConverter().FromPayloads(d, &p) == nil && p.Total > 0 {
					return p, true
				}
			}
		}
		children := desc.GetPendingChildren()
		if len(children) == 0 {
			return p, false
		}
		id, runID = children[0].GetWorkflowId(), children[0].GetRunId()
	}
	return p, false
}

type progressBar struct {
	w     io.Writer
	label string
	drawn bool
}

func (b *progressBar) draw(p activities.Progress) {
	const width = 30
	frac := float64(p.Offset) / float64(p.Total)
	frac = min(max(frac, 0), 1)
	filled := int(frac * width)
	fmt.Fprintf(b.w, "\r%-8s [%s%s] %5.1f%%  %s / %s  chunk %d ", p.Phase, strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		100*frac, humanBytes(p.Offset), humanBytes(p.Total), p.Chunk)
	b.drawn = true
}

func (b *progressBar) clear() {
	if b.drawn {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", 90))
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// explain reduces Temporal's nested workflow/activity errors to the
// application error at their root, which is the part an operator can act on.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return fmt.Errorf("%s [%s]", app.Message(), app.Type())
	}
	var canceled *temporal.CanceledError
	if errors.As(err, &canceled) {
		return errors.New("cancelled")
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return fmt.Errorf("timed out (%s); is a worker running for this host? %v", timeout.TimeoutType(), timeout)
	}
	return err
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
