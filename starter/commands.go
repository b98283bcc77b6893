package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/config"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/workflows"
)

func printJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdBackup(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	g.register(fs)
	noVerify := fs.Bool("no-verify", false, "skip the verification after the backup")
	typ := fs.String("type", "full", "full, incremental (pages changed since the newest backup) or differential (since the newest full)")
	detach := fs.Bool("detach", false, "start the workflow and return its id without waiting")
	s, db, _, err := databaseCommand(g, fs, args, 1, 1, "backup takes one database name")
	if err != nil {
		return err
	}
	defer s.Close()
	req := workflows.BackupRequest{Database: db.Name, Host: db.Host, Type: *typ, Verify: !*noVerify && db.VerifyAfterBackup()}
	if db.IsOracle() {
		if *typ != "full" {
			return fmt.Errorf("backup --type %s: an Oracle logical backup is always full (RMAN level 1 backups run with `bulwark oracle rman`)", *typ)
		}
		req.Engine = config.EngineOracle
	}
	run, err := s.start(ctx, workflows.BackupWorkflowID(db.Name), workflows.BackupWorkflow, req)
	if err != nil {
		return err
	}
	if *detach {
		return printStarted(g, run.GetID(), run.GetRunID())
	}
	var res workflows.BackupResult
	err = s.wait(ctx, run, "backup", &res)
	if err != nil {
		return err
	}
	g.lastBackup = res.BackupID
	if g.json {
		return printJSON(g, res)
	}
	printBackupSummary(g, s, res)
	return nil
}

func printStarted(g *globals, id, runID string) error {
	if g.json {
		return printJSON(g, map[string]string{"workflow_id": id, "run_id": runID})
	}
	fmt.Fprintf(g.stdout, "started %s (run %s)\n", id, runID)
	return nil
}

func printBackupSummary(g *globals, s *session, res workflows.BackupResult) {
	ratio := 0.0
	if res.StoredBytes > 0 {
		ratio = float64(res.ImageBytes) / float64(res.StoredBytes)
	}
	w := g.stdout
	verified := "not verified"
	if res.Verify != nil {
		verified = "verified ok in " + time.Duration(res.Verify.Duration).Round(time.Millisecond).String()
	}
	kind := res.Type
	if res.Parent != "" {
		kind += " on " + res.Parent
	}
	fmt.Fprintf(w, "Backup %s of %s (%s, host %s): %s\n", res.BackupID, res.Database, kind, res.Host, verified)
	if res.FullBecause != "" {
		fmt.Fprintf(w, "  taken as a full backup because %s\n", res.FullBecause)
	}
	if scn, ok := strings.CutPrefix(res.JournalMode, "scn "); ok && res.PageCount == 0 {
		// An Oracle logical backup: rows read at one SCN, not pages.
		fmt.Fprintf(w, "  schema      read at SCN %s, %d tables, %d rows, each with its digest\n", scn, res.Tables, res.Rows)
	} else {
		fmt.Fprintf(w, "  database    %s (%d pages, %s journal), %d tables, %d rows\n", humanBytes(res.ImageBytes), res.PageCount, res.JournalMode, res.Tables, res.Rows)
	}
	changed := ""
	if res.Type != "full" {
		changed = fmt.Sprintf(" holding the %d of %d pages that changed", res.ChangedPages, res.PageCount)
	}
	if res.Type != "full" && res.ChangedPages == 0 {
		fmt.Fprintf(w, "  stored      no pages: nothing changed since %s\n", res.Parent)
	} else {
		fmt.Fprintf(w, "  stored      %s in %d chunk(s)%s, compressed and encrypted: ratio %.2f×\n", humanBytes(res.StoredBytes), res.Chunks, changed, ratio)
	}
	fmt.Fprintf(w, "  duration    %s for the backup", time.Duration(res.Duration).Round(time.Millisecond))
	if res.ReusedChunks > 0 {
		fmt.Fprintf(w, " (resumed: %d chunk(s) re-used)", res.ReusedChunks)
	}
	fmt.Fprintf(w, "\n  image hash  %s\n", res.ImageHash)
	if res.Replication != nil {
		printReplication(w, res.Replication)
	}
}

