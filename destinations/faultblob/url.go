package faultblob

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// SchemePrefix is put before a destination URL's scheme to open it through
// an Injector: fault+file:///srv/backups?seed=7&transient=0.05&bitflip=0.01.
const SchemePrefix = "fault+"

// innerSchemes are the schemes registered with SchemePrefix. The inner
// bucket is opened with blob.OpenBucket, so its driver must be linked into
// the program as usual.
var innerSchemes = []string{"file", "mem", "s3", "gs", "azblob"}

func init() {
	for _, s := range innerSchemes {
		blob.DefaultURLMux().RegisterBucket(SchemePrefix+s, &URLOpener{})
	}
}

// URLOpener opens fault+<scheme>:// URLs: the URL without the prefix and
// without the parameters below is opened as the inner bucket, and every
// rule the parameters describe applies to all its operations.
//
//	seed=N                      Options.Seed
//	keys=REGEXP                 Rule.Keys of every rule
//	sticky=true                 Rule.Sticky of every rule
//	transient=R permanent=R short_write=R nospace=R lost_ack=R vanish=R bitflip=R
//	                            a rule of that kind with rate R
//	latency=R&delay=D           a latency rule of rate R adding D (a Go duration)
//
// The Injector is reached with bucket.As(&injector) (a **Injector).
type URLOpener struct{}

var urlKinds = map[string]Kind{
	"transient": Transient, "permanent": Permanent, "short_write": ShortWrite, "nospace": NoSpace,
	"lost_ack": LostAck, "vanish": Vanish, "bitflip": BitFlip, "latency": Latency,
}

// OpenBucketURL implements blob.BucketURLOpener.
func (*URLOpener) OpenBucketURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	opts, rest, err := parseQuery(u.Query())
	if err != nil {
		return nil, fmt.Errorf("open bucket %v: %w", u, err)
	}
	inner := *u
	inner.Scheme = strings.TrimPrefix(u.Scheme, SchemePrefix)
	inner.RawQuery = rest.Encode()
	s := inner.String()
	if inner.Host == "" && !strings.HasPrefix(s, inner.Scheme+"://") {
		// url.URL drops the empty authority: keep mem:// and file:///x whole.
		s = inner.Scheme + "://" + strings.TrimPrefix(s, inner.Scheme+":")
	}
	b, err := blob.OpenBucket(ctx, s)
	if err != nil {
		return nil, err
	}
	f, err := New(b, opts)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return f.Bucket(), nil
}

// parseQuery takes the injector's parameters out of q and returns the
// options they describe and the parameters left for the inner bucket.
func parseQuery(q url.Values) (Options, url.Values, error) {
	var opts Options
	rest := url.Values{}
	var (
		keys   string
		sticky bool
		delay  time.Duration
	)
	type rate struct {
		kind Kind
		rate float64
	}
	var rates []rate
	for name, vals := range q {
		v := vals[len(vals)-1]
		var err error
		switch name {
		case "seed":
			opts.Seed, err = strconv.ParseUint(v, 10, 64)
		case "keys":
			keys = v
		case "sticky":
			sticky, err = strconv.ParseBool(v)
		case "delay":
			delay, err = time.ParseDuration(v)
		default:
			k, ok := urlKinds[name]
			if !ok {
				rest[name] = vals
				continue
			}
			var r float64
			r, err = strconv.ParseFloat(v, 64)
			rates = append(rates, rate{k, r})
		}
		if err != nil {
			return opts, nil, fmt.Errorf("parameter %s=%q: %w", name, v, err)
		}
	}
	// Rules in the order of Kinds, whatever the order of the query.
	for _, k := range Kinds() {
		for _, r := range rates {
			if r.kind == k {
				opts.Rules = append(opts.Rules, Rule{Kind: k, Rate: r.rate, Keys: keys, Sticky: sticky, Delay: delay})
			}
		}
	}
	return opts, rest, nil
}
