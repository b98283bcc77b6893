// Package destinationtest is the conformance suite every Bulwark destination
// passes: the part of the gocloud.dev/blob contract that Bulwark relies on,
// checked against a real bucket. A destination plugs in with a few lines:
//
//	func TestMem(t *testing.T) {
//		destinationtest.Run(t, func(t *testing.T) *blob.Bucket {
//			return destinationtest.OpenURL(t, "mem://")
//		})
//	}
//
// It is a non-test package so that tests anywhere in Bulwark can use it.
package destinationtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

const (
	// MiB is a mebibyte.
	MiB = 1 << 20

	// LargeObjectSize is the size of the object that the suite streams
	// through a Writer in PieceSize pieces and reads back by hash.
	LargeObjectSize = 64 * MiB
	// PieceSize is the size of each Write of a large object.
	PieceSize = 1 * MiB
	// CancelledObjectSize is the size written before a large write is
	// cancelled: above s3blob's multipart threshold (16 MiB, in parts of
	// 8 MiB), so that the cancellation hits a multipart upload in progress.
	CancelledObjectSize = 20 * MiB
)

// Names of the checks that a destination may declare as a known Deviation.
// Every other point of the contract must hold.
const (
	CheckListOrder           = "listing without a delimiter returns keys in lexical order"
	CheckListOrderDelimited  = "listing with delimiter / returns keys in lexical order"
	CheckListPages           = "listing without a delimiter page by page returns each key once, in order"
	CheckListPagesDelimited  = "listing with delimiter / page by page returns each entry once, in order"
	CheckUnfinishedNotListed = "an unfinished write is not listed"
)

// A Deviation declares that a destination fails one check of the contract,
// and why. The check still runs: if it fails, the subtest is skipped with
// Why and the failure; if it passes, the subtest fails, so that a deviation
// that no longer happens gets removed.
type Deviation struct {
	// Check is one of the Check* names.
	Check string
	// Why names the limitation: whose it is and what the destination does
	// instead.
	Why string
}

// Run runs the destination contract as subtests of t. open must return a
// new, empty bucket each time it is called, and close it when its test
// ends; Run calls it once per subtest. deviations declare the checks the
// destination is known to fail.
//
// The contract, as Bulwark relies on it:
//   - objects read back byte for byte, whatever their size (empty, small,
//     1 MiB, 64 MiB streamed through a Writer), and Attributes and readers
//     report their size;
//   - listing by prefix returns exactly the keys under it, each once, in
//     lexical order, also page by page; with delimiter "/" the "directories"
//     are reported once each, with IsDir;
//   - reading, range reading and Attributes of a missing key, and Delete of
//     a missing key, give an error whose gcerrors.Code is NotFound; Exists
//     gives false, nil;
//   - a write whose context is cancelled before Close fails at Close and
//     leaves nothing visible: no new object, the previous object (if any)
//     whole; an unfinished write is not visible either;
//   - concurrent writers do not interfere: distinct keys all land, and
//     writers of one key leave exactly one writer's content, whole; a
//     reader sees one whole version, never a mix;
//   - range reads inside the object return the bytes asked for; a length
//     past the end stops at the end.
//
// Outside the contract, because destinations differ and Bulwark does not
// need them: keys that name both an object and a "directory" of other
// objects ("a" and "a/b": a file system cannot hold both), Delete of a
// "directory" key, and ranges that start at or past the end of an object
// (S3 answers 416 InvalidRange, file:// and mem:// an empty read).
func Run(t *testing.T, open func(t *testing.T) *blob.Bucket, deviations ...Deviation) {
	t.Helper()
	tests := []subtest{
		{name: "small, empty and 1 MiB objects read back byte for byte", test: testRoundTrip},
		{name: "listing by prefix returns exactly the keys under it", test: testListPrefix},
		{name: CheckListOrder, check: checkListOrder(false)},
		{name: CheckListOrderDelimited, check: checkListOrder(true)},
		{name: CheckListPages, check: checkListPages(false)},
		{name: CheckListPagesDelimited, check: checkListPages(true)},
		{name: "listing with delimiter / reports each directory once, as IsDir", test: testListDelimiter},
		{name: "listing 300 keys returns each of them once, in order", test: testListMany},
		{name: "a missing key reports NotFound", test: testNotFound},
		{name: "a 64 MiB object streams through a writer and reads back intact", test: testLargeObject},
		{name: "a write cancelled before Close leaves no object", test: testCancelNew},
		{name: "a write cancelled before Close keeps the previous content whole", test: testCancelOverwrite},
		{name: "a large write cancelled midway leaves no object", test: testCancelLarge},
		{name: "an unfinished write is not visible to readers", test: testUnfinishedWrite},
		{name: CheckUnfinishedNotListed, check: checkUnfinishedNotListed},
		{name: "concurrent writers of distinct keys all land", test: testConcurrentKeys},
		{name: "concurrent writers of one key leave exactly one whole content", test: testConcurrentSameKey},
		{name: "overwriting replaces the content atomically", test: testOverwrite},
		{name: "Delete removes an object and reports NotFound for a missing key", test: testDelete},
		{name: "range reads return the bytes asked for", test: testRangeRead},
	}

	why := make(map[string]string, len(deviations))
	for _, d := range deviations {
		if !slices.ContainsFunc(tests, func(tc subtest) bool { return tc.name == d.Check && tc.check != nil }) {
			t.Fatalf("deviation from %q: no such check (use a Check* name)", d.Check)
		}
		if d.Why == "" {
			t.Fatalf("deviation from %q: say why", d.Check)
		}
		why[d.Check] = d.Why
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			if tc.test != nil {
				tc.test(t, b)
				return
			}
			err := tc.check(t, b)
			reason, deviates := why[tc.name]
			switch {
			case err != nil && deviates:
				t.Skipf("known deviation: %s\n%v", reason, err)
			case err != nil:
				t.Error(err)
			case deviates:
				t.Errorf("the check passes, but the destination declares a deviation from it (%s): remove the deviation", reason)
			}
		})
	}
}