// printReplication says where the backup now has verified copies and
// which destinations lack one.
func printReplication(w io.Writer, r *workflows.ReplicateResult) {
	for _, c := range r.Copies {
		how := fmt.Sprintf("%d object(s) copied, %s", c.Copied, humanBytes(c.CopiedBytes))
		if c.Copied == 0 {
			how = "already there"
		} else if c.AlreadyThere > 0 {
			how += fmt.Sprintf(", %d already there", c.AlreadyThere)
		}
		lock := ""
		if !c.LockedUntil.IsZero() {
			lock = ", locked until " + c.LockedUntil.Format("2006-01-02")
		}
		fmt.Fprintf(w, "  copy on     %s: verified (%s%s) in %s\n", c.Destination, how, lock, time.Duration(c.Duration).Round(time.Millisecond))
	}
	names := make([]string, 0, len(r.Failed))
	for name := range r.Failed {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  NO COPY on  %s: %s\n", name, r.Failed[name])
	}
}

func cmdReplicate(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("replicate", flag.ContinueOnError)
	g.register(fs)
	var to stringList
	fs.Var(&to, "to", "destination to copy to (repeatable; default every destination but the primary)")
	s, db, pos, err := databaseCommand(g, fs, args, 1, 2, "replicate takes a database name and optionally a backup (id, latest or a time; default latest)")
	if err != nil {
		return err
	}
	defer s.Close()
	for _, name := range to {
		if _, err := s.cfg.DestinationNamed(name); err != nil {
			return err
		}
	}
	ref := backupRef(pos)
	run, err := s.start(ctx, workflows.ReplicateWorkflowID(db.Name, ref), workflows.ReplicateWorkflow, workflows.ReplicateRequest{Database: db.Name, BackupID: ref, To: to})
	if err != nil {
		return err
	}
	var res workflows.ReplicateResult
	werr := s.wait(ctx, run, "replicate", &res)
	if g.json && werr == nil {
		return printJSON(g, res)
	}
	if werr != nil && len(res.Copies) == 0 && len(res.Failed) == 0 {
		return werr
	}
	fmt.Fprintf(g.stdout, "backup %s of %s:\n", res.BackupID, db.Name)
	printReplication(g.stdout, &res)
	return werr
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func cmdList(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	g.register(fs)
	limit := fs.Int("limit", 100, "show at most this many (newest)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("list takes at most one database name")
	}
	s, err := connect(g)
	if err != nil {
		return err
	}
	defer s.Close()
	req := workflows.ListRequest{Limit: *limit}
	if len(pos) == 1 {
		req.Database = pos[0]
	}
	run, err := s.c.ExecuteWorkflow(ctx, listOptions(), workflows.ListBackupsWorkflow, req)
	if err != nil {
		return fmt.Errorf("start listing: %w", err)
	}
	var out activities.ListOutput
	if err := s.wait(ctx, run, "list", &out); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, out)
	}
	if len(out.Backups) == 0 {
		fmt.Fprintln(g.stdout, "no complete backups")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tBACKUP\tTYPE\tPARENT\tSNAPSHOT (UTC)\tSIZE\tSTORED\tCHUNKS\tVERIFIED\tEXPORTS\tLOCATIONS")
	for _, b := range out.Backups {
		parent := b.Parent
		if parent == "" {
			parent = "-"
		}
		exports := strings.Join(b.Exports, ",")
		if exports == "" {
			exports = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", b.Database, b.BackupID, b.Type, parent, b.SnapshotAt.UTC().Format("2006-01-02 15:04:05"),
			humanBytes(b.ImageBytes), humanBytes(b.StoredBytes), b.Chunks, b.Verified, exports, strings.Join(b.Locations, ","))
	}
	if out.Truncated {
		fmt.Fprintln(tw, "(older backups not shown; raise --limit)")
	}
	return tw.Flush()
}

// databaseCommand parses the arguments of a command whose first argument
// is a database name and that takes between minArgs and maxArgs positional
// arguments, connects, and looks the database up in the config. It returns
// the positional arguments; the caller closes the session.
func databaseCommand(g *globals, fs *flag.FlagSet, args []string, minArgs, maxArgs int, usage string) (*session, config.Database, []string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, config.Database{}, nil, err
	}
	if len(pos) < minArgs || len(pos) > maxArgs {
		return nil, config.Database{}, nil, usagef("%s", usage)
	}
	s, err := connect(g)
	if err != nil {
		return nil, config.Database{}, nil, err
	}
	db, err := s.cfg.Database(pos[0])
	if err != nil {
		s.Close()
		return nil, config.Database{}, nil, err
	}
	return s, db, pos, nil
}

