package keeper

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzKeyFile reads arbitrary bytes as a key file: it is refused as a key
// file problem, or it holds exactly one base64-encoded 32-byte key, which
// the keeper's description never reveals.
func FuzzKeyFile(f *testing.F) {
	path := filepath.Join(f.TempDir(), "bulwark.key")
	valid := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))
	f.Add([]byte(valid + "\n"))
	f.Add([]byte(" \t" + valid + "\r\n\n"))
	f.Add([]byte(valid[:len(valid)-1]))
	f.Add([]byte(base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))))
	f.Add([]byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 33))))
	f.Add([]byte(hex.EncodeToString(bytes.Repeat([]byte{1}, 32))))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xfe, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := loadKeyFile(path, false)
		want, werr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if werr != nil || len(want) != 32 {
			if err == nil {
				t.Fatalf("accepted %q as a key file", data)
			}
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("error is not a key file problem: %v", err)
			}
			if len(data) >= 8 && strings.Contains(err.Error(), string(data)) {
				t.Fatalf("the error quotes the file's contents: %v", err)
			}
			return
		}
		if err != nil || !bytes.Equal(key[:], want) {
			t.Fatalf("a valid key file reads as %x, %v", key, err)
		}
		k, err := Open(context.Background(), "keyfile://"+filepath.ToSlash(path), false)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		for _, secret := range []string{strings.TrimSpace(string(data)), hex.EncodeToString(key[:]), base64.RawStdEncoding.EncodeToString(key[:])} {
			if strings.Contains(k.Description, secret) {
				t.Fatalf("description %q reveals the key", k.Description)
			}
		}
	})
}

// urlSecrets returns what Redact and Scrub must hide in rawURL: the user
// info and the values of secret-looking query parameters.
func urlSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	for k, vs := range u.Query() {
		if secretParam(k) {
			out = append(out, vs...)
		}
	}
	return out
}

// FuzzRedact checks Redact and Scrub on arbitrary URLs: a redacted URL
// carries no user info but "REDACTED" and no secret query value, and a
// message that quotes the URL, scrubbed, contains none of its secrets.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"awskms://alias/bulwark?region=eu-west-2",
		"hashivault://mykey?token=s.abcdef123456",
		"https://user:p%40ssw0rd@vault.example.com:8200/v1/transit?X-Amz-Signature=0123abc&sig=xyz",
		"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k?access_token=ya29.secret",
		"keyfile:///etc/bulwark/bulwark.key",
		"azurekeyvault://vault.vault.azure.net/keys/k?client_secret=abc&keyid=1",
		"s3://:@host/?secret=&secret=x;y",
		"%zz://bad",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		red := Redact(raw)
		u, err := url.Parse(raw)
		if err != nil {
			if red != "<unparseable URL>" {
				t.Fatalf("Redact of an unparseable URL gave %q", red)
			}
			if got := Scrub("open "+raw, raw); got != "<message withheld: it may quote credentials>" {
				t.Fatalf("Scrub kept a message quoting an unparseable URL: %q", got)
			}
			return
		}
		if r, err := url.Parse(red); err == nil {
			if r.User != nil {
				if _, has := r.User.Password(); has || r.User.Username() != "REDACTED" {
					t.Fatalf("Redact(%q) = %q keeps user info", raw, red)
				}
			}
			for k, vs := range r.Query() {
				for _, v := range vs {
					if secretParam(k) && v != "REDACTED" {
						t.Fatalf("Redact(%q) = %q keeps %s=%s", raw, red, k, v)
					}
				}
			}
		}
		msg := "open keeper " + raw + ": dial " + raw + ": refused"
		got := Scrub(msg, raw)
		for _, s := range urlSecrets(u) {
			// A secret made only of letters that "REDACTED" holds could be
			// found in the replacement itself.
			if s == "" || strings.ContainsAny(s, "REDACT") {
				continue
			}
			if strings.Contains(got, s) {
				t.Fatalf("Scrub(%q) = %q reveals %q", msg, got, s)
			}
		}
	})
}
