package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultSMTPTimeout bounds one SMTP send, from dial to the reply to the
// message, when SMTP.Timeout is 0.
const DefaultSMTPTimeout = 30 * time.Second

// SMTP emails each event as plain text (UTF-8, quoted-printable) to a
// submission server.
//
// The message has the subject "[Bulwark] <severity>: <title>", the Date
// Event.At and a Message-ID derived from Event.ID, so a retried send is
// recognisable; it also carries X-Bulwark-Event-ID, X-Bulwark-Kind and
// X-Bulwark-Severity. STARTTLS is used when the server offers it. With a
// Username, AUTH PLAIN is used, and only over TLS (or to localhost).
//
// Errors: an SMTP 5xx reply, a server without STARTTLS when RequireTLS is
// set, a server without AUTH PLAIN when a Username is set, or an invalid
// configuration or event is permanent; 4xx replies, network and TLS errors
// and timeouts are temporary. When the server rejects some recipients with
// 5xx and accepts others, the message goes to those it accepted and Send
// returns a permanent error naming the rejected ones. The password never
// appears in errors or in String.
type SMTP struct {
	Label string   // channel name; "smtp" if empty
	Addr  string   // host:port of the submission server, e.g. "mail.example.com:587"
	From  string   // RFC 5322 address, e.g. "Bulwark <bulwark@example.com>"
	To    []string // RFC 5322 addresses
	// Username enables AUTH PLAIN. The caller reads Password from the
	// environment or a secret store, never from a configuration file.
	Username, Password string
	RequireTLS         bool          // fail unless the server offers STARTTLS
	Timeout            time.Duration // whole send; DefaultSMTPTimeout if 0
	TLSConfig          *tls.Config   // nil: system roots; ServerName defaults to Addr's host
	Hello              string        // EHLO name; "localhost" if empty
}

var _ Channel = SMTP{}

// Name returns the channel name.
func (s SMTP) Name() string {
	if s.Label == "" {
		return "smtp"
	}
	return s.Label
}

// String names the channel, the server and the recipients; never the password.
func (s SMTP) String() string {
	return fmt.Sprintf("smtp %s (%s → %s)", s.Name(), s.Addr, strings.Join(s.To, ", "))
}

// GoString is String, so that %#v does not print the password.
func (s SMTP) GoString() string { return s.String() }

// Send emails e; see SMTP for the error contract.
func (s SMTP) Send(ctx context.Context, e Event) error {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return s.fail("configure", fmt.Errorf("address %q is not host:port", s.Addr), true)
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return s.fail("configure", fmt.Errorf("from address: %w", err), true)
	}
	if len(s.To) == 0 {
		return s.fail("configure", errors.New("no recipients"), true)
	}
	to := make([]*mail.Address, len(s.To))
	for i, a := range s.To {
		if to[i], err = mail.ParseAddress(a); err != nil {
			return s.fail("configure", fmt.Errorf("to address %q: %w", a, err), true)
		}
	}
	if err := e.Validate(); err != nil {
		return s.fail("smtp "+s.Addr, err, true)
	}
	msg := message(e, from, to)

	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return s.fail("dial "+s.Addr, err, false)
	}
	defer conn.Close()
	// net/smtp knows no context. When ctx ends (cancelled, or the timeout),
	// a deadline in the past unblocks every read and write; ctx.Err() is set
	// by then, so the failure is reported as the context's.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	op, err := s.session(conn, host, from, to, msg)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		if parent.Err() == nil {
			err = fmt.Errorf("no reply within %s: %w", timeout, ctx.Err())
		} else {
			err = fmt.Errorf("%w: %w", parent.Err(), err)
		}
	}
	return s.fail(op, err, permanentSMTP(err))
}

// rejectedError names recipients the server refused with 5xx while it
// accepted others.
type rejectedError struct{ errs []error }

func (r *rejectedError) Error() string {
	msgs := make([]string, len(r.errs))
	for i, err := range r.errs {
		msgs[i] = err.Error()
	}
	return "delivered to the other recipients; rejected " + strings.Join(msgs, "; ")
}

// session speaks SMTP on conn. It returns the failed step and its error.
func (s SMTP) session(conn net.Conn, host string, from *mail.Address, to []*mail.Address, msg []byte) (string, error) {
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return "smtp greeting", err
	}
	defer c.Close()
	hello := s.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return "smtp ehlo", err
	}
	secure := false
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := &tls.Config{}
		if s.TLSConfig != nil {
			cfg = s.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		if err := c.StartTLS(cfg); err != nil {
			return "smtp starttls", err
		}
		secure = true
	} else if s.RequireTLS {
		return "smtp starttls", permanent("server does not offer STARTTLS and TLS is required")
	}

	if s.Username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return "smtp auth", permanent("server does not offer AUTH PLAIN")
		}
		if !secure && host != "localhost" && host != "127.0.0.1" && host != "::1" {
			return "smtp auth", permanent("refusing to send the password without TLS")
		}
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return "smtp auth", err
		}
	}

	if err := c.Mail(from.Address); err != nil {
		return "smtp mail from", err
	}
	var rejected []error
	for _, a := range to {
		err := c.Rcpt(a.Address)
		if err == nil {
			continue
		}
		if !permanentSMTP(err) {
			_ = c.Reset()
			return "smtp rcpt <" + a.Address + ">", err
		}
		rejected = append(rejected, fmt.Errorf("<%s>: %w", a.Address, err))
	}
	if len(rejected) == len(to) {
		_ = c.Reset()
		return "smtp rcpt", errors.Join(rejected...)
	}
	w, err := c.Data()
	if err != nil {
		return "smtp data", err
	}
	if _, err := w.Write(msg); err != nil {
		return "smtp data", err
	}
	if err := w.Close(); err != nil { // the server's reply to the message
		return "smtp data", err
	}
	_ = c.Quit() // the message is accepted; a lost QUIT changes nothing
	if len(rejected) > 0 {
		return "smtp rcpt", &rejectedError{rejected}
	}
	return "", nil
}

