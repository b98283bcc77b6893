package faultblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"
)

// backends are the inner buckets every test runs against.
var backends = map[string]func(t *testing.T) *blob.Bucket{
	"mem": func(t *testing.T) *blob.Bucket { return memblob.OpenBucket(nil) },
	"file": func(t *testing.T) *blob.Bucket {
		b, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{NoTempDir: true})
		if err != nil {
			t.Fatal(err)
		}
		return b
	},
}

func forEachBackend(t *testing.T, fn func(t *testing.T, inner *blob.Bucket)) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			inner := open(t)
			t.Cleanup(func() { inner.Close() })
			fn(t, inner)
		})
	}
}

// wrap wraps inner for one test; inner stays open for the next (closing
// the injector's bucket would close it).
func wrap(t *testing.T, inner *blob.Bucket, opts Options) *Injector {
	t.Helper()
	f, err := New(inner, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// payload is n bytes that differ from one position to the next.
func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + i>>8)
	}
	return p
}

// put writes data through w as Bulwark does: one stream, closed, and the
// write aborted (context cancelled) when a write fails.
func put(ctx context.Context, b *blob.Bucket, key string, data []byte) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := b.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, bytes.NewReader(data))
	if err != nil {
		cancel()
		_ = w.Close()
		return n, err
	}
	return n, w.Close()
}

// noObject fails the test when key exists in inner or inner's directory
// holds anything but finished objects.
func noObject(t *testing.T, inner *blob.Bucket, key string) {
	t.Helper()
	if ok, err := inner.Exists(context.Background(), key); err != nil || ok {
		t.Fatalf("%s exists (%v) after a failed write", key, err)
	}
	it := inner.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(o.Key, key) {
			t.Fatalf("a failed write of %s left %s", key, o.Key)
		}
	}
}

// Without rules the wrapper is the inner bucket: objects, attributes,
// listings, copies, deletions, NotFound, and the *os.File that fileblob
// hands to BeforeWrite (Bulwark fsyncs through it).
func TestPassThrough(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner *blob.Bucket) {
		ctx := context.Background()
		f := wrap(t, inner, Options{Seed: 1})
		b := f.Bucket()
		data := payload(100 << 10)
		if err := b.WriteAll(ctx, "dir/a", data, &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
			t.Fatal(err)
		}
		got, err := b.ReadAll(ctx, "dir/a")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, data))
		}
		if got, _ := inner.ReadAll(ctx, "dir/a"); !bytes.Equal(got, data) {
			t.Fatal("the inner bucket does not hold what was written")
		}
		r, err := b.NewRangeReader(ctx, "dir/a", 1000, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(part, data[1000:1010]) || r.Size() != int64(len(data)) {
			t.Fatalf("range read: %v, size %d", part, r.Size())
		}
		a, err := b.Attributes(ctx, "dir/a")
		if err != nil || a.Size != int64(len(data)) || a.ContentType != "application/octet-stream" {
			t.Fatalf("attributes: %+v %v", a, err)
		}
		if err := b.Copy(ctx, "dir/b", "dir/a", nil); err != nil {
			t.Fatal(err)
		}
		objs, _, err := b.ListPage(ctx, blob.FirstPageToken, 10, &blob.ListOptions{Prefix: "dir/"})
		if err != nil || len(objs) != 2 || objs[0].Key != "dir/a" || objs[1].Key != "dir/b" {
			t.Fatalf("list: %v %v", objs, err)
		}
		dirs, _, err := b.ListPage(ctx, blob.FirstPageToken, 10, &blob.ListOptions{Delimiter: "/"})
		if err != nil || len(dirs) != 1 || !dirs[0].IsDir || dirs[0].Key != "dir/" {
			t.Fatalf("delimited list: %v %v", dirs, err)
		}
		if err := b.Delete(ctx, "dir/b"); err != nil {
			t.Fatal(err)
		}
		_, err = b.NewReader(ctx, "dir/b", nil)
		if gcerrors.Code(err) != gcerrors.NotFound {
			t.Fatalf("reading a deleted object: %v", err)
		}
		if gcerrors.Code(b.Delete(ctx, "dir/b")) != gcerrors.NotFound {
			t.Fatal("deleting a missing object is not NotFound")
		}
		var got2 *Injector
		if !b.As(&got2) || got2 != f {
			t.Fatal("As does not expose the injector")
		}
		if f.Summary() != "none" || f.Ops(OpWrite) != 1 || f.Ops(OpRead) != 3 {
			t.Fatalf("summary %s, writes %d, reads %d", f.Summary(), f.Ops(OpWrite), f.Ops(OpRead))
		}
	})
	// fileblob's *os.File reaches BeforeWrite through the wrapper.
	inner := backends["file"](t)
	b := wrap(t, inner, Options{}).Bucket()
	var file *os.File
	if err := b.WriteAll(context.Background(), "k", []byte("x"), &blob.WriterOptions{BeforeWrite: func(as func(any) bool) error {
		as(&file)
		return nil
	}}); err != nil || file == nil {
		t.Fatalf("BeforeWrite saw no *os.File (%v)", err)
	}
}

