package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// vpageSize is the page size of versioned test images: small, so that
// images spanning several page index segments stay cheap.
const vpageSize = 512

// versions is a test image given by the version of each page: page n of
// version v has contents of its own (vpage), so an image of 150000 pages
// costs 600 KB of memory instead of its bytes.
type versions []uint32

// vpage returns the contents of page n in version v.
func vpage(n int, v uint32) []byte {
	p := make([]byte, vpageSize)
	for i := 0; i < vpageSize; i += 8 {
		binary.BigEndian.PutUint32(p[i:], uint32(n))
		binary.BigEndian.PutUint32(p[i+4:], v)
	}
	return p
}

// hash is HashPage of page n of img.
func (img versions) hash(n int) PageHash { return HashPage(vpage(n, img[n-1])) }

// differs reports whether page n of img differs from parent's, or parent
// has no page n: what a sparse index lists.
func differs(parent, img versions, n int) bool {
	return n > len(parent) || parent[n-1] != img[n-1]
}

// indexSpec describes the page index of one test backup.
type indexSpec struct {
	id       string
	typ      BackupType
	parentID string
	parent   versions // the parent's image; nil for a full backup
	img      versions
	full     bool // a full index although there is a parent (as before sparse indexes)
}

// writeIndexLayer stores the page index of a backup of spec.img the way
// the backup activity does — full for a full backup, else sparse against
// spec.parent — and returns the backup as a layer of a chain.
func writeIndexLayer(t testing.TB, bucket *blob.Bucket, key *DataKey, s indexSpec) Layer {
	t.Helper()
	ctx := context.Background()
	sparse := s.typ != BackupFull && !s.full
	newIndex := NewPageIndexWriter
	if sparse {
		newIndex = NewSparsePageIndexWriter
	}
	w, err := newIndex(ctx, bucket, key, "finance", s.id, vpageSize, uint64(len(s.img)))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= len(s.img); n++ {
		if sparse && !differs(s.parent, s.img, n) {
			err = w.AddUnchanged()
		} else {
			err = w.Add(s.img.hash(n))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	size, sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{
		BackupID: s.id, Type: s.typ, Parent: s.parentID, Database: DatabaseIdentity{Name: "finance"},
		PageSize: vpageSize, PageCount: int64(len(s.img)),
		PageIndex: &ObjectRef{StoredBytes: size, StoredSHA256: sum},
	}
	return Layer{Backup: &Backup{Manifest: m}, Key: key}
}

// readChainIndex reads the merged page index of chain's last backup and
// returns the hashes read before the first error.
func readChainIndex(bucket *blob.Bucket, chain []Layer) ([]PageHash, error) {
	r, err := OpenChainPageIndex(context.Background(), bucket, chain)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Count != uint64(chain[len(chain)-1].Manifest().PageCount) || r.PageSize != chain[len(chain)-1].Manifest().PageSize {
		return nil, fmt.Errorf("reader describes %d pages of %d bytes", r.Count, r.PageSize)
	}
	var hashes []PageHash
	for {
		h, ok, err := r.Next()
		if err != nil {
			return hashes, err
		}
		if !ok {
			return hashes, nil
		}
		hashes = append(hashes, h)
	}
}

// wantHashesOf fails unless got are the hashes of the first len(got) pages
// of img (all of them when complete is set).
func wantHashesOf(t *testing.T, got []PageHash, img versions, complete bool) {
	t.Helper()
	if len(got) > len(img) || complete && len(got) != len(img) {
		t.Fatalf("read %d hashes of an image of %d pages", len(got), len(img))
	}
	for i, h := range got {
		if h != img.hash(i+1) {
			t.Fatalf("the hash of page %d is %x, HashPage gives %x", i+1, h, img.hash(i+1))
		}
	}
}

// sparseIndexBytes is the size of the sparse page index of img against
// parent: the header, and per segment its length, nonce, GCM tag, bitmap
// and one hash per listed page.
func sparseIndexBytes(parent, img versions) int64 {
	size := int64(pageIndexHdrSize)
	for start := 0; start < len(img); start += segmentPages {
		pages := min(len(img)-start, segmentPages)
		size += int64(4 + chunkNonceSize + gcmTagSize + bitmapBytes(pages))
		for n := start + 1; n <= start+pages; n++ {
			if differs(parent, img, n) {
				size += pageHashSize
			}
		}
	}
	return size
}

// fullIndexBytes is the size of the full page index of a pages-page image.
func fullIndexBytes(pages int) int64 {
	segments := (pages + segmentPages - 1) / segmentPages
	return int64(pageIndexHdrSize + segments*(4+chunkNonceSize+gcmTagSize) + pages*pageHashSize)
}

// vbackupID is a well-formed backup id for the i-th backup of a test.
func vbackupID(i int) string {
	return fmt.Sprintf("20260301T%02d%02d00Z-%08x", i/60, i%60, i)
}

// TestChainPageIndexMergesRandomChains writes random chains — full backups,
// differentials and incrementals; pages unchanged, changed, changed back
// and appended; images growing and shrinking across segment boundaries —
// and checks that the merged index of every backup yields exactly HashPage
// of every page of its image, and that every sparse index has the size of
// its header, bitmaps and changed pages' hashes.
func TestChainPageIndexMergesRandomChains(t *testing.T) {
	keeper := newTestKeeper(t)
	sizes := []int{1, 7, 8, 9, 1000, segmentPages - 1, segmentPages, segmentPages + 1, 2*segmentPages + 77}
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5ba55e))
			bucket := memblob.OpenBucket(nil)
			defer bucket.Close()
			type backup struct {
				layer  Layer
				img    versions
				parent int // index of the parent in backups; -1 for a full backup
			}
			var backups []backup
			cur := make(versions, sizes[rng.IntN(len(sizes))])
			for i := range cur {
				cur[i] = 1
			}
			lastFull := -1
			for step := 0; step < 9; step++ {
				v := uint32(step + 2)
				if step > 0 {
					// Change some pages (a few, or many), change some back to
					// their first version, then maybe grow or shrink.
					k := []int{0, 1, 3, len(cur) / 10, len(cur) * 6 / 10}[rng.IntN(5)]
					for range k {
						cur[rng.IntN(len(cur))] = v
					}
					for range rng.IntN(3) {
						cur[rng.IntN(len(cur))] = 1
					}
					switch rng.IntN(4) {
					case 0:
						size := sizes[rng.IntN(len(sizes))]
						for len(cur) < size {
							cur = append(cur, v)
						}
						cur = cur[:size]
					case 1:
						cur = cur[:max(1, len(cur)-rng.IntN(len(cur)))]
					case 2:
						for range 1 + rng.IntN(20) {
							cur = append(cur, v)
						}
					}
				}
				typ := []BackupType{BackupIncremental, BackupIncremental, BackupDifferential, BackupFull}[rng.IntN(4)]
				parent := len(backups) - 1
				if typ == BackupDifferential {
					parent = lastFull
				}
				if step == 0 {
					typ, parent = BackupFull, -1
				}
				if typ == BackupFull {
					parent = -1
				}
				s := indexSpec{id: vbackupID(step), typ: typ, img: slices.Clone(cur)}
				if parent >= 0 {
					s.parentID, s.parent = backups[parent].layer.Manifest().BackupID, backups[parent].img
				}
				l := writeIndexLayer(t, bucket, newTestDataKeyFor(t, keeper), s)
				if typ == BackupFull {
					lastFull = len(backups)
					if got, want := l.Manifest().PageIndex.StoredBytes, fullIndexBytes(len(s.img)); got != want {
						t.Errorf("the full index of %d pages has %d bytes, want %d", len(s.img), got, want)
					}
				} else if got, want := l.Manifest().PageIndex.StoredBytes, sparseIndexBytes(s.parent, s.img); got != want {
					t.Errorf("the sparse index of %s has %d bytes, want %d", typ, got, want)
				}
				backups = append(backups, backup{layer: l, img: s.img, parent: parent})
			}
			var shape []string
			for i, b := range backups {
				var chain []Layer
				for j := i; j >= 0; j = backups[j].parent {
					chain = append([]Layer{backups[j].layer}, chain...)
				}
				shape = append(shape, fmt.Sprintf("%s(%d pages, chain %d)", b.layer.Manifest().Type, len(b.img), len(chain)))
				hashes, err := readChainIndex(bucket, chain)
				if err != nil {
					t.Fatalf("backup %d (%s): %v", i, b.layer.Manifest().Type, err)
				}
				wantHashesOf(t, hashes, b.img, true)
			}
			t.Log(strings.Join(shape, ", "))
		})
	}
}

