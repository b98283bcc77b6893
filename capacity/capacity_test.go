package capacity

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-dr/bulwark/retention"
)

// The fake calendar: four weeks of history, Monday 2026-11-02 to Sunday
// 2026-11-29, and the report is asked for on that Sunday evening. The
// observed window is then the last two whole weeks, 2026-11-16 to 11-29, and
// the simulation starts on Monday 2026-11-30.
const (
	historyFrom = "2026-11-02"
	historyDays = 28
	reportAt    = "2026-11-29 23:00"
)

const mb = 1_000_000

// at parses a UTC time written as "2026-11-24 02:00".
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// run is one backup a fake schedule takes on a given day.
type run struct {
	at     string // time of day, "02:00"
	typ    string
	stored int64
	image  int64
}

// history takes the backups of schedule on each of days days from from,
// with Bulwark's parents: an incremental on the newest backup, a
// differential on the newest full.
func history(from string, days int, schedule func(d time.Time, i int) []run) []Backup {
	var bs []Backup
	var newest, newestFull string
	first := at(from + " 00:00")
	for i := range days {
		d := first.AddDate(0, 0, i)
		for _, r := range schedule(d, i) {
			b := Backup{
				Backup:      retention.Backup{ID: fmt.Sprintf("b%03d", len(bs)), Type: r.typ, Time: at(d.Format("2006-01-02") + " " + r.at)},
				StoredBytes: r.stored,
				ImageBytes:  r.image,
			}
			switch r.typ {
			case retention.TypeIncremental:
				b.Parent = newest
			case retention.TypeDifferential:
				b.Parent = newestFull
			case retention.TypeFull:
				newestFull = b.ID
			}
			newest = b.ID
			bs = append(bs, b)
		}
	}
	return bs
}

// dailyFull is the seed's SQLite schedule: a full backup every day at 02:00.
func dailyFull(stored int64) func(time.Time, int) []run {
	return func(time.Time, int) []run {
		return []run{{"02:00", retention.TypeFull, stored, 0}}
	}
}

// bulwarkDiff is the size of the noon differential on weekday w: it holds
// every page changed since Monday's full, so it grows through the week,
// 3 MB on Monday to 21 MB on Sunday (84 MB a week).
func bulwarkDiff(w time.Weekday) int64 { return 3 * mb * int64((w+6)%7+1) }

// bulwarkSchedule: a full backup on Monday at 02:00 (100 MB), an incremental
// at 02:00 on the other days (5 MB), and a differential every day at noon.
func bulwarkSchedule(d time.Time, _ int) []run {
	first := run{"02:00", retention.TypeIncremental, 5 * mb, 0}
	if d.Weekday() == time.Monday {
		first = run{"02:00", retention.TypeFull, 100 * mb, 0}
	}
	return []run{first, {"12:00", retention.TypeDifferential, bulwarkDiff(d.Weekday()), 0}}
}

func verifiedAll(bs []Backup) []Backup {
	for i := range bs {
		bs[i].Verified = true
	}
	return bs
}