// Every failed write, wherever the fault strikes (at the start, midway, at
// Close), leaves no object behind, and the error says what happened:
// gcerrors' code, and errors.Is for a full disk and a short write.
func TestFailedWritesPublishNothing(t *testing.T) {
	cases := []struct {
		kind Kind
		code gcerrors.ErrorCode
		is   error
		text string
	}{
		{Transient, gcerrors.Internal, nil, "connection reset"},
		{Permanent, gcerrors.PermissionDenied, nil, "access denied"},
		{ShortWrite, gcerrors.Internal, io.ErrShortWrite, "short write"},
		{NoSpace, gcerrors.ResourceExhausted, syscall.ENOSPC, "no space left on device"},
	}
	forEachBackend(t, func(t *testing.T, inner *blob.Bucket) {
		for _, c := range cases {
			t.Run(c.kind.String(), func(t *testing.T) {
				f := wrap(t, inner, Options{Seed: 7, Rules: []Rule{{Kind: c.kind, Rate: 1}}})
				places := map[string]bool{}
				for i := range 40 {
					key := fmt.Sprintf("%s/obj-%02d", c.kind, i)
					n, err := put(context.Background(), f.Bucket(), key, payload(20<<10))
					if err == nil {
						t.Fatalf("write %d of %s succeeded", i, key)
					}
					if gcerrors.Code(err) != c.code || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), key) {
						t.Fatalf("%s: code %v, error %v", key, gcerrors.Code(err), err)
					}
					if c.kind == ShortWrite && n >= 20<<10 {
						t.Fatalf("short write accepted %d bytes", n)
					}
					noObject(t, inner, key)
					ev := f.Events()[i]
					places[strings.Fields(ev.Detail)[0]] = true
				}
				if f.Fired(c.kind) != 40 {
					t.Fatalf("fired %d, want 40", f.Fired(c.kind))
				}
				// The seed spreads the faults over their places.
				want := []string{"after", "at"}
				if c.kind == ShortWrite {
					want = want[:1] // a short write is always midway
				}
				for _, w := range want {
					if !places[w] {
						t.Fatalf("no fault struck %q…: %v", w, places)
					}
				}
			})
		}
	})
}

// A lost acknowledgement publishes the whole object and still fails;
// a vanishing write succeeds and leaves nothing.
func TestLostAckAndVanishingWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner *blob.Bucket) {
		ctx := context.Background()
		f := wrap(t, inner, Options{Seed: 3, Rules: []Rule{
			{Kind: LostAck, Keys: "^ack/", Rate: 1},
			{Kind: Vanish, Ops: OpWrite, Keys: "^gone/", Rate: 1},
		}})
		data := payload(30 << 10)
		_, err := put(ctx, f.Bucket(), "ack/x", data)
		if err == nil || gcerrors.Code(err) != gcerrors.Internal || !strings.Contains(err.Error(), "ack/x") {
			t.Fatalf("lost ack: %v", err)
		}
		if got, err := inner.ReadAll(ctx, "ack/x"); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("a lost acknowledgement must leave the object written: %v", err)
		}
		if _, err := put(ctx, f.Bucket(), "gone/y", data); err != nil {
			t.Fatal(err)
		}
		noObject(t, inner, "gone/y")
		if f.Fired(LostAck) != 1 || f.Fired(Vanish) != 1 {
			t.Fatal(f.Summary())
		}
	})
}

