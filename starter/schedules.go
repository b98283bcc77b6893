package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/config"
	"github.com/bulwark-dr/bulwark/workflows"
)

// scheduleIDPrefix marks the Temporal Schedules that Bulwark owns: apply
// creates, updates and deletes only those.
const scheduleIDPrefix = "bulwark/"

// notePrefix starts the schedule's note, which records a hash of the
// config it was applied from: a second apply of the same config finds
// every schedule up to date and changes nothing.
const notePrefix = "bulwark config "

var overlapPolicies = map[string]enumspb.ScheduleOverlapPolicy{
	"skip":            enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	"buffer_one":      enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	"buffer_all":      enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	"cancel_other":    enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER,
	"terminate_other": enumspb.SCHEDULE_OVERLAP_POLICY_TERMINATE_OTHER,
	"allow_all":       enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
}

// desiredSchedule is what one configured schedule becomes in Temporal.
type desiredSchedule struct {
	id   string
	note string
	opts client.ScheduleOptions
}

func desiredSchedules(cfg *config.Config) ([]desiredSchedule, error) {
	var out []desiredSchedule
	for _, s := range cfg.Schedules {
		db, err := cfg.Database(s.Database)
		if err != nil {
			return nil, err
		}
		req := workflows.PipelineRequest{
			Database: db.Name, Host: db.Host, Type: s.Type, Schedule: s.Name,
			Verify: db.VerifyAfterBackup(), Cleanup: s.CleanupAfter(), RPO: time.Duration(db.RPO),
		}
		if db.IsOracle() {
			// Logical backups of Oracle are always full; RMAN does Oracle's
			// incrementals on the database host.
			req.Engine, req.Type = config.EngineOracle, "full"
		}
		// The note hashes everything the schedule is made of, so any
		// change in the config (or in what a run is asked to do) updates it.
		shape, err := json.Marshal(struct {
			Cron, TimeZone, Overlap string
			Catchup                 time.Duration
			Paused                  bool
			Request                 workflows.PipelineRequest
		}{s.Cron, cfg.TimeZone, s.Overlap, time.Duration(s.CatchupWindow), s.Paused, req})
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(shape)
		note := notePrefix + hex.EncodeToString(sum[:8])
		id := scheduleIDPrefix + s.Name
		out = append(out, desiredSchedule{id: id, note: note, opts: client.ScheduleOptions{
			ID:            id,
			Spec:          client.ScheduleSpec{CronExpressions: []string{s.Cron}, TimeZoneName: cfg.TimeZone},
			Overlap:       overlapPolicies[s.Overlap],
			CatchupWindow: time.Duration(s.CatchupWindow),
			Paused:        s.Paused,
			Note:          note,
			Action: &client.ScheduleWorkflowAction{
				// Temporal appends the scheduled time to this id.
				ID:        "pipeline/" + db.Name + "/" + s.Name,
				Workflow:  workflows.PipelineWorkflow,
				Args:      []any{req},
				TaskQueue: activities.WorkflowQueue,
			},
		}})
	}
	// A database's restore drill is a schedule of its own.
	for _, db := range cfg.Databases {
		if db.Drill == nil {
			continue
		}
		name := "drill-" + db.Name
		req := workflows.DrillRequest{Database: db.Name, Host: db.Host, Backup: db.Drill.Backup, Queries: db.Drill.Queries, Schedule: name}
		shape, err := json.Marshal(struct {
			Cron, TimeZone string
			Request        workflows.DrillRequest
		}{db.Drill.Cron, cfg.TimeZone, req})
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(shape)
		id := scheduleIDPrefix + name
		note := notePrefix + hex.EncodeToString(sum[:8])
		out = append(out, desiredSchedule{id: id, note: note, opts: client.ScheduleOptions{
			ID:            id,
			Spec:          client.ScheduleSpec{CronExpressions: []string{db.Drill.Cron}, TimeZoneName: cfg.TimeZone},
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: time.Hour,
			Note:          note,
			Action: &client.ScheduleWorkflowAction{
				ID: workflows.DrillWorkflowID(db.Name), Workflow: workflows.DrillWorkflow,
				Args: []any{req}, TaskQueue: activities.WorkflowQueue,
			},
		}})
	}
	return out, nil
}

// existingSchedules lists the Bulwark-owned schedules: id → note.
func existingSchedules(ctx context.Context, c client.Client) (map[string]string, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(e.ID, scheduleIDPrefix) {
			out[e.ID] = e.Note
		}
	}
	return out, nil
}

func cmdSchedules(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return usagef("schedules takes a subcommand: apply or list")
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("schedules "+sub, flag.ContinueOnError)
	g.register(fs)
	dryRun := fs.Bool("dry-run", false, "apply: print what would change, change nothing")
	pos, err := parse(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("schedules %s takes no arguments", sub)
	}
	s, err := connect(g)
	if err != nil {
		return err
	}
	defer s.Close()
	switch sub {
	case "apply":
		return applySchedules(ctx, g, s, *dryRun)
	case "list":
		return listSchedules(ctx, g, s)
	}
	return usagef("unknown schedules subcommand %q: use apply or list", sub)
}

