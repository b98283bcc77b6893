package repository

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

var (
	drillSeed  = flag.Uint64("drill.seed", 0, "seed of TestCorruptionDrill (0: $BULWARK_DRILL_SEED, else a fixed default)")
	drillCases = flag.Int("drill.cases", 200, "cases per bucket layout in TestCorruptionDrill")
)

// defaultDrillSeed makes the drill reproducible run to run; pass
// -args -drill.seed=N (or set BULWARK_DRILL_SEED) to explore others.
const defaultDrillSeed = 20260105

func drillSeedValue(t *testing.T) uint64 {
	if *drillSeed != 0 {
		return *drillSeed
	}
	if s := os.Getenv("BULWARK_DRILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BULWARK_DRILL_SEED=%q: %v", s, err)
		}
		return v
	}
	return defaultDrillSeed
}

// The backups of the drill's chain, oldest first: a full backup, a
// differential on it, and two incrementals on the differential.
const (
	drillFullID = "20260201T000000.000Z-000000a1"
	drillDiffID = "20260202T000000.000Z-000000a2"
	drillInc1ID = "20260203T000000.000Z-000000a3"
	drillInc2ID = "20260204T000000.000Z-000000a4"
	drillDB     = "ledger"
)

// drillChain is a chain of backups stored on a primary and copied byte for
// byte to two more sources.
type drillChain struct {
	sources  []Source // primary, secondary, tertiary
	keeper   SecretsKeeper
	ids      []string          // oldest first
	keys     []string          // every object of the chain, sorted
	pristine map[string][]byte // their contents as written
	want     *testImage        // the newest backup's image
	final    *Manifest
}

func (d *drillChain) primary() *blob.Bucket { return d.sources[0].Bucket }

// newDrillChain writes the chain to the first bucket and copies it to the
// others. Chunks hold 64 pages, so each backup has several.
func newDrillChain(t *testing.T, buckets [3]*blob.Bucket) *drillChain {
	t.Helper()
	keeper := newTestKeeper(t)
	primary := buckets[0]

	full := newTestImage(400, 4096, "full")
	diff := full.clone() // 133 pages changed since the full backup
	for n := 3; n <= 400; n += 3 {
		diff.setPage(n, "diff")
	}
	inc1 := diff.clone() // 125 changed since the differential, 20 added
	for n := 1; n <= 400; n++ {
		if n%8 == 1 || n%8 == 6 || (n > 200 && n%8 == 4) {
			inc1.setPage(n, "inc1")
		}
	}
	inc1.resize(420, "inc1")
	inc2 := inc1.clone() // 190 changed since inc1, shrunk to 380 pages
	for n := 2; n <= 380; n += 2 {
		inc2.setPage(n, "inc2")
	}
	inc2.resize(380, "inc2")

	storeBackup(t, primary, keeper, drillDB, backupSpec{id: drillFullID, typ: BackupFull, img: full})
	storeBackup(t, primary, keeper, drillDB, backupSpec{id: drillDiffID, typ: BackupDifferential, parent: full, parentID: drillFullID, img: diff})
	storeBackup(t, primary, keeper, drillDB, backupSpec{id: drillInc1ID, typ: BackupIncremental, parent: diff, parentID: drillDiffID, img: inc1})
	final := storeBackup(t, primary, keeper, drillDB, backupSpec{id: drillInc2ID, typ: BackupIncremental, parent: inc1, parentID: drillInc1ID, img: inc2})
	if testing.Verbose() {
		var counts []string
		for _, id := range []string{drillFullID, drillDiffID, drillInc1ID, drillInc2ID} {
			b, err := ReadBackup(context.Background(), primary, drillDB, id)
			if err != nil {
				t.Fatal(err)
			}
			counts = append(counts, fmt.Sprintf("%s %d", b.Manifest.Type, len(b.Manifest.Chunks)))
		}
		t.Logf("chunks per backup: %s", strings.Join(counts, ", "))
	}

	d := &drillChain{
		keeper: keeper,
		ids:    []string{drillFullID, drillDiffID, drillInc1ID, drillInc2ID},
		want:   inc2,
		final:  final,
	}
	for i, name := range []string{"primary", "secondary", "tertiary"} {
		d.sources = append(d.sources, Source{Name: name, Bucket: buckets[i]})
	}
	d.pristine = snapshot(t, primary)
	d.keys = slices.Sorted(maps.Keys(d.pristine))
	for _, b := range buckets[1:] {
		for _, k := range d.keys {
			if err := b.WriteAll(context.Background(), k, d.pristine[k], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

// snapshot reads every object of a bucket.
func snapshot(t *testing.T, bucket *blob.Bucket) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	it := bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := bucket.ReadAll(ctx, obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[obj.Key] = data
	}
}

func sameObjects(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) })
}

