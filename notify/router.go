package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// AllKinds is the route key that matches every event kind.
const AllKinds = "*"

// Router sends each event to the channels routed for its kind. Build it with
// NewRouter, once, in the worker.
type Router struct {
	channels []Channel        // in configuration order
	routes   map[string][]int // kind → indexes into channels, sorted
	byName   map[string]Channel
}

// NewRouter checks the configuration and builds a Router. routes maps an
// event kind (one of Kinds) or AllKinds to channel names. Channel names must
// be unique and not empty, every routed name must be a channel, and every
// key a known kind: a typo would otherwise silently drop notifications.
func NewRouter(channels []Channel, routes map[string][]string) (*Router, error) {
	r := &Router{
		channels: channels,
		routes:   make(map[string][]int),
		byName:   make(map[string]Channel, len(channels)),
	}
	index := make(map[string]int, len(channels))
	for i, c := range channels {
		name := c.Name()
		if name == "" {
			return nil, fmt.Errorf("notify: channel %d has no name", i)
		}
		if _, dup := index[name]; dup {
			return nil, fmt.Errorf("notify: two channels are named %q", name)
		}
		index[name] = i
		r.byName[name] = c
	}
	var problems []string
	for kind, names := range routes {
		if kind != AllKinds && !slices.Contains(Kinds, kind) {
			problems = append(problems, fmt.Sprintf("route %q: unknown event kind (want %s or %q)",
				kind, strings.Join(Kinds, ", "), AllKinds))
			continue
		}
		for _, name := range names {
			if _, ok := index[name]; !ok {
				problems = append(problems, fmt.Sprintf("route %q: no channel named %q", kind, name))
			}
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, errors.New("notify: " + strings.Join(problems, "; "))
	}
	for _, kind := range Kinds {
		var idx []int
		for _, name := range slices.Concat(routes[AllKinds], routes[kind]) {
			if i := index[name]; !slices.Contains(idx, i) {
				idx = append(idx, i)
			}
		}
		slices.Sort(idx)
		r.routes[kind] = idx
	}
	return r, nil
}

// Route returns the names of the channels an event of this kind goes to, in
// configuration order; none for an unknown or unrouted kind.
func (r *Router) Route(kind string) []string {
	var names []string
	for _, i := range r.routes[kind] {
		names = append(names, r.channels[i].Name())
	}
	return names
}

// SendTo sends e to one channel by name. A workflow that wants each channel
// retried on its own runs one activity per name from Route.
func (r *Router) SendTo(ctx context.Context, name string, e Event) error {
	c, ok := r.byName[name]
	if !ok {
		return &Error{Channel: name, Op: "route", Err: errors.New("no such channel"), Permanent: true}
	}
	return named(name, c.Send(ctx, e))
}

// Send sends e to every channel routed for its kind, concurrently, and
// returns when all have ended. An event with no routed channel is dropped
// without error. Failures come back as a *SendError; see its Is for
// ErrPermanent. Retrying Send sends again to the channels that succeeded,
// with the same Event.ID.
func (r *Router) Send(ctx context.Context, e Event) error {
	if err := e.Validate(); err != nil {
		return &Error{Channel: "router", Op: "route", Err: err, Permanent: true}
	}
	idx := r.routes[e.Kind]
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	for j, i := range idx {
		c := r.channels[i]
		wg.Go(func() { errs[j] = named(c.Name(), c.Send(ctx, e)) })
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &SendError{Errs: failed}
}

// named makes sure err names the channel.
func named(name string, err error) error {
	if err == nil {
		return nil
	}
	var ne *Error
	if errors.As(err, &ne) && ne.Channel == name {
		return err
	}
	return &Error{Channel: name, Op: "send", Err: err, Permanent: errors.Is(err, ErrPermanent)}
}

// SendError is Router.Send's failure: one *Error per failed channel, in
// configuration order.
type SendError struct {
	Errs []error
}

// Error lists the failures one per line, like errors.Join.
func (e *SendError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

// Is reports, for ErrPermanent, whether every failure is permanent — so a
// retry is left to the retry policy while any channel might still succeed —
// and, for any other target, whether some failure matches it.
func (e *SendError) Is(target error) bool {
	if target == ErrPermanent {
		for _, err := range e.Errs {
			if !errors.Is(err, ErrPermanent) {
				return false
			}
		}
		return len(e.Errs) > 0
	}
	for _, err := range e.Errs {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// As finds the first failure that matches target.
func (e *SendError) As(target any) bool {
	for _, err := range e.Errs {
		if errors.As(err, target) {
			return true
		}
	}
	return false
}