// newTestDataKeyFor is newTestDataKey without the envelope.
func newTestDataKeyFor(t testing.TB, keeper SecretsKeeper) *DataKey {
	key, _ := newTestDataKey(t, keeper)
	return key
}

// TestSparsePageIndexSize measures the page index of an incremental of a
// 1 GiB database (274144 pages of 4 KiB; here pages are smaller, which the
// index does not see) in both formats.
func TestSparsePageIndexSize(t *testing.T) {
	keeper := newTestKeeper(t)
	key := newTestDataKeyFor(t, keeper)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	const pages = 4*segmentPages + 12000
	base := make(versions, pages)
	for i := range base {
		base[i] = 1
	}
	full := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(0), typ: BackupFull, img: base})
	fullBytes := full.Manifest().PageIndex.StoredBytes
	if fullBytes != fullIndexBytes(pages) {
		t.Fatalf("full index of %d pages has %d bytes, want %d", pages, fullBytes, fullIndexBytes(pages))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, share := range []float64{0.001, 0.01, 0.24} {
		img := slices.Clone(base)
		for n := range img {
			if rng.Float64() < share {
				img[n] = 2
			}
		}
		inc := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(1 + i), typ: BackupIncremental, parentID: vbackupID(0), parent: base, img: img})
		got := inc.Manifest().PageIndex.StoredBytes
		if want := sparseIndexBytes(base, img); got != want {
			t.Fatalf("%.1f%% changed: the sparse index has %d bytes, want %d", share*100, got, want)
		}
		// A bitmap costs 1/128 of the full index; each changed page 16 bytes.
		if limit := int64(float64(fullBytes) * (share + 1.0/128 + 0.002)); got > limit {
			t.Errorf("%.1f%% changed: the sparse index has %d bytes, more than %d", share*100, got, limit)
		}
		t.Logf("%d pages, %.1f%% changed: full index %d bytes (%.2f MiB), sparse %d bytes (%.2f MiB), %.1f%% of it; %.2f MiB saved",
			pages, share*100, fullBytes, float64(fullBytes)/(1<<20), got, float64(got)/(1<<20), 100*float64(got)/float64(fullBytes), float64(fullBytes-got)/(1<<20))
		hashes, err := readChainIndex(bucket, []Layer{full, inc})
		if err != nil {
			t.Fatal(err)
		}
		wantHashesOf(t, hashes, img, true)
	}
}