// backupOfKey returns the backup id in an object key of the drill.
func backupOfKey(key string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(key, BackupsPrefix(drillDB)), "/")
	return id
}

// damage spoils an object: flips 1 to 8 distinct random bits, truncates it
// to a random shorter length (possibly 0), or deletes it. It returns what
// it did.
func damage(t *testing.T, rng *rand.Rand, bucket *blob.Bucket, key string, data []byte) string {
	t.Helper()
	ctx := context.Background()
	switch rng.IntN(3) {
	case 0:
		n := 1 + rng.IntN(8)
		bits := map[int]bool{}
		for len(bits) < min(n, len(data)*8) {
			bits[rng.IntN(len(data)*8)] = true
		}
		spoilt := slices.Clone(data)
		for b := range bits {
			spoilt[b/8] ^= 1 << (b % 8)
		}
		if err := bucket.WriteAll(ctx, key, spoilt, nil); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("flipped %d bits", len(bits))
	case 1:
		n := rng.IntN(len(data))
		if err := bucket.WriteAll(ctx, key, data[:n], nil); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("truncated from %d to %d bytes", len(data), n)
	default:
		if err := bucket.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		return "deleted"
	}
}

// problemKeys runs CheckObjectsAll on every backup of the chain.
func (d *drillChain) problemKeys(t *testing.T, bucket *blob.Bucket) []ObjectProblem {
	t.Helper()
	var all []ObjectProblem
	for _, id := range d.ids {
		problems, err := CheckObjectsAll(context.Background(), bucket, d.keeper, drillDB, id)
		if err != nil {
			t.Fatalf("CheckObjectsAll(%s): %v", id, err)
		}
		all = append(all, problems...)
	}
	return all
}

