// Package capacity projects the space one database's backups will need on
// one destination, from the backups stored there and the destination's
// retention policy.
//
// Project infers the backup schedule from the most recent ObservationDays
// days of backups: a weekly pattern of slots (weekday, time of day in UTC,
// type), each with the average stored size of its occurrences, so that a
// differential that grows through the week keeps its size on each weekday.
// It then simulates that schedule into the future with Bulwark's parent
// rules, applying retention.Plan as a daily cleanup would, until the policy
// reaches its steady state, and reports the most the policy keeps at any
// moment of the last simulated week: the need swings within a week (with a
// weekly full and keep_daily 7, two fulls are kept for six days out of
// seven, one on the seventh) and a destination must hold the peak.
//
// Assumptions: sizes are today's (ProjectedIn1Y scales them all by the
// growth of the database image over a year); simulated backups are verified
// when any observed one was, so the "newest verified backup" rule keeps the
// newest backup and its chain; nothing is locked; the bytes of backups that
// a cleanup is about to remove are not counted (Recommended's headroom is
// for them).
//
// The package reads and writes nothing: the caller lists the backups and
// their sizes, and formats the Report.
package capacity

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-dr/bulwark/retention"
)

// ObservationDays is how many days of backups, up to the day of the newest
// one, the schedule and the growth are inferred from.
const ObservationDays = 14

// MaxHorizon bounds the simulation. A policy that needs longer to reach its
// steady state (keep_yearly 10 or more) is projected over MaxHorizon, and the
// report says the projection is a lower bound.
const MaxHorizon = 522 * 7 * 24 * time.Hour // 522 weeks, about 10 years

// ErrNoBackups means there is nothing to project from. Project cannot name
// the database or the destination; its caller wraps the error with them, as
// in "no backups of app.db on offsite to project from".
var ErrNoBackups = errors.New("no backups to project from")

// Backup is one stored backup of the database on the destination, with its
// sizes.
type Backup struct {
	retention.Backup
	// StoredBytes counts every object of the backup on this destination:
	// data, page index and manifest.
	StoredBytes int64
	// ImageBytes is the size of the database image the backup restores to.
	// Zero means unknown; such backups are left out of the growth fit.
	ImageBytes int64
}

// Report is the capacity projection of one database on one destination.
type Report struct {
	Backups     int              // backups stored now
	StoredBytes int64            // bytes stored now
	ByType      map[string]int64 // bytes stored now per backup type

	// ObservedDays is the number of days, at most ObservationDays, from the
	// day of the oldest observed backup to the day of the newest.
	ObservedDays int
	// GrowthPerDay is the bytes written per day by new backups: the bytes
	// stored by the backups of the observed days, divided by their number.
	GrowthPerDay float64
	// ImageGrowthPerDay is the least-squares slope of the image size of the
	// observed backups against time, in bytes per day; it may be negative.
	ImageGrowthPerDay float64

	// Projected is the most the policy keeps at any moment of a week in its
	// steady state, with the observed schedule and today's sizes. With no
	// policy (everything kept), or with a schedule that has no full backup
	// (every incremental chains back to an old full, so nothing can go), the
	// need has no steady state: Projected is then what is stored in a year,
	// StoredBytes + 365 × GrowthPerDay, and Notes say so.
	Projected int64
	// ProjectedIn1Y is Projected with every backup's size scaled by the
	// image size in a year over the image size now (never below 1).
	ProjectedIn1Y int64
	// Recommended is the space to allocate: ProjectedIn1Y with 50% headroom,
	// rounded up to a whole GiB.
	Recommended int64

	// Schedule is the inferred schedule, such as "per week: 1 full,
	// 6 incremental, 7 differential".
	Schedule string
	// Horizon is the simulated span, from the first simulated backup to the
	// last; zero when nothing was simulated (no steady state).
	Horizon time.Duration
	// PeakAt is the simulated moment Projected was reached, just after a
	// backup and its cleanup; the zero time when nothing was simulated.
	PeakAt time.Time
	// Notes qualify the projection, in a fixed order.
	Notes []string
}

