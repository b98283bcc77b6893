package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/workflows"
)

// cmdDR drives the disaster-recovery runbook: start declares a disaster,
// the others signal, query or wait for the workflow. The same can be done
// from the Temporal UI or CLI (signals approve-restore, abort,
// resume-operations; query dr-status).
func cmdDR(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return usagef("dr takes a subcommand: start, status, approve, resume, abort or report")
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("dr "+sub, flag.ContinueOnError)
	g.register(fs)
	scenario := fs.String("scenario", "", "start: corruption, hardware_failure, ransomware or site_disaster")
	var dbs, targets, skip stringList
	fs.Var(&dbs, "database", "start: an affected database, NAME or NAME:P1|P2|P3 (repeatable; default every configured one)")
	fs.Var(&targets, "target", "start: restore NAME elsewhere, NAME=/new/path or NAME=host:/new/path (repeatable)")
	fs.Var(&skip, "skip", "approve: a database not to restore (repeatable)")
	anomaly := fs.String("anomaly-since", "", "start: RFC 3339 time the corruption or attack began; the restore point is the newest verified backup before it")
	from := fs.String("from", "", "start: the destination to restore from first (a locked copy for ransomware, the offsite one for a site disaster)")
	reason := fs.String("reason", "", "abort: why")
	pos, err := parse(fs, rest)
	if err != nil {
		return err
	}
	s, err := connect(g)
	if err != nil {
		return err
	}
	defer s.Close()
	by := operator()
	if sub == "start" {
		if len(pos) > 1 {
			return usagef("dr start takes at most one incident name")
		}
		incident := time.Now().UTC().Format("20060102T1504Z")
		if len(pos) == 1 {
			incident = pos[0]
		}
		return drStart(ctx, g, s, incident, *scenario, dbs, targets, *anomaly, *from, by)
	}
	if len(pos) != 1 {
		return usagef("dr %s takes the incident name (the workflow id without dr/)", sub)
	}
	id := workflows.DRWorkflowID(strings.TrimPrefix(pos[0], workflows.DRIDPrefix))
	signal := func(name string, payload workflows.DRSignal) error {
		if err := s.c.SignalWorkflow(ctx, id, "", name, payload); err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				return fmt.Errorf("no disaster recovery %s is running", id)
			}
			return err
		}
		fmt.Fprintf(g.stdout, "sent %s to %s as %s\n", name, id, by)
		return nil
	}
	switch sub {
	case "status":
		return drStatus(ctx, g, s, id)
	case "approve":
		return signal(workflows.SignalApproveRestore, workflows.DRSignal{By: by, Skip: skip})
	case "resume":
		return signal(workflows.SignalResumeOperations, workflows.DRSignal{By: by})
	case "abort":
		return signal(workflows.SignalAbort, workflows.DRSignal{By: by, Reason: *reason})
	case "report":
		var rep workflows.DRReport
		err := s.c.GetWorkflow(ctx, id, "").Get(ctx, &rep)
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.HasDetails() {
			_ = app.Details(&rep)
		} else if err != nil {
			return err
		}
		if g.json {
			return printJSON(g, rep)
		}
		printDRReport(g, rep)
		return err
	}
	return usagef("unknown dr subcommand %q", sub)
}

