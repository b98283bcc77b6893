package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailbox is an SMTP server on loopback (github.com/emersion/go-smtp) that
// records what it accepts. With tls set it offers STARTTLS and AUTH only
// after it.
type mailbox struct {
	addr string
	srv  *smtp.Server

	mu   sync.Mutex
	msgs []delivery
	// Replies the test can set: errors for a recipient, for the message.
	rcptErr map[string]error
	dataErr error
}

type delivery struct {
	TLS      bool
	User     string
	From     string
	To       []string
	Data     []byte
	Password string
}

const (
	testUser     = "bulwark"
	testPassword = "pa55-w0rd-xyz"
)

func (m *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{m: m, c: c}, nil
}

type session struct {
	m    *mailbox
	c    *smtp.Conn
	user string
	pass string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != testUser || pass != testPassword {
			return smtp.ErrAuthFailed
		}
		s.user, s.pass = user, pass
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if err := s.m.rcptErr[to]; err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.dataErr != nil {
		return s.m.dataErr
	}
	_, isTLS := s.c.TLSConnectionState()
	s.m.msgs = append(s.m.msgs, delivery{TLS: isTLS, User: s.user, Password: s.pass, From: s.from, To: s.to, Data: b})
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (m *mailbox) deliveries() []delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

func (m *mailbox) set(f func(m *mailbox)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

// startMailbox serves SMTP on addr ("" for any free port).
func startMailbox(t *testing.T, addr string, cert *tls.Certificate, opts ...func(*smtp.Server)) *mailbox {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := &mailbox{addr: l.Addr().String()}
	m.srv = smtp.NewServer(m)
	m.srv.Domain = "mx.test"
	m.srv.ReadTimeout = 5 * time.Second
	m.srv.WriteTimeout = 5 * time.Second
	m.srv.ErrorLog = log.New(io.Discard, "", 0)
	if cert != nil {
		m.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	for _, o := range opts {
		o(m.srv)
	}
	go m.srv.Serve(l)
	t.Cleanup(func() { m.srv.Close() })
	return m
}

// selfSigned returns a certificate for 127.0.0.1 and a TLS client
// configuration that trusts only it.
func selfSigned(t *testing.T) (*tls.Certificate, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bulwark test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, &tls.Config{RootCAs: pool}
}

func testSMTP(addr string, cfg *tls.Config) SMTP {
	return SMTP{
		Label:      "mail",
		Addr:       addr,
		From:       "Bulwark <bulwark@example.com>",
		To:         []string{"ops@example.com", "Åsa Öberg <dba@example.com>"},
		Username:   testUser,
		Password:   testPassword,
		RequireTLS: true,
		TLSConfig:  cfg,
		Timeout:    2 * time.Second,
	}
}

func TestSMTPSend(t *testing.T) {
	cert, cfg := selfSigned(t)
	mb := startMailbox(t, "", cert)
	e := testEvent()
	e.Title = "Sauvegarde échouée: orders"
	e.Text = "first line\r\n.leading dot\n" + strings.Repeat("long ", 300) + "end"
	if err := testSMTP(mb.addr, cfg).Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got := mb.deliveries()
	if len(got) != 1 {
		t.Fatalf("%d messages, want 1", len(got))
	}
	d := got[0]
	if !d.TLS || d.User != testUser || d.Password != testPassword {
		t.Errorf("TLS %v, user %q, password %q", d.TLS, d.User, d.Password)
	}
	if d.From != "bulwark@example.com" || !slices.Equal(d.To, []string{"ops@example.com", "dba@example.com"}) {
		t.Errorf("envelope %s → %v", d.From, d.To)
	}
	if strings.Contains(strings.ReplaceAll(string(d.Data), "\r\n", ""), "\n") || strings.Contains(string(d.Data), "\r\r") {
		t.Error("message has bare line ends")
	}
	for i, line := range strings.Split(string(d.Data), "\r\n") {
		if len(line) > 78 {
			t.Errorf("line %d is %d bytes long", i+1, len(line))
		}
	}

	msg, err := mail.ReadMessage(strings.NewReader(string(d.Data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Subject":                   "[Bulwark] critical: Sauvegarde échouée: orders",
		"From":                      `"Bulwark" <bulwark@example.com>`,
		"To":                        `<ops@example.com>, =?utf-8?q?=C3=85sa_=C3=96berg?= <dba@example.com>`,
		"Date":                      "Tue, 04 Mar 2025 07:06:07 +0200",
		"Message-ID":                "<bulwark.backup/orders/2025-03-04T05=3A06=3A07Z@example.com>",
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"X-Bulwark-Event-ID":        e.ID,
		"X-Bulwark-Kind":            "failure",
		"X-Bulwark-Severity":        "critical",
	} {
		got := msg.Header.Get(k)
		if k == "Subject" {
			got = subject
		}
		if got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if date, err := msg.Header.Date(); err != nil || !date.Equal(e.At) {
		t.Errorf("Date %v, %v; want %v", date, err, e.At)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"first line",
		".leading dot",
		strings.Repeat("long ", 300) + "end",
		"",
		"Database: orders",
		"attempt: 3",
		"host: db-1",
		"zeta: last",
		"",
		"Kind: failure",
		"Severity: critical",
		"At: 2025-03-04T05:06:07Z",
		"Event ID: backup/orders/2025-03-04T05:06:07Z",
		"",
	}
	if lines := strings.Split(string(body), "\r\n"); !slices.Equal(lines, want) {
		t.Errorf("body lines\n got %q\nwant %q", lines, want)
	}

	// A retry sends the same message: the receiver can recognise it.
	if err := testSMTP(mb.addr, cfg).Send(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if got := mb.deliveries(); len(got) != 2 || string(got[1].Data) != string(got[0].Data) {
		t.Error("retried message differs")
	}
}

func TestSMTPRequireTLS(t *testing.T) {
	mb := startMailbox(t, "", nil) // no STARTTLS, so no AUTH either
	s := testSMTP(mb.addr, nil)
	err := s.Send(context.Background(), testEvent())
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("RequireTLS without STARTTLS: %v", err)
	}
	s.RequireTLS = false
	err = s.Send(context.Background(), testEvent())
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "AUTH PLAIN") {
		t.Errorf("username without AUTH: %v", err)
	}
	s.Username, s.Password = "", ""
	if err := s.Send(context.Background(), testEvent()); err != nil {
		t.Errorf("plain, no auth: %v", err)
	}
	if d := mb.deliveries(); len(d) != 1 || d[0].TLS {
		t.Errorf("deliveries: %+v", d)
	}

	// The password goes in clear only to localhost, even when the server
	// offers AUTH without TLS. 127.0.0.2 is loopback on Linux, but it is not
	// "localhost" to net/smtp, nor to SMTP.
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Logf("no 127.0.0.2 (%v): skipping the cleartext check", err)
	} else {
		addr := l.Addr().String()
		l.Close()
		mb = startMailbox(t, addr, nil, func(s *smtp.Server) { s.AllowInsecureAuth = true })
		s := testSMTP(addr, nil)
		s.RequireTLS = false
		err := s.Send(context.Background(), testEvent())
		if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "without TLS") {
			t.Errorf("password without TLS: %v", err)
		}
		if d := mb.deliveries(); len(d) != 0 {
			t.Errorf("delivered: %+v", d)
		}
	}

	// A certificate the client does not trust fails the handshake; no
	// message and no password go out.
	cert, _ := selfSigned(t)
	_, otherCfg := selfSigned(t)
	mb = startMailbox(t, "", cert)
	err = testSMTP(mb.addr, otherCfg).Send(context.Background(), testEvent())
	if err == nil || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
	if d := mb.deliveries(); len(d) != 0 {
		t.Errorf("delivered over an untrusted connection: %+v", d)
	}
}

// TestSMTPServerDown simulates Temporal's activity retries: a temporary error
// while the server is down, success once it is up.
func TestSMTPServerDown(t *testing.T) {
	cert, cfg := selfSigned(t)
	addr := closedAddr(t)
	s := testSMTP(addr, cfg)
	var mb *mailbox
	var errs []error
	for attempt := 1; ; attempt++ {
		if attempt > 5 {
			t.Fatalf("no success: %v", errs)
		}
		err := s.Send(context.Background(), testEvent())
		if err == nil {
			break
		}
		errs = append(errs, err)
		if errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "dial "+addr) {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if attempt == 2 {
			mb = startMailbox(t, addr, cert)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(errs) != 2 || len(mb.deliveries()) != 1 {
		t.Errorf("%d errors, %d deliveries", len(errs), len(mb.deliveries()))
	}
}

func TestSMTPReplies(t *testing.T) {
	cert, cfg := selfSigned(t)
	mb := startMailbox(t, "", cert)
	reject := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	busy := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}

	for _, tc := range []struct {
		name      string
		rcpt      map[string]error
		data      error
		password  string
		permanent bool
		want      []string // in the error
		delivered []string
	}{
		{name: "all rejected", rcpt: map[string]error{"ops@example.com": reject, "dba@example.com": reject},
			permanent: true, want: []string{"smtp rcpt: <ops@example.com>: 550", "<dba@example.com>: 550", "no such user"}},
		{name: "one rejected", rcpt: map[string]error{"dba@example.com": reject},
			permanent: true, want: []string{"smtp rcpt: delivered to the other recipients; rejected <dba@example.com>: 550", "no such user"}, delivered: []string{"ops@example.com"}},
		{name: "rcpt busy", rcpt: map[string]error{"dba@example.com": busy}, want: []string{"smtp rcpt <dba@example.com>: 451", "try later"}},
		{name: "data busy", data: busy, want: []string{"smtp data: 451", "try later"}},
		{name: "data rejected", data: &smtp.SMTPError{Code: 554, Message: "spam"}, permanent: true, want: []string{"smtp data: 554", "spam"}},
		{name: "wrong password", password: "wrong-" + testPassword, permanent: true, want: []string{"smtp auth: 535"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mb.set(func(m *mailbox) { m.rcptErr, m.dataErr, m.msgs = tc.rcpt, tc.data, nil })
			s := testSMTP(mb.addr, cfg)
			if tc.password != "" {
				s.Password = tc.password
			}
			err := s.Send(context.Background(), testEvent())
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrPermanent) != tc.permanent {
				t.Errorf("error %q: permanent %v, want %v", err, errors.Is(err, ErrPermanent), tc.permanent)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(fmt.Sprintf("%#v %+v", s, s), testPassword) {
				t.Errorf("password revealed: %v", err)
			}
			var got []string
			for _, d := range mb.deliveries() {
				got = append(got, d.To...)
			}
			if !slices.Equal(got, tc.delivered) {
				t.Errorf("delivered to %v, want %v", got, tc.delivered)
			}
		})
	}
}

// scripted serves each connection on loopback with handle, and closes them
// all when the test ends.
func scripted(t *testing.T, handle func(c *textproto.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var open []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() { handle(textproto.NewConn(c)); c.Close() })
		}
	})
	return l.Addr().String()
}

// within runs f and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("still running after %v", d)
		return nil
	}
}

