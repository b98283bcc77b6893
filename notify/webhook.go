package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultWebhookTimeout bounds one webhook request when Webhook.Timeout is 0.
const DefaultWebhookTimeout = 10 * time.Second

// Webhook formats.
const (
	FormatJSON  = "json"  // Bulwark's schema: the Event's fields
	FormatSlack = "slack" // Slack-compatible incoming-webhook payload
)

// Webhook posts each event as JSON to a URL.
//
// The request carries the header Idempotency-Key: Event.ID. A 2xx reply is
// success. 408, 429, 5xx, network errors and timeouts are temporary; any other
// reply (4xx, and 3xx: redirects are not followed, so that the URL's secret
// and the Headers never go to another place) is permanent.
//
// The URL may carry a secret token in its path or query; errors and String
// name only scheme://host.
type Webhook struct {
	Label   string            // channel name; "webhook" if empty
	URL     string            // http or https
	Format  string            // FormatJSON (default) or FormatSlack
	Client  *http.Client      // nil: a client on http.DefaultTransport
	Timeout time.Duration     // per request; DefaultWebhookTimeout if 0
	Headers map[string]string // extra request headers, e.g. Authorization
}

var _ Channel = Webhook{}

// Name returns the channel name.
func (w Webhook) Name() string {
	if w.Label == "" {
		return "webhook"
	}
	return w.Label
}

// String names the channel and the receiver's scheme://host, never the full URL.
func (w Webhook) String() string {
	if u, err := w.target(); err == nil {
		return fmt.Sprintf("webhook %s (%s)", w.Name(), origin(u))
	}
	return fmt.Sprintf("webhook %s (invalid URL)", w.Name())
}

// GoString is String, so that %#v does not print the URL or the headers.
func (w Webhook) GoString() string { return w.String() }

// Send posts e; see Webhook for the error contract.
func (w Webhook) Send(ctx context.Context, e Event) error {
	u, err := w.target()
	if err != nil {
		return w.fail("configure", err, true)
	}
	op := "post " + origin(u)
	if err := e.Validate(); err != nil {
		return w.fail(op, err, true)
	}
	var body []byte
	switch w.Format {
	case "", FormatJSON:
		body, err = jsonPayload(e)
	case FormatSlack:
		body, err = slackPayload(e)
	default:
		return w.fail("configure", fmt.Errorf("unknown format %q", w.Format), true)
	}
	if err != nil {
		return w.fail(op, fmt.Errorf("encode: %w", err), true)
	}

	timeout := w.Timeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	reqCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return w.fail(op, errors.New("build request"), true)
	}
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", e.ID)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "bulwark-notify")
	}

	resp, err := w.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // ue.Error() quotes the full URL
		}
		if ctx.Err() == nil && reqCtx.Err() != nil {
			err = fmt.Errorf("no reply within %s: %w", timeout, err)
		}
		return w.fail(op, err, false)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused

	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err = fmt.Errorf("%s%s", resp.Status, replyText(snippet))
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		f := w.fail(op, err, false)
		f.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
		return f
	}
	if code >= 300 && code < 400 {
		err = fmt.Errorf("%s (redirects are not followed)", resp.Status)
	}
	return w.fail(op, err, true)
}

// target parses and checks the URL. Its errors never quote the URL.
func (w Webhook) target() (*url.URL, error) {
	u, err := url.Parse(w.URL)
	if err != nil {
		return nil, errors.New("invalid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("URL scheme must be http or https")
	}
	if u.Host == "" {
		return nil, errors.New("URL has no host")
	}
	return u, nil
}

func (w Webhook) client() *http.Client {
	var c http.Client
	if w.Client != nil {
		c = *w.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// fail builds the error, scrubbing the URL's secrets and the header values.
func (w Webhook) fail(op string, err error, permanent bool) *Error {
	secrets := []string{w.URL}
	if u, perr := url.Parse(w.URL); perr == nil {
		secrets = append(secrets, u.EscapedPath(), u.Path, u.RawQuery, u.Fragment)
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
		if q, qerr := url.QueryUnescape(u.RawQuery); qerr == nil {
			secrets = append(secrets, q)
		}
	}
	for _, v := range w.Headers {
		secrets = append(secrets, v)
	}
	return &Error{Channel: w.Name(), Op: op, Err: scrub(err, secrets...), Permanent: permanent}
}

// origin is scheme://host[:port], without user, path or query.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// replyText renders the start of a reply body for an error message: one line
// of printable text, or nothing.
func replyText(b []byte) string {
	if !utf8.Valid(b) {
		return ""
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return ""
	}
	return ": " + s
}

// retryAfter parses an HTTP Retry-After value: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// jsonEvent is Bulwark's webhook schema.
type jsonEvent struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Severity string            `json:"severity"`
	Title    string            `json:"title"`
	Text     string            `json:"text,omitempty"`
	Database string            `json:"database,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"` // encoding/json sorts the keys
	At       time.Time         `json:"at"`               // UTC, RFC 3339
}

func jsonPayload(e Event) ([]byte, error) {
	return marshal(jsonEvent{
		ID: e.ID, Kind: e.Kind, Severity: e.Severity, Title: e.Title, Text: e.Text,
		Database: e.Database, Fields: e.Fields, At: e.At.UTC(),
	})
}

// marshal is json.Marshal without HTML escaping and without the newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Slack Block Kit limits.
const (
	slackSectionText = 3000
	slackFieldText   = 2000
	slackFields      = 10 // per section
	slackBlocks      = 50
)

type slackMessage struct {
	Text   string       `json:"text"` // fallback for notifications
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackPayload renders e as an incoming-webhook message: a section with the
// title in bold and the text, sections of fields (database first, then the
// fields sorted by key), and a context line with kind, severity, time and id.
func slackPayload(e Event) ([]byte, error) {
	main := "*" + slackEscape(e.Title) + "*"
	if e.Text != "" {
		main += "\n" + slackEscape(e.Text)
	}
	m := slackMessage{
		Text: slackEscape(subject(e)),
		Blocks: []slackBlock{{
			Type: "section",
			Text: &slackText{Type: "mrkdwn", Text: truncate(main, slackSectionText)},
		}},
	}
	var fields []slackText
	field := func(k, v string) {
		fields = append(fields, slackText{Type: "mrkdwn",
			Text: truncate("*"+slackEscape(k)+"*\n"+slackEscape(v), slackFieldText)})
	}
	if e.Database != "" {
		field("Database", e.Database)
	}
	for _, k := range e.fieldKeys() {
		field(k, e.Fields[k])
	}
	for len(fields) > 0 && len(m.Blocks) < slackBlocks-1 {
		n := min(len(fields), slackFields)
		m.Blocks = append(m.Blocks, slackBlock{Type: "section", Fields: fields[:n]})
		fields = fields[n:]
	}
	m.Blocks = append(m.Blocks, slackBlock{Type: "context", Elements: []slackText{{
		Type: "mrkdwn",
		Text: slackEscape(fmt.Sprintf("%s · %s · %s · id %s",
			e.Kind, e.Severity, e.At.UTC().Format(time.RFC3339), e.ID)),
	}}})
	return marshal(m)
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