func TestProjectSteadyState(t *testing.T) {
	tests := []struct {
		name     string
		backups  []Backup
		policy   retention.Policy
		want     int64
		peakAt   string // the moment of the peak, "" to skip
		schedule string
	}{
		// The seed's section 9.2, SQLite row by row: a 10 MB full every day.
		{
			name:     "9.2 daily: 10 MB × 7 days",
			backups:  history(historyFrom, historyDays, dailyFull(10*mb)),
			policy:   retention.Policy{KeepDaily: 7},
			want:     70 * mb,
			schedule: "per week: 7 full",
		},
		{
			// Weekly periods keep the newest full of each of 4 weeks.
			name:     "9.2 weekly: 10 MB × 4 weeks",
			backups:  history(historyFrom, historyDays, dailyFull(10*mb)),
			policy:   retention.Policy{KeepWeekly: 4},
			want:     40 * mb,
			schedule: "per week: 7 full",
		},
		{
			name:     "9.2 monthly: 10 MB × 12 months",
			backups:  history(historyFrom, historyDays, dailyFull(10*mb)),
			policy:   retention.Policy{KeepMonthly: 12},
			want:     120 * mb,
			schedule: "per week: 7 full",
		},
		{
			// All three together count each kept backup once. The policy
			// needs 12 × 31 days, so 399 days (57 weeks) are simulated from
			// Monday 2026-11-30 to Sunday 2028-01-02, and the last week,
			// Monday 2027-12-27 to Sunday 2028-01-02, is measured. On Monday
			// 2027-12-27, just after its backup, the policy keeps:
			//   daily 7:    2027-12-21 … 2027-12-27                     7
			//   weekly 4:   2027-12-27 (also daily), and the Sundays of
			//               the 3 weeks before: 12-26 (also daily),
			//               12-19 and 12-12                            +2
			//   monthly 12: 2027-12-27 (also daily), and the last day of
			//               each of the 11 months before, 2027-01-31 …
			//               2027-11-30, none of them picked above     +11
			// 20 backups, 200 MB. Tuesday to Friday and Sunday keep 20 as
			// well (on Sunday: 7 + 3 weekly + 10 monthly, as December's
			// pick, 12-31, is a daily one); Saturday 2028-01-01 keeps 19.
			// The peak is the first of the 20s. The seed's hand count,
			// 70 + 40 + 120 = 230 MB, counts the overlaps twice.
			name:    "9.2 daily 7 + weekly 4 + monthly 12, overlaps counted once",
			backups: history(historyFrom, historyDays, dailyFull(10*mb)),
			policy:  retention.Policy{KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12},
			want:    200 * mb,
			peakAt:  "2027-12-27 02:00",
		},
		// Bulwark's own schedule: Monday full 100 MB, 5 MB incrementals at
		// 02:00, and a noon differential of 3 MB (Monday) to 21 MB
		// (Sunday). Write F0 for this week's full, F1 for last week's, D_x
		// and I_x for the differential and incremental of day x. An
		// incremental's parent is the differential of the day before; a
		// differential's is its week's full.
		{
			// keep_weekly 4 always keeps 4 fulls (400 MB). keep_daily 7
			// keeps the newest backup of each of the last 7 days. After a
			// noon differential those are the 7 noon differentials, one of
			// each weekday (84 MB), whose parents are fulls already kept:
			// 484 MB. After 02:00 on day x, today's newest is I_x (5 MB,
			// its parent D_x-1 is a daily pick) in place of D_x (6 MB or
			// more): 484 − D_x + 5 < 484; on Monday it is F0, already a
			// weekly pick: 484 − 3 = 481 MB. Incrementals never count at
			// noon: no later backup builds on them.
			name:     "Bulwark schedule, daily 7 + weekly 4",
			backups:  history(historyFrom, historyDays, bulwarkSchedule),
			policy:   retention.Policy{KeepDaily: 7, KeepWeekly: 4},
			want:     484 * mb,
			schedule: "per week: 1 full, 6 incremental, 7 differential",
		},
		{
			// keep_daily 7 alone: the 7 noon differentials (84 MB) and the
			// fulls their chains need. From Monday noon to Saturday noon the
			// last 7 days span two weeks, so both F0 and F1 are kept:
			// 84 + 200 = 284 MB. On Sunday at noon all 7 are this week's and
			// F1 goes: 184 MB.
			name:    "Bulwark schedule, daily 7: chains keep last week's full",
			backups: history(historyFrom, historyDays, bulwarkSchedule),
			policy:  retention.Policy{KeepDaily: 7},
			want:    284 * mb,
		},
		{
			// keep_last 3 peaks on Monday at 02:00: F0, D_Sun and I_Sun are
			// the 3 newest; D_Sun needs F1, and I_Sun needs D_Sat, which
			// needs F1: 100 + 21 + 5 + 18 + 100 = 244 MB. On Sunday at noon,
			// D_Sun, I_Sun and D_Sat (with F1) are 144 MB; on Monday at noon
			// D_Mon, F0 and D_Sun (with F1) are 224 MB.
			name:    "Bulwark schedule, last 3: an incremental pulls in yesterday's differential",
			backups: history(historyFrom, historyDays, bulwarkSchedule),
			policy:  retention.Policy{KeepLast: 3},
			want:    244 * mb,
			peakAt:  "2026-12-21 02:00", // the Monday of the measured week
		},
		{
			// keep_weekly 4 keeps only the fulls of 4 weeks when no backup
			// is verified.
			name:    "Bulwark schedule, weekly 4, unverified",
			backups: history(historyFrom, historyDays, bulwarkSchedule),
			policy:  retention.Policy{KeepWeekly: 4},
			want:    400 * mb,
		},
		{
			// With verified backups the newest one and its chain are kept
			// too. The most it adds is on Sunday at 02:00: I_Sun and its
			// parent D_Sat, 5 + 18 = 23 MB, so 423 MB.
			name:    "Bulwark schedule, weekly 4, verified: the newest backup's chain",
			backups: verifiedAll(history(historyFrom, historyDays, bulwarkSchedule)),
			policy:  retention.Policy{KeepWeekly: 4},
			want:    423 * mb,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Project(tt.backups, tt.policy, at(reportAt))
			if err != nil {
				t.Fatal(err)
			}
			if r.Projected != tt.want {
				t.Errorf("Projected = %d, want %d (peak at %v)", r.Projected, tt.want, r.PeakAt)
			}
			if tt.peakAt != "" && !r.PeakAt.Equal(at(tt.peakAt)) {
				t.Errorf("PeakAt = %v, want %s", r.PeakAt, tt.peakAt)
			}
			if tt.schedule != "" && r.Schedule != tt.schedule {
				t.Errorf("Schedule = %q, want %q", r.Schedule, tt.schedule)
			}
			// No image sizes in these fixtures: no growth.
			if r.ProjectedIn1Y != r.Projected {
				t.Errorf("ProjectedIn1Y = %d, want Projected %d", r.ProjectedIn1Y, r.Projected)
			}
			if len(r.Notes) != 1 || !strings.HasPrefix(r.Notes[0], "no image sizes recorded") {
				t.Errorf("Notes = %q, want only the no-image-sizes note", r.Notes)
			}
		})
	}
}