// TestSMTPContext: a server that accepts connections and never greets must
// not hold Send beyond its context or its Timeout.
func TestSMTPContext(t *testing.T) {
	addr := scripted(t, func(c *textproto.Conn) { io.Copy(io.Discard, c.R) }) // silent until the client hangs up
	s := testSMTP(addr, nil)
	s.Timeout = 10 * time.Second

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err := within(t, time.Second, func() error { return s.Send(ctx, testEvent()) })
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrPermanent) {
		t.Errorf("cancelled: %v", err)
	}

	s.Timeout = 100 * time.Millisecond
	err = within(t, time.Second, func() error { return s.Send(context.Background(), testEvent()) })
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "no reply within 100ms") {
		t.Errorf("timeout: %v", err)
	}
}

// TestSMTPErrorsHidePassword: a server that quotes the AUTH command in its
// reply, raw and decoded, does not get the password into the error.
func TestSMTPErrorsHidePassword(t *testing.T) {
	addr := scripted(t, func(c *textproto.Conn) {
		c.PrintfLine("220 mx.test ESMTP")
		for {
			line, err := c.ReadLine()
			if err != nil {
				return
			}
			switch verb, arg, _ := strings.Cut(line, " "); strings.ToUpper(verb) {
			case "EHLO":
				c.PrintfLine("250-mx.test")
				c.PrintfLine("250 AUTH PLAIN")
			case "AUTH":
				_, b64, _ := strings.Cut(arg, " ")
				raw, _ := base64.StdEncoding.DecodeString(b64)
				c.PrintfLine("535 5.7.8 bad credentials: %s = %s", b64, strings.ReplaceAll(string(raw), "\x00", " "))
			default:
				c.PrintfLine("221 bye")
				return
			}
		}
	})
	s := testSMTP(addr, nil)
	s.RequireTLS = false // 127.0.0.1: net/smtp allows AUTH PLAIN without TLS to localhost
	err := s.Send(context.Background(), testEvent())
	if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "smtp auth: 535") {
		t.Errorf("error %v", err)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte("\x00" + testUser + "\x00" + testPassword))
	for _, secret := range []string{testPassword, b64} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%q reveals %q", err, secret)
		}
	}
	t.Log(err)
}

