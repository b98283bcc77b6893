// Package faultblob is a gocloud.dev/blob driver that wraps another bucket
// and injects storage faults into what passes through it: errors (transient
// or permanent), latency, short writes, a full disk (ENOSPC), writes whose
// acknowledgement is lost, objects that vanish, and bit flips on read. It
// exists to test that Bulwark retries what can be retried, reports what
// cannot, and never restores a wrong file.
//
// Faults are chosen by Rules. Whether a rule hits an operation is decided
// from the seed, the rule, the operation, the object key and how many times
// that operation has been done on that key before — never from the order in
// which concurrent operations arrive — so a seed replays the same faults on
// the same objects. (After and Limit count matches across keys, so with
// them the objects hit can depend on the order of concurrent operations.)
//
// Writes keep gocloud's promise: a write that fails, whatever the fault,
// never publishes its object; the inner writer is aborted by cancelling its
// context. Only LostAck publishes and still reports a failure, as a store
// whose acknowledgement was lost on the way back does.
//
// Counters (Fired, Ops, Events) let a test assert that faults really fired.
// New wraps a *blob.Bucket; a destination URL with the prefix fault+
// (fault+file:///srv/backups?seed=7&transient=0.05) opens one through
// blob.OpenBucket (see URLOpener).
package faultblob

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// Op is a kind of bucket operation; Ops combine with |.
type Op uint8

// Bucket operations that rules target.
const (
	OpRead       Op = 1 << iota // NewReader, NewRangeReader and the reads of the returned reader
	OpWrite                     // NewWriter, its writes and its Close
	OpAttributes                // Attributes and Exists
	OpList                      // List and ListPage; the key matched is the listing's prefix
	OpCopy                      // Copy; the key matched is the destination key
	OpDelete                    // Delete
)

// AllOps is every operation.
const AllOps = OpRead | OpWrite | OpAttributes | OpList | OpCopy | OpDelete

var opNames = []struct {
	op   Op
	name string
}{{OpRead, "read"}, {OpWrite, "write"}, {OpAttributes, "attributes"}, {OpList, "list"}, {OpCopy, "copy"}, {OpDelete, "delete"}}