func TestProjectCurrentState(t *testing.T) {
	bs := history(historyFrom, historyDays, bulwarkSchedule)
	r, err := Project(bs, retention.Policy{KeepDaily: 7, KeepWeekly: 4}, at(reportAt))
	if err != nil {
		t.Fatal(err)
	}
	// Four weeks of 100 MB + 6 × 5 MB + 84 MB = 214 MB.
	if r.Backups != 56 || r.StoredBytes != 4*214*mb {
		t.Errorf("Backups, StoredBytes = %d, %d; want 56, %d", r.Backups, r.StoredBytes, 4*214*mb)
	}
	wantByType := map[string]int64{
		retention.TypeFull:         4 * 100 * mb,
		retention.TypeIncremental:  4 * 30 * mb,
		retention.TypeDifferential: 4 * 84 * mb,
	}
	if !reflect.DeepEqual(r.ByType, wantByType) {
		t.Errorf("ByType = %v, want %v", r.ByType, wantByType)
	}
	// Two observed weeks wrote 2 × 214 MB.
	if r.ObservedDays != 14 || r.GrowthPerDay != float64(2*214*mb)/14 {
		t.Errorf("ObservedDays, GrowthPerDay = %d, %v; want 14, %v", r.ObservedDays, r.GrowthPerDay, float64(2*214*mb)/14)
	}
	// Daily 7 and weekly 4 need 4 weeks; with 3 more, 49 days are
	// simulated, from Monday 2026-11-30 02:00 to Sunday 2027-01-17 12:00.
	if want := at("2027-01-17 12:00").Sub(at("2026-11-30 02:00")); r.Horizon != want {
		t.Errorf("Horizon = %v, want %v", r.Horizon, want)
	}
}