// Project computes the capacity report of the backups of one database on one
// destination whose retention policy is policy, at time now. A zero policy
// means the destination keeps everything.
//
// It returns ErrNoBackups when backups is empty: a report of zeros would read
// as "needs nothing". It refuses, with retention.ErrBadInput, a policy that
// retention refuses (other than the zero policy), a backup without a time, of
// an unknown type, or with a negative size.
func Project(backups []Backup, policy retention.Policy, now time.Time) (Report, error) {
	if len(backups) == 0 {
		return Report{}, ErrNoBackups
	}
	keepAll := policy == (retention.Policy{})
	if !keepAll {
		if err := policy.Validate(); err != nil {
			return Report{}, err
		}
	}
	bs, err := sorted(backups)
	if err != nil {
		return Report{}, err
	}

	r := Report{Backups: len(bs), ByType: map[string]int64{}}
	for _, b := range bs {
		r.StoredBytes += b.StoredBytes
		r.ByType[b.Type] += b.StoredBytes
	}

	window, days := observe(bs)
	r.ObservedDays = days
	var written int64
	verified := false
	for _, b := range window {
		written += b.StoredBytes
		verified = verified || b.Verified
	}
	r.GrowthPerDay = float64(written) / float64(days)
	r.ImageGrowthPerDay = imageSlope(window)

	slots := inferSlots(window, days)
	r.Schedule = describe(slots)
	if days < 7 {
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of %d days of backups observed (fewer than 7): the schedule is a guess", days, ObservationDays))
	}
	newest := bs[len(bs)-1].Time
	if age := now.Sub(newest); age > 7*24*time.Hour {
		r.Notes = append(r.Notes, fmt.Sprintf("the newest backup is %d days old: backups may have stopped; the projection assumes the schedule seen before resumes", int(age/(24*time.Hour))))
	}

	factor, note := growthFactor(bs, r.ImageGrowthPerDay)
	hasFull := slices.ContainsFunc(slots, func(s slot) bool { return s.typ == retention.TypeFull })
	switch {
	case keepAll || !hasFull:
		why := "no retention policy: everything is kept"
		if !keepAll {
			why = fmt.Sprintf("no full backup in the last %d days: every backup chains back to an old full one and retention can remove almost nothing", ObservationDays)
		}
		year := r.GrowthPerDay * 365
		r.Notes = append(r.Notes, fmt.Sprintf("%s, so the need grows without bound (≈ %s per year); projected is what is stored in a year", why, formatBytes(int64(math.Round(year)))))
		r.Projected = r.StoredBytes + int64(math.Round(year))
		// Sizes grow linearly over the year, so the year's backups are on
		// average (1+factor)/2 times today's.
		r.ProjectedIn1Y = r.StoredBytes + int64(math.Round(year*(1+factor)/2))
	default:
		sim := simulate(slots, policy, now, verified)
		r.Projected, r.PeakAt, r.Horizon = sim.peak, sim.peakAt, sim.horizon
		if sim.short {
			r.Notes = append(r.Notes, fmt.Sprintf("the policy needs more than the %d simulated days to reach its steady state: the projection is a lower bound", int(math.Round(sim.horizon.Hours()/24))))
		}
		r.ProjectedIn1Y = int64(math.Round(float64(r.Projected) * factor))
	}
	if note != "" {
		r.Notes = append(r.Notes, note)
	}
	r.Recommended = recommend(r.ProjectedIn1Y)
	return r, nil
}

// recommend adds 50% headroom to need and rounds up to a whole GiB.
//
// The seed strategy allocates 5 GB for a computed 1.4 GB, a factor of 3.5,
// mostly as a buffer for growth. Here growth is already in need (a year of
// image growth), so the headroom only covers what the projection leaves out:
// the old backups still stored while a new full is written and before the
// cleanup removes them, calendar overlaps that make the need vary by a backup
// or two from month to month, a missed cleanup, and schedule drift. Half the
// need is at least one full backup whenever the policy keeps two or more
// full backups.
// Volumes and quotas are sized in GiB, hence the rounding; 1.4 GB gives
// 2.1 GB, hence 2 GiB.
func recommend(need int64) int64 {
	const gib = 1 << 30
	if need <= 0 {
		return 0
	}
	withHeadroom := need + (need+1)/2
	return (withHeadroom + gib - 1) / gib * gib
}