// permanentError is a refusal decided on the client side.
type permanentError string

func permanent(msg string) error           { return permanentError(msg) }
func (p permanentError) Error() string     { return string(p) }
func (p permanentError) Is(err error) bool { return err == ErrPermanent }

// permanentSMTP reports whether err is a 5xx reply or a client-side refusal.
func permanentSMTP(err error) bool {
	if errors.Is(err, ErrPermanent) {
		return true
	}
	var re *rejectedError
	if errors.As(err, &re) {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}

// fail builds the error, scrubbing the password (also as sent in AUTH PLAIN).
func (s SMTP) fail(op string, err error, permanent bool) *Error {
	var secrets []string
	if s.Password != "" {
		secrets = append(secrets, s.Password,
			base64.StdEncoding.EncodeToString([]byte("\x00"+s.Username+"\x00"+s.Password)))
	}
	return &Error{Channel: s.Name(), Op: op, Err: scrub(err, secrets...), Permanent: permanent}
}

// subject is "[Bulwark] <severity>: <title>" on one line.
func subject(e Event) string {
	return "[Bulwark] " + e.Severity + ": " + strings.Join(strings.Fields(e.Title), " ")
}

// message renders the RFC 5322 message with CRLF line ends.
func message(e Event, from *mail.Address, to []*mail.Address) []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", from.String())
	header("To", addressList(to))
	header("Subject", mime.QEncoding.Encode("utf-8", truncate(subject(e), 200)))
	header("Date", e.At.Format(time.RFC1123Z))
	header("Message-ID", messageID(e.ID, from.Address))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("X-Bulwark-Event-ID", e.ID) // validated: printable ASCII
	header("X-Bulwark-Kind", e.Kind)
	header("X-Bulwark-Severity", e.Severity)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(body(e))) // writes to a bytes.Buffer do not fail
	_ = qp.Close()
	return b.Bytes()
}

// body is the human text, then the database and the fields, then the event's
// identity, with "\n" line ends.
func body(e Event) string {
	var b strings.Builder
	if text := strings.TrimRight(normalizeNewlines(e.Text), "\n"); text != "" {
		b.WriteString(text + "\n\n")
	}
	if e.Database != "" {
		b.WriteString("Database: " + e.Database + "\n")
	}
	for _, k := range e.fieldKeys() {
		b.WriteString(k + ": " + normalizeNewlines(e.Fields[k]) + "\n")
	}
	if e.Database != "" || len(e.Fields) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("Kind: " + e.Kind + "\n")
	b.WriteString("Severity: " + e.Severity + "\n")
	b.WriteString("At: " + e.At.UTC().Format(time.RFC3339) + "\n")
	b.WriteString("Event ID: " + e.ID + "\n")
	return b.String()
}

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// addressList renders the To header, folding before a line would pass 78
// characters.
func addressList(to []*mail.Address) string {
	var b strings.Builder
	line := len("To: ")
	for i, a := range to {
		s := a.String()
		if i > 0 {
			b.WriteString(",")
			line++
			if line+1+len(s) > 78 {
				b.WriteString("\r\n")
				line = 0
			}
			b.WriteString(" ")
			line++
		}
		b.WriteString(s)
		line += len(s)
	}
	return b.String()
}

// messageID derives the Message-ID from the event id: "<bulwark.ID@domain>",
// the domain taken from the sender. Characters not allowed in a dot-atom,
// '=', and dots that would be doubled or final are written as =XX, so equal
// ids give equal Message-IDs and different ids different ones. An id too
// long for that is replaced by its SHA-256.
func messageID(id, sender string) string {
	domain := "bulwark.invalid"
	if i := strings.LastIndexByte(sender, '@'); i >= 0 && dotAtom(sender[i+1:]) {
		domain = sender[i+1:]
	}
	var b strings.Builder
	b.WriteString("<bulwark.")
	for i := 0; i < len(id); i++ {
		c := id[i]
		prev := b.String()[b.Len()-1]
		switch {
		case c == '.' && prev != '.' && i < len(id)-1:
			b.WriteByte(c)
		case c != '.' && c != '=' && atext(c):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	if b.Len() > maxIDLeft { // keep the header line short: a digest instead
		sum := sha256.Sum256([]byte(id))
		b.Reset()
		b.WriteString("<bulwark.sha256." + hex.EncodeToString(sum[:]))
	}
	b.WriteString("@" + domain + ">")
	return b.String()
}

// maxIDLeft bounds the part of a Message-ID before the '@'.
const maxIDLeft = 200

// atext reports whether c may appear in an RFC 5322 atom.
func atext(c byte) bool {
	return c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0)
}

func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !atext(s[i]) {
			return false
		}
	}
	return true
}