func TestProjectGrowth(t *testing.T) {
	// A 10 MB full every day of an image that grows by 1 MB a day: 100 MB
	// on the first day, 127 MB on the last.
	growing := func(d time.Time, i int) []run {
		return []run{{"02:00", retention.TypeFull, 10 * mb, 100*mb + int64(i)*mb}}
	}
	shrinking := func(d time.Time, i int) []run {
		return []run{{"02:00", retention.TypeFull, 10 * mb, 200*mb - int64(i)*mb}}
	}
	policy := retention.Policy{KeepDaily: 7}

	t.Run("growing image", func(t *testing.T) {
		r, err := Project(history(historyFrom, historyDays, growing), policy, at(reportAt))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.ImageGrowthPerDay-1*mb) > 1e-3 {
			t.Errorf("ImageGrowthPerDay = %v, want 1e6", r.ImageGrowthPerDay)
		}
		if r.GrowthPerDay != 10*mb {
			t.Errorf("GrowthPerDay = %v, want 1e7", r.GrowthPerDay)
		}
		if r.Projected != 70*mb {
			t.Errorf("Projected = %d, want 70 MB", r.Projected)
		}
		// In a year the image is 127 + 365 = 492 MB, 492/127 of today's.
		want := int64(math.Round(70 * mb * 492.0 / 127))
		if r.ProjectedIn1Y < want-1 || r.ProjectedIn1Y > want+1 {
			t.Errorf("ProjectedIn1Y = %d, want %d (70 MB × 492/127)", r.ProjectedIn1Y, want)
		}
		if len(r.Notes) != 0 {
			t.Errorf("Notes = %q, want none", r.Notes)
		}
	})
	t.Run("shrinking image is not projected to shrink", func(t *testing.T) {
		r, err := Project(history(historyFrom, historyDays, shrinking), policy, at(reportAt))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r.ImageGrowthPerDay+1*mb) > 1e-3 {
			t.Errorf("ImageGrowthPerDay = %v, want -1e6", r.ImageGrowthPerDay)
		}
		if r.ProjectedIn1Y != r.Projected || r.Projected != 70*mb {
			t.Errorf("Projected, ProjectedIn1Y = %d, %d; want 70 MB both", r.Projected, r.ProjectedIn1Y)
		}
		want := []string{"the database image shrank by 1 MB per day: the projection in a year assumes it stops shrinking"}
		if !reflect.DeepEqual(r.Notes, want) {
			t.Errorf("Notes = %q, want %q", r.Notes, want)
		}
	})
}