// splitIndex cuts a stored page index into its header and its segments,
// each with its length prefix.
func splitIndex(t *testing.T, obj []byte) ([]byte, [][]byte) {
	t.Helper()
	hdr, rest := obj[:pageIndexHdrSize], obj[pageIndexHdrSize:]
	var segs [][]byte
	for len(rest) > 0 {
		n := 4 + int(binary.BigEndian.Uint32(rest))
		segs = append(segs, rest[:n])
		rest = rest[n:]
	}
	return hdr, segs
}

// withIndex stores data as the page index of chain[i], with a manifest
// that records data's hash (so that only the index's own checks can catch
// what was altered), runs fn with the changed chain, and puts the original
// back.
func withIndex(t *testing.T, bucket *blob.Bucket, chain []Layer, i int, data []byte, fn func([]Layer)) {
	t.Helper()
	ctx := context.Background()
	key := PageIndexKey("finance", chain[i].Manifest().BackupID)
	original, err := bucket.ReadAll(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.WriteAll(ctx, key, data, nil); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := bucket.WriteAll(ctx, key, original, nil); err != nil {
			t.Fatal(err)
		}
	}()
	sum := sha256.Sum256(data)
	m := *chain[i].Manifest()
	m.PageIndex = &ObjectRef{StoredBytes: int64(len(data)), StoredSHA256: hex.EncodeToString(sum[:])}
	changed := slices.Clone(chain)
	changed[i] = Layer{Backup: &Backup{Manifest: &m}, Key: chain[i].Key}
	fn(changed)
}