// An object that vanishes when read is NotFound then and afterwards, in
// the inner bucket too; attributes see it vanish the same way.
func TestVanishOnRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner *blob.Bucket) {
		ctx := context.Background()
		for _, k := range []string{"a/manifest.json", "a/chunk", "b/manifest.json"} {
			if err := inner.WriteAll(ctx, k, []byte("data"), nil); err != nil {
				t.Fatal(err)
			}
		}
		f := wrap(t, inner, Options{Rules: []Rule{{Kind: Vanish, Keys: `^a/manifest\.json$`, Rate: 1}}})
		b := f.Bucket()
		if _, err := b.ReadAll(ctx, "a/manifest.json"); gcerrors.Code(err) != gcerrors.NotFound || !strings.Contains(err.Error(), "vanished") {
			t.Fatalf("read: %v", err)
		}
		if ok, err := inner.Exists(ctx, "a/manifest.json"); ok || err != nil {
			t.Fatal("the vanished object is still in the inner bucket")
		}
		if ok, err := b.Exists(ctx, "a/manifest.json"); ok || err != nil {
			t.Fatalf("exists: %v %v", ok, err)
		}
		for _, k := range []string{"a/chunk", "b/manifest.json"} {
			if _, err := b.ReadAll(ctx, k); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
		}
	})
}

// A bit flip changes exactly one bit of what a read returns. Sticky flips
// are bit rot: the same bit on every read, of whole objects and of ranges
// that cover it; others strike each read afresh. The stored object is never
// changed.
func TestBitFlips(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner *blob.Bucket) {
		ctx := context.Background()
		data := payload(64 << 10)
		if err := inner.WriteAll(ctx, "rot", data, nil); err != nil {
			t.Fatal(err)
		}
		if err := inner.WriteAll(ctx, "flaky", data, nil); err != nil {
			t.Fatal(err)
		}
		f := wrap(t, inner, Options{Seed: 11, Rules: []Rule{
			{Kind: BitFlip, Keys: "^rot$", Rate: 1, Sticky: true},
			{Kind: BitFlip, Keys: "^flaky$", Rate: 1},
		}})
		b := f.Bucket()
		diff := func(got []byte, off int) int {
			t.Helper()
			if len(got) != len(data)-off && off == 0 {
				t.Fatalf("read %d bytes of %d", len(got), len(data))
			}
			at := -1
			for i := range got {
				if d := got[i] ^ data[off+i]; d != 0 {
					if at >= 0 || bits.OnesCount8(d) != 1 {
						t.Fatalf("more than one bit differs (byte %d and %d)", at, off+i)
					}
					at = off + i
				}
			}
			if at < 0 {
				t.Fatal("no bit was flipped")
			}
			return at
		}
		first, _ := b.ReadAll(ctx, "rot")
		at := diff(first, 0)
		for range 3 {
			again, _ := b.ReadAll(ctx, "rot")
			if !bytes.Equal(again, first) {
				t.Fatal("sticky rot differs between reads")
			}
		}
		// A range covering the rotten byte sees it; one that does not, does not.
		r, _ := b.NewRangeReader(ctx, "rot", int64(at-10), 20, nil)
		part, _ := io.ReadAll(r)
		r.Close()
		if diff(part, at-10) != at {
			t.Fatal("the range read saw rot elsewhere")
		}
		other := 0
		if at < len(data)/2 {
			other = len(data) - 100
		}
		r, _ = b.NewRangeReader(ctx, "rot", int64(other), 100, nil)
		part, _ = io.ReadAll(r)
		r.Close()
		if !bytes.Equal(part, data[other:other+100]) {
			t.Fatal("a range that does not cover the rot is damaged")
		}
		positions := map[int]bool{}
		for range 8 {
			got, _ := b.ReadAll(ctx, "flaky")
			positions[diff(got, 0)] = true
		}
		if len(positions) < 2 {
			t.Fatalf("flaky flips hit the same byte each time: %v", positions)
		}
		if stored, _ := inner.ReadAll(ctx, "rot"); !bytes.Equal(stored, data) {
			t.Fatal("bit flips changed the stored object")
		}
		if f.Fired(BitFlip) != 4+1+8 {
			t.Fatalf("bit flips fired %d times", f.Fired(BitFlip))
		}
	})
}