// restoreAndVerify does what a self-healing restore and verification of the
// newest backup read: the chain's manifests and key envelopes (ChainFrom),
// every chunk of the chain (RestoreImage with fallbacks), the newest
// backup's page index against the image (PageIndexMismatchFrom), and the
// older backups' page indexes (CheckPageIndexFrom), which a restore does
// not read but the next backup on the chain builds on. It returns the
// restored bytes, the hash RestoreImage returned, and every heal.
func (d *drillChain) restoreAndVerify(t *testing.T, repair bool) ([]byte, string, []Heal, error) {
	t.Helper()
	ctx := context.Background()
	opts := HealOptions{Repair: repair}
	chain, heals, err := ChainFromWith(ctx, d.sources, d.keeper, drillDB, drillInc2ID, opts)
	if err != nil {
		return nil, "", heals, err
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "restored.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mu sync.Mutex
	sum, err := RestoreImage(ctx, d.primary(), chain, f, RestoreOptions{
		Workers: 3, Fallbacks: d.sources[1:], Repair: repair,
		OnHeal: func(h Heal) {
			mu.Lock()
			heals = append(heals, h)
			mu.Unlock()
		},
	})
	if err != nil {
		return nil, "", heals, err
	}
	page, h, err := PageIndexMismatchFrom(ctx, d.sources, chain, f, opts)
	heals = append(heals, h...)
	if err != nil {
		return nil, "", heals, err
	}
	if page != 0 {
		return nil, "", heals, fmt.Errorf("page index differs from the image at page %d", page)
	}
	// The comparison read the older indexes too (merged along the chain):
	// one it healed is not reported twice, as in verify.
	indexHealed := map[string]bool{}
	for _, x := range h {
		indexHealed[x.Key] = true
	}
	for _, l := range chain[:len(chain)-1] {
		h, err := CheckPageIndexFrom(ctx, d.sources, l, opts)
		for _, x := range h {
			if !indexHealed[x.Key] {
				heals = append(heals, x)
			}
		}
		if err != nil {
			return nil, "", heals, err
		}
	}
	image, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return image, sum, heals, nil
}

// TestCorruptionDrill damages one random object of a chain on the primary
// per case (and sometimes one on the secondary) and checks that
// CheckObjectsAll names exactly it, that a restore over all three sources
// still yields the exact image, that the heal names the object and the
// source it came from, and that repair leaves the primary whole again —
// and that without repair nothing is written.
func TestCorruptionDrill(t *testing.T) {
	seed := drillSeedValue(t)
	t.Logf("seed %d (rerun with go test ./repository -run TestCorruptionDrill -args -drill.seed=%d)", seed, seed)
	fileBucket := func(t *testing.T, sidecars bool) *blob.Bucket {
		opts := &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite}
		if sidecars {
			opts.Metadata = fileblob.MetadataInSidecar
		}
		return openFileBucket(t, opts)
	}
	memBucket := func(t *testing.T) *blob.Bucket {
		b := memblob.OpenBucket(nil)
		t.Cleanup(func() { b.Close() })
		return b
	}
	for li, layout := range []struct {
		name string
		open func(t *testing.T) [3]*blob.Bucket
	}{
		{"fileblob primary", func(t *testing.T) [3]*blob.Bucket {
			return [3]*blob.Bucket{fileBucket(t, false), memBucket(t), fileBucket(t, true)}
		}},
		{"memblob primary", func(t *testing.T) [3]*blob.Bucket {
			return [3]*blob.Bucket{memBucket(t), fileBucket(t, true), memBucket(t)}
		}},
	} {
		t.Run(layout.name, func(t *testing.T) {
			d := newDrillChain(t, layout.open(t))
			start := time.Now()
			tally := map[string]int{}
			for c := range *drillCases {
				for _, label := range runDrillCase(t, d, seed, li, c) {
					tally[label]++
				}
			}
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(tally)) {
				parts = append(parts, fmt.Sprintf("%s %d", k, tally[k]))
			}
			t.Logf("%d cases in %v: %s", *drillCases, time.Since(start).Round(time.Millisecond), strings.Join(parts, ", "))
		})
	}
}