// backupRef is the optional second argument: a backup id, "latest" (the
// default) or an RFC 3339 time.
func backupRef(pos []string) string {
	if len(pos) > 1 {
		return pos[1]
	}
	return "latest"
}

func cmdVerify(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	g.register(fs)
	s, db, pos, err := databaseCommand(g, fs, args, 1, 2, "verify takes a database name and optionally a backup id (default latest)")
	if err != nil {
		return err
	}
	defer s.Close()
	ref := backupRef(pos)
	id := workflows.VerifyWorkflowID(db.Name, ref)
	run, err := s.start(ctx, id, workflows.VerifyWorkflow, workflows.VerifyRequest{Database: db.Name, BackupID: ref})
	if err != nil {
		return err
	}
	var out activities.VerifyOutput
	if err := s.wait(ctx, run, "verify", &out); err != nil {
		return err
	}
	if g.json {
		if err := printJSON(g, out); err != nil {
			return err
		}
	} else if out.OK {
		fmt.Fprintf(g.stdout, "backup %s of %s verified ok: %d chunk(s), %s read, integrity_check ok, foreign_key_check ok, row counts and image hash match (%s)\n",
			out.BackupID, db.Name, out.Chunks, humanBytes(out.BytesRead), time.Duration(out.Duration).Round(time.Millisecond))
	} else {
		fmt.Fprintf(g.stdout, "backup %s of %s FAILED verification:\n", out.BackupID, db.Name)
		for _, p := range out.Problems {
			fmt.Fprintln(g.stdout, "  -", p)
		}
	}
	if !out.OK {
		return fmt.Errorf("backup %s failed verification", out.BackupID)
	}
	return nil
}

func cmdRestore(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	g.register(fs)
	to := fs.String("to", "", "file to restore to (default: the database's configured path; an existing file needs --yes or approval)")
	yes := fs.Bool("yes", false, "replace an existing file without waiting for approval (it is kept as an emergency copy)")
	detach := fs.Bool("detach", false, "start the workflow and return without waiting")
	repair := fs.Bool("repair", false, "write good copies read from other destinations back to the primary")
	s, db, pos, err := databaseCommand(g, fs, args, 1, 2, "restore takes a database name and optionally a backup id, latest, or an RFC 3339 time")
	if err != nil {
		return err
	}
	defer s.Close()
	ref := backupRef(pos)
	target := db.Path
	if *to != "" {
		if target, err = filepath.Abs(*to); err != nil {
			return usagef("--to %q: %v", *to, err)
		}
	}
	req := workflows.RestoreRequest{
		Database: db.Name, Host: db.Host, Backup: ref, Target: target, Approved: *yes,
		ApprovalTimeout: time.Duration(s.cfg.Restore.ApprovalTimeout), Repair: *repair,
	}
	run, err := s.start(ctx, workflows.RestoreWorkflowID(db.Name, target), workflows.RestoreWorkflow, req)
	if err != nil {
		return err
	}
	if *detach {
		return printStarted(g, run.GetID(), run.GetRunID())
	}
	go s.announceApproval(ctx, run.GetID(), run.GetRunID())
	var res workflows.RestoreResult
	if err := s.wait(ctx, run, "restore", &res); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, res)
	}
	fmt.Fprintf(g.stdout, "restored backup %s of %s to %s (%s, image hash %s… matches the manifest) in %s\n",
		res.BackupID, db.Name, res.Target, humanBytes(res.ImageBytes), shortDigest(res.ImageHash), time.Duration(res.Duration).Round(time.Millisecond))
	if res.EmergencyCopy != "" {
		fmt.Fprintf(g.stdout, "the file it replaced is kept at %s\n", res.EmergencyCopy)
	}
	for _, h := range res.Healed {
		fmt.Fprintf(g.stdout, "healed: %s\n", h)
	}
	return nil
}

// announceApproval tells the operator, once, when a restore waits for
// approval and how to give it.
func (s *session) announceApproval(ctx context.Context, id, runID string) {
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := s.c.QueryWorkflow(ctx, id, runID, workflows.QueryStatus)
		if err != nil {
			continue
		}
		var st workflows.RestoreStatus
		if v.Get(&st) != nil {
			continue
		}
		if st.Phase == workflows.PhaseAwaitApproval {
			fmt.Fprintf(s.g.stderr, "waiting for %s\n", st.WaitingFor)
			return
		}
		if st.Phase == workflows.PhaseDone || st.Phase == workflows.PhaseRejected {
			return
		}
	}
}

