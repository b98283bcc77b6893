// Package notify sends Bulwark's notifications — failures, RPO breaches,
// disaster-recovery steps, drill results — to webhooks (Bulwark JSON or
// Slack-compatible) and by email over SMTP.
//
// It is a plain library for Temporal activities: one notification is one
// Send, which makes one attempt, honours its context and leaves no goroutine
// behind. It never retries; the activity's retry policy does, and every
// failure says whether retrying can help (errors.Is(err, ErrPermanent)). A
// retried Send carries the same Event.ID, so receivers can recognise the
// repeat (Idempotency-Key header, Message-ID).
package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrPermanent marks a failure that retrying the same event cannot fix: the
// receiver refused it (HTTP 4xx other than 408 and 429, SMTP 5xx), or the
// event or the channel's configuration is invalid. Everything else —
// network errors, timeouts, HTTP 5xx/408/429, SMTP 4xx — is temporary.
var ErrPermanent = errors.New("permanent notification failure")

// Event kinds.
const (
	KindFailure     = "failure"      // a backup, verify or replication failed
	KindRPOBreach   = "rpo_breach"   // the newest verified backup is older than the RPO
	KindDRStep      = "dr_step"      // a disaster-recovery step started, ended or failed
	KindDrillResult = "drill_result" // a restore drill finished
	KindTest        = "test"         // sent on demand to check the channels
)

// Severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Kinds lists the event kinds, for validating routes.
var Kinds = []string{KindFailure, KindRPOBreach, KindDRStep, KindDrillResult, KindTest}

var severities = []string{SeverityInfo, SeverityWarning, SeverityCritical}

// MaxIDLen is the longest Event.ID accepted, the common limit of
// idempotency keys.
const MaxIDLen = 255

// Event is one notification. Build it once, in the workflow or from its
// inputs, so that every retry sends the same bytes: At and ID must not come
// from the clock or a random source inside the sending activity.
type Event struct {
	Kind     string            `json:"kind"`               // one of Kinds
	Severity string            `json:"severity"`           // info, warning or critical
	Title    string            `json:"title"`              // one line
	Text     string            `json:"text,omitempty"`     // human text, may be multi-line
	Database string            `json:"database,omitempty"` // optional
	Fields   map[string]string `json:"fields,omitempty"`   // extra key/values, rendered sorted by key
	At       time.Time         `json:"at"`                 // when it happened; also the email's Date
	// ID is the idempotency key: the same event sent twice carries the same
	// ID (Idempotency-Key header, Message-ID). Printable ASCII without
	// spaces, at most MaxIDLen bytes; a workflow id, run id and step fit.
	ID string `json:"id"`
}

// Validate reports whether e can be sent. Channels and the Router refuse an
// invalid event with a permanent error.
func (e Event) Validate() error {
	var problems []string
	if !slices.Contains(Kinds, e.Kind) {
		problems = append(problems, fmt.Sprintf("unknown kind %q", e.Kind))
	}
	if !slices.Contains(severities, e.Severity) {
		problems = append(problems, fmt.Sprintf("unknown severity %q", e.Severity))
	}
	if strings.TrimSpace(e.Title) == "" {
		problems = append(problems, "no title")
	}
	if e.At.IsZero() {
		problems = append(problems, "no time")
	}
	switch {
	case e.ID == "":
		problems = append(problems, "no id")
	case len(e.ID) > MaxIDLen:
		problems = append(problems, fmt.Sprintf("id longer than %d bytes", MaxIDLen))
	case strings.IndexFunc(e.ID, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		problems = append(problems, "id is not printable ASCII without spaces")
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid event: %s", strings.Join(problems, ", "))
	}
	return nil
}

// fieldKeys returns the keys of e.Fields, sorted.
func (e Event) fieldKeys() []string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Channel delivers events to one receiver.
//
// Send makes one attempt and returns when it has ended or ctx is done. Its
// errors are *Error values naming the channel; errors.Is(err, ErrPermanent)
// reports that retrying the same event cannot succeed, otherwise the caller
// may retry with the same Event, which the receiver can recognise by its ID.
// Errors never contain secrets: URL paths and queries, header values,
// passwords.
type Channel interface {
	Name() string
	Send(ctx context.Context, e Event) error
}

// Error is a failed Send.
type Error struct {
	Channel string // channel name
	Op      string // what failed, e.g. "post https://hooks.example.com" or "smtp rcpt"
	Err     error
	// Permanent is set when retrying the same event cannot succeed.
	Permanent bool
	// RetryAfter is the receiver's hint (HTTP Retry-After) for a temporary
	// failure, or 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := "notify " + e.Channel + ": " + e.Op
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is ErrPermanent and e is permanent.
func (e *Error) Is(target error) bool { return target == ErrPermanent && e.Permanent }

// scrub replaces each secret found in err's text. When none occurs it returns
// err unchanged; otherwise the scrubbed text, whose chain is lost (the caller
// has already classified the error).
func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if len(s) >= 4 {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}
