// Package retention decides which backups of one database a destination
// keeps, grandfather-father-son style, without ever breaking a backup chain.
//
// Plan takes every backup of a database at one destination, a Policy and the
// current time, and returns one Decision per backup: keep it or remove it,
// and why. It reads and deletes nothing, so the same call serves a dry run
// and a real one. The caller removes the backups marked Keep == false in the
// order returned: newest first, so a child always goes before its parent and
// a cleanup that stops half-way never leaves a backup without its parent.
//
// # Backups and chains
//
// A full backup stands alone. A differential backup needs its parent, the
// newest full backup before it. An incremental backup needs its parent, the
// newest backup of any type before it. A backup can be restored only if all
// its ancestors exist, up to the full backup.
//
// # Rules
//
// A backup is kept when at least one of these rules keeps it; Decision.Reasons
// lists every one that does.
//
//   - keep_last N: it is one of the N newest backups, of any type ("last N").
//   - keep_within D: it was taken less than D before now ("within 48h").
//   - keep_daily N: it is the newest backup of its day, and its day is one of
//     the N most recent days that have a backup ("daily 2026-11-24").
//   - keep_weekly, keep_monthly, keep_yearly N: it stands for its week
//     ("weekly 2026-W47"), month ("monthly 2026-11") or year ("yearly 2026"),
//     which is one of the N most recent such periods that have a backup. The
//     newest FULL backup of the period stands for it: a long-term copy should
//     restore on its own rather than pin a week of incrementals. A period
//     without a full backup falls back to its newest backup of any type.
//   - It is the newest backup that passed verification ("newest verified
//     backup"), whatever the policy: the last known good copy never goes.
//   - It is locked, its LockedUntil after now, e.g. by S3 Object Lock
//     ("locked until 2027-01-01T00:00:00Z"): removing it would fail anyway.
//
// Periods are calendar periods in UTC: days, ISO weeks (Monday to Sunday, so
// Sunday 2027-01-03 belongs to 2026-W53), months and years. As in restic's
// forget, periods without a backup do not count: after a week without
// backups, keep_daily 7 reaches back to the 7 most recent days that have one.
//
// Every ancestor of a kept backup is kept too ("parent of X (kept by …)",
// "ancestor of X (kept by …)"), so no kept backup ever loses a link of its
// chain. This matters most for keep_daily: the newest backup of a day may be
// an incremental that needs the days before it back to their full backup.
//
// A backup whose parent is not in the list is an orphan and cannot be
// restored. Plan does not fail on it: an orphan that a rule keeps is kept
// with the note "orphan: parent X is missing" (its kept descendants get
// "orphan: ancestor X is missing"); otherwise it is removed like any other.
//
// Plan refuses with ErrBadInput a policy that Validate refuses, duplicate or
// empty ids, unknown types, a backup without a time, a full backup with a
// parent, an incremental or differential without one, and a parent that is
// not older than its child. The same backups in any order give the same
// decisions.
package retention

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Backup types, as in the manifests.
const (
	TypeFull         = "full"
	TypeIncremental  = "incremental"
	TypeDifferential = "differential"
)

// ErrBadInput marks a policy or a list of backups that Plan can never accept.
// Retrying does not help.
var ErrBadInput = errors.New("bad input")

// Backup is what retention needs to know about one stored backup.
type Backup struct {
	ID     string    // unique; breaks ties between backups with the same Time
	Type   string    // TypeFull, TypeIncremental or TypeDifferential
	Parent string    // id of the backup this one needs; "" for a full backup
	Time   time.Time // when the snapshot was taken; periods are taken in UTC

	// Verified reports that the backup passed verification.
	Verified bool
	// LockedUntil is when a lock on the backup's objects (such as S3 Object
	// Lock's retain-until date) ends; the zero time means not locked.
	LockedUntil time.Time
}

// Policy says how many backups to keep. Zero turns a rule off; at least one
// rule must be on.
type Policy struct {
	KeepLast    int           // the N newest backups
	KeepWithin  time.Duration // every backup newer than now minus KeepWithin
	KeepDaily   int           // one backup for each of the N most recent days
	KeepWeekly  int           // one backup for each of the N most recent ISO weeks
	KeepMonthly int           // one backup for each of the N most recent months
	KeepYearly  int           // one backup for each of the N most recent years
}

// Decision is the verdict on one backup.
type Decision struct {
	ID   string
	Keep bool
	// Reasons lists, when Keep is true, every rule that keeps the backup;
	// when Keep is false, why it goes ("no rule keeps it"). Both may end with
	// a note that the backup is an orphan.
	Reasons []string
}

