package notify

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRouterRoutes(t *testing.T) {
	ops, dba, pager := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	r, err := NewRouter(
		[]Channel{
			Webhook{Label: "ops", URL: ops.URL},
			Webhook{Label: "dba", URL: dba.URL, Format: FormatSlack},
			Webhook{Label: "pager", URL: pager.URL},
		},
		map[string][]string{
			AllKinds:      {"ops"},
			KindFailure:   {"pager", "dba", "ops"}, // ops twice: once is enough
			KindRPOBreach: {"pager"},
		})
	if err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string][]string{
		KindFailure:     {"ops", "dba", "pager"},
		KindRPOBreach:   {"ops", "pager"},
		KindDRStep:      {"ops"},
		KindDrillResult: {"ops"},
		"nope":          nil,
	} {
		if got := r.Route(kind); !slices.Equal(got, want) {
			t.Errorf("Route(%q) = %v, want %v", kind, got, want)
		}
	}

	send := func(kind string) {
		e := testEvent()
		e.Kind = kind
		e.ID = "id-" + kind
		if err := r.Send(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	send(KindFailure)
	send(KindRPOBreach)
	send(KindDrillResult)
	keys := func(rc *receiver) []string {
		var k []string
		for _, req := range rc.requests() {
			k = append(k, req.Header.Get("Idempotency-Key"))
		}
		slices.Sort(k)
		return k
	}
	for _, c := range []struct {
		rc   *receiver
		want []string
	}{
		{ops, []string{"id-drill_result", "id-failure", "id-rpo_breach"}},
		{dba, []string{"id-failure"}},
		{pager, []string{"id-failure", "id-rpo_breach"}},
	} {
		if got := keys(c.rc); !slices.Equal(got, c.want) {
			t.Errorf("received %v, want %v", got, c.want)
		}
	}

	if err := r.SendTo(context.Background(), "dba", testEvent()); err != nil {
		t.Error(err)
	}
	if err := r.SendTo(context.Background(), "nobody", testEvent()); !errors.Is(err, ErrPermanent) {
		t.Errorf("SendTo unknown channel: %v", err)
	}
	bad := testEvent()
	bad.Kind = "backup"
	if err := r.Send(context.Background(), bad); !errors.Is(err, ErrPermanent) {
		t.Errorf("invalid event: %v", err)
	}
}

func TestNewRouterRejects(t *testing.T) {
	chans := []Channel{Webhook{Label: "ops"}, SMTP{Label: "mail"}}
	for name, tc := range map[string]struct {
		chans  []Channel
		routes map[string][]string
		want   string
	}{
		"unknown channel": {chans, map[string][]string{KindFailure: {"ops", "pagr"}}, `route "failure": no channel named "pagr"`},
		"unknown in *":    {chans, map[string][]string{AllKinds: {"slack"}}, `route "*": no channel named "slack"`},
		"unknown kind":    {chans, map[string][]string{"rpo-breach": {"ops"}}, `route "rpo-breach": unknown event kind`},
		"duplicate name":  {[]Channel{Webhook{Label: "x"}, SMTP{Label: "x"}}, nil, `two channels are named "x"`},
	} {
		r, err := NewRouter(tc.chans, tc.routes)
		if err == nil || r != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestRouterErrors(t *testing.T) {
	ok := newReceiver(t, nil)
	bad := newReceiver(t, status(400, ""))
	down := newReceiver(t, status(503, ""))
	gone := newReceiver(t, status(410, ""))
	r, err := NewRouter(
		[]Channel{
			Webhook{Label: "ok", URL: ok.URL},
			Webhook{Label: "bad", URL: bad.URL},
			Webhook{Label: "down", URL: down.URL},
			Webhook{Label: "gone", URL: gone.URL},
		},
		map[string][]string{
			KindFailure:   {"ok", "bad", "down"},
			KindRPOBreach: {"ok", "bad", "gone"},
		})
	if err != nil {
		t.Fatal(err)
	}

	e := testEvent()
	err = r.Send(context.Background(), e)
	want := "notify bad: post " + bad.URL + ": 400 Bad Request\nnotify down: post " + down.URL + ": 503 Service Unavailable"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	if errors.Is(err, ErrPermanent) {
		t.Error("permanent although the 503 may pass on retry")
	}
	var se *SendError
	var ne *Error
	if !errors.As(err, &se) || len(se.Errs) != 2 || !errors.As(err, &ne) || ne.Channel != "bad" {
		t.Errorf("%#v", err)
	}
	if len(ok.requests()) != 1 {
		t.Error("the working channel did not receive the event")
	}

	e.Kind = KindRPOBreach
	if err := r.Send(context.Background(), e); !errors.Is(err, ErrPermanent) {
		t.Errorf("every failure permanent, yet: %v", err)
	}
}

func TestRouterCancel(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	fast := newReceiver(t, nil)
	r, err := NewRouter(
		[]Channel{Webhook{Label: "slow", URL: slow.URL}, Webhook{Label: "fast", URL: fast.URL}},
		map[string][]string{AllKinds: {"slow", "fast"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = r.Send(ctx, testEvent())
	if took := time.Since(start); took > time.Second {
		t.Errorf("cancelled Send took %v (webhook timeout is %v)", took, DefaultWebhookTimeout)
	}
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrPermanent) || !strings.HasPrefix(err.Error(), "notify slow: ") {
		t.Errorf("cancelled: %v", err)
	}
	if len(fast.requests()) != 1 {
		t.Error("the fast channel waited for the slow one")
	}
}
