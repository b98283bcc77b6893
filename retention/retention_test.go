package retention

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// at parses a UTC time written as "2026-11-24 02:00".
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func full(id, when string) Backup { return Backup{ID: id, Type: TypeFull, Time: at(when)} }

func incr(id, parent, when string) Backup {
	return Backup{ID: id, Type: TypeIncremental, Parent: parent, Time: at(when)}
}

func diff(id, parent, when string) Backup {
	return Backup{ID: id, Type: TypeDifferential, Parent: parent, Time: at(when)}
}

func verified(b Backup) Backup { b.Verified = true; return b }

func lockedUntil(b Backup, when string) Backup { b.LockedUntil = at(when); return b }

// render writes decisions one a line, as "id keep: reason; reason".
func render(ds []Decision) []string {
	lines := make([]string, 0, len(ds))
	for _, d := range ds {
		verdict := "remove"
		if d.Keep {
			verdict = "keep"
		}
		lines = append(lines, d.ID+" "+verdict+": "+strings.Join(d.Reasons, "; "))
	}
	return lines
}

func TestPlanRules(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		now     string
		backups []Backup
		want    []string // every decision, newest first
	}{
		{
			name:   "keep_last keeps the newest backups of any type",
			policy: Policy{KeepLast: 2},
			now:    "2026-11-22 00:00",
			backups: []Backup{
				full("f1", "2026-11-20 02:00"),
				incr("i1", "f1", "2026-11-21 02:00"),
				diff("d1", "f1", "2026-11-21 12:00"),
			},
			want: []string{
				"d1 keep: last 2",
				"i1 keep: last 2",
				"f1 keep: parent of d1 (kept by last 2); parent of i1 (kept by last 2)",
			},
		},
		{
			name:   "keep_within keeps backups strictly newer than now minus the duration",
			policy: Policy{KeepWithin: 48 * time.Hour},
			now:    "2026-11-24 12:00",
			backups: []Backup{
				full("f0", "2026-11-20 02:00"),
				full("f1", "2026-11-22 12:00"), // exactly 48h old
				full("f2", "2026-11-22 12:01"),
			},
			want: []string{
				"f2 keep: within 48h",
				"f1 remove: no rule keeps it",
				"f0 remove: no rule keeps it",
			},
		},
		{
			name:   "keep_daily keeps the newest backup of each day; equal times go by id",
			policy: Policy{KeepDaily: 2},
			now:    "2026-11-25 00:00",
			backups: []Backup{
				full("f1", "2026-11-23 02:00"),
				incr("i1", "f1", "2026-11-24 02:00"),
				diff("a", "f1", "2026-11-24 12:00"),
				diff("b", "f1", "2026-11-24 12:00"),
			},
			want: []string{
				"b keep: daily 2026-11-24",
				"a remove: no rule keeps it",
				"i1 remove: no rule keeps it",
				"f1 keep: daily 2026-11-23; parent of b (kept by daily 2026-11-24)",
			},
		},
		{
			name:   "keep_daily counts only days that have a backup",
			policy: Policy{KeepDaily: 2},
			now:    "2026-11-30 00:00",
			backups: []Backup{
				full("f1", "2026-11-01 02:00"),
				full("f2early", "2026-11-05 01:00"),
				full("f2", "2026-11-05 02:00"),
				full("f3", "2026-11-09 02:00"),
			},
			want: []string{
				"f3 keep: daily 2026-11-09",
				"f2 keep: daily 2026-11-05",
				"f2early remove: no rule keeps it",
				"f1 remove: no rule keeps it",
			},
		},
		{
			name:   "keep_weekly takes the week's full backup over newer incrementals",
			policy: Policy{KeepWeekly: 2},
			now:    "2026-11-26 00:00",
			backups: []Backup{
				full("f0", "2026-11-16 02:00"), // Monday of 2026-W47
				diff("d0", "f0", "2026-11-20 12:00"),
				full("f1", "2026-11-23 02:00"), // Monday of 2026-W48
				incr("i1", "f1", "2026-11-24 02:00"),
				incr("i2", "i1", "2026-11-25 02:00"),
			},
			want: []string{
				"i2 remove: no rule keeps it",
				"i1 remove: no rule keeps it",
				"f1 keep: weekly 2026-W48",
				"d0 remove: no rule keeps it",
				"f0 keep: weekly 2026-W47",
			},
		},
		{
			name:   "a week without a full backup falls back to its newest backup, with its chain",
			policy: Policy{KeepWeekly: 1},
			now:    "2026-11-25 00:00",
			backups: []Backup{
				full("f0", "2026-11-22 02:00"), // Sunday, 2026-W47
				incr("i1", "f0", "2026-11-23 02:00"),
				diff("d1", "f0", "2026-11-23 12:00"),
				incr("i2", "d1", "2026-11-24 02:00"),
			},
			want: []string{
				"i2 keep: weekly 2026-W48",
				"d1 keep: parent of i2 (kept by weekly 2026-W48)",
				"i1 remove: no rule keeps it",
				"f0 keep: ancestor of i2 (kept by weekly 2026-W48)",
			},
		},
		{
			name:   "ISO weeks run Monday to Sunday and may belong to the previous year",
			policy: Policy{KeepWeekly: 2, KeepYearly: 2},
			now:    "2027-01-05 00:00",
			backups: []Backup{
				full("f0", "2026-12-28 02:00"), // Monday of 2026-W53
				full("f1", "2027-01-03 02:00"), // Sunday of 2026-W53
				full("f2", "2027-01-04 02:00"), // Monday of 2027-W01
			},
			want: []string{
				"f2 keep: weekly 2027-W01; yearly 2027",
				"f1 keep: weekly 2026-W53",
				"f0 keep: yearly 2026",
			},
		},
		{
			name:   "keep_monthly and keep_yearly prefer full backups",
			policy: Policy{KeepMonthly: 3, KeepYearly: 1},
			now:    "2026-12-02 00:00",
			backups: []Backup{
				full("f1", "2026-10-04 02:00"),
				incr("i1", "f1", "2026-10-31 02:00"),
				full("f2", "2026-11-01 02:00"),
				diff("d2", "f2", "2026-11-15 12:00"),
				incr("i3", "d2", "2026-12-01 02:00"), // December has no full
			},
			want: []string{
				"i3 keep: monthly 2026-12",
				"d2 keep: parent of i3 (kept by monthly 2026-12)",
				"f2 keep: monthly 2026-11; yearly 2026; ancestor of i3 (kept by monthly 2026-12)",
				"i1 remove: no rule keeps it",
				"f1 keep: monthly 2026-10",
			},
		},
		{
			name:   "periods are UTC days",
			policy: Policy{KeepDaily: 1},
			now:    "2026-11-26 00:00",
			backups: []Backup{{
				ID: "f1", Type: TypeFull,
				Time: time.Date(2026, 11, 24, 23, 30, 0, 0, time.FixedZone("EST", -5*3600)),
			}},
			want: []string{"f1 keep: daily 2026-11-25"},
		},
		{
			name:   "a differential keeps its full",
			policy: Policy{KeepLast: 1},
			now:    "2026-11-24 00:00",
			backups: []Backup{
				full("f1", "2026-11-22 02:00"),
				incr("i1", "f1", "2026-11-23 02:00"),
				diff("d1", "f1", "2026-11-23 12:00"),
			},
			want: []string{
				"d1 keep: last 1",
				"i1 remove: no rule keeps it",
				"f1 keep: parent of d1 (kept by last 1)",
			},
		},
		{
			name:   "an incremental keeps its chain through an incremental and a differential to the full",
			policy: Policy{KeepLast: 1},
			now:    "2026-11-24 00:00",
			backups: []Backup{
				full("f0", "2026-11-15 02:00"),
				full("f1", "2026-11-22 02:00"),
				diff("d1", "f1", "2026-11-22 12:00"),
				incr("i1", "d1", "2026-11-23 02:00"),
				incr("i2", "i1", "2026-11-23 12:00"),
			},
			want: []string{
				"i2 keep: last 1",
				"i1 keep: parent of i2 (kept by last 1)",
				"d1 keep: ancestor of i2 (kept by last 1)",
				"f1 keep: ancestor of i2 (kept by last 1)",
				"f0 remove: no rule keeps it",
			},
		},
		{
			name:   "an orphan that a rule keeps is kept, with a note",
			policy: Policy{KeepLast: 1},
			now:    "2026-11-26 00:00",
			backups: []Backup{
				full("f1", "2026-11-20 02:00"),
				incr("i1", "gone", "2026-11-24 02:00"),
				incr("i2", "i1", "2026-11-25 02:00"),
			},
			want: []string{
				"i2 keep: last 1; orphan: ancestor gone is missing",
				"i1 keep: parent of i2 (kept by last 1); orphan: parent gone is missing",
				"f1 remove: no rule keeps it",
			},
		},
		{
			name:   "an orphan that no rule keeps is removed",
			policy: Policy{KeepLast: 1},
			now:    "2026-11-26 00:00",
			backups: []Backup{
				incr("i1", "gone", "2026-11-24 02:00"),
				full("f1", "2026-11-25 02:00"),
			},
			want: []string{
				"f1 keep: last 1",
				"i1 remove: no rule keeps it; orphan: parent gone is missing",
			},
		},
		{
			name:   "a locked backup is kept with its chain; an expired lock keeps nothing",
			policy: Policy{KeepLast: 1},
			now:    "2026-11-30 00:00",
			backups: []Backup{
				lockedUntil(full("f0", "2026-11-01 02:00"), "2026-11-30 00:00"),
				full("f1", "2026-11-15 02:00"),
				lockedUntil(diff("d1", "f1", "2026-11-16 12:00"), "2027-01-01 00:00"),
				full("f2", "2026-11-29 02:00"),
			},
			want: []string{
				"f2 keep: last 1",
				"d1 keep: locked until 2027-01-01T00:00:00Z",
				"f1 keep: parent of d1 (kept by locked until 2027-01-01T00:00:00Z)",
				"f0 remove: no rule keeps it",
			},
		},
		{
			name:   "the newest verified backup is kept with its chain whatever the policy",
			policy: Policy{KeepLast: 1},
			now:    "2026-11-25 00:00",
			backups: []Backup{
				verified(full("f0", "2026-11-15 02:00")),
				verified(full("f1", "2026-11-22 02:00")),
				verified(diff("d1", "f1", "2026-11-23 12:00")),
				diff("d2", "f1", "2026-11-24 12:00"), // failed verification
			},
			want: []string{
				"d2 keep: last 1",
				"d1 keep: newest verified backup",
				"f1 keep: parent of d2 (kept by last 1); parent of d1 (kept by newest verified backup)",
				"f0 remove: no rule keeps it",
			},
		},
		{
			name: "every rule that keeps a backup is listed",
			policy: Policy{KeepLast: 1, KeepWithin: 48 * time.Hour, KeepDaily: 1, KeepWeekly: 1,
				KeepMonthly: 1, KeepYearly: 1},
			now: "2026-11-30 00:00",
			backups: []Backup{
				verified(lockedUntil(full("f1", "2026-11-29 02:00"), "2027-01-01 00:00")),
			},
			want: []string{
				"f1 keep: last 1; within 48h; daily 2026-11-29; weekly 2026-W48; monthly 2026-11; " +
					"yearly 2026; newest verified backup; locked until 2027-01-01T00:00:00Z",
			},
		},
		{
			name:    "no backups",
			policy:  Policy{KeepDaily: 7},
			now:     "2026-11-30 00:00",
			backups: nil,
			want:    []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Plan(tt.backups, tt.policy, at(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if lines := render(got); !slices.Equal(lines, tt.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(lines, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
			// The order of the input must not matter.
			reversed := slices.Clone(tt.backups)
			slices.Reverse(reversed)
			again, err := Plan(reversed, tt.policy, at(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("reversed input gives\n\t%s", strings.Join(render(again), "\n\t"))
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	ok := Policy{KeepDaily: 7}
	tests := []struct {
		name    string
		policy  Policy
		backups []Backup
		want    string // part of the message
	}{
		{"duplicate id", ok, []Backup{full("f1", "2026-11-20 02:00"), full("f1", "2026-11-21 02:00")},
			"backup f1: listed twice"},
		{"unknown type", ok, []Backup{{ID: "s1", Type: "snapshot", Time: at("2026-11-20 02:00")}},
			`backup s1: unknown type "snapshot"`},
		{"full with a parent", ok, []Backup{full("f0", "2026-11-19 02:00"),
			{ID: "f1", Type: TypeFull, Parent: "f0", Time: at("2026-11-20 02:00")}},
			"backup f1: a full backup has a parent (f0)"},
		{"incremental without a parent", ok, []Backup{incr("i1", "", "2026-11-20 02:00")},
			"backup i1: incremental backups need a parent"},
		{"differential without a parent", ok, []Backup{diff("d1", "", "2026-11-20 02:00")},
			"backup d1: differential backups need a parent"},
		{"parent newer than its child", ok, []Backup{full("f1", "2026-11-21 02:00"), incr("i1", "f1", "2026-11-20 02:00")},
			"backup i1: parent f1 is not older than the backup"},
		{"parent is the backup itself", ok, []Backup{incr("i1", "i1", "2026-11-20 02:00")},
			"backup i1: parent i1 is not older than the backup"},
		{"no id", ok, []Backup{full("f1", "2026-11-20 02:00"), full("", "2026-11-21 02:00")},
			"backup number 2 in the list has no id"},
		{"no time", ok, []Backup{{ID: "f1", Type: TypeFull}}, "backup f1: has no time"},
		{"invalid policy", Policy{KeepDaily: -1}, nil, "keep_daily is -1"},
		{"empty policy", Policy{}, nil, "retention policy keeps nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Plan(tt.backups, tt.policy, at("2026-11-30 00:00"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("error %v is not ErrBadInput", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		policy Policy
		want   string // part of the message; "" for no error
	}{
		{Policy{KeepLast: -1}, "keep_last is -1"},
		{Policy{KeepWithin: -time.Hour}, "keep_within is -1h0m0s"},
		{Policy{KeepDaily: -2, KeepWeekly: 4}, "keep_daily is -2"},
		{Policy{KeepWeekly: -1}, "keep_weekly is -1"},
		{Policy{KeepMonthly: -1}, "keep_monthly is -1"},
		{Policy{KeepYearly: -7}, "keep_yearly is -7"},
		{Policy{}, "retention policy keeps nothing; set at least one of keep_last, keep_within, keep_daily"},
		{Policy{KeepLast: 1}, ""},
		{Policy{KeepWithin: time.Minute}, ""},
		{Policy{KeepMonthly: 12, KeepYearly: 7}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			err := tt.policy.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, ErrBadInput):
				t.Fatalf("error %v is not ErrBadInput", err)
			}
		})
	}
}

func TestPolicyString(t *testing.T) {
	tests := []struct {
		policy Policy
		want   string
	}{
		{Policy{}, "keep nothing"},
		{Policy{KeepDaily: 7}, "keep_daily 7"},
		{Policy{KeepMonthly: 12, KeepYearly: 7}, "keep_monthly 12, keep_yearly 7"},
		{Policy{KeepLast: 3, KeepWithin: 90 * time.Minute, KeepWeekly: 4}, "keep_last 3, keep_within 1h30m, keep_weekly 4"},
		{Policy{KeepWithin: 48 * time.Hour}, "keep_within 48h"},
		{Policy{KeepWithin: 1500 * time.Millisecond}, "keep_within 1.5s"},
	}
	for _, tt := range tests {
		if got := tt.policy.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.policy, got, tt.want)
		}
	}
}

// The two-year simulation runs the seed document's schedule from Monday
// 2025-01-06 to Sunday 2027-01-03, 104 weeks:
//
//   - 02:00 on Sundays: a full backup;
//   - 02:00 on other days: an incremental on the newest backup (the very
//     first backup is a full one, as there is nothing to build on);
//   - 12:00 every day: a differential on the newest full.
//
// Verification passes until 2026-12-31 12:00 and fails from then on, so the
// newest verified backup, the incremental of 2026-12-31 02:00, is one that
// no policy selects. The cleanup job runs at 23:00 every day.
var (
	simStart       = at("2025-01-06 00:00")
	simEnd         = at("2027-01-04 00:00")
	simFailsFrom   = at("2026-12-31 12:00")
	simLastCleanup = at("2027-01-03 23:00")
)

// Ids of the simulated backups, from the day they were taken.
func fullID(day string) string { return strings.ReplaceAll(day, "-", "") + "T0200Z-full" }
func incrID(day string) string { return strings.ReplaceAll(day, "-", "") + "T0200Z-incr" }
func diffID(day string) string { return strings.ReplaceAll(day, "-", "") + "T1200Z-diff" }

// twoYears returns the simulated backups, oldest first.
func twoYears() []Backup {
	var bs []Backup
	add := func(typ, parent string, t time.Time) Backup {
		b := Backup{
			ID:       t.Format("20060102T1504Z") + "-" + typ[:4],
			Type:     typ,
			Parent:   parent,
			Time:     t,
			Verified: t.Before(simFailsFrom),
		}
		bs = append(bs, b)
		return b
	}
	var newest, newestFull Backup
	for day := simStart; day.Before(simEnd); day = day.AddDate(0, 0, 1) {
		if day.Weekday() == time.Sunday || newestFull.ID == "" {
			newestFull = add(TypeFull, "", day.Add(2*time.Hour))
		} else {
			newest = add(TypeIncremental, newest.ID, day.Add(2*time.Hour))
		}
		newest = add(TypeDifferential, newestFull.ID, day.Add(12*time.Hour))
	}
	return bs
}

// destinations are the seed document's retention schedule, with what each
// keeps at the end of the simulation, written out from the calendar.
var destinations = []struct {
	name    string
	policy  Policy
	want    []string
	reasons map[string][]string // spot checks
}{
	{
		name:   "local",
		policy: Policy{KeepDaily: 7},
		want: []string{
			// The newest backup of each of the last 7 days is its differential,
			diffID("2026-12-28"), diffID("2026-12-29"), diffID("2026-12-30"), diffID("2026-12-31"),
			diffID("2027-01-01"), diffID("2027-01-02"), diffID("2027-01-03"),
			// which needs the full of the Sunday before.
			fullID("2026-12-27"), fullID("2027-01-03"),
			// The newest verified backup; its parent is the differential of
			// 2026-12-30, whose parent is the full of 2026-12-27.
			incrID("2026-12-31"),
		},
		reasons: map[string][]string{
			incrID("2026-12-31"): {"newest verified backup"},
			diffID("2026-12-30"): {"daily 2026-12-30", "parent of 20261231T0200Z-incr (kept by newest verified backup)"},
			fullID("2027-01-03"): {"parent of 20270103T1200Z-diff (kept by daily 2027-01-03)"},
		},
	},
	{
		name:   "nas",
		policy: Policy{KeepWeekly: 4},
		want: []string{
			// The 4 newest Sunday fulls.
			fullID("2026-12-13"), fullID("2026-12-20"), fullID("2026-12-27"), fullID("2027-01-03"),
			// The newest verified backup and its parent.
			incrID("2026-12-31"), diffID("2026-12-30"),
		},
		reasons: map[string][]string{
			fullID("2027-01-03"): {"weekly 2026-W53"},
			fullID("2026-12-27"): {"weekly 2026-W52", "ancestor of 20261231T0200Z-incr (kept by newest verified backup)"},
			diffID("2026-12-30"): {"parent of 20261231T0200Z-incr (kept by newest verified backup)"},
		},
	},
	{
		name:   "cloud",
		policy: Policy{KeepMonthly: 12, KeepYearly: 7},
		want: []string{
			// The last full of each of the last 12 months (2027-01 included),
			fullID("2026-02-22"), fullID("2026-03-29"), fullID("2026-04-26"), fullID("2026-05-31"),
			fullID("2026-06-28"), fullID("2026-07-26"), fullID("2026-08-30"), fullID("2026-09-27"),
			fullID("2026-10-25"), fullID("2026-11-29"), fullID("2026-12-27"), fullID("2027-01-03"),
			// the last full of each year (2027 and 2026 are already there),
			fullID("2025-12-28"),
			// the newest verified backup and its parent.
			incrID("2026-12-31"), diffID("2026-12-30"),
		},
		reasons: map[string][]string{
			fullID("2027-01-03"): {"monthly 2027-01", "yearly 2027"},
			fullID("2025-12-28"): {"yearly 2025"},
			fullID("2026-12-27"): {"monthly 2026-12", "yearly 2026", "ancestor of 20261231T0200Z-incr (kept by newest verified backup)"},
		},
	},
}

func TestPlanTwoYears(t *testing.T) {
	all := twoYears()
	if len(all) != 2*728 {
		t.Fatalf("simulation made %d backups, want 2 a day for 728 days", len(all))
	}
	for _, dst := range destinations {
		t.Run(dst.name, func(t *testing.T) {
			ds, err := Plan(all, dst.policy, simLastCleanup)
			if err != nil {
				t.Fatal(err)
			}
			checkDecisions(t, all, ds)
			kept := keptIDs(ds)
			if want := sorted(dst.want); !slices.Equal(kept, want) {
				t.Errorf("kept %d backups\n\t%s\nwant %d\n\t%s", len(kept), strings.Join(kept, "\n\t"),
					len(want), strings.Join(want, "\n\t"))
			}
			for id, want := range dst.reasons {
				i := slices.IndexFunc(ds, func(d Decision) bool { return d.ID == id })
				if i < 0 {
					t.Errorf("no decision for %s", id)
				} else if !slices.Equal(ds[i].Reasons, want) {
					t.Errorf("reasons for %s: got %q, want %q", id, ds[i].Reasons, want)
				}
			}
			// Any order of the input gives the same plan.
			rng := rand.New(rand.NewPCG(1, 2))
			shuffled := slices.Clone(all)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			again, err := Plan(shuffled, dst.policy, simLastCleanup)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, ds) {
				t.Error("shuffled input gives another plan")
			}
		})
	}
}

// TestDailyCleanupTwoYears runs the cleanup job every day of the simulation
// and removes what it says, as the real job would.
func TestDailyCleanupTwoYears(t *testing.T) {
	all := twoYears()
	for _, dst := range destinations {
		t.Run(dst.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			var stored []Backup // what the destination holds, in upload order
			made := 0           // backups taken so far: all[:made]
			for day := simStart; day.Before(simEnd); day = day.AddDate(0, 0, 1) {
				now := day.Add(23 * time.Hour)
				for made < len(all) && !all[made].Time.After(now) {
					stored = append(stored, all[made])
					made++
				}

				// Dry run, listing the destination in another order.
				shuffled := slices.Clone(stored)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				dry, err := Plan(shuffled, dst.policy, now)
				if err != nil {
					t.Fatal(err)
				}
				// Real run.
				plan, err := Plan(stored, dst.policy, now)
				if err != nil {
					t.Fatal(err)
				}
				checkDecisions(t, stored, plan)
				var removed []string
				stored, removed = apply(t, stored, plan)
				if want := removedIDs(dry); !slices.Equal(removed, want) {
					t.Fatalf("%s: the real run removed %q, the dry run said %q", now, removed, want)
				}
				checkChains(t, now, stored)

				// Cleaning up every day keeps what one cleanup of everything
				// taken so far would keep.
				once, err := Plan(all[:made], dst.policy, now)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := sorted(ids(stored)), keptIDs(once); !slices.Equal(got, want) {
					t.Fatalf("%s: after daily cleanups the destination holds\n\t%s\na single cleanup would keep\n\t%s",
						now, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
				}
			}
			if got, want := sorted(ids(stored)), sorted(dst.want); !slices.Equal(got, want) {
				t.Errorf("at the end the destination holds\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
			}
		})
	}
}

// apply removes the backups the plan marks Keep == false, one at a time in
// the plan's order, and fails if one is removed while a backup that needs it
// is still stored: a cleanup interrupted at any point must leave no chain
// broken. It returns what is left, in the same order, and what it removed.
func apply(t *testing.T, stored []Backup, plan []Decision) (left []Backup, removed []string) {
	t.Helper()
	live := make(map[string]bool, len(stored))
	for _, b := range stored {
		live[b.ID] = true
	}
	for _, d := range plan {
		if d.Keep {
			continue
		}
		for _, b := range stored {
			if live[b.ID] && b.Parent == d.ID {
				t.Fatalf("removing %s while %s, which needs it, is still stored", d.ID, b.ID)
			}
		}
		delete(live, d.ID)
		removed = append(removed, d.ID)
	}
	for _, b := range stored {
		if live[b.ID] {
			left = append(left, b)
		}
	}
	return left, removed
}

// checkDecisions checks what must hold for any plan: one decision per backup,
// newest first; no kept backup needs a removed or missing one; the newest
// verified backup is kept.
func checkDecisions(t *testing.T, backups []Backup, ds []Decision) {
	t.Helper()
	byID := make(map[string]Backup, len(backups))
	for _, b := range backups {
		byID[b.ID] = b
	}
	if len(ds) != len(backups) {
		t.Fatalf("%d decisions for %d backups", len(ds), len(backups))
	}
	keep := make(map[string]bool, len(ds))
	for i, d := range ds {
		b, ok := byID[d.ID]
		if !ok {
			t.Fatalf("decision for unknown backup %s", d.ID)
		}
		if i > 0 && compareAge(byID[ds[i-1].ID], b) <= 0 {
			t.Fatalf("decision for %s comes after %s, which is not newer", d.ID, ds[i-1].ID)
		}
		if len(d.Reasons) == 0 {
			t.Errorf("no reason given for %s", d.ID)
		}
		keep[d.ID] = d.Keep
	}
	for _, d := range ds {
		if !d.Keep {
			continue
		}
		for b := byID[d.ID]; b.Parent != ""; b = byID[b.Parent] {
			if !keep[b.Parent] {
				t.Fatalf("%s is kept but its ancestor %s is not", d.ID, b.Parent)
			}
		}
	}
	var newestVerified Backup
	for _, b := range backups {
		if b.Verified && (newestVerified.ID == "" || compareAge(b, newestVerified) > 0) {
			newestVerified = b
		}
	}
	if newestVerified.ID != "" && !keep[newestVerified.ID] {
		t.Fatalf("the newest verified backup %s is not kept", newestVerified.ID)
	}
}

// checkChains fails if a stored backup's parent is not stored.
func checkChains(t *testing.T, now time.Time, stored []Backup) {
	t.Helper()
	live := make(map[string]bool, len(stored))
	for _, b := range stored {
		live[b.ID] = true
	}
	for _, b := range stored {
		if b.Parent != "" && !live[b.Parent] {
			t.Fatalf("%s: %s is stored without its parent %s", now, b.ID, b.Parent)
		}
	}
}

func ids(bs []Backup) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

func keptIDs(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if d.Keep {
			out = append(out, d.ID)
		}
	}
	return sorted(out)
}

// removedIDs lists the backups a plan removes, in the plan's order.
func removedIDs(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		if !d.Keep {
			out = append(out, d.ID)
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