// Validate reports a negative field, naming it as in the configuration file
// (keep_daily, …), or a policy that would keep nothing.
func (p Policy) Validate() error {
	counts := []struct {
		name string
		n    int
	}{
		{"keep_last", p.KeepLast},
		{"keep_daily", p.KeepDaily},
		{"keep_weekly", p.KeepWeekly},
		{"keep_monthly", p.KeepMonthly},
		{"keep_yearly", p.KeepYearly},
	}
	for _, c := range counts {
		if c.n < 0 {
			return fmt.Errorf("%w: retention policy: %s is %d; it must be 0 (off) or more", ErrBadInput, c.name, c.n)
		}
	}
	if p.KeepWithin < 0 {
		return fmt.Errorf("%w: retention policy: keep_within is %v; it must be 0 (off) or more", ErrBadInput, p.KeepWithin)
	}
	if p == (Policy{}) {
		return fmt.Errorf("%w: retention policy keeps nothing; set at least one of keep_last, keep_within, keep_daily, keep_weekly, keep_monthly or keep_yearly", ErrBadInput)
	}
	return nil
}

// String returns the rules that are on, such as "keep_daily 7, keep_weekly 4",
// or "keep nothing".
func (p Policy) String() string {
	var parts []string
	add := func(name string, n int) {
		if n != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	add("keep_last", p.KeepLast)
	if p.KeepWithin != 0 {
		parts = append(parts, "keep_within "+formatDuration(p.KeepWithin))
	}
	add("keep_daily", p.KeepDaily)
	add("keep_weekly", p.KeepWeekly)
	add("keep_monthly", p.KeepMonthly)
	add("keep_yearly", p.KeepYearly)
	if len(parts) == 0 {
		return "keep nothing"
	}
	return strings.Join(parts, ", ")
}

// Plan decides, for each backup, whether p keeps it at time now. It returns
// one Decision per backup, newest first (by Time, then by ID), which is also
// the safe order in which to remove them.
func Plan(backups []Backup, p Policy, now time.Time) ([]Decision, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	bs, err := sortNewestFirst(backups)
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(bs)) // id → position in bs
	for i, b := range bs {
		index[b.ID] = i
	}
	// parent returns the position of bs[i]'s parent, or false when bs[i] is
	// a full backup or an orphan.
	parent := func(i int) (int, bool) {
		j, ok := index[bs[i].Parent]
		return j, ok && bs[i].Parent != ""
	}
	if err := checkParents(bs, parent); err != nil {
		return nil, err
	}

	// Rules, in the order their reasons are listed.
	rules := make([][]string, len(bs))
	for i := 0; i < len(bs) && i < p.KeepLast; i++ {
		rules[i] = append(rules[i], fmt.Sprintf("last %d", p.KeepLast))
	}
	if p.KeepWithin > 0 {
		cutoff := now.Add(-p.KeepWithin)
		for i, b := range bs {
			if b.Time.After(cutoff) {
				rules[i] = append(rules[i], "within "+formatDuration(p.KeepWithin))
			}
		}
	}
	for _, pr := range []struct {
		name       string
		n          int
		key        func(time.Time) string
		preferFull bool
	}{
		{"daily", p.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") }, false},
		{"weekly", p.KeepWeekly, isoWeek, true},
		{"monthly", p.KeepMonthly, func(t time.Time) string { return t.Format("2006-01") }, true},
		{"yearly", p.KeepYearly, func(t time.Time) string { return t.Format("2006") }, true},
	} {
		for _, pick := range pickPeriods(bs, pr.n, pr.key, pr.preferFull) {
			rules[pick.i] = append(rules[pick.i], pr.name+" "+pick.period)
		}
	}
	for i, b := range bs {
		if b.Verified {
			rules[i] = append(rules[i], "newest verified backup")
			break
		}
	}
	for i, b := range bs {
		if b.LockedUntil.After(now) {
			rules[i] = append(rules[i], "locked until "+b.LockedUntil.UTC().Format(time.RFC3339))
		}
	}

	// Closure: a kept backup keeps its whole chain. Walking newest first
	// makes the order of the ancestry reasons deterministic.
	keep := make([]bool, len(bs))
	chain := make([][]string, len(bs))
	for i := range bs {
		if len(rules[i]) == 0 {
			continue
		}
		keep[i] = true
		why := strings.Join(rules[i], ", ")
		relation := "parent"
		for j, ok := parent(i); ok; j, ok = parent(j) {
			keep[j] = true
			chain[j] = append(chain[j], fmt.Sprintf("%s of %s (kept by %s)", relation, bs[i].ID, why))
			relation = "ancestor"
		}
	}

	orphans := orphanNotes(bs, parent)
	decisions := make([]Decision, len(bs))
	for i, b := range bs {
		d := Decision{ID: b.ID, Keep: keep[i]}
		if keep[i] {
			d.Reasons = slices.Concat(rules[i], chain[i])
		} else {
			d.Reasons = []string{"no rule keeps it"}
		}
		if note := orphans[i]; note != "" {
			d.Reasons = append(d.Reasons, note)
		}
		decisions[i] = d
	}
	return decisions, nil
}

// sortNewestFirst checks each backup on its own and returns a sorted copy.
func sortNewestFirst(backups []Backup) ([]Backup, error) {
	seen := make(map[string]bool, len(backups))
	for i, b := range backups {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: backup %s: %s", ErrBadInput, b.ID, fmt.Sprintf(format, args...))
		}
		switch {
		case b.ID == "":
			return nil, fmt.Errorf("%w: backup number %d in the list has no id", ErrBadInput, i+1)
		case seen[b.ID]:
			return nil, bad("listed twice")
		case b.Time.IsZero():
			return nil, bad("has no time")
		}
		seen[b.ID] = true
		switch b.Type {
		case TypeFull:
			if b.Parent != "" {
				return nil, bad("a full backup has a parent (%s)", b.Parent)
			}
		case TypeIncremental, TypeDifferential:
			if b.Parent == "" {
				return nil, bad("%s backups need a parent", b.Type)
			}
		default:
			return nil, bad("unknown type %q; want %s, %s or %s", b.Type, TypeFull, TypeIncremental, TypeDifferential)
		}
	}
	bs := slices.Clone(backups)
	slices.SortFunc(bs, func(a, b Backup) int { return -compareAge(a, b) })
	return bs, nil
}