func (o Op) String() string {
	var parts []string
	for _, n := range opNames {
		if o&n.op != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Kind is a kind of fault.
type Kind int

// Kinds of fault.
const (
	// Transient fails the operation with an error gcerrors classifies as
	// Internal ("connection reset by peer"): trying again may succeed. On
	// reads and writes it strikes at the start, midway or (writes) at Close.
	Transient Kind = iota + 1
	// Permanent fails the operation with PermissionDenied.
	Permanent
	// Latency delays the operation by Rule.Delay (or until its context ends).
	Latency
	// ShortWrite accepts only part of a write and fails it with
	// io.ErrShortWrite; the object is not published.
	ShortWrite
	// NoSpace fails a write midway with syscall.ENOSPC (gcerrors
	// ResourceExhausted); the object is not published.
	NoSpace
	// LostAck publishes the object, then fails Close with a transient error,
	// as when the connection drops before the store's answer arrives.
	LostAck
	// Vanish makes the object disappear from the inner bucket: after a
	// write is acknowledged (OpWrite), or when it is next read or looked
	// at (OpRead, OpAttributes), which then fails with NotFound.
	Vanish
	// BitFlip flips one bit of the bytes a read returns. With Rule.Sticky
	// the same bit of the same object is flipped on every read, as bit rot
	// on the medium would; otherwise each read flips (or not) afresh.
	BitFlip
)

var kindNames = map[Kind]string{
	Transient: "transient", Permanent: "permanent", Latency: "latency", ShortWrite: "short-write",
	NoSpace: "no-space", LostAck: "lost-ack", Vanish: "vanish", BitFlip: "bit-flip",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Kinds lists every kind of fault, in declaration order.
func Kinds() []Kind {
	return []Kind{Transient, Permanent, Latency, ShortWrite, NoSpace, LostAck, Vanish, BitFlip}
}

// Ops returns the operations a kind of fault can strike.
func (k Kind) Ops() Op {
	switch k {
	case Transient, Permanent, Latency:
		return AllOps
	case ShortWrite, NoSpace, LostAck:
		return OpWrite
	case Vanish:
		return OpWrite | OpRead | OpAttributes
	case BitFlip:
		return OpRead
	}
	return 0
}

// Rule injects one kind of fault into the operations it matches.
type Rule struct {
	Kind Kind
	// Ops are the operations the rule strikes; 0 means every operation the
	// kind applies to. Naming an operation the kind cannot strike (a bit
	// flip on a write) is an error.
	Ops Op
	// Keys is a regular expression (RE2) matched against object keys; ""
	// matches every key. For OpList the listing's prefix is matched.
	Keys string
	// Rate is the chance, in (0, 1], that a matching operation is hit.
	Rate float64
	// After lets the first After matching operations through untouched.
	After int
	// Limit bounds how many times the rule fires (with Sticky: how many
	// keys it afflicts); 0 is no bound.
	Limit int
	// Sticky makes a key that was hit once be hit by every later matching
	// operation: a permanently refused key, bit rot.
	Sticky bool
	// Delay is the latency a Latency rule adds.
	Delay time.Duration
}

// Options configures an Injector.
type Options struct {
	// Seed makes the faults reproducible: the same seed, rules and
	// operations give the same faults on the same objects.
	Seed uint64
	// Rules are checked in order for every operation. Latency rules add up;
	// of the other rules, the first that hits decides the fault.
	Rules []Rule
}

// Event is one fault that struck.
type Event struct {
	Kind   Kind
	Op     Op
	Key    string
	Rule   int    // index in Options.Rules
	Detail string // where it struck: "at open", "after 512 bytes", "bit 3 of byte 1021"
}

func (e Event) String() string {
	s := fmt.Sprintf("%s on %s %s", e.Kind, e.Op, e.Key)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Error is an injected failure. Unwrap returns the underlying cause where
// there is one (syscall.ENOSPC, io.ErrShortWrite), so errors.Is works
// through the portable bucket's wrapping.
type Error struct {
	Kind Kind
	Op   Op
	Key  string
	Err  error
}

func (e *Error) Error() string {
	switch e.Kind {
	case NoSpace:
		return fmt.Sprintf("%s %s: %v (faultblob: injected %s)", e.Op, e.Key, e.Err, e.Kind)
	case Vanish:
		return fmt.Sprintf("faultblob: object %s vanished (injected %s on %s)", e.Key, e.Kind, e.Op)
	case LostAck:
		return fmt.Sprintf("faultblob: connection lost waiting for the store to acknowledge the write of %s (injected %s: the write took effect)", e.Key, e.Kind)
	}
	return fmt.Sprintf("faultblob: injected %s fault on %s %s: %v", e.Kind, e.Op, e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// code is how gcerrors classifies the error.
func (e *Error) code() gcerrors.ErrorCode {
	switch e.Kind {
	case Permanent:
		return gcerrors.PermissionDenied
	case NoSpace:
		return gcerrors.ResourceExhausted
	case Vanish:
		return gcerrors.NotFound
	}
	return gcerrors.Internal
}

var (
	errConnReset = errors.New("connection reset by peer")
	errDenied    = errors.New("access denied by the storage service")
)

// rule is a Rule compiled, with its counters.
type rule struct {
	Rule
	keys    *regexp.Regexp
	matched int
	fired   int
	stuck   map[string]bool
}

// Injector holds the rules, the fault counters and the wrapped bucket.
type Injector struct {
	inner  *blob.Bucket
	seed   uint64
	bucket *blob.Bucket

	mu       sync.Mutex
	disabled bool
	rules    []*rule
	seen     map[string]int // operations done per op and key
	ops      map[Op]int
	fired    map[Kind]int
	events   []Event
}

// New wraps inner. The returned Injector's Bucket injects faults into
// every operation, and closing that bucket closes inner.
func New(inner *blob.Bucket, opts Options) (*Injector, error) {
	f := &Injector{inner: inner, seed: opts.Seed, seen: map[string]int{}, ops: map[Op]int{}, fired: map[Kind]int{}}
	for i, r := range opts.Rules {
		if _, ok := kindNames[r.Kind]; !ok {
			return nil, fmt.Errorf("faultblob: rule %d: unknown kind %d", i, int(r.Kind))
		}
		if r.Ops == 0 {
			r.Ops = r.Kind.Ops()
		}
		if extra := r.Ops &^ r.Kind.Ops(); extra != 0 {
			return nil, fmt.Errorf("faultblob: rule %d: a %s fault cannot strike %s", i, r.Kind, extra)
		}
		if !(r.Rate > 0 && r.Rate <= 1) {
			return nil, fmt.Errorf("faultblob: rule %d: rate %v is not in (0, 1]", i, r.Rate)
		}
		if r.Kind == Latency && r.Delay <= 0 {
			return nil, fmt.Errorf("faultblob: rule %d: a latency rule needs a positive delay", i)
		}
		keys, err := regexp.Compile(r.Keys)
		if err != nil {
			return nil, fmt.Errorf("faultblob: rule %d: keys: %w", i, err)
		}
		f.rules = append(f.rules, &rule{Rule: r, keys: keys, stuck: map[string]bool{}})
	}
	f.bucket = blob.NewBucket(&bucket{f: f})
	return f, nil
}

// Bucket returns the bucket that injects faults.
func (f *Injector) Bucket() *blob.Bucket { return f.bucket }

// Inner returns the wrapped bucket: a view of the same objects without
// faults.
func (f *Injector) Inner() *blob.Bucket { return f.inner }

// SetEnabled turns fault injection off (false) and on again. Operations
// done while it is off are not counted and do not advance the rules.
func (f *Injector) SetEnabled(on bool) {
	f.mu.Lock()
	f.disabled = !on
	f.mu.Unlock()
}

// Fired returns how many faults of kind k have struck.
func (f *Injector) Fired(k Kind) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired[k]
}

// Ops returns how many operations of kind op (one kind) went through the
// injector while it was enabled.
func (f *Injector) Ops(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops[op]
}

// Events returns every fault that struck, in order.
func (f *Injector) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

// Summary is a one-line account of the faults that struck, such as
// "transient×5 bit-flip×2"; "none" when none did.
func (f *Injector) Summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var parts []string
	for _, k := range Kinds() {
		if n := f.fired[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s×%d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func (f *Injector) record(e Event) {
	f.mu.Lock()
	f.fired[e.Kind]++
	f.events = append(f.events, e)
	f.mu.Unlock()
}

// hit is a fault the rules chose for one operation.
type hit struct {
	kind    Kind
	rule    int
	sticky  bool
	counted bool   // this operation counted towards the rule's Limit
	roll    uint64 // random bits for where the fault strikes
	fixed   uint64 // bits that depend only on the rule and key (sticky faults)
}

// decide counts an operation and returns the latency to add and the fault
// to inject, if any.
func (f *Injector) decide(op Op, key string) (time.Duration, *hit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disabled {
		return 0, nil
	}
	f.ops[op]++
	id := op.String() + "\x00" + key
	n := f.seen[id]
	f.seen[id]++
	var (
		delay time.Duration
		fault *hit
	)
	for i, r := range f.rules {
		if r.Ops&op == 0 || !r.keys.MatchString(key) {
			continue
		}
		r.matched++
		if r.matched <= r.After || (fault != nil && r.Kind != Latency) {
			continue
		}
		roll := mix(f.seed, uint64(i), id, uint64(n))
		fires := r.Sticky && r.stuck[key]
		if !fires && (r.Limit == 0 || r.fired < r.Limit) {
			fires = unit(roll) < r.Rate
		}
		if !fires {
			continue
		}
		counted := !r.Sticky || !r.stuck[key]
		if counted {
			r.fired++
		}
		if r.Sticky {
			r.stuck[key] = true
		}
		if r.Kind == Latency {
			delay += r.Delay
			f.fired[Latency]++
			f.events = append(f.events, Event{Kind: Latency, Op: op, Key: key, Rule: i, Detail: r.Delay.String()})
			continue
		}
		fault = &hit{kind: r.Kind, rule: i, sticky: r.Sticky, counted: counted, roll: mix(roll, 1, "", 0), fixed: mix(f.seed, uint64(i), key, math.MaxUint64)}
	}
	return delay, fault
}

// refund gives back a fault that could not strike (the object to read
// does not exist), so that Limit counts faults that struck.
func (f *Injector) refund(h *hit, key string) {
	if h == nil || !h.counted {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rules[h.rule]
	if r.Sticky {
		delete(r.stuck, key)
	}
	r.fired--
}

// mix hashes its arguments to 64 well-mixed bits (FNV-1a, then the
// SplitMix64 finaliser).
func mix(a, b uint64, s string, c uint64) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	for _, v := range []uint64{a, b, c} {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	h.Write([]byte(s))
	z := h.Sum64() + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit maps 64 random bits to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failure is the error a hit of kind k on op of key returns.
func failure(k Kind, op Op, key string) *Error {
	e := &Error{Kind: k, Op: op, Key: key}
	switch k {
	case Transient, LostAck:
		e.Err = errConnReset
	case Permanent:
		e.Err = errDenied
	case NoSpace:
		e.Err = syscall.ENOSPC
	case ShortWrite:
		e.Err = io.ErrShortWrite
	}
	return e
}

// before runs the rules for an operation that has no data phase (list,
// attributes, copy, delete, and the opening of reads and writes when the
// fault strikes there): it waits the latency and returns the fault error,
// if one strikes now. The hit is returned for the caller to place later
// when it does not strike now.
func (f *Injector) before(ctx context.Context, op Op, key string) (*hit, error) {
	delay, h := f.decide(op, key)
	if err := sleep(ctx, delay); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, nil
	}
	switch h.kind {
	case Transient, Permanent:
		// Reads and writes also fail midway or (writes) at Close.
		if (op == OpRead || op == OpWrite) && h.roll%3 != 0 {
			return h, nil
		}
		f.record(Event{Kind: h.kind, Op: op, Key: key, Rule: h.rule, Detail: "at the start"})
		return nil, failure(h.kind, op, key)
	case Vanish:
		if op == OpWrite {
			return h, nil // after the write is acknowledged
		}
		if err := f.inner.Delete(context.WithoutCancel(ctx), key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return nil, err
		}
		f.record(Event{Kind: Vanish, Op: op, Key: key, Rule: h.rule})
		return nil, failure(Vanish, op, key)
	}
	return h, nil
}

// bucket is the driver.Bucket.
type bucket struct{ f *Injector }

var _ driver.Bucket = (*bucket)(nil)

func (b *bucket) ErrorCode(err error) gcerrors.ErrorCode {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.code()
	}
	return gcerrors.Code(err)
}

// As exposes the Injector (as **Injector) and whatever the inner bucket
// exposes.
func (b *bucket) As(i any) bool {
	if p, ok := i.(**Injector); ok {
		*p = b.f
		return true
	}
	return b.f.inner.As(i)
}

func (b *bucket) ErrorAs(err error, i any) bool { return b.f.inner.ErrorAs(err, i) }

func (b *bucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	if _, err := b.f.before(ctx, OpAttributes, key); err != nil {
		return nil, err
	}
	a, err := b.f.inner.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	return &driver.Attributes{
		CacheControl: a.CacheControl, ContentDisposition: a.ContentDisposition, ContentEncoding: a.ContentEncoding,
		ContentLanguage: a.ContentLanguage, ContentType: a.ContentType, Metadata: a.Metadata,
		CreateTime: a.CreateTime, ModTime: a.ModTime, Size: a.Size, MD5: a.MD5, ETag: a.ETag, AsFunc: a.As,
	}, nil
}

func (b *bucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if _, err := b.f.before(ctx, OpList, opts.Prefix); err != nil {
		return nil, err
	}
	token := opts.PageToken
	if len(token) == 0 {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = 1000
	}
	objs, next, err := b.f.inner.ListPage(ctx, token, size, &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter, BeforeList: opts.BeforeList})
	if err != nil {
		return nil, err
	}
	page := &driver.ListPage{NextPageToken: next}
	for _, o := range objs {
		page.Objects = append(page.Objects, &driver.ListObject{Key: o.Key, ModTime: o.ModTime, Size: o.Size, MD5: o.MD5, IsDir: o.IsDir, AsFunc: o.As})
	}
	return page, nil
}

func (b *bucket) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	h, err := b.f.before(ctx, OpRead, key)
	if err != nil {
		return nil, err
	}
	r, err := b.f.inner.NewRangeReader(ctx, key, offset, length, &blob.ReaderOptions{BeforeRead: opts.BeforeRead})
	if err != nil {
		b.f.refund(h, key)
		return nil, err
	}
	fr := &reader{f: b.f, key: key, r: r, flipAt: -1, failAt: -1}
	span := length
	if span < 0 || span > r.Size()-offset {
		span = max(0, r.Size()-offset)
	}
	if h != nil {
		switch h.kind {
		case Transient, Permanent:
			if span == 0 {
				_ = r.Close()
				b.f.record(Event{Kind: h.kind, Op: OpRead, Key: key, Rule: h.rule, Detail: "at the start"})
				return nil, failure(h.kind, OpRead, key)
			}
			fr.failAt, fr.failKind, fr.fault = int64((h.roll>>8)%uint64(span)), h.kind, h
		case BitFlip:
			fr.flipAt, fr.flipBit, fr.flipRule = -1, byte(h.roll%8), h.rule
			switch {
			case h.sticky && r.Size() > 0:
				// Rot sits at one place in the object, whatever range is read.
				at := int64((h.fixed >> 8) % uint64(r.Size()))
				if at >= offset && at < offset+span {
					fr.flipAt, fr.flipBit = at-offset, byte(h.fixed%8)
				}
			case span > 0:
				fr.flipAt = int64((h.roll >> 8) % uint64(span))
			}
		}
	}
	return fr, nil
}

// reader is a driver.Reader that can fail midway or flip a bit.
type reader struct {
	f        *Injector
	key      string
	r        *blob.Reader
	pos      int64
	fault    *hit
	failAt   int64 // -1: no failure
	failKind Kind
	flipAt   int64 // -1: no flip
	flipBit  byte
	flipRule int
}

func (r *reader) Read(p []byte) (int, error) {
	if r.failAt >= 0 {
		if r.pos >= r.failAt {
			if r.fault != nil {
				r.f.record(Event{Kind: r.fault.kind, Op: OpRead, Key: r.key, Rule: r.fault.rule, Detail: fmt.Sprintf("after %d bytes", r.pos)})
				r.fault = nil
			}
			return 0, failure(r.failKind, OpRead, r.key)
		}
		if room := r.failAt - r.pos; int64(len(p)) > room {
			p = p[:room]
		}
	}
	n, err := r.r.Read(p)
	if r.flipAt >= r.pos && r.flipAt < r.pos+int64(n) {
		p[r.flipAt-r.pos] ^= 1 << r.flipBit
		r.f.record(Event{Kind: BitFlip, Op: OpRead, Key: r.key, Rule: r.flipRule, Detail: fmt.Sprintf("bit %d of byte %d", r.flipBit, r.flipAt)})
	}
	r.pos += int64(n)
	return n, err
}

func (r *reader) Close() error { return r.r.Close() }

func (r *reader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: r.r.ContentType(), ModTime: r.r.ModTime(), Size: r.r.Size()}
}

func (r *reader) As(i any) bool { return r.r.As(i) }

func (b *bucket) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	h, err := b.f.before(ctx, OpWrite, key)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := b.f.inner.NewWriter(wctx, key, &blob.WriterOptions{
		BufferSize: opts.BufferSize, MaxConcurrency: opts.MaxConcurrency, CacheControl: opts.CacheControl,
		ContentDisposition: opts.ContentDisposition, ContentEncoding: opts.ContentEncoding, ContentLanguage: opts.ContentLanguage,
		ContentType: contentType, ContentMD5: opts.ContentMD5, Metadata: opts.Metadata,
		DisableContentTypeDetection: opts.DisableContentTypeDetection || contentType == "",
		BeforeWrite:                 opts.BeforeWrite, IfNotExist: opts.IfNotExist,
	})
	if err != nil {
		cancel()
		b.f.refund(h, key)
		return nil, err
	}
	fw := &writer{f: b.f, ctx: ctx, key: key, w: w, cancel: cancel, fault: h, failAt: -1}
	if h != nil {
		switch h.kind {
		case Transient, Permanent, ShortWrite, NoSpace:
			// Midway, within the first 4 KiB (at Close for a smaller
			// object), or at Close; a short write is always midway.
			if h.roll%3 != 2 || h.kind == ShortWrite {
				fw.failAt = int64((h.roll >> 8) % 4096)
			}
		}
	}
	return fw, nil
}

// writer is a driver.Writer that can fail midway or at Close, lose its
// acknowledgement, or have its object vanish once written.
type writer struct {
	f      *Injector
	ctx    context.Context
	key    string
	w      *blob.Writer
	cancel context.CancelFunc
	fault  *hit
	failAt int64 // -1: at Close
	n      int64
	err    error
}

func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.fault != nil && w.failAt >= 0 && w.n+int64(len(p)) > w.failAt {
		n, err := w.w.Write(p[:w.failAt-w.n])
		w.n += int64(n)
		if err != nil {
			w.abort(err)
			return n, err
		}
		return n, w.strike(fmt.Sprintf("after %d bytes", w.n))
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	if err != nil {
		w.abort(err)
	}
	return n, err
}

// strike injects the writer's fault: the inner write is aborted, so the
// object is not published.
func (w *writer) strike(detail string) error {
	h := w.fault
	w.fault = nil
	w.f.record(Event{Kind: h.kind, Op: OpWrite, Key: w.key, Rule: h.rule, Detail: detail})
	w.abort(failure(h.kind, OpWrite, w.key))
	return w.err
}

// abort cancels the inner write and closes it: gocloud drivers discard a
// write whose context ended before Close.
func (w *writer) abort(err error) {
	w.err = err
	w.cancel()
	_ = w.w.Close()
}

func (w *writer) Close() error {
	if w.err != nil {
		return w.err
	}
	defer w.cancel()
	h := w.fault
	if h == nil {
		return w.w.Close()
	}
	switch h.kind {
	case LostAck:
		if err := w.w.Close(); err != nil {
			return err
		}
		w.f.record(Event{Kind: LostAck, Op: OpWrite, Key: w.key, Rule: h.rule, Detail: fmt.Sprintf("%d bytes written", w.n)})
		return failure(LostAck, OpWrite, w.key)
	case Vanish:
		if err := w.w.Close(); err != nil {
			return err
		}
		if err := w.f.inner.Delete(context.WithoutCancel(w.ctx), w.key); err != nil {
			return err
		}
		w.f.record(Event{Kind: Vanish, Op: OpWrite, Key: w.key, Rule: h.rule, Detail: "after the write was acknowledged"})
		return nil
	}
	return w.strike(fmt.Sprintf("at close, after %d bytes", w.n))
}

func (b *bucket) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if _, err := b.f.before(ctx, OpCopy, dstKey); err != nil {
		return err
	}
	return b.f.inner.Copy(ctx, dstKey, srcKey, &blob.CopyOptions{BeforeCopy: opts.BeforeCopy})
}

func (b *bucket) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if _, err := b.f.before(ctx, OpDelete, key); err != nil {
		return err
	}
	return b.f.inner.DeleteWithOptions(ctx, key, &blob.DeleteOptions{BeforeDelete: opts.BeforeDelete})
}

func (b *bucket) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	return b.f.inner.SignedURL(ctx, key, &blob.SignedURLOptions{
		Expiry: opts.Expiry, Method: opts.Method, ContentType: opts.ContentType,
		EnforceAbsentContentType: opts.EnforceAbsentContentType, BeforeSign: opts.BeforeSign,
	})
}

func (b *bucket) Close() error { return b.f.inner.Close() }