func cmdApprove(ctx context.Context, g *globals, verb string, args []string) error {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	g.register(fs)
	reason := fs.String("reason", "", "why (recorded in the workflow history)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("%s takes a restore workflow id (see `bulwark status`)", verb)
	}
	s, err := connect(g)
	if err != nil {
		return err
	}
	defer s.Close()
	signal := workflows.SignalApprove
	if verb == "reject" {
		signal = workflows.SignalReject
	}
	if err := s.c.SignalWorkflow(ctx, pos[0], "", signal, workflows.ApproveSignal{By: operator(), Reason: *reason}); err != nil {
		return fmt.Errorf("%s %s: %w", verb, pos[0], err)
	}
	fmt.Fprintf(g.stdout, "sent %s to %s\n", signal, pos[0])
	return nil
}

func cmdStatus(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	g.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("status takes at most a workflow id")
	}
	s, err := connect(g)
	if err != nil {
		return err
	}
	defer s.Close()
	if len(pos) == 0 {
		return healthStatus(ctx, g, s)
	}
	desc, err := s.c.DescribeWorkflowExecution(ctx, pos[0], "")
	if err != nil {
		return fmt.Errorf("describe %s: %w", pos[0], err)
	}
	info := desc.GetWorkflowExecutionInfo()
	out := map[string]any{
		"workflow_id": pos[0], "run_id": info.GetExecution().GetRunId(), "type": info.GetType().GetName(),
		"status": info.GetStatus().String(), "started": info.GetStartTime().AsTime(),
	}
	if v, err := s.c.QueryWorkflow(ctx, pos[0], "", workflows.QueryStatus); err == nil {
		var st workflows.RestoreStatus
		if v.Get(&st) == nil {
			out["restore"] = st
		}
	}
	if p, ok := s.progress(ctx, pos[0], ""); ok {
		out["progress"] = p
	}
	if g.json {
		return printJSON(g, out)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(g.stdout, string(b))
	return nil
}

func cmdRestoreTable(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("restore-table", flag.ContinueOnError)
	g.register(fs)
	into := fs.String("into", "", "live database to restore the table into (default: the database's configured path)")
	mode := fs.String("mode", "replace", "replace (the live table), append (rows whose key is missing live), new-name (<table>_restored)")
	yes := fs.Bool("yes", false, "replace without waiting for approval (an emergency copy is made first)")
	s, db, pos, err := databaseCommand(g, fs, args, 3, 3, "restore-table takes a database name, a backup (id, latest or RFC 3339 time) and a table name")
	if err != nil {
		return err
	}
	defer s.Close()
	target := db.Path
	if *into != "" {
		if target, err = filepath.Abs(*into); err != nil {
			return usagef("--into %q: %v", *into, err)
		}
	}
	req := workflows.RestoreTableRequest{
		Database: db.Name, Host: db.Host, Backup: pos[1], Table: pos[2], Into: target, Mode: *mode, Approved: *yes,
		ApprovalTimeout: time.Duration(s.cfg.Restore.ApprovalTimeout),
	}
	run, err := s.start(ctx, workflows.RestoreTableWorkflowID(db.Name, pos[2]), workflows.RestoreTableWorkflow, req)
	if err != nil {
		return err
	}
	go s.announceApproval(ctx, run.GetID(), run.GetRunID())
	var res activities.TableOutput
	if err := s.wait(ctx, run, "stage", &res); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, res)
	}
	fmt.Fprintf(g.stdout, "restored table %s of %s into %s (%s): %d row(s) written", res.Table, db.Name, res.Into, res.Mode, res.RowsWritten)
	if res.RowsSkipped > 0 {
		fmt.Fprintf(g.stdout, ", %d already present live", res.RowsSkipped)
	}
	fmt.Fprintf(g.stdout, "; %d index(es), %d trigger(s)\nthe database as it was is kept at %s\n", res.Indexes, res.Triggers, res.EmergencyCopy)
	return nil
}