// runDrillCase runs case c and returns labels saying what it covered.
func runDrillCase(t *testing.T, d *drillChain, seed uint64, layout, c int) []string {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, uint64(layout)<<32|uint64(c)))
	target := d.keys[rng.IntN(len(d.keys))]
	repair := rng.IntN(2) == 0
	what := damage(t, rng, d.primary(), target, d.pristine[target])
	desc := fmt.Sprintf("%s on the primary: %s", target, what)

	// Sometimes the secondary is damaged too: the same object (so only the
	// tertiary holds it intact) or another one (which must not matter).
	wantFrom := "secondary"
	var secondaryKey string
	switch rng.IntN(3) {
	case 1:
		secondaryKey, wantFrom = target, "tertiary"
	case 2:
		for secondaryKey == "" || secondaryKey == target {
			secondaryKey = d.keys[rng.IntN(len(d.keys))]
		}
	}
	if secondaryKey != "" {
		desc += fmt.Sprintf("; %s on the secondary: %s", secondaryKey, damage(t, rng, d.sources[1].Bucket, secondaryKey, d.pristine[secondaryKey]))
	}
	desc += fmt.Sprintf("; repair %v", repair)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("case %d (seed %d; %s): %s", c, seed, desc, fmt.Sprintf(format, args...))
	}
	before := make([]map[string][]byte, len(d.sources))
	for i, s := range d.sources {
		before[i] = snapshot(t, s.Bucket)
	}

	// a) The check of the primary names the damaged object, and only it.
	problems := d.problemKeys(t, d.primary())
	if len(problems) != 1 || problems[0].Key != target {
		fail("CheckObjectsAll on the primary reports %v, want only %s", problems, target)
	}
	if !isDamage(problems[0].Err) {
		fail("the problem %v is not classified as damage", problems[0].Err)
	}

	// b) The restore over all sources yields the exact image.
	image, sum, heals, err := d.restoreAndVerify(t, repair)
	if err != nil {
		fail("restore: %v", err)
	}
	if string(image) != string(d.want.data) {
		fail("restored image differs from the newest backup's")
	}
	if sum != d.final.ImageDigest() {
		fail("RestoreImage returned %s, the manifest's image hash is %s", sum, d.final.ImageDigest())
	}

	// c) The damaged object was healed from the expected source, and
	// nothing else was.
	if len(heals) != 1 {
		fail("got %d heals %v, want one for %s", len(heals), heals, target)
	}
	h := heals[0]
	if h.Key != target || h.From != wantFrom || h.Backup != backupOfKey(target) || h.Problem == "" {
		fail("heal %+v, want key %s from %s of backup %s with the primary's problem", h, target, wantFrom, backupOfKey(target))
	}
	if wantFrom == "tertiary" && (len(h.Skipped) != 1 || !strings.HasPrefix(h.Skipped[0], "secondary: ")) {
		fail("heal %+v does not say why the secondary's copy was skipped", h)
	}
	if h.Repaired != repair || h.RepairError != "" {
		fail("heal %+v: repaired %v, want %v", h, h.Repaired, repair)
	}

	// d) Repair made the primary whole; without it nothing was written.
	// The fallbacks are never written.
	after := snapshot(t, d.primary())
	if repair {
		if problems := d.problemKeys(t, d.primary()); len(problems) != 0 {
			fail("after repair CheckObjectsAll on the primary reports %v", problems)
		}
		if !sameObjects(after, d.pristine) {
			fail("after repair the primary's objects differ from those written")
		}
	} else if !sameObjects(after, before[0]) {
		fail("the primary changed although repair was off")
	}
	for i, s := range d.sources[1:] {
		if !sameObjects(snapshot(t, s.Bucket), before[i+1]) {
			fail("the %s changed", s.Name)
		}
	}

	// Undo the damage for the next case.
	for i, key := range []string{target, secondaryKey} {
		if key != "" {
			if err := d.sources[i].Bucket.WriteAll(ctx, key, d.pristine[key], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	kind := target[strings.LastIndex(target, "/")+1:]
	if strings.Contains(target, "/"+chunksDir) {
		kind = "chunk"
	}
	how, _, _ := strings.Cut(what, " ")
	labels := []string{kind, how, "from " + wantFrom}
	if secondaryKey != "" && secondaryKey != target {
		labels = append(labels, "another object damaged on the secondary")
	}
	if repair {
		labels = append(labels, "repair")
	}
	return labels
}

// TestRestoreWithoutAnIntactCopy damages one chunk on every source: the
// restore must fail, name the key and every source's problem, return no
// image hash, and write nothing back.
func TestRestoreWithoutAnIntactCopy(t *testing.T) {
	ctx := context.Background()
	d := newDrillChain(t, [3]*blob.Bucket{
		openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true}),
		memblob.OpenBucket(nil),
		openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true}),
	})
	key := ChunkKey(drillDB, drillInc1ID, 1)
	data := d.pristine[key]
	spoilt := slices.Clone(data)
	spoilt[len(spoilt)/2] ^= 0x10
	if err := d.sources[0].Bucket.WriteAll(ctx, key, spoilt, nil); err != nil { // bit rot
		t.Fatal(err)
	}
	if err := d.sources[1].Bucket.Delete(ctx, key); err != nil { // lost
		t.Fatal(err)
	}
	if err := d.sources[2].Bucket.WriteAll(ctx, key, data[:len(data)-1], nil); err != nil { // truncated
		t.Fatal(err)
	}
	before := snapshot(t, d.primary())

	chain, heals, err := ChainFrom(ctx, d.sources, d.keeper, drillDB, drillInc2ID)
	if err != nil || len(heals) != 0 {
		t.Fatalf("ChainFrom: %v, heals %v", err, heals)
	}
	f := createFile(t)
	var healed []Heal
	sum, err := RestoreImage(ctx, d.primary(), chain, f, RestoreOptions{
		Workers: 2, Fallbacks: d.sources[1:], Repair: true, PrimaryName: "primary",
		OnHeal: func(h Heal) { healed = append(healed, h) }, // workers: 2, but only one chunk is damaged
	})
	if err == nil || sum != "" {
		t.Fatalf("restore with no intact copy of %s returned %q, %v", key, sum, err)
	}
	var none *NoIntactCopyError
	if !errors.As(err, &none) || none.Key != key || none.Backup != drillInc1ID || len(none.Problems) != 3 {
		t.Fatalf("error %v (%T) does not name %s and the three sources' problems", err, err, key)
	}
	for _, want := range []string{key, "primary: ", "secondary: ", "tertiary: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrNotFound) || isTransient(err) {
		t.Errorf("error %v is not classified as permanent damage", err)
	}
	if len(healed) != 0 {
		t.Errorf("heals reported: %v", healed)
	}
	if !sameObjects(snapshot(t, d.primary()), before) {
		t.Error("the primary was written although no source had a good copy")
	}

	t.Run("a manifest damaged everywhere names the backup and every source", func(t *testing.T) {
		mkey := ManifestKey(drillDB, drillDiffID)
		for i, s := range d.sources {
			spoilt := slices.Clone(d.pristine[mkey])
			spoilt[100+i] ^= 1
			if err := s.Bucket.WriteAll(ctx, mkey, spoilt, nil); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, s := range d.sources {
				_ = s.Bucket.WriteAll(ctx, mkey, d.pristine[mkey], nil)
			}
		})
		_, _, err := ChainFromWith(ctx, d.sources, d.keeper, drillDB, drillInc2ID, HealOptions{Repair: true})
		if err == nil {
			t.Fatal("ChainFrom succeeded")
		}
		for _, want := range []string{drillInc2ID, drillDiffID, mkey, "primary: ", "secondary: ", "tertiary: "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		wantErrorIs(t, err, ErrCorrupt)
	})
}