// sorted checks each backup and returns a copy, oldest first.
func sorted(backups []Backup) ([]Backup, error) {
	for i, b := range backups {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: backup %s: %s", retention.ErrBadInput, b.ID, fmt.Sprintf(format, args...))
		}
		switch {
		case b.ID == "":
			return nil, fmt.Errorf("%w: backup number %d in the list has no id", retention.ErrBadInput, i+1)
		case b.Time.IsZero():
			return nil, bad("has no time")
		case b.Type != retention.TypeFull && b.Type != retention.TypeIncremental && b.Type != retention.TypeDifferential:
			return nil, bad("unknown type %q", b.Type)
		case b.StoredBytes < 0 || b.ImageBytes < 0:
			return nil, bad("negative size (stored %d, image %d)", b.StoredBytes, b.ImageBytes)
		}
	}
	bs := slices.Clone(backups)
	slices.SortFunc(bs, func(a, b Backup) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return bs, nil
}

// day returns the start of t's day in UTC, the calendar retention uses.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// observe returns the backups of the ObservationDays days ending with the
// day of the newest one (bs is oldest first, not empty), and the number of
// days from the first of them to the newest, inclusive.
func observe(bs []Backup) ([]Backup, int) {
	last := day(bs[len(bs)-1].Time)
	from := last.AddDate(0, 0, -(ObservationDays - 1))
	i, _ := slices.BinarySearchFunc(bs, from, func(b Backup, t time.Time) int { return b.Time.Compare(t) })
	window := bs[i:]
	days := int(last.Sub(day(window[0].Time))/(24*time.Hour)) + 1
	return window, days
}

// imageSlope fits ImageBytes against time by least squares, in bytes per
// day, over the backups with a known image size; zero with fewer than two
// distinct times.
func imageSlope(window []Backup) float64 {
	var xs, ys []float64
	for _, b := range window {
		if b.ImageBytes > 0 {
			xs = append(xs, b.Time.Sub(window[0].Time).Hours()/24)
			ys = append(ys, float64(b.ImageBytes))
		}
	}
	if len(xs) < 2 {
		return 0
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= float64(len(xs))
	my /= float64(len(ys))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0
	}
	return sxy / sxx
}

// growthFactor is the image size in 365 days over the image size now, from
// the newest known image size and the fitted slope. It is never below 1: a
// database that shrank over two weeks (a purge, a VACUUM) rarely keeps
// shrinking for a year, and promising space back invites running out of it.
// The note, if any, says when the factor is not the fitted one.
func growthFactor(bs []Backup, slope float64) (float64, string) {
	var image int64
	for i := len(bs) - 1; i >= 0 && image == 0; i-- {
		image = bs[i].ImageBytes
	}
	if image == 0 {
		return 1, "no image sizes recorded: the projection in a year assumes the database does not grow"
	}
	f := 1 + slope*365/float64(image)
	if f < 1 {
		return 1, fmt.Sprintf("the database image shrank by %s per day: the projection in a year assumes it stops shrinking", formatBytes(int64(math.Round(-slope))))
	}
	return f, ""
}

// slot is one backup of the weekly schedule.
type slot struct {
	weekday time.Weekday
	at      time.Duration // time of day, UTC
	typ     string
	size    int64 // average stored bytes
}

// slotTolerance is how far apart in time of day two backups of the same
// weekday and type, on different dates, may be and still be the same slot
// of the schedule (a 02:00 job that ran at 02:00 one week, 02:07 the next).
const slotTolerance = 30 * time.Minute

// typeRank orders backups of the same moment the way a schedule would run
// them: the full first, so the others can use it as their parent.
func typeRank(typ string) int {
	switch typ {
	case retention.TypeFull:
		return 0
	case retention.TypeDifferential:
		return 1
	}
	return 2
}