func cmdExport(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	g.register(fs)
	format := fs.String("format", "sql", "sql (a script sqlite3 replays) or csv (one file per table)")
	to := fs.String("to", "", "directory on the database's host to write the files into (must not contain them already)")
	s, db, pos, err := databaseCommand(g, fs, args, 1, 2, "export takes a database name and optionally a backup (id, latest or RFC 3339 time)")
	if err != nil {
		return err
	}
	defer s.Close()
	ref := backupRef(pos)
	dir := ""
	if *to != "" {
		if dir, err = filepath.Abs(*to); err != nil {
			return usagef("--to %q: %v", *to, err)
		}
	}
	req := workflows.ExportRequest{Database: db.Name, Host: db.Host, Backup: ref, Kind: *format, Dir: dir}
	// One export of a backup and format at a time: two would write the same
	// parts. A second start follows the running one.
	run, err := s.start(ctx, workflows.ExportWorkflowID(db.Name, ref, *format), workflows.ExportWorkflow, req)
	if err != nil {
		return err
	}
	var res workflows.ExportResult
	if err := s.wait(ctx, run, "export", &res); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, res)
	}
	verb := "made"
	if res.Existing {
		verb = "already stored"
	}
	fmt.Fprintf(g.stdout, "%s export of backup %s of %s %s with the backup: %d file(s)\n", res.Kind, res.BackupID, db.Name, verb, len(res.Files))
	for i, f := range res.Files {
		where := ""
		if i < len(res.Paths) {
			where = " → " + res.Paths[i]
		}
		fmt.Fprintf(g.stdout, "  %-28s %10s %8d rows%s\n", f.Name, humanBytes(f.Bytes), f.Rows, where)
	}
	return nil
}

// shortDigest cuts an "algorithm:hex" digest to the algorithm and 16 hex
// digits, enough to compare by eye.
func shortDigest(d string) string {
	if i := strings.LastIndexByte(d, ':'); i >= 0 && len(d) > i+17 {
		return d[:i+17]
	}
	return d
}

func cmdForget(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("forget", flag.ContinueOnError)
	g.register(fs)
	var dests stringList
	fs.Var(&dests, "destination", "destination to clean (repeatable; default all)")
	dryRun := fs.Bool("dry-run", false, "print the plan: every backup with the rule that keeps it or why it goes; delete nothing")
	s, db, _, err := databaseCommand(g, fs, args, 1, 1, "forget takes one database name")
	if err != nil {
		return err
	}
	defer s.Close()
	for _, name := range dests {
		if _, err := s.cfg.DestinationNamed(name); err != nil {
			return err
		}
	}
	req := workflows.CleanupRequest{Database: db.Name, Destinations: dests, DryRun: *dryRun}
	run, err := s.start(ctx, workflows.CleanupWorkflowID(db.Name), workflows.CleanupWorkflow, req)
	if err != nil {
		return err
	}
	var res workflows.CleanupResult
	werr := s.wait(ctx, run, "forget", &res)
	if g.json && werr == nil {
		return printJSON(g, res)
	}
	removed := map[string]bool{}
	for _, r := range res.Removed {
		removed[r.BackupID] = true
	}
	for _, p := range res.Plans {
		fmt.Fprintf(g.stdout, "%s (%s):", p.Destination, p.Policy)
		if p.Skipped != "" {
			fmt.Fprintf(g.stdout, " %s\n", p.Skipped)
			continue
		}
		fmt.Fprintln(g.stdout)
		tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
		for _, d := range p.Decisions {
			verdict := "keep"
			switch {
			case !d.Keep && *dryRun:
				verdict = "would remove"
			case !d.Keep && removed[d.BackupID]:
				verdict = "removed"
			case !d.Keep:
				verdict = "NOT removed"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", d.BackupID, d.Type, d.SnapshotAt.UTC().Format("2006-01-02 15:04"), verdict, strings.Join(d.Reasons, "; "))
		}
		tw.Flush()
	}
	for _, o := range res.Swept {
		if o.Objects > 0 {
			verb := map[bool]string{true: "would remove", false: "removed"}[*dryRun]
			fmt.Fprintf(g.stdout, "%s: %s %d orphan object(s), %s, that crashes left (e.g. %s)\n", o.Destination, verb, o.Objects, humanBytes(o.Bytes), o.Examples[0])
		}
	}
	return werr
}

func cmdCapacity(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("capacity", flag.ContinueOnError)
	g.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("capacity takes at most one database name")
	}
	s, err := connect(g)
	if err != nil {
		return err
	}
	defer s.Close()
	req := workflows.CapacityRequest{}
	if len(pos) == 1 {
		db, err := s.cfg.Database(pos[0])
		if err != nil {
			return err
		}
		req.Database = db.Name
	}
	opts := listOptions()
	opts.ID = strings.Replace(opts.ID, "list/", "capacity/", 1)
	run, err := s.c.ExecuteWorkflow(ctx, opts, workflows.CapacityWorkflow, req)
	if err != nil {
		return fmt.Errorf("start capacity report: %w", err)
	}
	var out activities.CapacityOutput
	if err := s.wait(ctx, run, "capacity", &out); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, out)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "DESTINATION\tDATABASE\tBACKUPS\tSTORED\tGROWTH/DAY\tPOLICY\tNEEDS (STEADY)\tIN 1 YEAR\tRECOMMENDED")
	var notes []string
	for _, r := range out.Rows {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t0\t-\t-\t%s\t-\t-\t-\n", r.Destination, r.Database, r.Policy)
			notes = append(notes, fmt.Sprintf("%s/%s: %s", r.Destination, r.Database, r.Error))
			continue
		}
		rep := r.Report
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Destination, r.Database, rep.Backups, humanBytes(rep.StoredBytes),
			humanBytes(int64(rep.GrowthPerDay)), r.Policy, humanBytes(rep.Projected), humanBytes(rep.ProjectedIn1Y), humanBytes(rep.Recommended))
		if rep.Schedule != "" {
			notes = append(notes, fmt.Sprintf("%s/%s: schedule seen: %s", r.Destination, r.Database, rep.Schedule))
		}
		for _, n := range rep.Notes {
			notes = append(notes, fmt.Sprintf("%s/%s: %s", r.Destination, r.Database, n))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(g.stdout, "  "+n)
	}
	return nil
}

