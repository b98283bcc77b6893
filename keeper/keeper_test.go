package keeper

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// openKeyFile opens keyfile://path and closes the keeper when the test ends.
func openKeyFile(t *testing.T, path string, create bool) (*Keeper, error) {
	t.Helper()
	k, err := Open(context.Background(), "keyfile://"+filepath.ToSlash(path), create)
	if err == nil {
		t.Cleanup(func() { k.Close() })
	}
	return k, err
}

// writeKeyFile writes contents to a new key file with the given mode and
// returns its path.
func writeKeyFile(t *testing.T, contents string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bulwark.key")
	if err := os.WriteFile(path, []byte(contents), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func validKeyFileContents() string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5a}, 32)) + "\n"
}

func TestKeyFiles(t *testing.T) {
	ctx := context.Background()

	t.Run("a missing key file is created with mode 0600 when create is set", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "keys", "nested", "bulwark.key")
		k, err := openKeyFile(t, path, true)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("key file was not created: %v", err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("key file has mode %04o, want 0600", info.Mode().Perm())
		}
		if dir, err := os.Stat(filepath.Dir(path)); err != nil || dir.Mode().Perm()&0o077 != 0 {
			t.Errorf("key directory is open to others: %v, %v", dir.Mode(), err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(raw) != 32 {
			t.Fatalf("created key file does not hold a base64 32-byte key: %q", data)
		}
		if !strings.HasPrefix(k.Description, "keyfile sha256:") {
			t.Errorf("description %q", k.Description)
		}
	})

	t.Run("a missing key file is an error naming the path when create is not set", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bulwark.key")
		_, err := openKeyFile(t, path, false)
		if !errors.Is(err, ErrKeyFile) {
			t.Fatalf("got %v, want ErrKeyFile", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Error("a key file was created although create was false")
		}
	})

	t.Run("a second open reads the same key", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bulwark.key")
		first, err := openKeyFile(t, path, true)
		if err != nil {
			t.Fatal(err)
		}
		second, err := openKeyFile(t, path, false)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := first.Encrypt(ctx, []byte("data key"))
		if err != nil {
			t.Fatal(err)
		}
		opened, err := second.Decrypt(ctx, sealed)
		if err != nil || string(opened) != "data key" {
			t.Fatalf("second keeper cannot decrypt what the first encrypted: %q, %v", opened, err)
		}
		if first.Description != second.Description {
			t.Errorf("descriptions differ: %q, %q", first.Description, second.Description)
		}
		// create=true on an existing file reads it too.
		third, err := openKeyFile(t, path, true)
		if err != nil || third.Description != first.Description {
			t.Fatalf("re-opening with create=true gave %v, %v", third, err)
		}
	})

	t.Run("two key files hold different keys", func(t *testing.T) {
		a, err := openKeyFile(t, filepath.Join(t.TempDir(), "a.key"), true)
		if err != nil {
			t.Fatal(err)
		}
		b, err := openKeyFile(t, filepath.Join(t.TempDir(), "b.key"), true)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := a.Encrypt(ctx, []byte("data key"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Decrypt(ctx, sealed); err == nil {
			t.Fatal("a keeper with another key decrypted")
		}
		if a.Description == b.Description {
			t.Error("two different keys have the same description")
		}
	})

	t.Run("a key file with trailing whitespace is accepted", func(t *testing.T) {
		path := writeKeyFile(t, "  "+strings.TrimSpace(validKeyFileContents())+"\r\n\n", 0o600)
		if _, err := openKeyFile(t, path, false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a read-only key file is accepted", func(t *testing.T) {
		path := writeKeyFile(t, validKeyFileContents(), 0o400)
		if _, err := openKeyFile(t, path, false); err != nil {
			t.Fatal(err)
		}
	})

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o666} {
		t.Run(fmt.Sprintf("a key file with mode %04o is refused with the chmod that fixes it", mode), func(t *testing.T) {
			path := writeKeyFile(t, validKeyFileContents(), mode)
			for _, create := range []bool{false, true} {
				_, err := openKeyFile(t, path, create)
				if !errors.Is(err, ErrKeyFile) {
					t.Fatalf("create=%v: got %v, want ErrKeyFile", create, err)
				}
				if !strings.Contains(err.Error(), "chmod 600 "+path) {
					t.Errorf("error %q does not say chmod 600 %s", err, path)
				}
			}
		})
	}

	for name, contents := range map[string]string{
		"empty":                        "",
		"not base64":                   "this is not a key\n",
		"a 16-byte key":                base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"a 33-byte key":                base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"a hex key":                    hex.EncodeToString(make([]byte, 32)),
		"URL-safe base64 without pads": base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)),
		"two keys":                     validKeyFileContents() + validKeyFileContents(),
	} {
		t.Run("a key file that is "+name+" is refused", func(t *testing.T) {
			path := writeKeyFile(t, contents, 0o600)
			_, err := openKeyFile(t, path, true)
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("got %v, want ErrKeyFile", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if got, _ := os.ReadFile(path); string(got) != contents {
				t.Error("a malformed key file was overwritten")
			}
		})
	}

	t.Run("a key file that is a directory is refused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "bulwark.key")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		_, err := openKeyFile(t, dir, true)
		if !errors.Is(err, ErrKeyFile) {
			t.Fatalf("got %v, want ErrKeyFile", err)
		}
	})

	t.Run("keyfile://relative/path resolves against the working directory", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		k, err := Open(ctx, "keyfile://keys/bulwark.key", true)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		if _, err := os.Stat(filepath.Join(dir, "keys", "bulwark.key")); err != nil {
			t.Fatalf("key file not created under the working directory: %v", err)
		}
	})

	t.Run("keyfile://localhost/path is an absolute path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bulwark.key")
		k, err := Open(ctx, "keyfile://localhost"+filepath.ToSlash(path), true)
		if err != nil {
			t.Fatal(err)
		}
		defer k.Close()
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("key file not created at %s: %v", path, err)
		}
	})

	t.Run("a keyfile URL without a path is refused", func(t *testing.T) {
		for _, u := range []string{"keyfile://", "keyfile:", "keyfile://localhost"} {
			if _, err := Open(ctx, u, true); !errors.Is(err, ErrKeyFile) {
				t.Errorf("Open(%q): got %v, want ErrKeyFile", u, err)
			}
		}
	})
}