// readObject reads the page index of l.
func readObject(t *testing.T, bucket *blob.Bucket, l Layer) []byte {
	t.Helper()
	obj, err := bucket.ReadAll(context.Background(), PageIndexKey("finance", l.Manifest().BackupID))
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// sealSparse builds a sparse page index of one segment with the given
// plaintext, sealed as the writer seals it: for indexes no writer makes.
func sealSparse(key *DataKey, id string, pages uint64, plain []byte) []byte {
	obj := append([]byte(sparsePageIndexMagic), make([]byte, 12)...)
	binary.BigEndian.PutUint32(obj[4:], vpageSize)
	binary.BigEndian.PutUint64(obj[8:], pages)
	nonce := make([]byte, chunkNonceSize)
	sealed := key.chunkAEAD.Seal(nonce, nonce, plain, pageIndexAAD(true, id, 0, true))
	obj = binary.BigEndian.AppendUint32(obj, uint32(len(sealed)))
	return append(obj, sealed...)
}

// TestSparsePageIndexTampering alters sparse indexes and the indexes they
// merge with in every way that matters — bits flipped anywhere, cut
// anywhere, segments swapped between backups, between formats or within
// one index, a format relabelled, bitmaps inconsistent with the hashes or
// with the parent — and checks that reading fails with ErrCorrupt and that
// every hash returned before the error is right.
func TestSparsePageIndexTampering(t *testing.T) {
	ctx := context.Background()
	keeper := newTestKeeper(t)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	key := newTestDataKeyFor(t, keeper)

	// A small chain: full F of 20 pages, incremental A changing two pages,
	// incremental B changing three and adding five.
	f := make(versions, 20)
	for i := range f {
		f[i] = 1
	}
	a := slices.Clone(f)
	a[2], a[8] = 2, 2
	b := append(slices.Clone(a), 3, 3, 3, 3, 3)
	b[0], b[8], b[19] = 3, 1, 3
	small := []Layer{
		writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(0), typ: BackupFull, img: f}),
		writeIndexLayer(t, bucket, newTestDataKeyFor(t, keeper), indexSpec{id: vbackupID(1), typ: BackupIncremental, parentID: vbackupID(0), parent: f, img: a}),
		writeIndexLayer(t, bucket, newTestDataKeyFor(t, keeper), indexSpec{id: vbackupID(2), typ: BackupIncremental, parentID: vbackupID(1), parent: a, img: b}),
	}
	hashes, err := readChainIndex(bucket, small)
	if err != nil {
		t.Fatal(err)
	}
	wantHashesOf(t, hashes, b, true)

	// wantCorrupt reads chain's merged index: it must fail with ErrCorrupt
	// after returning only right hashes of img.
	wantCorrupt := func(t *testing.T, what string, chain []Layer, img versions) {
		t.Helper()
		hashes, err := readChainIndex(bucket, chain)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: got %v after %d hashes, want ErrCorrupt", what, err, len(hashes))
		}
		wantHashesOf(t, hashes, img, false)
	}

	t.Run("a bit flipped anywhere in the sparse index or the one below it fails", func(t *testing.T) {
		for _, i := range []int{1, 2} {
			obj := readObject(t, bucket, small[i])
			for at := range obj {
				for _, bit := range []byte{0x01, 0x80} {
					altered := bytes.Clone(obj)
					altered[at] ^= bit
					withIndex(t, bucket, small, i, altered, func(chain []Layer) {
						wantCorrupt(t, fmt.Sprintf("index %d, byte %d ^ %#x", i, at, bit), chain, b)
					})
				}
			}
		}
	})

	t.Run("a sparse index cut anywhere fails", func(t *testing.T) {
		for _, i := range []int{1, 2} {
			obj := readObject(t, bucket, small[i])
			for n := range len(obj) {
				withIndex(t, bucket, small, i, obj[:n], func(chain []Layer) {
					wantCorrupt(t, fmt.Sprintf("index %d cut to %d bytes", i, n), chain, b)
				})
			}
			withIndex(t, bucket, small, i, append(bytes.Clone(obj), 0), func(chain []Layer) {
				wantCorrupt(t, fmt.Sprintf("index %d with a byte after its end", i), chain, b)
			})
		}
	})

	t.Run("pages of an older index beyond the image are still checked", func(t *testing.T) {
		// E shrinks F's 20 pages to 15: F's last pages and its end are not
		// needed for E's hashes, but F's object must still be whole.
		e := f[:15]
		shrunk := []Layer{small[0], writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(4), typ: BackupIncremental, parentID: vbackupID(0), parent: f, img: e})}
		if hashes, err := readChainIndex(bucket, shrunk); err != nil {
			t.Fatal(err)
		} else {
			wantHashesOf(t, hashes, e, true)
		}
		obj := readObject(t, bucket, small[0])
		withIndex(t, bucket, shrunk, 0, append(bytes.Clone(obj), 0), func(chain []Layer) {
			wantCorrupt(t, "F with a byte after its end", chain, e)
		})
		for at := range obj {
			altered := bytes.Clone(obj)
			altered[at] ^= 0x20
			withIndex(t, bucket, shrunk, 0, altered, func(chain []Layer) {
				wantCorrupt(t, fmt.Sprintf("F's byte %d altered", at), chain, e)
			})
		}
		m := *small[0].Manifest()
		m.PageIndex = &ObjectRef{StoredBytes: m.PageIndex.StoredBytes, StoredSHA256: strings.Repeat("00", 32)}
		wantCorrupt(t, "F's manifest records another hash", []Layer{{Backup: &Backup{Manifest: &m}, Key: key}, shrunk[1]}, e)
	})

	t.Run("an index whose manifest records another hash fails", func(t *testing.T) {
		m := *small[1].Manifest()
		m.PageIndex = &ObjectRef{StoredBytes: m.PageIndex.StoredBytes, StoredSHA256: strings.Repeat("00", 32)}
		chain := slices.Clone(small)
		chain[1] = Layer{Backup: &Backup{Manifest: &m}, Key: small[1].Key}
		wantCorrupt(t, "A's manifest records another hash", chain, b)
	})

	t.Run("a sparse index read with another backup's key fails", func(t *testing.T) {
		chain := slices.Clone(small)
		chain[2] = Layer{Backup: small[2].Backup, Key: small[1].Key}
		wantCorrupt(t, "B read with A's key", chain, b)
	})

	t.Run("a sparse index copied from another backup fails", func(t *testing.T) {
		// A differential on F with the same shape as B, under its own id.
		d := writeIndexLayer(t, bucket, small[2].Key, indexSpec{id: vbackupID(3), typ: BackupDifferential, parentID: vbackupID(0), parent: f, img: b})
		withIndex(t, bucket, small, 2, readObject(t, bucket, d), func(chain []Layer) {
			wantCorrupt(t, "B holding D's index", chain, b)
		})
	})

	// A larger chain of three segments: full G, incremental X, incremental Y
	// changing pages in every segment.
	g := make(versions, 2*segmentPages+10)
	for i := range g {
		g[i] = 1
	}
	x := slices.Clone(g)
	y := slices.Clone(g)
	for n := 5; n <= len(g); n += 1000 {
		x[n-1] = 2
		y[n+1] = 3
	}
	bigKey := newTestDataKeyFor(t, keeper)
	gl := writeIndexLayer(t, bucket, bigKey, indexSpec{id: vbackupID(10), typ: BackupFull, img: g})
	xl := writeIndexLayer(t, bucket, bigKey, indexSpec{id: vbackupID(11), typ: BackupIncremental, parentID: vbackupID(10), parent: g, img: x})
	// Y's index written the old way (every page), kept for the swaps below,
	// then the sparse one that stays.
	yFull := readObject(t, bucket, writeIndexLayer(t, bucket, bigKey, indexSpec{id: vbackupID(12), typ: BackupIncremental, parentID: vbackupID(11), img: y, full: true}))
	yl := writeIndexLayer(t, bucket, bigKey, indexSpec{id: vbackupID(12), typ: BackupIncremental, parentID: vbackupID(11), parent: x, img: y})
	big := []Layer{gl, xl, yl}
	if hashes, err := readChainIndex(bucket, big); err != nil {
		t.Fatal(err)
	} else {
		wantHashesOf(t, hashes, y, true)
	}
	xHdr, xSegs := splitIndex(t, readObject(t, bucket, xl))
	yHdr, ySegs := splitIndex(t, readObject(t, bucket, yl))
	_, yFullSegs := splitIndex(t, yFull)
	if len(xSegs) != 3 || len(ySegs) != 3 || len(yFullSegs) != 3 {
		t.Fatalf("test setup: %d, %d and %d segments, want 3", len(xSegs), len(ySegs), len(yFullSegs))
	}
	join := func(hdr []byte, segs ...[]byte) []byte {
		return bytes.Join(append([][]byte{hdr}, segs...), nil)
	}

	t.Run("a segment swapped in from another backup fails", func(t *testing.T) {
		withIndex(t, bucket, big, 2, join(yHdr, ySegs[0], xSegs[1], ySegs[2]), func(chain []Layer) {
			wantCorrupt(t, "X's segment 1 in Y", chain, y)
		})
	})

	t.Run("segments swapped within an index fail", func(t *testing.T) {
		withIndex(t, bucket, big, 1, join(xHdr, xSegs[1], xSegs[0], xSegs[2]), func(chain []Layer) {
			wantCorrupt(t, "X's first two segments swapped", chain, y)
		})
		withIndex(t, bucket, big, 2, join(yHdr, ySegs[0], ySegs[2]), func(chain []Layer) {
			wantCorrupt(t, "Y without its middle segment", chain, y)
		})
	})

	t.Run("a segment of the full format in a sparse index of the same backup fails", func(t *testing.T) {
		withIndex(t, bucket, big, 2, join(yHdr, ySegs[0], yFullSegs[1], ySegs[2]), func(chain []Layer) {
			wantCorrupt(t, "a full segment in Y's sparse index", chain, y)
		})
	})

	t.Run("an index relabelled to the other format fails", func(t *testing.T) {
		relabel := func(obj []byte, magic string) []byte {
			out := bytes.Clone(obj)
			copy(out, magic)
			return out
		}
		withIndex(t, bucket, big, 2, relabel(readObject(t, bucket, yl), pageIndexMagic), func(chain []Layer) {
			wantCorrupt(t, "Y's sparse index labelled full", chain, y)
		})
		withIndex(t, bucket, big, 2, relabel(yFull, sparsePageIndexMagic), func(chain []Layer) {
			wantCorrupt(t, "Y's full index labelled sparse", chain, y)
		})
		withIndex(t, bucket, big, 0, relabel(readObject(t, bucket, gl), sparsePageIndexMagic), func(chain []Layer) {
			wantCorrupt(t, "G's full index labelled sparse", chain, y)
		})
	})

	t.Run("an index that would parse in the other format fails by its additional data", func(t *testing.T) {
		// 128 pages: a full segment (128 hashes, 2048 bytes) is exactly as
		// long as a sparse one listing 127 pages (a 16-byte bitmap and 127
		// hashes), so only the additional data tells the formats apart.
		p := make(versions, 128)
		q := make(versions, 128)
		for i := range p {
			p[i], q[i] = 1, 2
		}
		q[127] = 1
		pl := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(50), typ: BackupFull, img: p})
		ql := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(51), typ: BackupIncremental, parentID: vbackupID(50), parent: p, img: q})
		chain := []Layer{pl, ql}
		sparse := readObject(t, bucket, ql)
		if len(sparse) != pageIndexHdrSize+4+chunkNonceSize+gcmTagSize+128*pageHashSize {
			t.Fatalf("test setup: the sparse index has %d bytes", len(sparse))
		}
		relabelled := bytes.Clone(sparse)
		copy(relabelled, pageIndexMagic)
		withIndex(t, bucket, chain, 1, relabelled, func(chain []Layer) {
			wantCorrupt(t, "Q's sparse index labelled full", chain, q)
		})
		// A full index of Q whose first hash reads as a bitmap of 127 pages.
		w, err := NewPageIndexWriter(ctx, bucket, key, "finance", vbackupID(51), vpageSize, 128)
		if err != nil {
			t.Fatal(err)
		}
		first := PageHash(bytes.Repeat([]byte{0xff}, pageHashSize))
		first[15] = 0x7f
		for n := 1; n <= 128; n++ {
			h := q.hash(n)
			if n == 1 {
				h = first
			}
			if err := w.Add(h); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		relabelled = readObject(t, bucket, ql)
		copy(relabelled, sparsePageIndexMagic)
		withIndex(t, bucket, chain, 1, relabelled, func(chain []Layer) {
			hashes, err := readChainIndex(bucket, chain)
			if !errors.Is(err, ErrCorrupt) || len(hashes) != 0 {
				t.Fatalf("a full index labelled sparse: %d hashes, %v; want ErrCorrupt", len(hashes), err)
			}
		})
	})

	t.Run("a full backup with a sparse index fails", func(t *testing.T) {
		// X's manifest made to say full: its index is sparse.
		m := *xl.Manifest()
		m.Type, m.Parent = BackupFull, ""
		_, err := OpenPageIndex(ctx, bucket, bigKey, &m)
		wantErrorIs(t, err, ErrCorrupt)
		_, err = OpenChainPageIndex(ctx, bucket, []Layer{{Backup: &Backup{Manifest: &m}, Key: bigKey}})
		wantErrorIs(t, err, ErrCorrupt)
	})

	t.Run("a bitmap marking pages beyond the last, or disagreeing with its hashes, fails", func(t *testing.T) {
		// Ten pages: a bitmap of two bytes; page 11 does not exist.
		parent := f[:10]
		l := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(20), typ: BackupFull, img: parent})
		child := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(21), typ: BackupIncremental, parentID: vbackupID(20), parent: parent, img: parent})
		hash := parent.hash(1)
		for what, plain := range map[string][]byte{
			"a bit beyond the last page":     append([]byte{0x01, 0x04}, bytes.Repeat(hash[:], 2)...),
			"fewer hashes than bits":         append([]byte{0x03, 0x00}, hash[:]...),
			"more hashes than bits":          append([]byte{0x01, 0x00}, bytes.Repeat(hash[:], 2)...),
			"a bitmap one byte short":        {0x00},
			"hashes that are not whole":      append([]byte{0x01, 0x00}, hash[:15]...),
			"a bitmap of ten pages, all set": append([]byte{0xff, 0x03}, bytes.Repeat(hash[:], 10)...), // valid: the control
		} {
			withIndex(t, bucket, []Layer{l, child}, 1, sealSparse(key, vbackupID(21), 10, plain), func(chain []Layer) {
				hashes, err := readChainIndex(bucket, chain)
				if strings.HasSuffix(what, "all set") {
					if err != nil || len(hashes) != 10 || hashes[9] != hash {
						t.Fatalf("%s: %d hashes, %v", what, len(hashes), err)
					}
					return
				}
				if !errors.Is(err, ErrCorrupt) || len(hashes) != 0 {
					t.Fatalf("%s: %d hashes, %v; want ErrCorrupt", what, len(hashes), err)
				}
			})
		}
	})

	t.Run("a page marked unchanged that its parent does not have fails", func(t *testing.T) {
		// C claims 22 pages unchanged since F, which has 20.
		c := append(slices.Clone(f), 1, 1)
		cl := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(30), typ: BackupIncremental, parentID: vbackupID(0), parent: c, img: c})
		wantCorrupt(t, "C", []Layer{small[0], cl}, c)
		hashes, _ := readChainIndex(bucket, []Layer{small[0], cl})
		if len(hashes) != 20 {
			t.Fatalf("read %d hashes before the error, want F's 20", len(hashes))
		}
		// And after a shrink: E (15 pages) then H (20 pages, pages 16–20
		// marked unchanged): F's pages 16–20 are not E's.
		e := f[:15]
		el := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(31), typ: BackupIncremental, parentID: vbackupID(0), parent: f, img: e})
		hl := writeIndexLayer(t, bucket, key, indexSpec{id: vbackupID(32), typ: BackupIncremental, parentID: vbackupID(31), parent: f, img: f})
		wantCorrupt(t, "H", []Layer{small[0], el, hl}, f)
	})

	t.Run("a sparse index alone, or a chain that does not reach a full index, is refused", func(t *testing.T) {
		_, err := OpenPageIndex(ctx, bucket, small[2].Key, small[2].Manifest())
		wantErrorIs(t, err, ErrBadInput)
		if !strings.Contains(err.Error(), "chain") {
			t.Errorf("error %q does not say that the index needs its chain", err)
		}
		_, err = OpenChainPageIndex(ctx, bucket, small[1:])
		wantErrorIs(t, err, ErrBadInput)
		_, err = OpenChainPageIndex(ctx, bucket, []Layer{small[0], small[2]})
		wantErrorIs(t, err, ErrBadInput)
		_, err = OpenChainPageIndex(ctx, bucket, nil)
		wantErrorIs(t, err, ErrBadInput)
	})
}

