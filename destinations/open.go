// Package destinations opens Bulwark's destinations: the gocloud.dev blob
// buckets that backups are written to, with their write-once (S3 Object
// Lock) setting applied to every object written through the bucket.
package destinations

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// Object Lock modes of a Lock.
const (
	// LockGovernance keeps objects from being deleted or overwritten except
	// by principals allowed to bypass governance retention.
	LockGovernance = "governance"
	// LockCompliance keeps objects from being deleted or overwritten by
	// anyone, the account root user included, until their retention ends.
	LockCompliance = "compliance"
)

// Lock is the immutability setting of a destination.
type Lock struct {
	// Mode is "" (no lock), LockGovernance or LockCompliance: the S3
	// Object Lock mode of every object written.
	Mode string
	// Period is the retention period of every object written, counted
	// from the time of writing. It must be positive when Mode is set.
	Period time.Duration
}

// Destination is a named place where backups are stored.
type Destination struct {
	// Name names the destination in messages, e.g. "local", "nas", "cloud".
	Name string
	// URL is the gocloud.dev blob URL of the destination's bucket.
	URL string
	// Lock is the destination's immutability setting.
	Lock Lock
}

// Open opens the bucket of d with the blob drivers linked into the program
// (honouring the URL's query parameters as blob.OpenBucket does).
//
// When d.Lock.Mode is set, d must be an s3:// destination, and every object
// written through the returned bucket (NewWriter, WriteAll, Upload and Copy,
// single-part or multipart) is sent with S3 Object Lock headers: the mode
// and a retain-until date of the time of the request plus d.Lock.Period. A
// request that already asks for a stronger mode or a later date keeps it.
// The S3 bucket must have Object Lock enabled, or S3 rejects the writes;
// S3 also requires a checksum on locked uploads, which the SDK sends unless
// the URL sets request_checksum_calculation=when_required.
//
// A lock on a destination that cannot lock (file, mem, gs, azblob, ...) is
// an error naming the destination.
func Open(ctx context.Context, d Destination) (*blob.Bucket, error) {
	if err := d.Lock.validate(d.Name); err != nil {
		return nil, err
	}
	if d.Lock.Mode == "" {
		b, err := blob.OpenBucket(ctx, d.URL)
		if err != nil {
			return nil, fmt.Errorf("open destination %q: %w", d.Name, err)
		}
		return b, nil
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return nil, fmt.Errorf("destination %q: %w", d.Name, err)
	}
	if u.Scheme != s3blob.Scheme {
		return nil, fmt.Errorf("destination %q: object_lock is only supported on s3:// destinations", d.Name)
	}
	// A mux of our own, with s3 only, so that the URL's prefix and key
	// parameters are applied exactly as the default mux applies them.
	mux := new(blob.URLMux)
	mux.RegisterBucket(s3blob.Scheme, &lockingOpener{lock: d.Lock})
	b, err := mux.OpenBucket(ctx, d.URL)
	if err != nil {
		return nil, fmt.Errorf("open destination %q: %w", d.Name, err)
	}
	return b, nil
}

// validate checks a lock's fields; name names the destination in errors.
func (l Lock) validate(name string) error {
	switch l.Mode {
	case "":
		if l.Period != 0 {
			return fmt.Errorf("destination %q: object_lock period %v is set without a mode (governance or compliance)", name, l.Period)
		}
	case LockGovernance, LockCompliance:
		if l.Period <= 0 {
			return fmt.Errorf("destination %q: object_lock %s needs a positive period, not %v", name, l.Mode, l.Period)
		}
	default:
		return fmt.Errorf("destination %q: object_lock mode %q is neither %q nor %q", name, l.Mode, LockGovernance, LockCompliance)
	}
	return nil
}

// s3Mode returns the S3 name of the lock's mode.
func (l Lock) s3Mode() types.ObjectLockMode {
	return types.ObjectLockMode(strings.ToUpper(l.Mode))
}

// lockingOpener opens s3:// URLs like s3blob's own opener, with an S3
// client that adds the Object Lock headers to every object write.
type lockingOpener struct {
	lock Lock
}

// OpenBucketURL implements blob.BucketURLOpener.
//
// s3blob has no option to adjust the client its URLOpener builds from the
// URL, and blob.WriterOptions.BeforeWrite only reaches writes whose caller
// passes it. So the bucket is opened by s3blob's URLOpener (all of the
// URL's parameters handled by s3blob and gocloud.dev/aws, nothing parsed
// here), its client is cloned with the lock middleware added, and the
// bucket is reopened on the clone with the options the URLOpener derived.
func (o *lockingOpener) OpenBucketURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	var plain s3blob.URLOpener
	b, err := plain.OpenBucketURL(ctx, u)
	if err != nil {
		return nil, err
	}
	var client *s3.Client
	ok := b.As(&client)
	if err := b.Close(); err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("s3blob bucket does not expose its *s3.Client")
	}
	locking := s3.New(client.Options(), func(so *s3.Options) {
		so.APIOptions = append(so.APIOptions, addObjectLock(o.lock, time.Now))
	})
	return s3blob.OpenBucket(ctx, locking, u.Host, &plain.Options)
}
