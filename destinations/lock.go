package destinations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ErrLocked is returned, wrapped in an error that names the key, the
// destination and the date, by Delete when an object is still locked.
var ErrLocked = errors.New("object is locked")

// LockedUntil reports the retain-until date of the object at key when the
// destination reports one (S3 HeadObject's ObjectLockRetainUntilDate), and
// the zero time otherwise: no lock, or a destination that cannot lock. A
// missing object is an error with gcerrors.NotFound.
func LockedUntil(ctx context.Context, b *blob.Bucket, key string) (time.Time, error) {
	_, until, err := reportedLock(ctx, b, key)
	return until, err
}

// Delete deletes the object at key from b, the bucket of d, unless it is
// locked past now: by recordedUntil, the retain-until date Bulwark recorded
// when it wrote the object (zero if none), or by the retain-until date the
// destination reports. A locked object is left alone and Delete returns an
// error wrapping ErrLocked, e.g.
//
//	refusing to delete <key> on "cloud": S3 Object Lock (compliance) keeps it until 2027-01-01T00:00:00Z
//
// On a versioned S3 bucket (Object Lock requires versioning) a plain delete
// of a locked object succeeds by adding a delete marker: the data stays,
// billed, but disappears from listings. Delete refuses so that Bulwark's
// view of a destination never hides what the destination still keeps.
//
// When the lock cannot be read, Delete returns that error and deletes
// nothing. A missing object is an error with gcerrors.NotFound, as from
// blob.Bucket.Delete.
func Delete(ctx context.Context, d Destination, b *blob.Bucket, key string, now, recordedUntil time.Time) error {
	mode, until, err := reportedLock(ctx, b, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete %s on %q: %w", key, d.Name, err)
	}
	if mode == "" {
		mode = d.Lock.Mode
	}
	if recordedUntil.After(until) {
		until = recordedUntil
	}
	if until.After(now) {
		return &lockedError{key: key, destination: d.Name, mode: mode, until: until}
	}
	if err := b.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s on %q: %w", key, d.Name, err)
	}
	return nil
}

// reportedLock returns the Object Lock mode (lower case) and retain-until
// date that the destination reports for key, if any.
func reportedLock(ctx context.Context, b *blob.Bucket, key string) (mode string, until time.Time, err error) {
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read object lock of %s: %w", key, err)
	}
	var head s3.HeadObjectOutput
	if !attrs.As(&head) || head.ObjectLockRetainUntilDate == nil {
		return "", time.Time{}, nil
	}
	return strings.ToLower(string(head.ObjectLockMode)), head.ObjectLockRetainUntilDate.UTC(), nil
}

// lockedError is the error of Delete refusing a locked object.
type lockedError struct {
	key, destination, mode string
	until                  time.Time
}

func (e *lockedError) Error() string {
	lock := "S3 Object Lock"
	if e.mode != "" {
		lock += " (" + e.mode + ")"
	}
	return fmt.Sprintf("refusing to delete %s on %q: %s keeps it until %s",
		e.key, e.destination, lock, e.until.UTC().Format(time.RFC3339))
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// addObjectLock returns an S3 client API option that sets lock on every
// request that creates an object: PutObject, CreateMultipartUpload (the
// transfer manager's multipart uploads) and CopyObject. The retain-until
// date is now() + lock.Period at the time of the request, computed once per
// request so that retries send the same date. The request's input is
// copied, never modified in place.
func addObjectLock(lock Lock, now func() time.Time) func(*middleware.Stack) error {
	mode := lock.s3Mode()
	set := middleware.InitializeMiddlewareFunc("BulwarkObjectLock", func(
		ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler,
	) (middleware.InitializeOutput, middleware.Metadata, error) {
		until := now().Add(lock.Period).UTC()
		switch p := in.Parameters.(type) {
		case *s3.PutObjectInput:
			c := *p
			c.ObjectLockMode, c.ObjectLockRetainUntilDate = atLeast(c.ObjectLockMode, c.ObjectLockRetainUntilDate, mode, until)
			in.Parameters = &c
		case *s3.CreateMultipartUploadInput:
			c := *p
			c.ObjectLockMode, c.ObjectLockRetainUntilDate = atLeast(c.ObjectLockMode, c.ObjectLockRetainUntilDate, mode, until)
			in.Parameters = &c
		case *s3.CopyObjectInput:
			c := *p
			c.ObjectLockMode, c.ObjectLockRetainUntilDate = atLeast(c.ObjectLockMode, c.ObjectLockRetainUntilDate, mode, until)
			in.Parameters = &c
		}
		return next.HandleInitialize(ctx, in)
	})
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(set, middleware.Before)
	}
}

// atLeast returns the stronger of two modes (compliance over governance)
// and the later of two retain-until dates: a request's own lock is kept
// where it goes beyond the destination's.
func atLeast(mode types.ObjectLockMode, until *time.Time, floorMode types.ObjectLockMode, floorUntil time.Time) (types.ObjectLockMode, *time.Time) {
	if mode != types.ObjectLockModeCompliance {
		mode = floorMode
	}
	if until == nil || until.Before(floorUntil) {
		until = &floorUntil
	}
	return mode, until
}