// TestChainPageIndexMixedFormats builds a chain with an incremental written
// before sparse indexes (a full index) between sparse ones, with the
// backups' real objects, and reads every backup's hashes, restores and
// compares, and checks that the merge stops at the full index.
func TestChainPageIndexMixedFormats(t *testing.T) {
	for _, kind := range bucketKinds {
		t.Run("on "+kind.name, func(t *testing.T) { testChainPageIndexMixedFormats(t, kind.open(t)) })
	}
}

func testChainPageIndexMixedFormats(t *testing.T, bucket *blob.Bucket) {
	ctx := context.Background()
	keeper := newTestKeeper(t)
	const database = "finance"
	v1 := newTestImage(300, 1024, "v1")
	v2 := v1.clone() // sparse: 3 pages changed, 20 added
	for _, n := range []int{2, 150, 300} {
		v2.setPage(n, "v2")
	}
	v2.resize(320, "v2")
	v3 := v2.clone() // the old full format: 2 changed, shrunk
	v3.setPage(10, "v3")
	v3.setPage(151, "v3")
	v3.resize(260, "v3")
	v4 := v3.clone() // sparse: 1 changed, grown past the full backup's size
	v4.setPage(2, "v4")
	v4.resize(340, "v4")
	v5 := v4.clone() // sparse: 1 changed back to what the full backup held
	v5.setPage(10, "v1")

	ids := []string{vbackupID(40), vbackupID(41), vbackupID(42), vbackupID(43), vbackupID(44)}
	imgs := []*testImage{v1, v2, v3, v4, v5}
	storeBackup(t, bucket, keeper, database, backupSpec{id: ids[0], typ: BackupFull, img: v1})
	storeBackup(t, bucket, keeper, database, backupSpec{id: ids[1], typ: BackupIncremental, parent: v1, parentID: ids[0], img: v2})
	storeBackup(t, bucket, keeper, database, backupSpec{id: ids[2], typ: BackupIncremental, parent: v2, parentID: ids[1], img: v3, fullIndex: true})
	storeBackup(t, bucket, keeper, database, backupSpec{id: ids[3], typ: BackupIncremental, parent: v3, parentID: ids[2], img: v4})
	storeBackup(t, bucket, keeper, database, backupSpec{id: ids[4], typ: BackupIncremental, parent: v4, parentID: ids[3], img: v5})

	readAll := func(t *testing.T, id string) []PageHash {
		t.Helper()
		chain, err := Chain(ctx, bucket, keeper, database, id)
		if err != nil {
			t.Fatal(err)
		}
		hashes, err := readChainIndex(bucket, chain)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return hashes
	}
	wantImage := func(t *testing.T, hashes []PageHash, img *testImage) {
		t.Helper()
		if len(hashes) != img.pageCount() {
			t.Fatalf("read %d hashes, the image has %d pages", len(hashes), img.pageCount())
		}
		for n, h := range hashes {
			if h != HashPage(img.page(n+1)) {
				t.Fatalf("the hash of page %d differs from HashPage", n+1)
			}
		}
	}

	t.Run("every backup's merged index gives the hash of every page of its image", func(t *testing.T) {
		for i, id := range ids {
			wantImage(t, readAll(t, id), imgs[i])
		}
	})

	t.Run("the old incremental's index reads alone, the sparse ones only with their chain", func(t *testing.T) {
		for i, id := range ids {
			b, err := ReadBackup(ctx, bucket, database, id)
			if err != nil {
				t.Fatal(err)
			}
			key, err := b.Open(ctx, keeper)
			if err != nil {
				t.Fatal(err)
			}
			r, err := OpenPageIndex(ctx, bucket, key, b.Manifest)
			if err == nil {
				r.Close()
			}
			if sparse := i == 1 || i >= 3; sparse != errors.Is(err, ErrBadInput) || !sparse && err != nil {
				t.Errorf("OpenPageIndex(%s): %v", id, err)
			}
		}
	})

	t.Run("restores match their merged index; a differing page is found", func(t *testing.T) {
		for i, id := range ids {
			path, _ := restoreChain(t, bucket, keeper, database, id, RestoreOptions{Workers: 2})
			assertFileHoldsImage(t, path, imgs[i])
			chain, err := Chain(ctx, bucket, keeper, database, id)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if p, err := PageIndexMismatch(ctx, bucket, chain, f); err != nil || p != 0 {
				t.Errorf("PageIndexMismatch(%s) = %d, %v", id, p, err)
			}
			if _, err := f.WriteAt(pageContents(255, 1024, "tampered"), 254*1024); err != nil {
				t.Fatal(err)
			}
			if p, err := PageIndexMismatch(ctx, bucket, chain, f); err != nil || p != 255 {
				t.Errorf("PageIndexMismatch(%s) of a tampered image = %d, %v; want 255", id, p, err)
			}
			f.Close()
		}
	})

	t.Run("the merge stops at the full index: older indexes are not read", func(t *testing.T) {
		for _, id := range ids[:2] {
			k := PageIndexKey(database, id)
			original, err := bucket.ReadAll(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if err := bucket.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			defer bucket.WriteAll(ctx, k, original, nil)
		}
		wantImage(t, readAll(t, ids[4]), v5)
		chain, err := Chain(ctx, bucket, keeper, database, ids[1])
		if err != nil {
			t.Fatal(err)
		}
		_, err = readChainIndex(bucket, chain)
		wantErrorIs(t, err, ErrNotFound)
	})

	t.Run("the newest backup is a parent; every index checks on its own", func(t *testing.T) {
		p, reason, err := FindParent(ctx, bucket, keeper, database, BackupIncremental)
		if err != nil || p == nil || p.Manifest().BackupID != ids[4] || len(p.Chain) != 5 {
			t.Fatalf("FindParent = %v, %q, %v; want %s with its chain", p, reason, err, ids[4])
		}
		for _, l := range p.Chain {
			sparse, err := checkPageIndex(ctx, bucket, l)
			if err != nil || sparse != (l.Manifest().Type != BackupFull && l.Manifest().BackupID != ids[2]) {
				t.Errorf("checkPageIndex(%s) = %v, %v", l.Manifest().BackupID, sparse, err)
			}
			if err := CheckObjects(ctx, bucket, keeper, database, l.Manifest().BackupID); err != nil {
				t.Errorf("CheckObjects(%s): %v", l.Manifest().BackupID, err)
			}
		}
	})

	t.Run("a parent whose ancestor's index is damaged is not used", func(t *testing.T) {
		k := PageIndexKey(database, ids[3])
		original, err := bucket.ReadAll(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		damaged := bytes.Clone(original)
		damaged[len(damaged)-1] ^= 1
		if err := bucket.WriteAll(ctx, k, damaged, nil); err != nil {
			t.Fatal(err)
		}
		defer bucket.WriteAll(ctx, k, original, nil)
		p, reason, err := FindParent(ctx, bucket, keeper, database, BackupIncremental)
		if err != nil || p != nil || !strings.Contains(reason, "page index") || !strings.Contains(reason, ids[3]) {
			t.Fatalf("FindParent = %v, %q, %v; want none because of %s's page index", p, reason, err, ids[3])
		}
	})
}

// TestPageIndexMismatchFromHealsAnAncestorsIndex damages the index of an
// older backup of a sparse chain on the primary: the comparison of the
// newest backup's image reads it from the next source, names it in one
// heal, and writes it back only when asked.
func TestPageIndexMismatchFromHealsAnAncestorsIndex(t *testing.T) {
	ctx := context.Background()
	d := newDrillChain(t, [3]*blob.Bucket{
		openFileBucket(t, &fileblob.Options{CreateDir: true, NoTempDir: true}),
		memblob.OpenBucket(nil),
		memblob.OpenBucket(nil),
	})
	chain, _, err := ChainFrom(ctx, d.sources, d.keeper, drillDB, drillInc2ID)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.db")
	if err := os.WriteFile(path, d.want.data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, id := range []string{drillFullID, drillInc1ID} {
		key := PageIndexKey(drillDB, id)
		for _, repair := range []bool{false, true} {
			damaged := bytes.Clone(d.pristine[key])
			damaged[len(damaged)/2] ^= 4
			if err := d.primary().WriteAll(ctx, key, damaged, nil); err != nil {
				t.Fatal(err)
			}
			page, heals, err := PageIndexMismatchFrom(ctx, d.sources, chain, f, HealOptions{Repair: repair})
			if err != nil || page != 0 {
				t.Fatalf("%s damaged: page %d, %v", id, page, err)
			}
			if len(heals) != 1 || heals[0].Key != key || heals[0].From != "secondary" || heals[0].Repaired != repair {
				t.Fatalf("%s damaged, repair %v: heals %+v", id, repair, heals)
			}
			stored, err := d.primary().ReadAll(ctx, key)
			if err != nil || bytes.Equal(stored, d.pristine[key]) != repair {
				t.Fatalf("%s damaged, repair %v: the primary holds %d bytes (%v), the original %d", id, repair, len(stored), err, len(d.pristine[key]))
			}
			// With the primary alone the damage is the error.
			_, heals, err = PageIndexMismatchFrom(ctx, d.sources[:1], chain, f, HealOptions{})
			if repair {
				if err != nil || len(heals) != 0 {
					t.Fatalf("after repair the primary alone: %v, heals %v", err, heals)
				}
			} else {
				wantErrorIs(t, err, ErrCorrupt)
			}
			if err := d.primary().WriteAll(ctx, key, d.pristine[key], nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("damaged everywhere, the error names every source", func(t *testing.T) {
		key := PageIndexKey(drillDB, drillDiffID)
		for _, s := range d.sources {
			if err := s.Bucket.WriteAll(ctx, key, d.pristine[key][:40], nil); err != nil {
				t.Fatal(err)
			}
		}
		_, _, err := PageIndexMismatchFrom(ctx, d.sources, chain, f, HealOptions{})
		var none *NoIntactCopyError
		if !errors.As(err, &none) || none.Key != key || len(none.Problems) != 3 {
			t.Fatalf("got %v, want no intact copy of %s on three sources", err, key)
		}
		wantErrorIs(t, err, ErrCorrupt)
	})
}

// FuzzOpenChainPageIndex stores arbitrary bytes as the sparse index of an
// incremental on a full backup: reading the merge either fails with
// ErrCorrupt or, for the bytes the writer wrote, yields exactly its image.
func FuzzOpenChainPageIndex(f *testing.F) {
	ctx := context.Background()
	key := fuzzDataKey(f)
	bucket := memblob.OpenBucket(nil)
	defer bucket.Close()
	base := versions{1, 1, 1}
	img := versions{1, 2, 1, 2}
	full := writeIndexLayer(f, bucket, key, indexSpec{id: vbackupID(0), typ: BackupFull, img: base})
	inc := writeIndexLayer(f, bucket, key, indexSpec{id: vbackupID(1), typ: BackupIncremental, parentID: vbackupID(0), parent: base, img: img})
	valid, err := bucket.ReadAll(ctx, PageIndexKey("finance", vbackupID(1)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(bytes.Clone(valid), 0))
	f.Add(valid[:pageIndexHdrSize])
	f.Add(append([]byte(pageIndexMagic), valid[4:]...))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		if err := bucket.WriteAll(ctx, PageIndexKey("finance", vbackupID(1)), data, nil); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		m := *inc.Manifest()
		m.PageIndex = &ObjectRef{StoredBytes: int64(len(data)), StoredSHA256: hex.EncodeToString(sum[:])}
		hashes, err := readChainIndex(bucket, []Layer{full, {Backup: &Backup{Manifest: &m}, Key: key}})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error is not corrupt: %v", err)
		}
		for i, h := range hashes {
			if h != img.hash(i+1) {
				t.Fatalf("hash %d is %x", i+1, h)
			}
		}
		if err == nil && len(hashes) != len(img) {
			t.Fatalf("read %d hashes of %d", len(hashes), len(img))
		}
	})
}