// A subtest is one point of the contract: either a test, which must pass,
// or a check, which a destination may declare a Deviation from.
type subtest struct {
	name  string
	test  func(t *testing.T, b *blob.Bucket)
	check func(t *testing.T, b *blob.Bucket) error
}

func testRoundTrip(t *testing.T, b *blob.Bucket) {
	ctx := t.Context()
	for _, c := range []struct {
		key  string
		data []byte
	}{
		{"round-trip/small", []byte("hello, destination")},
		{"round-trip/empty", []byte{}},
		{"round-trip/nested/dirs/1MiB", RandomBytes(1, MiB)},
		{"round-trip/binary", []byte{0, 0xff, '\n', '\r', 0, 0x80}},
	} {
		Put(t, b, c.key, c.data)
		attrs, err := b.Attributes(ctx, c.key)
		if err != nil {
			t.Fatalf("Attributes(%q): %v", c.key, err)
		}
		if attrs.Size != int64(len(c.data)) {
			t.Errorf("Attributes(%q).Size = %d, want %d", c.key, attrs.Size, len(c.data))
		}
		r, err := b.NewReader(ctx, c.key, nil)
		if err != nil {
			t.Fatalf("NewReader(%q): %v", c.key, err)
		}
		if r.Size() != int64(len(c.data)) {
			t.Errorf("NewReader(%q).Size() = %d, want %d", c.key, r.Size(), len(c.data))
		}
		got, err := io.ReadAll(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("read %q: %v", c.key, err)
		}
		if !bytes.Equal(got, c.data) {
			t.Errorf("read %q: got %d bytes %s, want %d bytes %s", c.key, len(got), short(got), len(c.data), short(c.data))
		}
	}
}

// listingKeys are laid out to catch listings that walk a tree instead of
// sorting keys: "-" and "." sort before "/", so "p/b-x" comes before every
// key under "p/b/".
var listingKeys = []string{
	"o/1",
	"p/a",
	"p/b-x",
	"p/b/1",
	"p/b/2",
	"p/b/3/deep",
	"p/c.d",
	"p/c/e",
	"pq",
	"q",
}

func putListingKeys(t *testing.T, b *blob.Bucket) {
	t.Helper()
	// Written out of order, so that creation order cannot pass for
	// lexical order.
	for i := len(listingKeys) - 1; i >= 0; i-- {
		Put(t, b, listingKeys[i], []byte(listingKeys[i]))
	}
}