// inferSlots groups the observed backups into weekly slots: backups of the
// same weekday and type, at times of day within slotTolerance of each other
// and on different dates, are one slot, at the time of day of its latest
// occurrence, with the average size of its occurrences. A slot seen once in
// two weeks (a missed run, a manual backup) is kept: overestimating is the
// safer error. When fewer than 7 days were observed, each unobserved weekday
// repeats the newest observed day: a guess, noted by the caller.
func inferSlots(window []Backup, days int) []slot {
	type occurrence struct {
		date time.Time
		at   time.Duration
		b    Backup
	}
	var slots []slot
	for w := time.Sunday; w <= time.Saturday; w++ {
		for _, typ := range []string{retention.TypeFull, retention.TypeDifferential, retention.TypeIncremental} {
			var occ []occurrence
			for _, b := range window {
				t := b.Time.UTC()
				if t.Weekday() == w && b.Type == typ {
					occ = append(occ, occurrence{date: day(t), at: t.Sub(day(t)), b: b})
				}
			}
			slices.SortStableFunc(occ, func(a, b occurrence) int {
				if a.at != b.at {
					return cmpDuration(a.at, b.at)
				}
				return a.date.Compare(b.date)
			})
			var group []occurrence
			flush := func() {
				if len(group) == 0 {
					return
				}
				var sum int64
				latest := group[0]
				for _, o := range group {
					sum += o.b.StoredBytes
					if o.date.After(latest.date) {
						latest = o
					}
				}
				n := int64(len(group))
				slots = append(slots, slot{weekday: w, at: latest.at, typ: typ, size: (sum + n/2) / n})
				group = nil
			}
			for _, o := range occ {
				sameDate := slices.ContainsFunc(group, func(g occurrence) bool { return g.date.Equal(o.date) })
				if len(group) > 0 && (o.at-group[len(group)-1].at > slotTolerance || sameDate) {
					flush()
				}
				group = append(group, o)
			}
			flush()
		}
	}
	if days < 7 {
		last := day(window[len(window)-1].Time)
		observed := map[time.Weekday]bool{}
		for i := range days {
			observed[last.AddDate(0, 0, -i).Weekday()] = true
		}
		var copies []slot
		for w := time.Sunday; w <= time.Saturday; w++ {
			if observed[w] {
				continue
			}
			for _, s := range slots {
				if s.weekday == last.Weekday() {
					s.weekday = w
					copies = append(copies, s)
				}
			}
		}
		slots = append(slots, copies...)
	}
	slices.SortStableFunc(slots, compareSlots)
	return slots
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareSlots orders slots by weekday, time of day, then type rank.
func compareSlots(a, b slot) int {
	if a.weekday != b.weekday {
		return int(a.weekday) - int(b.weekday)
	}
	if a.at != b.at {
		return cmpDuration(a.at, b.at)
	}
	return typeRank(a.typ) - typeRank(b.typ)
}

// describe writes the schedule as "per week: 1 full, 6 incremental,
// 7 differential", leaving out types that never run.
func describe(slots []slot) string {
	var parts []string
	for _, typ := range []string{retention.TypeFull, retention.TypeIncremental, retention.TypeDifferential} {
		n := 0
		for _, s := range slots {
			if s.typ == typ {
				n++
			}
		}
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, typ))
		}
	}
	return "per week: " + strings.Join(parts, ", ")
}

// horizon is how many days to simulate for p to reach its steady state with
// the given slots: the longest reach of its rules, plus three weeks for
// chains that reach further back and for the final, measured week, rounded
// up to whole weeks and capped at MaxHorizon. Of those, the last recent days
// are simulated in full; before them only the full backups are, see simulate.
func horizon(slots []slot, p retention.Policy) (days, recent int, capped bool) {
	active := map[time.Weekday]bool{}
	for _, s := range slots {
		active[s.weekday] = true
	}
	ceilDiv := func(a, b int) int { return (a + b - 1) / b }
	weeks := func(d int) int { return 7 * ceilDiv(d+21, 7) }
	short := max(
		int(math.Ceil(p.KeepWithin.Hours()/24)),
		7*ceilDiv(p.KeepLast, len(slots)),   // keep_last N: N backups
		7*ceilDiv(p.KeepDaily, len(active)), // keep_daily N: N days that have a backup
	)
	long := max(7*p.KeepWeekly, 31*p.KeepMonthly, 366*p.KeepYearly)
	days, recent = weeks(max(short, long)), weeks(short)
	if limit := int(MaxHorizon / (24 * time.Hour)); days > limit {
		days, capped = limit, true
	}
	return days, min(recent, days), capped
}

type simBackup struct {
	retention.Backup
	size int64
}

type simulation struct {
	peak    int64
	peakAt  time.Time
	horizon time.Duration
	short   bool // capped at MaxHorizon, or the start of the simulation is still kept
}

