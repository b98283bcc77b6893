package destinations_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/bulwark-dr/bulwark/destinations"
	"github.com/bulwark-dr/bulwark/destinations/destinationtest"
)

const (
	lockPeriod = 30 * 24 * time.Hour
	// partSize is the BufferSize of large writes: S3's minimum part size,
	// so that largeSize goes multipart in four parts.
	partSize  = 5 * destinationtest.MiB
	largeSize = 20 * destinationtest.MiB
)

// open opens d and closes the bucket when the test ends.
func open(t *testing.T, d destinations.Destination) *blob.Bucket {
	t.Helper()
	b, err := destinations.Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open(%+v): %v", d, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close %s: %v", d.Name, err)
		}
	})
	return b
}

// writeLarge streams largeSize bytes to key through NewWriter in parts of
// partSize, which s3blob sends as a multipart upload.
func writeLarge(t *testing.T, b *blob.Bucket, key string) {
	t.Helper()
	w, err := b.NewWriter(t.Context(), key, &blob.WriterOptions{
		ContentType: "application/octet-stream", DisableContentTypeDetection: true, BufferSize: partSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	piece := destinationtest.RandomBytes(2, destinationtest.PieceSize)
	for range largeSize / destinationtest.PieceSize {
		if _, err := w.Write(piece); err != nil {
			_ = w.Close()
			t.Fatalf("write %s: %v", key, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer of %s: %v", key, err)
	}
}

// requestsFor returns the requests of operation op on key that srv received.
func requestsFor(srv *destinationtest.S3Server, op, key string) []destinationtest.S3Request {
	var out []destinationtest.S3Request
	for _, r := range srv.Requests() {
		if r.Op() == op && r.Key() == key {
			out = append(out, r)
		}
	}
	return out
}

// TestObjectLockReachesTheS3Server writes through a locked destination and
// checks, at the S3 server, that every request creating an object carried
// the Object Lock mode and a retain-until date of the time of writing plus
// the period: a single PutObject, the CreateMultipartUpload of a streamed
// multipart write, and a CopyObject.
func TestObjectLockReachesTheS3Server(t *testing.T) {
	for _, tc := range []struct{ mode, header string }{
		{destinations.LockCompliance, "COMPLIANCE"},
		{destinations.LockGovernance, "GOVERNANCE"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			srv := destinationtest.StartS3(t)
			b := open(t, destinations.Destination{
				Name: "cloud", URL: srv.URL,
				Lock: destinations.Lock{Mode: tc.mode, Period: lockPeriod},
			})
			ctx := t.Context()

			before := time.Now()
			if err := b.WriteAll(ctx, "lock/small", []byte("small"), nil); err != nil {
				t.Fatal(err)
			}
			writeLarge(t, b, "lock/large")
			if err := b.Copy(ctx, "lock/copy", "lock/small", nil); err != nil {
				t.Fatal(err)
			}
			after := time.Now()

			if n := len(requestsFor(srv, "UploadPart", "lock/large")); n != largeSize/partSize {
				t.Fatalf("lock/large was sent in %d parts, want %d: the test no longer exercises multipart uploads", n, largeSize/partSize)
			}
			if n := len(requestsFor(srv, "PutObject", "lock/large")); n != 0 {
				t.Fatalf("lock/large was sent by PutObject %d times; want a multipart upload only", n)
			}
			for _, w := range []struct{ op, key string }{
				{"PutObject", "lock/small"},
				{"CreateMultipartUpload", "lock/large"},
				{"CopyObject", "lock/copy"},
			} {
				reqs := requestsFor(srv, w.op, w.key)
				if len(reqs) != 1 {
					t.Fatalf("%s %s: the server received %d requests, want 1", w.op, w.key, len(reqs))
				}
				h := reqs[0].Header
				if got := h.Get("X-Amz-Object-Lock-Mode"); got != tc.header {
					t.Errorf("%s %s: x-amz-object-lock-mode = %q, want %q", w.op, w.key, got, tc.header)
				}
				raw := h.Get("X-Amz-Object-Lock-Retain-Until-Date")
				until, err := time.Parse(time.RFC3339Nano, raw)
				if err != nil {
					t.Errorf("%s %s: x-amz-object-lock-retain-until-date = %q: %v", w.op, w.key, raw, err)
					continue
				}
				lo, hi := before.Add(lockPeriod).Add(-time.Second), after.Add(lockPeriod).Add(time.Second)
				if until.Before(lo) || until.After(hi) {
					t.Errorf("%s %s: retain until %v, want between %v and %v", w.op, w.key, until, lo, hi)
				}
			}
			// gofakes3 keeps the x-amz-* headers of a write and returns them
			// on HEAD, so LockedUntil reads back the date that was sent.
			for _, key := range []string{"lock/small", "lock/large", "lock/copy"} {
				until, err := destinations.LockedUntil(ctx, b, key)
				if err != nil {
					t.Fatal(err)
				}
				if lo, hi := before.Add(lockPeriod).Add(-time.Second), after.Add(lockPeriod).Add(time.Second); until.Before(lo) || until.After(hi) {
					t.Errorf("LockedUntil(%s) = %v, want between %v and %v", key, until, lo, hi)
				}
			}
			// Parts and completion carry no lock of their own on S3.
			for _, r := range requestsFor(srv, "UploadPart", "lock/large") {
				if v := r.Header.Get("X-Amz-Object-Lock-Mode"); v != "" {
					t.Errorf("UploadPart carried x-amz-object-lock-mode %q", v)
				}
			}
		})
	}
}

// TestObjectLockKeepsAStrongerRequest writes through a governance
// destination with a write that asks, through s3blob's BeforeWrite, for
// compliance and a later date: the write keeps its own, stronger lock; a
// write asking for less gets the destination's.
func TestObjectLockKeepsAStrongerRequest(t *testing.T) {
	srv := destinationtest.StartS3(t)
	b := open(t, destinations.Destination{
		Name: "cloud", URL: srv.URL,
		Lock: destinations.Lock{Mode: destinations.LockGovernance, Period: lockPeriod},
	})
	asking := func(mode tmtypes.ObjectLockMode, until time.Time) *blob.WriterOptions {
		return &blob.WriterOptions{BeforeWrite: func(as func(any) bool) error {
			var in *transfermanager.UploadObjectInput
			if !as(&in) {
				t.Fatal("s3blob's BeforeWrite does not expose *transfermanager.UploadObjectInput")
			}
			in.ObjectLockMode, in.ObjectLockRetainUntilDate = mode, &until
			return nil
		}}
	}
	later := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := b.WriteAll(t.Context(), "stronger", []byte("x"), asking(tmtypes.ObjectLockModeCompliance, later)); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := b.WriteAll(t.Context(), "weaker", []byte("x"), asking(tmtypes.ObjectLockModeGovernance, before)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		key, mode string
		lo, hi    time.Time
	}{
		{"stronger", "COMPLIANCE", later, later},
		{"weaker", "GOVERNANCE", before.Add(lockPeriod).Add(-time.Second), time.Now().Add(lockPeriod).Add(time.Second)},
	} {
		reqs := requestsFor(srv, "PutObject", w.key)
		if len(reqs) != 1 {
			t.Fatalf("PutObject %s: the server received %d requests, want 1", w.key, len(reqs))
		}
		if got := reqs[0].Header.Get("X-Amz-Object-Lock-Mode"); got != w.mode {
			t.Errorf("%s: x-amz-object-lock-mode = %q, want %q", w.key, got, w.mode)
		}
		raw := reqs[0].Header.Get("X-Amz-Object-Lock-Retain-Until-Date")
		until, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil || until.Before(w.lo) || until.After(w.hi) {
			t.Errorf("%s: x-amz-object-lock-retain-until-date = %q (%v), want between %v and %v", w.key, raw, err, w.lo, w.hi)
		}
	}
}

// TestNoLockSendsNoObjectLockHeaders writes small, large and copied objects
// through an unlocked S3 destination: no request may carry Object Lock
// headers.
func TestNoLockSendsNoObjectLockHeaders(t *testing.T) {
	srv := destinationtest.StartS3(t)
	b := open(t, destinations.Destination{Name: "cloud", URL: srv.URL})
	ctx := t.Context()
	if err := b.WriteAll(ctx, "plain/small", []byte("small"), nil); err != nil {
		t.Fatal(err)
	}
	writeLarge(t, b, "plain/large")
	if err := b.Copy(ctx, "plain/copy", "plain/small", nil); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(requestsFor(srv, "CreateMultipartUpload", "plain/large")) != 1 || len(requestsFor(srv, "PutObject", "plain/small")) != 1 {
		t.Fatalf("the server did not receive the expected writes: %d requests", len(reqs))
	}
	for _, r := range reqs {
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-object-lock") {
				t.Errorf("%s %s carried %s: %q", r.Method, r.Path, k, v)
			}
		}
	}
}

// TestLockedOpenHonoursURLParameters opens a locked destination whose URL
// has a prefix parameter: the keys reach the server under the prefix, as
// with blob.OpenBucket, and still carry the lock.
func TestLockedOpenHonoursURLParameters(t *testing.T) {
	srv := destinationtest.StartS3(t)
	b := open(t, destinations.Destination{
		Name: "cloud", URL: srv.URL + "&prefix=backups/",
		Lock: destinations.Lock{Mode: destinations.LockCompliance, Period: lockPeriod},
	})
	if err := b.WriteAll(t.Context(), "k", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	reqs := requestsFor(srv, "PutObject", "backups/k")
	if len(reqs) != 1 {
		t.Fatalf("PutObject backups/k: the server received %d requests, want 1 (requests: %+v)", len(reqs), srv.Requests())
	}
	if got := reqs[0].Header.Get("X-Amz-Object-Lock-Mode"); got != "COMPLIANCE" {
		t.Errorf("x-amz-object-lock-mode = %q, want COMPLIANCE", got)
	}
}

// TestLockNeedsS3 opens destinations that cannot lock, and locks that are
// not valid: each is an error naming the destination.
func TestLockNeedsS3(t *testing.T) {
	lock := destinations.Lock{Mode: destinations.LockCompliance, Period: lockPeriod}
	for _, tc := range []struct {
		name string
		d    destinations.Destination
		want string
	}{
		{"file", destinations.Destination{Name: "nas", URL: fileURL(t.TempDir()), Lock: lock},
			`destination "nas": object_lock is only supported on s3:// destinations`},
		{"mem", destinations.Destination{Name: "local", URL: "mem://", Lock: lock},
			`destination "local": object_lock is only supported on s3:// destinations`},
		{"unknown mode", destinations.Destination{Name: "cloud", URL: "s3://b", Lock: destinations.Lock{Mode: "worm", Period: lockPeriod}},
			`destination "cloud": object_lock mode "worm" is neither "governance" nor "compliance"`},
		{"no period", destinations.Destination{Name: "cloud", URL: "s3://b", Lock: destinations.Lock{Mode: destinations.LockGovernance}},
			`destination "cloud": object_lock governance needs a positive period, not 0s`},
		{"period without mode", destinations.Destination{Name: "cloud", URL: "s3://b", Lock: destinations.Lock{Period: lockPeriod}},
			`destination "cloud": object_lock period 720h0m0s is set without a mode (governance or compliance)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := destinations.Open(t.Context(), tc.d)
			if err == nil {
				_ = b.Close()
				t.Fatalf("Open(%+v) succeeded; want an error", tc.d)
			}
			if err.Error() != tc.want {
				t.Fatalf("Open(%+v) = %q, want %q", tc.d, err, tc.want)
			}
		})
	}
}

// TestDeleteRefusesLockedObjects deletes objects on an S3 destination whose
// lock is known from Bulwark's records or reported by the server.
func TestDeleteRefusesLockedObjects(t *testing.T) {
	srv := destinationtest.StartS3(t)
	locked := destinations.Destination{
		Name: "cloud", URL: srv.URL,
		Lock: destinations.Lock{Mode: destinations.LockCompliance, Period: lockPeriod},
	}
	lb := open(t, locked)
	// An unlocked bucket on the same server writes objects the server
	// reports no lock for, so that only the recorded date can lock them.
	plain := open(t, destinations.Destination{Name: "cloud", URL: srv.URL})
	ctx := t.Context()

	exists := func(key string) bool {
		t.Helper()
		ok, err := plain.Exists(ctx, key)
		if err != nil {
			t.Fatalf("Exists(%q): %v", key, err)
		}
		return ok
	}

	t.Run("recorded date in the future", func(t *testing.T) {
		const key = "backups/recorded"
		if err := plain.WriteAll(ctx, key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		recorded := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		err := destinations.Delete(ctx, locked, lb, key, now, recorded)
		if !errors.Is(err, destinations.ErrLocked) {
			t.Fatalf("Delete = %v, want ErrLocked", err)
		}
		want := `refusing to delete backups/recorded on "cloud": S3 Object Lock (compliance) keeps it until 2027-01-01T00:00:00Z`
		if err.Error() != want {
			t.Errorf("Delete error:\n got %s\nwant %s", err, want)
		}
		if !exists(key) {
			t.Fatal("a refused Delete removed the object")
		}
		if n := len(requestsFor(srv, "DeleteObject", key)); n != 0 {
			t.Fatalf("a refused Delete sent %d DeleteObject requests", n)
		}

		// Once the recorded date has passed, the object goes.
		if err := destinations.Delete(ctx, locked, lb, key, recorded.Add(time.Second), recorded); err != nil {
			t.Fatalf("Delete after the lock expired: %v", err)
		}
		if exists(key) {
			t.Fatal("Delete after the lock expired left the object")
		}
	})

	t.Run("date reported by the server", func(t *testing.T) {
		const key = "backups/reported"
		before := time.Now()
		if err := lb.WriteAll(ctx, key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		until, err := destinations.LockedUntil(ctx, lb, key)
		if err != nil {
			t.Fatal(err)
		}
		// gofakes3 keeps a PutObject's x-amz-* headers and returns them on
		// HEAD, so it reports the date that was sent.
		if until.Before(before.Add(lockPeriod).Add(-time.Second)) || until.After(time.Now().Add(lockPeriod).Add(time.Second)) {
			t.Fatalf("LockedUntil = %v, want about %v", until, before.Add(lockPeriod))
		}

		err = destinations.Delete(ctx, locked, lb, key, time.Now(), time.Time{})
		if !errors.Is(err, destinations.ErrLocked) {
			t.Fatalf("Delete = %v, want ErrLocked", err)
		}
		want := `refusing to delete backups/reported on "cloud": S3 Object Lock (compliance) keeps it until ` + until.Format(time.RFC3339)
		if err.Error() != want {
			t.Errorf("Delete error:\n got %s\nwant %s", err, want)
		}
		if !exists(key) {
			t.Fatal("a refused Delete removed the object")
		}

		if err := destinations.Delete(ctx, locked, lb, key, until.Add(time.Second), time.Time{}); err != nil {
			t.Fatalf("Delete after the lock expired: %v", err)
		}
		if exists(key) {
			t.Fatal("Delete after the lock expired left the object")
		}
	})

	t.Run("unlocked", func(t *testing.T) {
		const key = "backups/unlocked"
		if err := plain.WriteAll(ctx, key, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if until, err := destinations.LockedUntil(ctx, plain, key); err != nil || !until.IsZero() {
			t.Fatalf("LockedUntil = %v, %v; want zero, nil", until, err)
		}
		if err := destinations.Delete(ctx, locked, lb, key, time.Now(), time.Time{}); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if exists(key) {
			t.Fatal("Delete left the object")
		}
	})

	t.Run("missing", func(t *testing.T) {
		err := destinations.Delete(ctx, locked, lb, "backups/missing", time.Now(), time.Time{})
		if gcerrors.Code(err) != gcerrors.NotFound {
			t.Fatalf("Delete of a missing object = %v, want NotFound", err)
		}
	})
}

// TestOpenWithoutLock opens file:// and mem:// destinations and runs a
// round trip: write, read back, no lock reported, delete.
func TestOpenWithoutLock(t *testing.T) {
	for _, d := range []destinations.Destination{
		{Name: "nas", URL: fileURL(filepath.Join(t.TempDir(), "destination"))},
		{Name: "local", URL: "mem://"},
	} {
		t.Run(d.Name, func(t *testing.T) {
			ctx := t.Context()
			b := open(t, d)
			data := destinationtest.RandomBytes(3, 4096)
			if err := b.WriteAll(ctx, "round/trip", data, nil); err != nil {
				t.Fatal(err)
			}
			got, err := b.ReadAll(ctx, "round/trip")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
			}
			if until, err := destinations.LockedUntil(ctx, b, "round/trip"); err != nil || !until.IsZero() {
				t.Fatalf("LockedUntil = %v, %v; want zero, nil", until, err)
			}
			if err := destinations.Delete(ctx, d, b, "round/trip", time.Now(), time.Time{}); err != nil {
				t.Fatal(err)
			}
			if ok, err := b.Exists(ctx, "round/trip"); ok || err != nil {
				t.Fatalf("Exists after Delete = %v, %v; want false, nil", ok, err)
			}
		})
	}
}