func testListPrefix(t *testing.T, b *blob.Bucket) {
	putListingKeys(t, b)
	for _, prefix := range []string{"", "p/", "p/b", "p/b/", "p/c", "pq", "x", "p/b/3/deep"} {
		var want []string
		for _, k := range listingKeys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		got := List(t, b, &blob.ListOptions{Prefix: prefix})
		keys := make([]string, 0, len(got))
		for _, o := range got {
			if o.IsDir {
				t.Errorf("prefix %q: %q reported as a directory without a delimiter", prefix, o.Key)
			}
			if o.Size != int64(len(o.Key)) {
				t.Errorf("prefix %q: %q listed with size %d, want %d", prefix, o.Key, o.Size, len(o.Key))
			}
			keys = append(keys, o.Key)
		}
		slices.Sort(keys) // order is the next test's business
		if !slices.Equal(keys, want) {
			t.Errorf("prefix %q: listed %q, want %q", prefix, keys, want)
		}
	}
}

// listingOptions are the listings of listingKeys that the order and page
// checks go through, with or without delimiter "/".
func listingOptions(delimited bool) []*blob.ListOptions {
	var opts []*blob.ListOptions
	for _, prefix := range []string{"", "p/", "p/b"} {
		o := &blob.ListOptions{Prefix: prefix}
		if delimited {
			o.Delimiter = "/"
		}
		opts = append(opts, o)
	}
	return opts
}

func checkListOrder(delimited bool) func(t *testing.T, b *blob.Bucket) error {
	return func(t *testing.T, b *blob.Bucket) error {
		putListingKeys(t, b)
		var errs []error
		for _, opts := range listingOptions(delimited) {
			keys := Keys(List(t, b, opts))
			if !slices.IsSorted(keys) {
				errs = append(errs, fmt.Errorf("prefix %q, delimiter %q: listed out of lexical order: %q", opts.Prefix, opts.Delimiter, keys))
			}
		}
		return errors.Join(errs...)
	}
}

func checkListPages(delimited bool) func(t *testing.T, b *blob.Bucket) error {
	return func(t *testing.T, b *blob.Bucket) error {
		putListingKeys(t, b)
		var errs []error
		for _, opts := range listingOptions(delimited) {
			want := expectedListing(opts)
			for _, size := range []int{1, 2, 3} {
				if got := Keys(ListPages(t, b, opts, size)); !slices.Equal(got, want) {
					errs = append(errs, fmt.Errorf("prefix %q, delimiter %q, pages of %d: listed %q, want %q", opts.Prefix, opts.Delimiter, size, got, want))
				}
			}
		}
		return errors.Join(errs...)
	}
}

// expectedListing is what listing listingKeys with opts returns: the keys
// under the prefix, collapsed into directories at the delimiter, each once,
// in lexical order.
func expectedListing(opts *blob.ListOptions) []string {
	var want []string
	for _, k := range listingKeys {
		rest, ok := strings.CutPrefix(k, opts.Prefix)
		if !ok {
			continue
		}
		if i := strings.Index(rest, opts.Delimiter); opts.Delimiter != "" && i >= 0 {
			k = opts.Prefix + rest[:i+len(opts.Delimiter)]
		}
		want = append(want, k)
	}
	slices.Sort(want)
	return slices.Compact(want)
}

func testListDelimiter(t *testing.T, b *blob.Bucket) {
	putListingKeys(t, b)
	for _, c := range []struct {
		prefix string
		want   []string // directories end in "/"
	}{
		{"", []string{"o/", "p/", "pq", "q"}},
		{"p/", []string{"p/a", "p/b-x", "p/b/", "p/c.d", "p/c/"}},
		{"p/b", []string{"p/b-x", "p/b/"}},
		{"p/b/", []string{"p/b/1", "p/b/2", "p/b/3/"}},
		{"p/b/3/", []string{"p/b/3/deep"}},
		{"x/", nil},
	} {
		got := List(t, b, &blob.ListOptions{Prefix: c.prefix, Delimiter: "/"})
		keys := Keys(got)
		slices.Sort(keys)
		if !slices.Equal(keys, c.want) {
			t.Errorf("prefix %q, delimiter /: listed %q, want %q", c.prefix, keys, c.want)
		}
		for _, o := range got {
			if isDir := strings.HasSuffix(o.Key, "/"); o.IsDir != isDir {
				t.Errorf("prefix %q, delimiter /: %q has IsDir %v, want %v", c.prefix, o.Key, o.IsDir, isDir)
			}
		}
	}
}