// simulate runs the weekly schedule from the first full backup after now,
// over the days horizon gives, with Bulwark's parent rules: an incremental
// builds on the newest stored backup, a differential on the newest stored
// full (a backup with nothing to build on is taken as a full one, as Bulwark
// does). A cleanup applies retention.Plan after the last backup of every
// day, and, in the final week, after the last backup of every hour (every
// backup of an hourly or sparser schedule), measuring the bytes kept; the
// peak is the projection. Removing what a plan removes as the simulation goes
// is what a destination does, and keeps each plan small; measuring hourly
// rather than after each backup bounds the work for dense schedules.
//
// Before the recent days only the full backups are simulated: further back
// than the reach of keep_within, keep_last and keep_daily, with a full backup
// every week, the policy can only keep full backups (the newest full of a
// week, month or year; no chain reaches back past a full), and every period
// has one either way. This keeps a keep_yearly simulation of an hourly
// schedule fast.
func simulate(slots []slot, p retention.Policy, now time.Time, verified bool) simulation {
	days, recent, capped := horizon(slots, p)
	var fullSize, fulls int64
	for _, s := range slots {
		if s.typ == retention.TypeFull {
			fullSize += s.size
			fulls++
		}
	}
	fullSize = (fullSize + fulls/2) / fulls

	// Start on the first full backup after now.
	var start time.Time
	for d := day(now); start.IsZero(); d = d.AddDate(0, 0, 1) {
		for _, s := range slots {
			if t := d.Add(s.at); s.weekday == d.Weekday() && s.typ == retention.TypeFull && t.After(now) {
				start = t
				break
			}
		}
	}

	var (
		sim     simulation
		stored  []simBackup
		plan    []retention.Backup
		n       int
		prev    time.Time
		firstID string
		// The first backup of the recent days that is not a full one.
		firstRecentID string
		first         = day(start)
		fullOnly      = first.AddDate(0, 0, days-recent)
		measured      = first.AddDate(0, 0, days-7)
		end           = first.AddDate(0, 0, days)
	)
	cleanup := func(at time.Time, measure bool) {
		plan = plan[:0]
		for _, b := range stored {
			plan = append(plan, b.Backup)
		}
		decisions, err := retention.Plan(plan, p, at)
		if err != nil {
			// The policy was validated and the simulated backups are well
			// formed: an error here is a bug in this package.
			panic("capacity: simulated backups refused: " + err.Error())
		}
		keep := make(map[string]bool, len(decisions))
		for _, d := range decisions {
			keep[d.ID] = d.Keep
		}
		var kept int64
		stored = slices.DeleteFunc(stored, func(b simBackup) bool { return !keep[b.ID] })
		for _, b := range stored {
			kept += b.size
		}
		if measure && kept > sim.peak {
			sim.peak, sim.peakAt = kept, at
		}
	}
	for d := first; d.Before(end); d = d.AddDate(0, 0, 1) {
		var today []slot
		for _, s := range slots {
			if s.weekday == d.Weekday() && !d.Add(s.at).Before(start) && (s.typ == retention.TypeFull || !d.Before(fullOnly)) {
				today = append(today, s)
			}
		}
		for i, s := range today {
			t := d.Add(s.at)
			if !t.After(prev) {
				t = prev.Add(time.Second) // keep simulated backups strictly ordered
			}
			prev = t
			b := simBackup{Backup: retention.Backup{ID: "s" + strconv.Itoa(n), Type: s.typ, Time: t, Verified: verified}, size: s.size}
			n++
			switch s.typ {
			case retention.TypeIncremental:
				if len(stored) > 0 {
					b.Parent = stored[len(stored)-1].ID
				}
			case retention.TypeDifferential:
				for j := len(stored) - 1; j >= 0; j-- {
					if stored[j].Type == retention.TypeFull {
						b.Parent = stored[j].ID
						break
					}
				}
			}
			if b.Type != retention.TypeFull && b.Parent == "" {
				b.Type, b.size = retention.TypeFull, fullSize
			}
			if firstID == "" {
				firstID = b.ID
			}
			if firstRecentID == "" && s.typ != retention.TypeFull {
				firstRecentID = b.ID
			}
			stored = append(stored, b)
			lastOfHour := i == len(today)-1 || today[i+1].at/time.Hour != s.at/time.Hour
			if measure := !d.Before(measured); measure && lastOfHour || i == len(today)-1 {
				cleanup(t, measure)
			}
		}
	}
	sim.horizon = prev.Sub(start)
	// Either way the policy reaches back past the start of the simulation,
	// or of its recent days.
	sim.short = capped || slices.ContainsFunc(stored, func(b simBackup) bool {
		return b.ID == firstID || b.ID == firstRecentID
	})
	return sim
}

// formatBytes writes n in decimal units with three significant digits, as
// in "1.4 GB" or "70 MB".
func formatBytes(n int64) string {
	v := float64(n)
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	i := 0
	for math.Abs(v) >= 999.5 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + " " + units[i]
}