// TestTransientErrorsAreNotHealed checks that an error that says nothing
// about the stored copy (here a primary that cannot be read at that key, or
// a cancelled context) fails the read instead of being sent to a fallback.
func TestTransientErrorsAreNotHealed(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "primary")
	primary, err := fileblob.OpenBucket(dir, &fileblob.Options{CreateDir: true, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Close() })
	d := newDrillChain(t, [3]*blob.Bucket{primary, memblob.OpenBucket(nil), memblob.OpenBucket(nil)})
	chain, _, err := ChainFrom(ctx, d.sources, d.keeper, drillDB, drillInc2ID)
	if err != nil {
		t.Fatal(err)
	}
	var heals []Heal
	var mu sync.Mutex
	opts := RestoreOptions{Workers: 2, Fallbacks: d.sources[1:], Repair: true, OnHeal: func(h Heal) {
		mu.Lock()
		heals = append(heals, h)
		mu.Unlock()
	}}

	t.Run("an unreadable chunk", func(t *testing.T) {
		// A symbolic link to itself: stat fails with ELOOP, an I/O error
		// that is neither "not found" nor damage.
		key := ChunkKey(drillDB, drillDiffID, 0)
		path := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Base(path), path); err != nil {
			t.Fatal(err)
		}
		defer func() {
			os.Remove(path)
			os.WriteFile(path, d.pristine[key], 0o644)
		}()
		_, err := RestoreImage(ctx, primary, chain, createFile(t), opts)
		if err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
			t.Fatalf("restore over an unreadable chunk: %v", err)
		}
		if isDamage(err) || len(heals) != 0 {
			t.Fatalf("the I/O error %v was treated as damage (heals %v)", err, heals)
		}
		if _, err := CheckObjectsAll(ctx, primary, d.keeper, drillDB, drillDiffID); err == nil || isDamage(err) {
			t.Fatalf("CheckObjectsAll reported the I/O error as %v, want an error that is not damage", err)
		}
		if _, _, err := ChainFrom(ctx, d.sources[:1], d.keeper, drillDB, drillInc2ID); err != nil {
			t.Fatalf("the chain's manifests are intact: %v", err)
		}
	})

	for _, key := range []string{ManifestKey(drillDB, drillInc1ID), PageIndexKey(drillDB, drillFullID)} {
		t.Run("an unreadable "+key[strings.LastIndex(key, "/")+1:], func(t *testing.T) {
			path := filepath.Join(dir, filepath.FromSlash(key))
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(path), path); err != nil {
				t.Fatal(err)
			}
			defer func() {
				os.Remove(path)
				os.WriteFile(path, d.pristine[key], 0o644)
			}()
			_, heals, err := ChainFromWith(ctx, d.sources, d.keeper, drillDB, drillInc2ID, HealOptions{Repair: true})
			if strings.HasSuffix(key, manifestName) {
				if err == nil || isDamage(err) || len(heals) != 0 {
					t.Fatalf("ChainFrom over an unreadable manifest: %v, heals %v", err, heals)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			heals, err = CheckPageIndexFrom(ctx, d.sources, chain[0], HealOptions{Repair: true})
			if err == nil || isDamage(err) || len(heals) != 0 {
				t.Fatalf("CheckPageIndexFrom over an unreadable page index: %v, heals %v", err, heals)
			}
		})
	}

	t.Run("a cancelled context", func(t *testing.T) {
		// A damaged chunk on the primary would be healed, but the context
		// ends first: the restore reports the cancellation.
		key := ChunkKey(drillDB, drillFullID, 2)
		if err := primary.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		defer primary.WriteAll(ctx, key, d.pristine[key], nil)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := RestoreImage(cctx, primary, chain, createFile(t), opts)
		if !errors.Is(err, context.Canceled) || len(heals) != 0 {
			t.Fatalf("restore with a cancelled context: %v, heals %v", err, heals)
		}
		if _, _, err := ChainFrom(cctx, d.sources, d.keeper, drillDB, drillInc2ID); !errors.Is(err, context.Canceled) {
			t.Fatalf("ChainFrom with a cancelled context: %v", err)
		}
		if exists, _ := primary.Exists(ctx, key); exists {
			t.Fatal("a cancelled restore repaired a chunk")
		}
	})
}