func testListMany(t *testing.T, b *blob.Bucket) {
	const n = 300
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("many/%04d", i)
	}
	Parallel(t, 16, n, func(i int) error {
		return put(t.Context(), b, keys[i], []byte(keys[i]))
	})
	Put(t, b, "many-outside", []byte("x"))
	Put(t, b, "manyz", []byte("x"))

	if got := Keys(List(t, b, &blob.ListOptions{Prefix: "many/"})); !slices.Equal(got, keys) {
		t.Errorf("listed %d keys under many/ (first %q, last %q), want the %d keys many/0000 to many/0299 in order", len(got), first(got), last(got), n)
	}
	if got := Keys(ListPages(t, b, &blob.ListOptions{Prefix: "many/"}, 97)); !slices.Equal(got, keys) {
		t.Errorf("pages of 97: listed %d keys under many/, want the %d keys in order", len(got), n)
	}
	if got := Keys(List(t, b, &blob.ListOptions{Prefix: "many/", Delimiter: "/"})); !slices.Equal(got, keys) {
		t.Errorf("delimiter /: listed %d keys under many/, want the %d keys in order", len(got), n)
	}
}

func testNotFound(t *testing.T, b *blob.Bucket) {
	ctx := t.Context()
	Put(t, b, "dir/object", []byte("x"))
	// "dir" and "dir/obj" are prefixes of an object, not objects.
	for _, key := range []string{"missing", "dir/missing", "missing-dir/missing", "dir", "dir/obj"} {
		if _, err := b.NewReader(ctx, key, nil); gcerrors.Code(err) != gcerrors.NotFound {
			t.Errorf("NewReader(%q): got error %v (code %v), want NotFound", key, err, gcerrors.Code(err))
		}
		if _, err := b.NewRangeReader(ctx, key, 1, 10, nil); gcerrors.Code(err) != gcerrors.NotFound {
			t.Errorf("NewRangeReader(%q): got error %v (code %v), want NotFound", key, err, gcerrors.Code(err))
		}
		if _, err := b.Attributes(ctx, key); gcerrors.Code(err) != gcerrors.NotFound {
			t.Errorf("Attributes(%q): got error %v (code %v), want NotFound", key, err, gcerrors.Code(err))
		}
		if ok, err := b.Exists(ctx, key); ok || err != nil {
			t.Errorf("Exists(%q) = %v, %v; want false, nil", key, ok, err)
		}
	}
}

func testLargeObject(t *testing.T, b *blob.Bucket) {
	ctx := t.Context()
	const key = "large/object"
	w, err := b.NewWriter(ctx, key, writerOptions())
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	src := NewStream(64, LargeObjectSize)
	wantHash := sha256.New()
	piece := make([]byte, PieceSize)
	for {
		n, err := io.ReadFull(src, piece)
		if n > 0 {
			wantHash.Write(piece[:n])
			if _, werr := w.Write(piece[:n]); werr != nil {
				_ = w.Close()
				t.Fatalf("write: %v", werr)
			}
		}
		if err != nil {
			break
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}

	if attrs, err := b.Attributes(ctx, key); err != nil {
		t.Fatalf("Attributes: %v", err)
	} else if attrs.Size != LargeObjectSize {
		t.Errorf("Attributes.Size = %d, want %d", attrs.Size, LargeObjectSize)
	}
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	defer r.Close()
	gotHash := sha256.New()
	n, err := io.CopyBuffer(gotHash, r, make([]byte, 256<<10))
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if n != LargeObjectSize {
		t.Errorf("read back %d bytes, want %d", n, LargeObjectSize)
	}
	if got, want := gotHash.Sum(nil), wantHash.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("read back SHA-256 %x, want %x", got, want)
	}
}