func cmdDrill(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	g.register(fs)
	var queries stringList
	fs.Var(&queries, "query", "an application check: a read-only SELECT that must return a row (repeatable; default the config's)")
	s, db, pos, err := databaseCommand(g, fs, args, 1, 2, "drill takes a database name and optionally a backup (id, latest or a time)")
	if err != nil {
		return err
	}
	defer s.Close()
	req := workflows.DrillRequest{Database: db.Name, Host: db.Host, Backup: backupRef(pos), Queries: queries}
	if len(queries) == 0 && db.Drill != nil {
		req.Queries = db.Drill.Queries
	}
	run, err := s.start(ctx, workflows.DrillWorkflowID(db.Name), workflows.DrillWorkflow, req)
	if err != nil {
		return err
	}
	var res workflows.DrillResult
	werr := s.wait(ctx, run, "drill", &res)
	if werr != nil {
		// A failed drill carries its record in the failure's details.
		var app *temporal.ApplicationError
		if err := run.Get(ctx, &res); !errors.As(err, &app) || !app.HasDetails() || app.Details(&res) != nil {
			return werr
		}
	}
	if g.json {
		if err := printJSON(g, res); err != nil {
			return err
		}
		return werr
	}
	printDrill(g, res.Record)
	return werr
}

func printDrill(g *globals, r repository.DrillRecord) {
	verdict := "PASSED"
	if !r.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(g.stdout, "drill of %s %s: backup %s restored (%s) in %.2fs, integrity_check %s\n",
		r.Database, verdict, r.BackupID, humanBytes(r.ImageBytes), r.RestoreSeconds, r.IntegrityCheck)
	for _, q := range r.Queries {
		fmt.Fprintf(g.stdout, "  query %q → %v %s\n", q.SQL, q.Row, q.Error)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(g.stdout, "  problem:", p)
	}
}