func TestSMTPConfig(t *testing.T) {
	good := testSMTP("127.0.0.1:25", nil)
	for name, edit := range map[string]func(*SMTP){
		"no port": func(s *SMTP) { s.Addr = "mail.example.com" },
		"from":    func(s *SMTP) { s.From = "not an address" },
		"no to":   func(s *SMTP) { s.To = nil },
		"to":      func(s *SMTP) { s.To = []string{"ops@example.com", "x@"} },
	} {
		s := good
		edit(&s)
		if err := s.Send(context.Background(), testEvent()); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "configure") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestMessageID(t *testing.T) {
	ids := []string{"a", "a.b", "a..b", "a.=2Eb", ".a", "=2Ea", "a.", "a=2E", "a=2Eb", "a=b", "a@b", "<a>", `a"b`, "a(b)", "x/y:z;w,[v]\\"}
	seen := map[string]string{}
	for _, id := range ids {
		mid := messageID(id, "bulwark@example.com")
		if prev, dup := seen[mid]; dup {
			t.Errorf("ids %q and %q share Message-ID %s", prev, id, mid)
		}
		seen[mid] = id
		// msg-id is "<" dot-atom-text "@" dot-atom-text ">": an addr-spec
		// with a dot-atom local part.
		if !strings.HasPrefix(mid, "<") || !strings.HasSuffix(mid, ">") {
			t.Errorf("%q → %s", id, mid)
			continue
		}
		spec := mid[1 : len(mid)-1]
		local := spec[:strings.LastIndexByte(spec, '@')]
		if a, err := mail.ParseAddress(spec); err != nil || a.Address != spec || !dotAtom(local) {
			t.Errorf("%q → %s: not a valid msg-id (%v)", id, mid, err)
		}
		if again := messageID(id, "bulwark@example.com"); again != mid {
			t.Errorf("%q: %s then %s", id, mid, again)
		}
	}
	long := strings.Repeat("a:", MaxIDLen/2)
	if got, want := messageID(long, "b@example.com"), "<bulwark.sha256."; !strings.HasPrefix(got, want) || len(got) > 300 || got == messageID(long[1:], "b@example.com") {
		t.Errorf("long id: %s", got)
	}
	if got := messageID("x", "root@[127.0.0.1]"); got != "<bulwark.x@bulwark.invalid>" {
		t.Errorf("literal domain: %s", got)
	}
}