// cancelledWrite writes data to key through a writer whose context is
// cancelled before Close, and checks that Close fails.
func cancelledWrite(t *testing.T, b *blob.Bucket, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w, err := b.NewWriter(ctx, key, writerOptions())
	if err != nil {
		t.Fatalf("NewWriter(%q): %v", key, err)
	}
	for p := data; len(p) > 0; {
		n := min(len(p), PieceSize)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatalf("write %q: %v", key, err)
		}
		p = p[n:]
	}
	cancel()
	err = w.Close()
	if err == nil {
		t.Fatalf("Close of a write to %q whose context was cancelled succeeded, want an error", key)
	}
	// Drivers differ in how they report it (context.Canceled, or an
	// Unknown error that only says so in its text); Bulwark only relies on
	// Close failing.
	t.Logf("Close of a cancelled write of %d bytes: code %v, errors.Is(err, context.Canceled) %v: %v", len(data), gcerrors.Code(err), errors.Is(err, context.Canceled), err)
}

// assertAbsent checks that key is not an object and that nothing at all is
// listed under prefix.
func assertAbsent(t *testing.T, b *blob.Bucket, key, prefix string) {
	t.Helper()
	ctx := t.Context()
	if ok, err := b.Exists(ctx, key); ok || err != nil {
		t.Errorf("Exists(%q) = %v, %v; want false, nil", key, ok, err)
	}
	if _, err := b.NewReader(ctx, key, nil); gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("NewReader(%q): got error %v, want NotFound", key, err)
	}
	if got := Keys(List(t, b, &blob.ListOptions{Prefix: prefix})); len(got) > 0 {
		t.Errorf("listed %q under %q, want nothing", got, prefix)
	}
}

func testCancelNew(t *testing.T, b *blob.Bucket) {
	cancelledWrite(t, b, "cancel/new", RandomBytes(2, 64<<10))
	cancelledWrite(t, b, "cancel/empty", nil)
	assertAbsent(t, b, "cancel/new", "cancel/")
	assertAbsent(t, b, "cancel/empty", "cancel/")
}

func testCancelOverwrite(t *testing.T, b *blob.Bucket) {
	old := RandomBytes(3, 256<<10)
	Put(t, b, "cancel/existing", old)
	cancelledWrite(t, b, "cancel/existing", RandomBytes(4, 512<<10)) // longer
	cancelledWrite(t, b, "cancel/existing", RandomBytes(5, 100))     // shorter
	cancelledWrite(t, b, "cancel/existing", nil)                     // empty
	if got := Get(t, b, "cancel/existing"); !bytes.Equal(got, old) {
		t.Errorf("after cancelled overwrites: read %d bytes %s, want the previous %d bytes %s", len(got), short(got), len(old), short(old))
	}
	if got := Keys(List(t, b, &blob.ListOptions{Prefix: "cancel/"})); !slices.Equal(got, []string{"cancel/existing"}) {
		t.Errorf("listed %q under cancel/, want only cancel/existing", got)
	}
}

func testCancelLarge(t *testing.T, b *blob.Bucket) {
	cancelledWrite(t, b, "cancel/large", RandomBytes(6, CancelledObjectSize))
	assertAbsent(t, b, "cancel/large", "cancel/")
}