func cmdDrills(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("drills", flag.ContinueOnError)
	g.register(fs)
	limit := fs.Int("limit", 20, "show at most this many, newest first")
	s, db, _, err := databaseCommand(g, fs, args, 1, 1, "drills takes a database name")
	if err != nil {
		return err
	}
	defer s.Close()
	opts := listOptions()
	opts.ID = strings.Replace(opts.ID, "list/", "drills/", 1)
	run, err := s.c.ExecuteWorkflow(ctx, opts, workflows.ListDrillsWorkflow, workflows.ListDrillsRequest{Database: db.Name, Limit: *limit})
	if err != nil {
		return err
	}
	var out activities.ListDrillsOutput
	if err := s.wait(ctx, run, "drills", &out); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, out)
	}
	if len(out.Drills) == 0 {
		fmt.Fprintf(g.stdout, "no drills of %s yet; run bulwark drill %s, or add drill: to the database in the config\n", db.Name, db.Name)
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED (UTC)\tRESULT\tBACKUP\tRESTORE\tSCHEDULE\tPROBLEMS")
	for _, r := range out.Drills {
		res := "passed"
		if !r.OK {
			res = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fs\t%s\t%s\n", r.StartedAt.UTC().Format("2006-01-02 15:04"), res, r.BackupID, r.RestoreSeconds, orDefault(r.Schedule, "by hand"), strings.Join(r.Problems, "; "))
	}
	return tw.Flush()
}

// healthRow is one database at a glance.
type healthRow struct {
	Database   string    `json:"database"`
	Health     string    `json:"health"` // ok, or what needs attention
	Newest     string    `json:"newest_backup,omitempty"`
	NewestAt   time.Time `json:"newest_at,omitzero"`
	Verified   string    `json:"newest_verified,omitempty"`
	RPOAge     string    `json:"rpo_age,omitempty"`
	RPO        string    `json:"rpo,omitempty"`
	Locations  []string  `json:"locations,omitempty"`
	LastDrill  string    `json:"last_drill,omitempty"`
	DrillState string    `json:"drill_state,omitempty"`
}

// healthStatus prints every configured database's health: the newest
// backup, the newest verified one against the RPO, where copies live, and
// the last drill.
func healthStatus(ctx context.Context, g *globals, s *session) error {
	run, err := s.c.ExecuteWorkflow(ctx, listOptions(), workflows.ListBackupsWorkflow, workflows.ListRequest{Limit: 1000})
	if err != nil {
		return err
	}
	var list activities.ListOutput
	if err := s.wait(ctx, run, "status", &list); err != nil {
		return err
	}
	now := time.Now()
	var rows []healthRow
	for _, db := range s.cfg.Databases {
		r := healthRow{Database: db.Name, Health: "ok"}
		var problems []string
		var verifiedAt time.Time
		for _, b := range list.Backups {
			if b.Database != db.Name {
				continue
			}
			r.Newest, r.NewestAt, r.Locations = b.BackupID, b.SnapshotAt, b.Locations
			if b.Verified == "ok" {
				r.Verified, verifiedAt = b.BackupID, b.SnapshotAt
			}
		}
		switch {
		case r.Newest == "":
			problems = append(problems, "no backups")
		case r.Verified == "":
			problems = append(problems, "no verified backup")
		default:
			age := now.Sub(verifiedAt)
			r.RPOAge = age.Round(time.Minute).String()
			if db.RPO > 0 {
				r.RPO = time.Duration(db.RPO).String()
				if age > time.Duration(db.RPO) {
					problems = append(problems, "RPO breached")
				}
			}
		}
		if want := len(s.cfg.Destinations); r.Newest != "" && len(r.Locations) < want {
			problems = append(problems, fmt.Sprintf("newest backup on %d of %d destinations", len(r.Locations), want))
		}
		opts := listOptions()
		opts.ID = strings.Replace(opts.ID, "list/", "drills/", 1)
		if drun, err := s.c.ExecuteWorkflow(ctx, opts, workflows.ListDrillsWorkflow, workflows.ListDrillsRequest{Database: db.Name, Limit: 1}); err == nil {
			var drills activities.ListDrillsOutput
			if drun.Get(ctx, &drills) == nil && len(drills.Drills) > 0 {
				d := drills.Drills[0]
				r.LastDrill, r.DrillState = d.StartedAt.UTC().Format("2006-01-02 15:04"), "passed"
				if !d.OK {
					r.DrillState = "FAILED"
					problems = append(problems, "last drill failed")
				}
			}
		}
		if len(problems) > 0 {
			r.Health = strings.Join(problems, "; ")
		}
		rows = append(rows, r)
	}
	if g.json {
		return printJSON(g, rows)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tHEALTH\tNEWEST BACKUP\tVERIFIED AGE / RPO\tCOPIES\tLAST DRILL")
	for _, r := range rows {
		rpo := r.RPOAge
		if r.RPO != "" {
			rpo += " / " + r.RPO
		}
		drill := "-"
		if r.LastDrill != "" {
			drill = r.LastDrill + " " + r.DrillState
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Database, r.Health, orDefault(r.Newest, "-"), orDefault(rpo, "-"), orDefault(strings.Join(r.Locations, ","), "-"), drill)
	}
	return tw.Flush()
}