// compareAge orders backups by Time, then ID: negative when a is older.
func compareAge(a, b Backup) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// checkParents refuses a parent that is not strictly older than its child.
// Besides being impossible, it could make a chain loop.
func checkParents(bs []Backup, parent func(int) (int, bool)) error {
	for i, b := range bs {
		if j, ok := parent(i); ok && compareAge(bs[j], b) >= 0 {
			return fmt.Errorf("%w: backup %s: parent %s is not older than the backup", ErrBadInput, b.ID, b.Parent)
		}
	}
	return nil
}

type periodPick struct {
	i      int    // position in the sorted backups
	period string // e.g. "2026-W47"
}

// pickPeriods walks bs (newest first) and returns the backup standing for
// each of the n most recent periods that have a backup: the newest full
// backup of the period when preferFull is set and there is one, otherwise
// the newest backup. Since bs is sorted by time, the backups of one period
// are next to each other.
func pickPeriods(bs []Backup, n int, key func(time.Time) string, preferFull bool) []periodPick {
	var picks []periodPick
	for i, b := range bs {
		k := key(b.Time.UTC())
		if len(picks) == 0 || picks[len(picks)-1].period != k {
			if len(picks) == n {
				break
			}
			picks = append(picks, periodPick{i: i, period: k})
			continue
		}
		last := &picks[len(picks)-1]
		if preferFull && b.Type == TypeFull && bs[last.i].Type != TypeFull {
			last.i = i
		}
	}
	return picks
}

// isoWeek names t's ISO week, which may belong to the previous or the next
// year: 2027-01-03 is in 2026-W53.
func isoWeek(t time.Time) string {
	year, week := t.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", year, week)
}

// orphanNotes says, for every backup, whether its chain is broken and
// where. Parents are older, so they come later in bs (newest first): one
// pass from the oldest settles each backup from its parent's answer, where
// walking every chain would cost its length per backup (hourly
// incrementals make chains of hundreds).
func orphanNotes(bs []Backup, parent func(int) (int, bool)) []string {
	missing := make([]string, len(bs)) // the id whose absence breaks the chain
	notes := make([]string, len(bs))
	for i := len(bs) - 1; i >= 0; i-- {
		if bs[i].Type == TypeFull {
			continue
		}
		j, ok := parent(i)
		switch {
		case !ok:
			missing[i] = bs[i].Parent
			notes[i] = "orphan: parent " + bs[i].Parent + " is missing"
		case missing[j] != "":
			missing[i] = missing[j]
			notes[i] = "orphan: ancestor " + missing[j] + " is missing"
		}
	}
	return notes
}

// formatDuration writes 48h as "48h" rather than "48h0m0s".
func formatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.String()
}