func testUnfinishedWrite(t *testing.T, b *blob.Bucket) {
	ctx := t.Context()
	old := RandomBytes(7, 100<<10)
	Put(t, b, "unfinished/existing", old)
	for _, c := range []struct {
		key  string
		want []byte // what readers see until Close; nil for no object
	}{
		{"unfinished/new", nil},
		{"unfinished/existing", old},
	} {
		data := RandomBytes(8, 3*MiB)
		w, err := b.NewWriter(ctx, c.key, writerOptions())
		if err != nil {
			t.Fatalf("NewWriter(%q): %v", c.key, err)
		}
		if _, err := w.Write(data[:2*MiB]); err != nil {
			t.Fatalf("write %q: %v", c.key, err)
		}
		if c.want == nil {
			if ok, err := b.Exists(ctx, c.key); ok || err != nil {
				t.Errorf("Exists(%q) before Close = %v, %v; want false, nil", c.key, ok, err)
			}
			if _, err := b.NewReader(ctx, c.key, nil); gcerrors.Code(err) != gcerrors.NotFound {
				t.Errorf("NewReader(%q) before Close: got error %v, want NotFound", c.key, err)
			}
		} else if got := Get(t, b, c.key); !bytes.Equal(got, c.want) {
			t.Errorf("read %q before Close: %d bytes %s, want the previous %d bytes %s", c.key, len(got), short(got), len(c.want), short(c.want))
		}
		if _, err := w.Write(data[2*MiB:]); err != nil {
			t.Fatalf("write %q: %v", c.key, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("close writer of %q: %v", c.key, err)
		}
		if got := Get(t, b, c.key); !bytes.Equal(got, data) {
			t.Errorf("read %q after Close: %d bytes %s, want %d bytes %s", c.key, len(got), short(got), len(data), short(data))
		}
	}
}

func checkUnfinishedNotListed(t *testing.T, b *blob.Bucket) error {
	ctx := t.Context()
	Put(t, b, "unfinished/existing", []byte("old"))
	var errs []error
	for _, key := range []string{"unfinished/new", "unfinished/existing"} {
		before := Keys(List(t, b, &blob.ListOptions{Prefix: "unfinished/"}))
		w, err := b.NewWriter(ctx, key, writerOptions())
		if err != nil {
			t.Fatalf("NewWriter(%q): %v", key, err)
		}
		if _, err := w.Write(RandomBytes(12, 64<<10)); err != nil {
			t.Fatalf("write %q: %v", key, err)
		}
		got := Keys(List(t, b, &blob.ListOptions{Prefix: "unfinished/"}))
		if err := w.Close(); err != nil {
			t.Fatalf("close writer of %q: %v", key, err)
		}
		if !slices.Equal(got, before) {
			errs = append(errs, fmt.Errorf("while %q was being written: listed %q, want %q as before the write", key, got, before))
		}
	}
	if got, want := Keys(List(t, b, &blob.ListOptions{Prefix: "unfinished/"})), []string{"unfinished/existing", "unfinished/new"}; !slices.Equal(got, want) {
		t.Errorf("after the writes: listed %q, want %q", got, want)
	}
	return errors.Join(errs...)
}

func testConcurrentKeys(t *testing.T, b *blob.Bucket) {
	const n = 16
	Parallel(t, n, n, func(i int) error {
		return put(t.Context(), b, fmt.Sprintf("concurrent/%02d", i), RandomBytes(uint64(100+i), 256<<10))
	})
	for i := range n {
		key := fmt.Sprintf("concurrent/%02d", i)
		if got, want := Get(t, b, key), RandomBytes(uint64(100+i), 256<<10); !bytes.Equal(got, want) {
			t.Errorf("read %q: %d bytes %s, want %d bytes %s", key, len(got), short(got), len(want), short(want))
		}
	}
	if got := List(t, b, &blob.ListOptions{Prefix: "concurrent/"}); len(got) != n {
		t.Errorf("listed %d objects under concurrent/, want %d", len(got), n)
	}
}

func testConcurrentSameKey(t *testing.T, b *blob.Bucket) {
	const (
		writers = 8
		key     = "concurrent/same"
	)
	// Different sizes as well as different bytes, so that a mix of two
	// contents or a truncated one cannot pass for a whole one.
	contents := make(map[[32]byte]int, writers)
	for i := range writers {
		contents[sha256.Sum256(sameKeyContent(i))] = i
	}

	// Readers run while the writers do: each read must be one whole
	// content (or no object yet).
	ctx := t.Context()
	done := make(chan struct{})
	var readers sync.WaitGroup
	var readErrs []error
	var mu sync.Mutex
	stopReaders := sync.OnceFunc(func() {
		close(done)
		readers.Wait()
	})
	defer stopReaders() // also when a writer fails the test
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				data, err := get(ctx, b, key)
				if gcerrors.Code(err) == gcerrors.NotFound {
					continue
				}
				if err == nil {
					if _, ok := contents[sha256.Sum256(data)]; !ok {
						err = fmt.Errorf("a reader saw %d bytes %s, which is no writer's whole content", len(data), short(data))
					}
				}
				if err != nil {
					mu.Lock()
					readErrs = append(readErrs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	Parallel(t, writers, writers, func(i int) error {
		return put(ctx, b, key, sameKeyContent(i))
	})
	stopReaders()
	for _, err := range readErrs {
		t.Error(err)
	}

	got := Get(t, b, key)
	if i, ok := contents[sha256.Sum256(got)]; !ok {
		t.Errorf("after %d concurrent writes: %d bytes %s, which is no writer's whole content", writers, len(got), short(got))
	} else {
		t.Logf("writer %d's content won", i)
	}
	if got := Keys(List(t, b, &blob.ListOptions{Prefix: "concurrent/"})); !slices.Equal(got, []string{key}) {
		t.Errorf("listed %q under concurrent/, want only %q", got, key)
	}
}

func sameKeyContent(i int) []byte {
	return RandomBytes(uint64(200+i), 512<<10+i*4099)
}

func testOverwrite(t *testing.T, b *blob.Bucket) {
	ctx := t.Context()
	const key = "overwrite/object"
	first := RandomBytes(9, 2*MiB)
	second := RandomBytes(10, 3*MiB+1)
	Put(t, b, key, first)

	// A reader opened before the overwrite reads the first version to its
	// end, never the start of one and the end of the other.
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatalf("read the head: %v", err)
	}
	Put(t, b, key, second)
	tail, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read the tail: %v", err)
	}
	if got := append(head, tail...); !bytes.Equal(got, first) {
		t.Errorf("a reader opened before the overwrite read %d bytes %s, want the first version's %d bytes %s", len(got), short(got), len(first), short(first))
	}

	if got := Get(t, b, key); !bytes.Equal(got, second) {
		t.Errorf("after the overwrite: read %d bytes %s, want %d bytes %s", len(got), short(got), len(second), short(second))
	}
	if attrs, err := b.Attributes(ctx, key); err != nil {
		t.Errorf("Attributes: %v", err)
	} else if attrs.Size != int64(len(second)) {
		t.Errorf("Attributes.Size = %d, want %d", attrs.Size, len(second))
	}
	// A shorter overwrite leaves no tail of the longer one.
	third := []byte("short")
	Put(t, b, key, third)
	if got := Get(t, b, key); !bytes.Equal(got, third) {
		t.Errorf("after a shorter overwrite: read %d bytes %s, want %q", len(got), short(got), third)
	}
	if got := Keys(List(t, b, &blob.ListOptions{Prefix: "overwrite/"})); !slices.Equal(got, []string{key}) {
		t.Errorf("listed %q under overwrite/, want only %q", got, key)
	}
}

func testDelete(t *testing.T, b *blob.Bucket) {
	ctx := t.Context()
	Put(t, b, "delete/object", []byte("x"))
	Put(t, b, "delete/kept", []byte("y"))
	if err := b.Delete(ctx, "delete/object"); err != nil {
		t.Fatalf("Delete of an existing key: %v", err)
	}
	assertAbsent(t, b, "delete/object", "delete/object")
	if got := Keys(List(t, b, &blob.ListOptions{Prefix: "delete/"})); !slices.Equal(got, []string{"delete/kept"}) {
		t.Errorf("listed %q under delete/, want only delete/kept", got)
	}
	for _, key := range []string{"delete/object", "delete/never", "never/never"} {
		if err := b.Delete(ctx, key); gcerrors.Code(err) != gcerrors.NotFound {
			t.Errorf("Delete of missing %q: got error %v (code %v), want NotFound", key, err, gcerrors.Code(err))
		}
	}
	if got := Get(t, b, "delete/kept"); string(got) != "y" {
		t.Errorf("delete/kept reads %q, want %q", got, "y")
	}
}

func testRangeRead(t *testing.T, b *blob.Bucket) {
	ctx := t.Context()
	const key = "range/object"
	data := RandomBytes(11, MiB+17)
	size := int64(len(data))
	Put(t, b, key, data)
	for _, c := range []struct {
		offset, length int64
		want           []byte
	}{
		{0, 10, data[:10]},
		{0, size, data},
		{0, -1, data},
		{100, 1000, data[100:1100]},
		{MiB - 3, 7, data[MiB-3 : MiB+4]},
		{size - 5, 5, data[size-5:]},
		{size - 5, 100, data[size-5:]}, // past the end: up to the end
		{size - 5, -1, data[size-5:]},
		{12345, -1, data[12345:]},
		{size - 1, 1, data[size-1:]},
		{42, 0, []byte{}},
	} {
		r, err := b.NewRangeReader(ctx, key, c.offset, c.length, nil)
		if err != nil {
			t.Errorf("NewRangeReader(%d, %d): %v", c.offset, c.length, err)
			continue
		}
		got, err := io.ReadAll(r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Errorf("NewRangeReader(%d, %d): read: %v", c.offset, c.length, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("NewRangeReader(%d, %d): read %d bytes %s, want %d bytes %s", c.offset, c.length, len(got), short(got), len(c.want), short(c.want))
		}
		if r.Size() != size {
			t.Errorf("NewRangeReader(%d, %d).Size() = %d, want the object's size %d", c.offset, c.length, r.Size(), size)
		}
	}
}

// writerOptions are the options Bulwark writes its objects with.
func writerOptions() *blob.WriterOptions {
	return &blob.WriterOptions{
		ContentType:                 "application/octet-stream",
		DisableContentTypeDetection: true,
	}
}

func put(ctx context.Context, b *blob.Bucket, key string, data []byte) error {
	w, err := b.NewWriter(ctx, key, writerOptions())
	if err != nil {
		return fmt.Errorf("new writer for %q: %w", key, err)
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return fmt.Errorf("write %q: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("close writer of %q: %w", key, err)
	}
	return nil
}

func get(ctx context.Context, b *blob.Bucket, key string) ([]byte, error) {
	r, err := b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return data, err
}

// Put writes data to key as Bulwark writes objects, failing the test on
// error.
func Put(t testing.TB, b *blob.Bucket, key string, data []byte) {
	t.Helper()
	if err := put(t.Context(), b, key, data); err != nil {
		t.Fatal(err)
	}
}

// Get reads the whole object at key, failing the test on error.
func Get(t testing.TB, b *blob.Bucket, key string) []byte {
	t.Helper()
	data, err := get(t.Context(), b, key)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return data
}

// List returns everything listed with opts, failing the test on error.
func List(t testing.TB, b *blob.Bucket, opts *blob.ListOptions) []*blob.ListObject {
	t.Helper()
	var objs []*blob.ListObject
	it := b.List(opts)
	for {
		o, err := it.Next(t.Context())
		if err == io.EOF {
			return objs
		}
		if err != nil {
			t.Fatalf("list %q: %v", opts.Prefix, err)
		}
		objs = append(objs, o)
	}
}

// ListPages lists with opts through ListPage, pageSize results at a time,
// and returns all the pages' results in order.
func ListPages(t testing.TB, b *blob.Bucket, opts *blob.ListOptions, pageSize int) []*blob.ListObject {
	t.Helper()
	var objs []*blob.ListObject
	token := blob.FirstPageToken
	for pages := 0; len(token) > 0; pages++ {
		if pages > 10000 {
			t.Fatalf("list %q in pages of %d: more than 10000 pages", opts.Prefix, pageSize)
		}
		page, next, err := b.ListPage(t.Context(), token, pageSize, opts)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("list %q in pages of %d: %v", opts.Prefix, pageSize, err)
		}
		if len(page) > pageSize {
			t.Errorf("list %q: a page of %d results, want at most %d", opts.Prefix, len(page), pageSize)
		}
		objs = append(objs, page...)
		token = next
	}
	return objs
}

// Keys returns the keys of objs, in order.
func Keys(objs []*blob.ListObject) []string {
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys
}

// Parallel runs f(0) … f(n-1) on the given number of goroutines and fails
// the test with every error returned.
func Parallel(t testing.TB, goroutines, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	next := make(chan int)
	for range goroutines {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// RandomBytes returns n bytes that depend only on seed.
func RandomBytes(seed uint64, n int) []byte {
	data := make([]byte, n)
	if _, err := io.ReadFull(NewStream(seed, int64(n)), data); err != nil {
		panic(err) // a ChaCha8 stream never ends early
	}
	return data
}

// NewStream returns a reader of size bytes that depend only on seed,
// generated as they are read.
func NewStream(seed uint64, size int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	key[2] = byte(seed >> 16)
	key[3] = byte(seed >> 24)
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// short identifies data in error messages by the start of its SHA-256.
func short(data []byte) string {
	sum := sha256.Sum256(data)
	return fmt.Sprintf("(sha256 %x…)", sum[:6])
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}