func drStart(ctx context.Context, g *globals, s *session, incident, scenario string, dbs, targets []string, anomaly, from, by string) error {
	if _, _, needsFrom, ok := workflows.DRPreset(scenario); !ok {
		return usagef("--scenario %q: use corruption, hardware_failure, ransomware or site_disaster", scenario)
	} else if needsFrom && from == "" {
		return usagef("--scenario %s restores from a named destination: give --from (a locked copy for ransomware, the offsite one for a site disaster)", scenario)
	}
	if from != "" {
		if _, err := s.cfg.DestinationNamed(from); err != nil {
			return err
		}
	}
	req := workflows.DRRequest{Incident: incident, Scenario: scenario, DeclaredBy: by, From: from}
	if anomaly != "" {
		t, err := time.Parse(time.RFC3339, anomaly)
		if err != nil {
			return usagef("--anomaly-since %q is not an RFC 3339 time such as 2026-11-20T09:00:00Z", anomaly)
		}
		req.AnomalySince = t
	}
	if len(dbs) == 0 {
		for _, d := range s.cfg.Databases {
			dbs = append(dbs, d.Name)
		}
	}
	for _, spec := range dbs {
		name, prio, _ := strings.Cut(spec, ":")
		d, err := s.cfg.Database(name)
		if err != nil {
			return err
		}
		dd := workflows.DRDatabase{Name: d.Name, Host: d.Host, Priority: strings.ToUpper(prio)}
		if d.IsOracle() {
			dd.Engine, dd.Host = "oracle", ""
		}
		req.Databases = append(req.Databases, dd)
	}
	for _, t := range targets {
		name, where, ok := strings.Cut(t, "=")
		if !ok {
			return usagef("--target %q: use NAME=/new/path or NAME=host:/new/path", t)
		}
		found := false
		for i := range req.Databases {
			if req.Databases[i].Name == name {
				host, path, hasHost := strings.Cut(where, ":")
				if !hasHost {
					host, path = "", where
				}
				req.Databases[i].TargetHost, req.Databases[i].TargetPath = host, path
				found = true
			}
		}
		if !found {
			return usagef("--target %q names a database that is not among the affected ones", t)
		}
	}
	id := workflows.DRWorkflowID(incident)
	// No execution timeout: the runbook waits for people, and its RTO
	// watch is what raises the alarm.
	run, err := s.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: activities.WorkflowQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.DisasterRecoveryWorkflow, req)
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return fmt.Errorf("disaster recovery %s is already running; see bulwark dr status %s", id, incident)
	}
	if err != nil {
		return err
	}
	if g.json {
		return printJSON(g, map[string]string{"workflow_id": run.GetID(), "run_id": run.GetRunID()})
	}
	fmt.Fprintf(g.stdout, "declared %s (%s) as %s: %s\nnext: bulwark dr status %s; approve the restore with bulwark dr approve %s\n",
		scenario, incident, by, id, incident, incident)
	return nil
}

func drStatus(ctx context.Context, g *globals, s *session, id string) error {
	v, err := s.c.QueryWorkflow(ctx, id, "", workflows.QueryDRStatus)
	if err != nil {
		return fmt.Errorf("query %s: %w", id, err)
	}
	var rep workflows.DRReport
	if err := v.Get(&rep); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, rep)
	}
	printDRReport(g, rep)
	return nil
}

func printDRReport(g *globals, r workflows.DRReport) {
	w := g.stdout
	fmt.Fprintf(w, "Disaster recovery %s: %s, declared by %s at %s\n", r.Incident, r.Scenario, r.DeclaredBy, r.DeclaredAt.UTC().Format(time.RFC3339))
	if r.Outcome != "" {
		fmt.Fprintf(w, "  outcome   %s\n", r.Outcome)
	} else {
		fmt.Fprintf(w, "  step      %s", r.Step)
		if r.WaitingFor != "" {
			fmt.Fprintf(w, " — waiting for %s", r.WaitingFor)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  RTO       objective %s, deadline %s", time.Duration(r.RTOObjective), r.RTODeadline.UTC().Format(time.RFC3339))
	if r.RTOReached > 0 {
		fmt.Fprintf(w, ", reached %s (met: %v)", time.Duration(r.RTOReached).Round(time.Second), r.RTOMet)
	}
	fmt.Fprintf(w, "\n  RPO       objective %s", time.Duration(r.RPOObjective))
	if r.RPOReached > 0 {
		fmt.Fprintf(w, ", data-loss window %s (met: %v)", time.Duration(r.RPOReached).Round(time.Second), r.RPOMet)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSTEP\tOUTCOME\tSTARTED\tTOOK\tDETAIL")
	for _, st := range r.Timeline {
		took := ""
		if !st.Ended.IsZero() && !st.Started.IsZero() {
			took = st.Ended.Sub(st.Started).Round(time.Millisecond).String()
		}
		started := ""
		if !st.Started.IsZero() {
			started = st.Started.UTC().Format("15:04:05")
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", st.Number, st.Name, st.Outcome, started, took, st.Detail)
	}
	tw.Flush()
	for _, d := range r.Databases {
		fmt.Fprintf(w, "  database %s (%s, %s): %s", d.Name, d.Priority, d.TargetHost, d.Status)
		if d.BackupID != "" {
			fmt.Fprintf(w, "; backup %s from %s, data lost %s", d.BackupID, orDefault(d.From, "primary"), time.Duration(d.DataLoss).Round(time.Second))
		}
		if d.EmergencyCopy != "" {
			fmt.Fprintf(w, "; replaced file kept at %s", d.EmergencyCopy)
		}
		if d.Error != "" {
			fmt.Fprintf(w, "; %s", d.Error)
		}
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
