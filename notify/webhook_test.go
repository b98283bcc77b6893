package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func testEvent() Event {
	return Event{
		Kind:     KindFailure,
		Severity: SeverityCritical,
		Title:    "Backup of orders failed",
		Text:     "snapshot: disk full\nsecond line",
		Database: "orders",
		Fields:   map[string]string{"zeta": "last", "attempt": "3", "host": "db-1"},
		At:       time.Date(2025, 3, 4, 7, 6, 7, 0, time.FixedZone("CEST", 2*3600)),
		ID:       "backup/orders/2025-03-04T05:06:07Z",
	}
}

type request struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// receiver is a webhook endpoint on loopback that records every request and
// answers with reply(n) for the n-th request (1-based).
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []request
	reply func(n int, w http.ResponseWriter, r *http.Request)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	n := len(rc.reqs)
	rc.mu.Unlock()
	if rc.reply == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	rc.reply(n, w, r)
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func newReceiver(t *testing.T, reply func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{reply: reply}
	rc.Server = httptest.NewServer(rc)
	t.Cleanup(rc.Close)
	return rc
}

// status replies with code and an optional body.
func status(code int, body string) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestWebhookJSON(t *testing.T) {
	rc := newReceiver(t, nil)
	w := Webhook{Label: "ops", URL: rc.URL + "/hook/abc?x=1", Headers: map[string]string{"X-Token": "t0k3n"}}
	if err := w.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/hook/abc" || r.Query != "x=1" {
		t.Errorf("request %s %s?%s", r.Method, r.Path, r.Query)
	}
	for k, want := range map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": "backup/orders/2025-03-04T05:06:07Z",
		"X-Token":         "t0k3n",
		"User-Agent":      "bulwark-notify",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	want := `{"id":"backup/orders/2025-03-04T05:06:07Z","kind":"failure","severity":"critical",` +
		`"title":"Backup of orders failed","text":"snapshot: disk full\nsecond line","database":"orders",` +
		`"fields":{"attempt":"3","host":"db-1","zeta":"last"},"at":"2025-03-04T05:06:07Z"}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}

	// Optional fields are left out, and <>& are not HTML-escaped.
	e := Event{Kind: KindTest, Severity: SeverityInfo, Title: "a <b> & c", At: time.Unix(0, 0), ID: "t1"}
	if err := w.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	want = `{"id":"t1","kind":"test","severity":"info","title":"a <b> & c","at":"1970-01-01T00:00:00Z"}`
	if got := string(rc.requests()[1].Body); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

func TestWebhookSlack(t *testing.T) {
	rc := newReceiver(t, nil)
	w := Webhook{Label: "slack", URL: rc.URL, Format: FormatSlack}
	if err := w.Send(context.Background(), testEvent()); err != nil {
		t.Fatal(err)
	}
	r := rc.requests()[0]
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Idempotency-Key") != testEvent().ID {
		t.Errorf("headers %v", r.Header)
	}
	want := `{"text":"[Bulwark] critical: Backup of orders failed","blocks":[` +
		`{"type":"section","text":{"type":"mrkdwn","text":"*Backup of orders failed*\nsnapshot: disk full\nsecond line"}},` +
		`{"type":"section","fields":[{"type":"mrkdwn","text":"*Database*\norders"},{"type":"mrkdwn","text":"*attempt*\n3"},` +
		`{"type":"mrkdwn","text":"*host*\ndb-1"},{"type":"mrkdwn","text":"*zeta*\nlast"}]},` +
		`{"type":"context","elements":[{"type":"mrkdwn","text":"failure · critical · 2025-03-04T05:06:07Z · id backup/orders/2025-03-04T05:06:07Z"}]}]}`
	if string(r.Body) != want {
		t.Errorf("body\n got %s\nwant %s", r.Body, want)
	}

	// mrkdwn control characters are escaped; Slack allows 10 fields per
	// section, so 12 fields make two sections.
	e := testEvent()
	e.Title = "<!channel> & co"
	e.Database = ""
	e.Fields = map[string]string{}
	for i := range 12 {
		e.Fields[fmt.Sprintf("k%02d", i)] = "v"
	}
	if err := w.Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Text   string
		Blocks []struct {
			Type   string
			Text   struct{ Type, Text string }
			Fields []struct{ Type, Text string }
		}
	}
	if err := json.Unmarshal(rc.requests()[1].Body, &msg); err != nil {
		t.Fatal(err)
	}
	var types []string
	var counts []int
	for _, b := range msg.Blocks {
		types = append(types, b.Type)
		counts = append(counts, len(b.Fields))
	}
	if !reflect.DeepEqual(types, []string{"section", "section", "section", "context"}) ||
		!reflect.DeepEqual(counts, []int{0, 10, 2, 0}) {
		t.Errorf("blocks %v with %v fields", types, counts)
	}
	if got := msg.Blocks[0].Text.Text; !strings.HasPrefix(got, "*&lt;!channel&gt; &amp; co*\n") {
		t.Errorf("title %q not escaped", got)
	}
	if msg.Blocks[1].Fields[0].Text != "*k00*\nv" || msg.Blocks[2].Fields[1].Text != "*k11*\nv" {
		t.Errorf("fields out of order: %v %v", msg.Blocks[1].Fields, msg.Blocks[2].Fields)
	}
}

// TestWebhookReceiverDown simulates Temporal's activity retries: the test
// calls Send until it succeeds. The receiver is first not listening, then
// answers 503 twice, then 200.
func TestWebhookReceiverDown(t *testing.T) {
	addr := closedAddr(t)
	w := Webhook{Label: "ops", URL: "http://" + addr + "/hook", Timeout: time.Second}
	e := testEvent()

	var rc *receiver
	var errs []error
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if attempt > 10 {
			t.Fatalf("no success after %d attempts: %v", attempt-1, errs)
		}
		err := w.Send(context.Background(), e)
		if err == nil {
			break
		}
		errs = append(errs, err)
		if errors.Is(err, ErrPermanent) {
			t.Fatalf("attempt %d: permanent error while the receiver is down: %v", attempt, err)
		}
		if attempt == 3 { // the receiver comes up
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			rc = &receiver{reply: func(n int, w http.ResponseWriter, _ *http.Request) {
				if n <= 2 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}}
			rc.Server = httptest.NewUnstartedServer(rc)
			rc.Listener.Close()
			rc.Listener = l
			rc.Start()
			t.Cleanup(rc.Close)
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 50*time.Millisecond)
	}
	if len(errs) != 5 {
		t.Fatalf("%d failed attempts, want 3 refused + 2 × 503: %v", len(errs), errs)
	}
	for i, err := range errs {
		var ne *Error
		if !errors.As(err, &ne) || ne.Channel != "ops" || ne.Permanent {
			t.Errorf("attempt %d: %#v", i+1, err)
		}
		if want := map[bool]string{true: "connection refused", false: "503 Service Unavailable"}[i < 3]; !strings.Contains(err.Error(), want) {
			t.Errorf("attempt %d: %q does not say %q", i+1, err, want)
		}
	}
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver saw %d requests, want 3", len(reqs))
	}
	for _, r := range reqs {
		if k := r.Header.Get("Idempotency-Key"); k != e.ID {
			t.Errorf("Idempotency-Key %q, want %q", k, e.ID)
		}
		if string(r.Body) != string(reqs[0].Body) {
			t.Errorf("retried body differs:\n%s\n%s", r.Body, reqs[0].Body)
		}
	}
}

func TestWebhookStatus(t *testing.T) {
	for _, tc := range []struct {
		code       int
		permanent  bool
		retryAfter string
		wantAfter  time.Duration
	}{
		{code: 400, permanent: true},
		{code: 401, permanent: true},
		{code: 404, permanent: true},
		{code: 410, permanent: true},
		{code: 408},
		{code: 429, retryAfter: "7", wantAfter: 7 * time.Second},
		{code: 500},
		{code: 502},
		{code: 503, retryAfter: "soon"},
		{code: 308, permanent: true},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			var redirected bool
			other := newReceiver(t, func(int, http.ResponseWriter, *http.Request) { redirected = true })
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.code/100 == 3 {
					w.Header().Set("Location", other.URL)
				}
				w.WriteHeader(tc.code)
				io.WriteString(w, "invalid_payload\n")
			})
			err := Webhook{Label: "w", URL: rc.URL + "/x"}.Send(context.Background(), testEvent())
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ErrPermanent); got != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", got, tc.permanent, err)
			}
			var ne *Error
			if !errors.As(err, &ne) || ne.RetryAfter != tc.wantAfter {
				t.Errorf("RetryAfter: %#v, want %v", err, tc.wantAfter)
			}
			want := fmt.Sprintf("notify w: post %s: %d %s", rc.URL, tc.code, http.StatusText(tc.code))
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want it to start with %q", err, want)
			}
			if redirected {
				t.Error("redirect followed")
			}
		})
	}
	for _, code := range []int{200, 201, 202, 204} {
		rc := newReceiver(t, status(code, ""))
		if err := (Webhook{URL: rc.URL}).Send(context.Background(), testEvent()); err != nil {
			t.Errorf("%d: %v", code, err)
		}
	}
}

func TestWebhookErrorsHideSecrets(t *testing.T) {
	const path, query, header = "/services/T0/B0/s3cr3tPath", "token=s3cr3tQuery", "Bearer s3cr3tHeader"
	// An unfriendly receiver echoes the URL and the headers in its error.
	echo := func(code int) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			fmt.Fprintf(w, "bad request to %s with %s", r.URL, r.Header.Get("Authorization"))
		}
	}
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cases := map[string]Webhook{
		"refused":   {URL: "http://" + closedAddr(t) + path + "?" + query},
		"400 echo":  {URL: newReceiver(t, echo(400)).URL + path + "?" + query},
		"503 echo":  {URL: newReceiver(t, echo(503)).URL + path + "?" + query},
		"timeout":   {URL: slow.URL + path + "?" + query, Timeout: 50 * time.Millisecond},
		"bad URL":   {URL: "http://example.com/%zz" + path + "?" + query},
		"bad form":  {URL: "https://example.com" + path + "?" + query, Format: "xml"},
		"no scheme": {URL: "example.com" + path + "?" + query},
	}
	for name, w := range cases {
		w.Label = "ops"
		w.Headers = map[string]string{"Authorization": header}
		err := w.Send(context.Background(), testEvent())
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		for _, s := range []string{"s3cr3t", "T0/B0"} {
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", w), fmt.Sprintf("%+v", w), fmt.Sprint(&w)} {
				if strings.Contains(text, s) {
					t.Errorf("%s: %q reveals %q", name, text, s)
				}
			}
		}
		t.Logf("%s: %v", name, err)
	}
	if got := fmt.Sprint(Webhook{Label: "ops", URL: "https://hooks.example.com" + path + "?" + query}); got != "webhook ops (https://hooks.example.com)" {
		t.Errorf("String() = %q", got)
	}
}

func TestWebhookRejectsInvalidEvent(t *testing.T) {
	rc := newReceiver(t, nil)
	for name, edit := range map[string]func(*Event){
		"kind":     func(e *Event) { e.Kind = "backup" },
		"severity": func(e *Event) { e.Severity = "fatal" },
		"title":    func(e *Event) { e.Title = " " },
		"time":     func(e *Event) { e.At = time.Time{} },
		"no id":    func(e *Event) { e.ID = "" },
		"id space": func(e *Event) { e.ID = "a b" },
		"id CRLF":  func(e *Event) { e.ID = "a\r\nX-Evil: 1" },
		"id long":  func(e *Event) { e.ID = strings.Repeat("x", MaxIDLen+1) },
	} {
		e := testEvent()
		edit(&e)
		if err := (Webhook{URL: rc.URL}).Send(context.Background(), e); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "invalid event") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("%d invalid events sent", n)
	}
}