// Read errors strike at the start or midway; either way the error names
// the key and gcerrors sees it as Internal (retryable) or PermissionDenied.
func TestReadErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, inner *blob.Bucket) {
		ctx := context.Background()
		for i := range 30 {
			if err := inner.WriteAll(ctx, fmt.Sprintf("k%02d", i), payload(8<<10), nil); err != nil {
				t.Fatal(err)
			}
		}
		f := wrap(t, inner, Options{Seed: 5, Rules: []Rule{{Kind: Transient, Ops: OpRead, Rate: 1}}})
		places := map[string]bool{}
		for i := range 30 {
			key := fmt.Sprintf("k%02d", i)
			_, err := f.Bucket().ReadAll(ctx, key)
			if gcerrors.Code(err) != gcerrors.Internal || !strings.Contains(err.Error(), key) {
				t.Fatalf("%s: %v", key, err)
			}
			places[strings.Fields(f.Events()[i].Detail)[0]] = true
		}
		if !places["at"] || !places["after"] {
			t.Fatalf("read errors struck only %v", places)
		}
	})
}

// The same seed replays the same faults on the same objects; another seed
// picks others. Keys, Ops, After and Limit narrow what a rule strikes.
func TestDeterministicAndTargeted(t *testing.T) {
	run := func(seed uint64, rules ...Rule) (string, *Injector) {
		inner := memblob.OpenBucket(nil)
		f := wrap(t, inner, Options{Seed: seed, Rules: rules})
		ctx := context.Background()
		for i := range 20 {
			for _, k := range []string{fmt.Sprintf("db/chunks/%08d", i), fmt.Sprintf("db/%d/manifest.json", i)} {
				if _, err := put(ctx, f.Bucket(), k, payload(5000)); err == nil {
					_, _ = f.Bucket().ReadAll(ctx, k)
				}
			}
		}
		var evs []string
		for _, e := range f.Events() {
			evs = append(evs, e.String())
		}
		return strings.Join(evs, "\n"), f
	}
	rule := Rule{Kind: Transient, Rate: 0.3}
	a, _ := run(42, rule)
	b, _ := run(42, rule)
	c, _ := run(43, rule)
	if a == "" || a != b {
		t.Fatalf("seed 42 did not replay:\n%s\n--\n%s", a, b)
	}
	if a == c {
		t.Fatal("seeds 42 and 43 struck the same faults")
	}

	got, f := run(1, Rule{Kind: BitFlip, Keys: `/chunks/`, Rate: 1})
	if f.Fired(BitFlip) != 20 || strings.Contains(got, "manifest") {
		t.Fatalf("chunk-only flips: %d\n%s", f.Fired(BitFlip), got)
	}
	_, f = run(1, Rule{Kind: Permanent, Ops: OpWrite, Keys: `manifest\.json$`, Rate: 1, After: 5, Limit: 3})
	evs := f.Events()
	if len(evs) != 3 || f.Fired(Permanent) != 3 || f.Ops(OpWrite) != 40 {
		t.Fatalf("after 5, limit 3: %v", evs)
	}
	for _, e := range evs {
		if e.Op != OpWrite || !strings.HasSuffix(e.Key, "manifest.json") || e.Key < "db/5/" {
			t.Fatalf("struck %v", e)
		}
	}
	// Sticky with a limit afflicts that many keys, on every operation.
	_, f = run(9, Rule{Kind: Transient, Ops: OpRead, Rate: 1, Sticky: true, Limit: 2})
	if f.Fired(Transient) != 2 {
		t.Fatalf("sticky limit 2 fired %d", f.Fired(Transient))
	}
}