func TestProjectNotes(t *testing.T) {
	incrementalsOnly := func(time.Time, int) []run {
		return []run{{"02:00", retention.TypeIncremental, 5 * mb, 0}}
	}
	withFirstFull := func(d time.Time, i int) []run {
		if i == 0 {
			return []run{{"02:00", retention.TypeFull, 100 * mb, 0}}
		}
		return incrementalsOnly(d, i)
	}
	tests := []struct {
		name      string
		backups   []Backup
		policy    retention.Policy
		now       string
		projected int64
		schedule  string
		notes     []string // every note, in order
	}{
		{
			// 28 backups of 10 MB stored; a year adds 365 × 10 MB.
			name:      "no policy keeps everything",
			backups:   history(historyFrom, historyDays, dailyFull(10*mb)),
			now:       reportAt,
			projected: 280*mb + 3650*mb,
			schedule:  "per week: 7 full",
			notes: []string{
				"no retention policy: everything is kept, so the need grows without bound (≈ 3.65 GB per year); projected is what is stored in a year",
				"no image sizes recorded: the projection in a year assumes the database does not grow",
			},
		},
		{
			// Monday to Wednesday seen: Thursday to Sunday repeat Wednesday,
			// which gives the full week of the Bulwark schedule.
			name:      "three days observed",
			backups:   history("2026-11-23", 3, bulwarkSchedule),
			policy:    retention.Policy{KeepDaily: 7, KeepWeekly: 4},
			now:       "2026-11-25 23:00",
			projected: 4*100*mb + 3*mb + 6*mb + 5*9*mb, // D_Mon, D_Tue, and Wednesday's 9 MB for Wednesday to Sunday
			schedule:  "per week: 1 full, 6 incremental, 7 differential",
			notes: []string{
				"only 3 of 14 days of backups observed (fewer than 7): the schedule is a guess",
				"no image sizes recorded: the projection in a year assumes the database does not grow",
			},
		},
		{
			// 100 MB full, then 27 incrementals: 235 MB stored, and the last
			// two weeks wrote 14 × 5 MB.
			name:      "no full backup in the window",
			backups:   history(historyFrom, historyDays, withFirstFull),
			policy:    retention.Policy{KeepDaily: 7},
			now:       reportAt,
			projected: 235*mb + 365*5*mb,
			schedule:  "per week: 7 incremental",
			notes: []string{
				"no full backup in the last 14 days: every backup chains back to an old full one and retention can remove almost nothing, so the need grows without bound (≈ 1.82 GB per year); projected is what is stored in a year",
				"no image sizes recorded: the projection in a year assumes the database does not grow",
			},
		},
		{
			name:      "stale backups",
			backups:   history(historyFrom, historyDays, dailyFull(10*mb)),
			policy:    retention.Policy{KeepDaily: 7},
			now:       "2026-12-10 12:00",
			projected: 70 * mb,
			schedule:  "per week: 7 full",
			notes: []string{
				"the newest backup is 11 days old: backups may have stopped; the projection assumes the schedule seen before resumes",
				"no image sizes recorded: the projection in a year assumes the database does not grow",
			},
		},
		{
			// keep_yearly 12 would need 12 years; 522 weeks are simulated,
			// from 2026-11-30 to 2036-11-30, whose 11 years each keep one
			// full.
			name:      "horizon too short for the policy",
			backups:   history(historyFrom, historyDays, dailyFull(10*mb)),
			policy:    retention.Policy{KeepYearly: 12},
			now:       reportAt,
			projected: 110 * mb,
			schedule:  "per week: 7 full",
			notes: []string{
				"the policy needs more than the 3653 simulated days to reach its steady state: the projection is a lower bound",
				"no image sizes recorded: the projection in a year assumes the database does not grow",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Project(tt.backups, tt.policy, at(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if r.Projected != tt.projected {
				t.Errorf("Projected = %d, want %d", r.Projected, tt.projected)
			}
			if r.Schedule != tt.schedule {
				t.Errorf("Schedule = %q, want %q", r.Schedule, tt.schedule)
			}
			if !reflect.DeepEqual(r.Notes, tt.notes) {
				t.Errorf("Notes =\n%q\nwant\n%q", r.Notes, tt.notes)
			}
		})
	}
}

func TestProjectRefuses(t *testing.T) {
	good := history(historyFrom, 2, dailyFull(10*mb))
	negative := history(historyFrom, 2, dailyFull(10*mb))
	negative[1].StoredBytes = -1
	unknown := history(historyFrom, 2, dailyFull(10*mb))
	unknown[0].Type = "snapshot"
	tests := []struct {
		name    string
		backups []Backup
		policy  retention.Policy
		want    error
	}{
		{"no backups", nil, retention.Policy{KeepDaily: 7}, ErrNoBackups},
		{"negative size", negative, retention.Policy{KeepDaily: 7}, retention.ErrBadInput},
		{"unknown type", unknown, retention.Policy{KeepDaily: 7}, retention.ErrBadInput},
		{"negative policy", good, retention.Policy{KeepDaily: -1}, retention.ErrBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Project(tt.backups, tt.policy, at(reportAt))
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestProjectIgnoresInputOrder(t *testing.T) {
	bs := verifiedAll(history(historyFrom, historyDays, bulwarkSchedule))
	policy := retention.Policy{KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 3}
	want, err := Project(bs, policy, at(reportAt))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
		got, err := Project(bs, policy, at(reportAt))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffled input gives\n%+v\nwant\n%+v", got, want)
		}
	}
}

func TestRecommend(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		need, want int64
	}{
		{0, 0},
		{1, gib},
		{715_827_882, gib},       // × 1.5 = 1 073 741 823, just under 1 GiB
		{715_827_883, 2 * gib},   // × 1.5 rounds up past 1 GiB
		{1_400_000_000, 2 * gib}, // the seed's 1.4 GB: 2.1 GB fits in 2 GiB (the seed says 5 GB)
		{1_500_000_000, 3 * gib}, // 2.25 GB
		{4 * gib, 6 * gib},
	}
	for _, tt := range tests {
		if got := recommend(tt.need); got != tt.want {
			t.Errorf("recommend(%d) = %d, want %d", tt.need, got, tt.want)
		}
	}
	// And through Project: 70 MB a year from now needs 1 GiB.
	r, err := Project(history(historyFrom, historyDays, dailyFull(10*mb)), retention.Policy{KeepDaily: 7}, at(reportAt))
	if err != nil {
		t.Fatal(err)
	}
	if r.Recommended != gib {
		t.Errorf("Recommended = %d, want 1 GiB", r.Recommended)
	}
}