// TestRepairFailureIsReported makes the write-back impossible (a directory
// stands where the chunk's file was, which reads as missing): the restore
// still succeeds from the secondary and the heal says why the primary was
// not repaired.
func TestRepairFailureIsReported(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "primary")
	primary, err := fileblob.OpenBucket(dir, &fileblob.Options{CreateDir: true, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Close() })
	d := newDrillChain(t, [3]*blob.Bucket{primary, memblob.OpenBucket(nil), memblob.OpenBucket(nil)})
	key := ChunkKey(drillDB, drillInc2ID, 0)
	path := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, sum, heals, err := d.restoreAndVerify(t, true)
	if err != nil || sum != d.final.ImageDigest() {
		t.Fatalf("restore: %s, %v", sum, err)
	}
	if len(heals) != 1 || heals[0].Key != key || heals[0].Repaired || heals[0].RepairError == "" {
		t.Fatalf("heals %+v, want one for %s with a repair error", heals, key)
	}
	if !strings.Contains(heals[0].String(), "not repaired") {
		t.Errorf("heal reads %q", heals[0])
	}
}

// TestChainFromKeyEnvelopeLostEverywhere: a restore needs only the
// manifest, which carries an authenticated copy of the key envelope, so a
// key.json missing from every source does not stop it; CheckObjectsAll
// reports it.
func TestChainFromKeyEnvelopeLostEverywhere(t *testing.T) {
	ctx := context.Background()
	d := newDrillChain(t, [3]*blob.Bucket{memblob.OpenBucket(nil), memblob.OpenBucket(nil), memblob.OpenBucket(nil)})
	key := KeyEnvelopeKey(drillDB, drillInc1ID)
	for _, s := range d.sources {
		if err := s.Bucket.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	chain, heals, err := ChainFromWith(ctx, d.sources, d.keeper, drillDB, drillInc2ID, HealOptions{Repair: true})
	if err != nil || len(chain) != 4 || len(heals) != 0 {
		t.Fatalf("ChainFrom: %d layers, heals %v, %v", len(chain), heals, err)
	}
	for _, l := range chain {
		if l.Source != "primary" {
			t.Errorf("layer %s read from %q", l.Manifest().BackupID, l.Source)
		}
	}
	problems, err := CheckObjectsAll(ctx, d.primary(), d.keeper, drillDB, drillInc1ID)
	if err != nil || len(problems) != 1 || problems[0].Key != key || !errors.Is(problems[0].Err, ErrNotFound) {
		t.Fatalf("CheckObjectsAll: %v, %v", problems, err)
	}
}

// TestCheckObjectsAllReportsEveryProblem damages several objects of one
// backup at once; CheckObjectsAll names each, where CheckObjects stops at
// the first.
func TestCheckObjectsAllReportsEveryProblem(t *testing.T) {
	ctx := context.Background()
	d := newDrillChain(t, [3]*blob.Bucket{memblob.OpenBucket(nil), memblob.OpenBucket(nil), memblob.OpenBucket(nil)})
	b := d.primary()
	if n := len(d.final.Chunks); n < 3 {
		t.Fatalf("the newest backup has %d chunks, the test needs 3", n)
	}
	want := []string{
		KeyEnvelopeKey(drillDB, drillInc2ID),
		ChunkKey(drillDB, drillInc2ID, 0),
		ChunkKey(drillDB, drillInc2ID, 2),
		PageIndexKey(drillDB, drillInc2ID),
	}
	for i, key := range want {
		switch i % 2 {
		case 0:
			if err := b.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := b.WriteAll(ctx, key, d.pristine[key][:10], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	problems, err := CheckObjectsAll(ctx, b, d.keeper, drillDB, drillInc2ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("CheckObjectsAll reports %v, want %v", got, want)
	}
	if err := CheckObjects(ctx, b, d.keeper, drillDB, drillInc2ID); err == nil {
		t.Fatal("CheckObjects found nothing")
	}

	// With the manifest gone too, the objects it lists cannot be checked;
	// the manifest and the (missing) key envelope are reported.
	if err := b.Delete(ctx, ManifestKey(drillDB, drillInc2ID)); err != nil {
		t.Fatal(err)
	}
	problems, err = CheckObjectsAll(ctx, b, d.keeper, drillDB, drillInc2ID)
	if err != nil || len(problems) != 2 || problems[0].Key != ManifestKey(drillDB, drillInc2ID) || problems[1].Key != want[0] {
		t.Fatalf("CheckObjectsAll without a manifest: %v, %v", problems, err)
	}
}

// TestManifestFormIsChecked: damage outside the MAC-covered body (a field
// name's case, the MAC's hex case, spacing) still authenticates, so the
// healing readers also require the exact written form.
func TestManifestFormIsChecked(t *testing.T) {
	ctx := context.Background()
	d := newDrillChain(t, [3]*blob.Bucket{memblob.OpenBucket(nil), memblob.OpenBucket(nil), memblob.OpenBucket(nil)})
	key := ManifestKey(drillDB, drillInc2ID)
	raw := d.pristine[key]
	macAt := strings.LastIndex(string(raw), `"mac": "`) + len(`"mac": "`)
	letter := macAt + strings.IndexAny(string(raw[macAt:]), "abcdef")
	for name, alter := range map[string]func([]byte){
		"field name case": func(b []byte) { b[strings.Index(string(b), `"body"`)+1] = 'B' },
		"MAC hex case":    func(b []byte) { b[letter] -= 'a' - 'A' },
		"spacing":         func(b []byte) { b[1] = ' ' }, // the newline after "{"
	} {
		t.Run(name, func(t *testing.T) {
			spoilt := slices.Clone(raw)
			alter(spoilt)
			if err := d.primary().WriteAll(ctx, key, spoilt, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := Chain(ctx, d.primary(), d.keeper, drillDB, drillInc2ID); err != nil {
				t.Fatalf("the altered manifest no longer authenticates (%v): this test needs damage the MAC does not see", err)
			}
			problems, err := CheckObjectsAll(ctx, d.primary(), d.keeper, drillDB, drillInc2ID)
			if err != nil || len(problems) != 1 || problems[0].Key != key {
				t.Fatalf("CheckObjectsAll: %v, %v", problems, err)
			}
			chain, heals, err := ChainFromWith(ctx, d.sources, d.keeper, drillDB, drillInc2ID, HealOptions{Repair: true})
			if err != nil || len(heals) != 1 || heals[0].Key != key || !heals[0].Repaired || chain[3].Source != "secondary" {
				t.Fatalf("ChainFrom: heals %v, %v", heals, err)
			}
			if got, _ := d.primary().ReadAll(ctx, key); string(got) != string(raw) {
				t.Fatal("the manifest was not repaired")
			}
		})
	}
}

// TestManifestIsRepairedLast: a manifest is written back to the primary only
// over a complete backup, as the backup itself writes it last. Here the
// primary lost a manifest and one of that backup's chunks: the first
// repairing restore puts the chunk back but not the manifest, the next one
// the manifest too.
func TestManifestIsRepairedLast(t *testing.T) {
	ctx := context.Background()
	d := newDrillChain(t, [3]*blob.Bucket{memblob.OpenBucket(nil), memblob.OpenBucket(nil), memblob.OpenBucket(nil)})
	manifest, chunk := ManifestKey(drillDB, drillInc1ID), ChunkKey(drillDB, drillInc1ID, 1)
	for _, key := range []string{manifest, chunk} {
		if err := d.primary().Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	_, _, heals, err := d.restoreAndVerify(t, true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Heal{}
	for _, h := range heals {
		got[h.Key] = h
	}
	if h := got[manifest]; h.Repaired || !strings.Contains(h.RepairError, chunk) {
		t.Fatalf("manifest heal %+v: want it not repaired because of %s", h, chunk)
	}
	if h := got[chunk]; !h.Repaired || len(heals) != 2 {
		t.Fatalf("heals %v: want the chunk repaired", heals)
	}
	if exists, _ := d.primary().Exists(ctx, manifest); exists {
		t.Fatal("the manifest was written over an incomplete backup")
	}
	_, _, heals, err = d.restoreAndVerify(t, true)
	if err != nil || len(heals) != 1 || heals[0].Key != manifest || !heals[0].Repaired {
		t.Fatalf("second restore: heals %v, %v", heals, err)
	}
	if problems := d.problemKeys(t, d.primary()); len(problems) != 0 {
		t.Fatalf("the primary still has problems: %v", problems)
	}
}