// Latency delays operations and gives way to a cancelled context; turning
// the injector off lets everything through uncounted.
func TestLatencyAndDisable(t *testing.T) {
	inner := memblob.OpenBucket(nil)
	f := wrap(t, inner, Options{Rules: []Rule{{Kind: Latency, Rate: 1, Delay: time.Millisecond}}})
	ctx := context.Background()
	if err := f.Bucket().WriteAll(ctx, "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bucket().ReadAll(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if f.Fired(Latency) != 2 {
		t.Fatalf("latency fired %d times", f.Fired(Latency))
	}
	slow := wrap(t, inner, Options{Rules: []Rule{{Kind: Latency, Rate: 1, Delay: time.Hour}}})
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := slow.Bucket().ReadAll(cancelled, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}
	broken := wrap(t, inner, Options{Rules: []Rule{{Kind: Permanent, Rate: 1}}})
	broken.SetEnabled(false)
	if _, err := broken.Bucket().ReadAll(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	broken.SetEnabled(true)
	if _, err := broken.Bucket().ReadAll(ctx, "k"); gcerrors.Code(err) != gcerrors.PermissionDenied {
		t.Fatalf("enabled again: %v", err)
	}
	if broken.Ops(OpRead) != 1 {
		t.Fatalf("operations while disabled were counted: %d", broken.Ops(OpRead))
	}
}

func TestRuleValidation(t *testing.T) {
	inner := memblob.OpenBucket(nil)
	defer inner.Close()
	for _, r := range []Rule{
		{Kind: BitFlip, Ops: OpWrite, Rate: 1},
		{Kind: NoSpace, Ops: OpRead, Rate: 1},
		{Kind: Transient, Rate: 0},
		{Kind: Transient, Rate: 1.5},
		{Kind: Latency, Rate: 1},
		{Kind: Transient, Rate: 1, Keys: "("},
		{Kind: 99, Rate: 1},
	} {
		if _, err := New(inner, Options{Rules: []Rule{r}}); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

// fault+<scheme>:// URLs open the inner URL with the injector's parameters
// taken out, and the injector is reachable with As.
func TestURLOpener(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := blob.OpenBucket(ctx, "fault+file://"+filepath.ToSlash(dir)+"?seed=3&nospace=1&keys=%5Efull%2F&no_tmp_dir=true")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var f *Injector
	if !b.As(&f) || f == nil {
		t.Fatal("no injector behind the URL")
	}
	if _, err := put(ctx, b, "full/x", payload(10000)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("nospace=1 on full/: %v", err)
	}
	if _, err := put(ctx, b, "ok/x", payload(10000)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ok", "x")); err != nil {
		t.Fatalf("the inner file bucket is not at %s: %v", dir, err)
	}

	m, err := blob.OpenBucket(ctx, "fault+mem://?bitflip=1&sticky=true&latency=1&delay=1ms")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.WriteAll(ctx, "k", payload(100), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := m.ReadAll(ctx, "k")
	if bytes.Equal(got, payload(100)) {
		t.Fatal("bitflip=1 flipped nothing")
	}
	if !m.As(&f) || f.Fired(BitFlip) != 1 || f.Fired(Latency) != 2 {
		t.Fatalf("mem injector: %v", f.Summary())
	}
	for _, bad := range []string{"fault+mem://?seed=x", "fault+mem://?transient=2", "fault+mem://?delay=soon"} {
		if _, err := blob.OpenBucket(ctx, bad); err == nil {
			t.Errorf("%s opened", bad)
		}
	}
	if _, _, err := parseQuery(url.Values{"keys": {"("}, "transient": {"1"}}); err != nil {
		t.Fatal("parseQuery compiles nothing; New does")
	}
}

// A fault that cannot strike (the object to read is missing) does not
// count towards Limit: the next read of an object gets it.
func TestLimitCountsFaultsThatStruck(t *testing.T) {
	ctx := context.Background()
	inner := memblob.OpenBucket(nil)
	defer inner.Close()
	data := payload(1000)
	if err := inner.WriteAll(ctx, "there", data, nil); err != nil {
		t.Fatal(err)
	}
	f := wrap(t, inner, Options{Rules: []Rule{{Kind: BitFlip, Rate: 1, Limit: 1}}})
	if _, err := f.Bucket().ReadAll(ctx, "missing"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("missing: %v", err)
	}
	if got, _ := f.Bucket().ReadAll(ctx, "there"); bytes.Equal(got, data) {
		t.Fatal("the flip was spent on a missing object")
	}
	if got, _ := f.Bucket().ReadAll(ctx, "there"); !bytes.Equal(got, data) {
		t.Fatal("limit 1 flipped twice")
	}
}