func TestOpenRefusesUnsafeKeepers(t *testing.T) {
	ctx := context.Background()
	const key = "smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4="

	t.Run("base64key:// is refused without repeating the key", func(t *testing.T) {
		_, err := Open(ctx, "base64key://"+key, true)
		if err == nil {
			t.Fatal("base64key:// was accepted")
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), url.QueryEscape(key)) {
			t.Errorf("error %q repeats the key", err)
		}
		if !strings.Contains(err.Error(), "keyfile://") {
			t.Errorf("error %q does not suggest keyfile://", err)
		}
	})

	t.Run("a URL without a scheme is refused with the fix", func(t *testing.T) {
		_, err := Open(ctx, "/etc/bulwark.key", true)
		if err == nil || !strings.Contains(err.Error(), "keyfile:///") {
			t.Fatalf("got %v, want an error suggesting keyfile:///", err)
		}
	})

	t.Run("an unknown scheme is refused, naming the redacted URL", func(t *testing.T) {
		_, err := Open(ctx, "nosuchkms://admin:hunter2@vault.example?token=s3cr3tt0ken&region=eu", true)
		if err == nil {
			t.Fatal("an unknown scheme was accepted")
		}
		if !strings.HasPrefix(err.Error(), "open keeper nosuchkms://REDACTED@vault.example?region=eu&token=REDACTED: ") {
			t.Errorf("error %q does not start with the redacted URL", err)
		}
	})

	// Regression: the error of secrets.OpenKeeper repeats the raw URL, credentials
	// included ("no driver registered for \"nosuchkms\" for URL
	// \"nosuchkms://admin:hunter2@…?token=s3cr3tt0ken…\"", and likewise
	// "open keeper awskms://admin:hunter2@…: unknown query parameter …"), and
	// Open wraps it with %w after its own redacted prefix (keeper.go, the
	// secrets.OpenKeeper branch of Open). Fixed; this guards it.
	t.Run("an unknown scheme is refused without repeating credentials", func(t *testing.T) {
		_, err := Open(ctx, "nosuchkms://admin:hunter2@vault.example?token=s3cr3tt0ken&region=eu", true)
		for _, secret := range []string{"hunter2", "s3cr3tt0ken"} {
			if err == nil || strings.Contains(err.Error(), secret) {
				t.Errorf("error %v repeats %q", err, secret)
			}
		}
	})

	t.Run("a URL that does not parse is refused without repeating it", func(t *testing.T) {
		_, err := Open(ctx, "keyfile://%zz/bulwark.key", true)
		if err == nil || strings.Contains(err.Error(), "%zz/bulwark.key") {
			t.Fatalf("got %v", err)
		}
	})

	// Regression: a secret containing '/' (common in AWS secret access keys) makes
	// the URL's authority end early, so url.Parse fails with "invalid port
	// \":<start of secret>\" after host", and Open repeats that text in its
	// error (keeper.go, redactErr). Fixed; this guards it.
	t.Run("a URL with a secret containing a slash is refused without repeating the secret", func(t *testing.T) {
		_, err := Open(ctx, "awskms://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG@alias/bulwark", true)
		if err == nil || strings.Contains(err.Error(), "wJalrXUtnFEMI") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestFingerprint(t *testing.T) {
	var key [32]byte
	copy(key[:], "0123456789abcdef0123456789abcdef")

	t.Run("the fingerprint is stable", func(t *testing.T) {
		if Fingerprint(key) != Fingerprint(key) {
			t.Fatal("fingerprint changes between calls")
		}
		if !regexp.MustCompile(`^sha256:[0-9a-f]{16}$`).MatchString(Fingerprint(key)) {
			t.Fatalf("fingerprint %q is not sha256:<16 hex digits>", Fingerprint(key))
		}
	})

	t.Run("the fingerprint does not contain the key", func(t *testing.T) {
		fp := Fingerprint(key)
		for _, form := range []string{
			string(key[:]),
			hex.EncodeToString(key[:]),
			base64.StdEncoding.EncodeToString(key[:]),
			hex.EncodeToString(key[:8]),
		} {
			if strings.Contains(fp, form) {
				t.Errorf("fingerprint %q contains %q", fp, form)
			}
		}
	})

	t.Run("different keys have different fingerprints", func(t *testing.T) {
		other := key
		other[31] ^= 1
		if Fingerprint(other) == Fingerprint(key) {
			t.Fatal("two keys share a fingerprint")
		}
	})

	t.Run("the description of an opened key file is its fingerprint", func(t *testing.T) {
		path := writeKeyFile(t, base64.StdEncoding.EncodeToString(key[:]), 0o600)
		k, err := openKeyFile(t, path, false)
		if err != nil {
			t.Fatal(err)
		}
		if k.Description != "keyfile "+Fingerprint(key) {
			t.Fatalf("description %q, want keyfile %s", k.Description, Fingerprint(key))
		}
		if strings.Contains(k.Description, path) {
			t.Errorf("description %q reveals the key file's location", k.Description)
		}
	})
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name    string
		url     string
		gone    []string // must not appear
		kept    []string // must still appear
		exactly string   // when set, the whole result
	}{
		{
			name: "user and password are removed, host and path kept",
			url:  "awskms://admin:hunter2@kms.example.com/alias/bulwark?region=eu-west-2",
			gone: []string{"admin", "hunter2"},
			kept: []string{"awskms://", "kms.example.com", "/alias/bulwark", "region=eu-west-2"},
		},
		{
			name: "a user without a password is removed",
			url:  "hashivault://deploy-bot@vault.example.com/transit/bulwark",
			gone: []string{"deploy-bot"},
			kept: []string{"vault.example.com", "/transit/bulwark"},
		},
		{
			name: "token, secret, password and key query values are removed",
			url:  "s3://backups?region=us-east-1&token=tok-value&client_secret=sec-value&Password=pw-value&access_key=ak-value&endpoint=minio.local",
			gone: []string{"tok-value", "sec-value", "pw-value", "ak-value"},
			kept: []string{"s3://backups", "region=us-east-1", "endpoint=minio.local", "token=REDACTED"},
		},
		{
			name:    "keyid is not a secret and is kept",
			url:     "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k?keyid=1234",
			exactly: "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k?keyid=1234",
		},
		{
			name:    "a URL without secrets is unchanged",
			url:     "file:///srv/backups?create_dir=1",
			exactly: "file:///srv/backups?create_dir=1",
		},
		{
			name:    "a URL without a query is unchanged",
			url:     "awskms://alias/bulwark",
			exactly: "awskms://alias/bulwark",
		},
		{
			name:    "an unparseable URL is replaced entirely",
			url:     "s3://admin:hunter2@bucket/%zz",
			exactly: "<unparseable URL>",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Redact(tc.url)
			if tc.exactly != "" && got != tc.exactly {
				t.Fatalf("Redact(%q) = %q, want %q", tc.url, got, tc.exactly)
			}
			for _, s := range tc.gone {
				if strings.Contains(got, s) {
					t.Errorf("Redact(%q) = %q still contains %q", tc.url, got, s)
				}
			}
			for _, s := range tc.kept {
				if !strings.Contains(got, s) {
					t.Errorf("Redact(%q) = %q lost %q", tc.url, got, s)
				}
			}
		})
	}

	// Regression: query parameters that carry credentials under other names are
	// kept: an Azure SAS signature (sig=), AWS presigned-URL parameters
	// (X-Amz-Signature, X-Amz-Credential). Redact only looks for "secret",
	// "token", "password" and "key". Fixed; this guards it.
	t.Run("signature query values are removed", func(t *testing.T) {
		got := Redact("azblob://container?sv=2022-11-02&sig=c2lnbmF0dXJl&X-Amz-Signature=abc123")
		if strings.Contains(got, "c2lnbmF0dXJl") || strings.Contains(got, "abc123") {
			t.Fatalf("Redact kept a signature: %q", got)
		}
	})
}