// applySchedules reconciles Temporal's schedules with the config: creates
// what is missing, updates what changed, deletes Bulwark schedules the
// config no longer names, and leaves everything else alone.
func applySchedules(ctx context.Context, g *globals, s *session, dryRun bool) error {
	want, err := desiredSchedules(s.cfg)
	if err != nil {
		return err
	}
	have, err := existingSchedules(ctx, s.c)
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	sc := s.c.ScheduleClient()
	var changes []string
	wanted := map[string]bool{}
	for _, d := range want {
		wanted[d.id] = true
		// Describe, not the listing, says whether it exists: listings are
		// eventually consistent and may not show a schedule created just now.
		note, exists := "", false
		desc, err := sc.GetHandle(ctx, d.id).Describe(ctx)
		var notFound *serviceerror.NotFound
		switch {
		case err == nil:
			exists = true
			if desc.Schedule.State != nil {
				note = desc.Schedule.State.Note
			}
		case !errors.As(err, &notFound):
			return fmt.Errorf("describe schedule %s: %w", d.id, err)
		}
		switch {
		case exists && note == d.note:
			changes = append(changes, "unchanged "+d.id)
			continue
		case exists:
			changes = append(changes, "updated   "+d.id)
			if dryRun {
				continue
			}
			sched := d.opts
			err = sc.GetHandle(ctx, d.id).Update(ctx, client.ScheduleUpdateOptions{
				DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
					next := in.Description.Schedule
					next.Spec = &sched.Spec
					next.Action = sched.Action
					if next.Policy == nil {
						next.Policy = &client.SchedulePolicies{}
					}
					next.Policy.Overlap = sched.Overlap
					next.Policy.CatchupWindow = sched.CatchupWindow
					if next.State == nil {
						next.State = &client.ScheduleState{}
					}
					next.State.Note = sched.Note
					next.State.Paused = sched.Paused
					return &client.ScheduleUpdate{Schedule: &next}, nil
				},
			})
		default:
			changes = append(changes, "created   "+d.id)
			if dryRun {
				continue
			}
			_, err = sc.Create(ctx, d.opts)
		}
		if err != nil {
			return fmt.Errorf("schedule %s: %w", d.id, err)
		}
	}
	// The config no longer names these; the listing may lag behind a
	// deletion made just now, so one already gone is not an error.
	var stale []string
	for id := range have {
		if !wanted[id] {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	for _, id := range stale {
		var notFound *serviceerror.NotFound
		if _, err := sc.GetHandle(ctx, id).Describe(ctx); errors.As(err, &notFound) {
			continue // deleted already; the listing has not caught up
		}
		changes = append(changes, "deleted   "+id)
		if dryRun {
			continue
		}
		if err := sc.GetHandle(ctx, id).Delete(ctx); err != nil && !errors.As(err, &notFound) {
			return fmt.Errorf("delete schedule %s: %w", id, err)
		}
	}
	if g.json {
		return printJSON(g, changes)
	}
	if len(changes) == 0 {
		fmt.Fprintln(g.stdout, "no schedules configured, none to remove")
	}
	for _, c := range changes {
		if dryRun {
			c = "would be " + c
		}
		fmt.Fprintln(g.stdout, c)
	}
	return nil
}

// listSchedules shows each Bulwark schedule with its next run times.
func listSchedules(ctx context.Context, g *globals, s *session) error {
	have, err := existingSchedules(ctx, s.c)
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	ids := make([]string, 0, len(have))
	for id := range have {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	type row struct {
		ID     string      `json:"id"`
		Cron   []string    `json:"cron"`
		Zone   string      `json:"timezone"`
		Paused bool        `json:"paused"`
		Next   []time.Time `json:"next"`
		Recent int         `json:"recent_runs"`
	}
	var rows []row
	for _, id := range ids {
		d, err := s.c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		if err != nil {
			return fmt.Errorf("describe %s: %w", id, err)
		}
		r := row{ID: id, Next: d.Info.NextActionTimes, Recent: len(d.Info.RecentActions)}
		if sp := d.Schedule.Spec; sp != nil {
			r.Cron, r.Zone = sp.CronExpressions, sp.TimeZoneName
			// The server keeps cron expressions as calendars; show them as
			// cron again, the way the config writes them.
			for _, c := range sp.Calendars {
				r.Cron = append(r.Cron, calendarAsCron(c))
			}
		}
		if d.Schedule.State != nil {
			r.Paused = d.Schedule.State.Paused
		}
		rows = append(rows, r)
	}
	if g.json {
		return printJSON(g, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(g.stdout, "no Bulwark schedules; add schedules: to the config and run bulwark schedules apply")
		return nil
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tWHEN\tZONE\tSTATE\tNEXT RUNS")
	for _, r := range rows {
		state := "active"
		if r.Paused {
			state = "paused"
		}
		var next []string
		for _, t := range r.Next[:min(3, len(r.Next))] {
			next = append(next, t.In(time.Local).Format("Mon 2006-01-02 15:04"))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, strings.Join(r.Cron, "; "), r.Zone, state, strings.Join(next, ", "))
	}
	return tw.Flush()
}

// calendarAsCron writes a calendar spec as the five cron fields.
func calendarAsCron(c client.ScheduleCalendarSpec) string {
	return strings.Join([]string{
		cronField(c.Minute, 0, 59), cronField(c.Hour, 0, 23), cronField(c.DayOfMonth, 1, 31),
		cronField(c.Month, 1, 12), cronField(c.DayOfWeek, 0, 6),
	}, " ")
}

func cronField(rs []client.ScheduleRange, lo, hi int) string {
	if len(rs) == 0 || len(rs) == 1 && rs[0].Start == lo && max(rs[0].End, rs[0].Start) == hi && rs[0].Step <= 1 {
		return "*"
	}
	var parts []string
	for _, r := range rs {
		p := fmt.Sprint(r.Start)
		if r.End > r.Start {
			p += fmt.Sprintf("-%d", r.End)
		}
		if r.Step > 1 {
			p += fmt.Sprintf("/%d", r.Step)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ",")
}
