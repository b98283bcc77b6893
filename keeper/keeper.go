// Package keeper opens the secrets keeper that wraps backup data keys. Any
// gocloud.dev/secrets URL works (awskms://, gcpkms://, hashivault://, …);
// in addition it registers keyfile://, a local 256-bit key kept in a file
// with 0600 permissions and created on first use, which is the default.
package keeper

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/secrets"
	_ "gocloud.dev/secrets/awskms"     // awskms:// URLs
	_ "gocloud.dev/secrets/hashivault" // hashivault:// URLs
	"gocloud.dev/secrets/localsecrets"
)

// Scheme is the URL scheme of local key files.
const Scheme = "keyfile"

// ErrKeyFile marks a key file that is missing, malformed or unsafe.
var ErrKeyFile = errors.New("key file problem")

// Keeper is an opened keeper and a description of it that is safe to log and
// store in manifests: it never contains key material or credentials.
type Keeper struct {
	*secrets.Keeper
	Description string
}

// Open opens the keeper at rawURL. For keyfile:// URLs, create decides
// whether a missing key file is created (the worker of a new installation) or
// is an error (anything that restores: a new key could never open old backups).
func Open(ctx context.Context, rawURL string, create bool) (*Keeper, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("keeper URL is not a URL: %v", redactErr(err))
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("keeper URL %q has no scheme; use keyfile:///path/to/bulwark.key or a KMS URL such as awskms://...", Redact(rawURL))
	}
	if u.Scheme == "base64key" {
		return nil, errors.New("keeper base64key:// puts the key itself in the URL, and so in config files and process listings; use keyfile:///path/to/bulwark.key instead")
	}
	if u.Scheme != Scheme {
		k, err := secrets.OpenKeeper(ctx, rawURL)
		if err != nil {
			// Drivers quote the URL they were given, credentials and all:
			// keep only a scrubbed copy of their message, not the error.
			return nil, fmt.Errorf("open keeper %s: %s", Redact(rawURL), Scrub(err.Error(), rawURL))
		}
		return &Keeper{Keeper: k, Description: Redact(rawURL)}, nil
	}
	path := u.Path
	if u.Host != "" && u.Host != "localhost" {
		// keyfile://relative/path: treat host+path as a relative path.
		path = u.Host + u.Path
	}
	if path == "" {
		return nil, fmt.Errorf("%w: keeper URL %q names no file; use keyfile:///absolute/path/bulwark.key", ErrKeyFile, rawURL)
	}
	key, err := loadKeyFile(path, create)
	if err != nil {
		return nil, err
	}
	return &Keeper{
		Keeper:      localsecrets.NewKeeper(key),
		Description: "keyfile " + Fingerprint(key),
	}, nil
}

// Fingerprint identifies a local key without revealing it.
func Fingerprint(key [32]byte) string {
	sum := sha256.Sum256(append([]byte("bulwark key fingerprint v1\x00"), key[:]...))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

func loadKeyFile(path string, create bool) ([32]byte, error) {
	var key [32]byte
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if !create {
			return key, fmt.Errorf("%w: %s does not exist; restore needs the key the backups were written with", ErrKeyFile, path)
		}
		return createKeyFile(path)
	}
	if err != nil {
		return key, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return key, fmt.Errorf("%w: %s is readable by others (mode %04o); run: chmod 600 %s", ErrKeyFile, path, info.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return key, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != 32 {
		return key, fmt.Errorf("%w: %s does not hold a base64-encoded 32-byte key", ErrKeyFile, path)
	}
	copy(key[:], raw)
	return key, nil
}

func createKeyFile(path string) ([32]byte, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return key, fmt.Errorf("%w: create directory for %s: %v", ErrKeyFile, path, err)
	}
	// O_EXCL: two workers starting at once must not each write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadKeyFile(path, false)
	}
	if err != nil {
		return key, fmt.Errorf("%w: create %s: %v", ErrKeyFile, path, err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key[:]) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return key, fmt.Errorf("%w: write %s: %v", ErrKeyFile, path, err)
	}
	return key, nil
}

// Redact removes credentials from a URL (user info and query values that
// look like secrets or signatures) so that it can be logged or stored.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparseable URL>"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	q := u.Query()
	for k := range q {
		if secretParam(k) {
			q.Set(k, "REDACTED")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	if n == "sig" || n == "keyid" {
		return n == "sig"
	}
	for _, w := range []string{"secret", "token", "password", "key", "signature", "credential", "auth"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Scrub removes from msg the raw URL and every credential it carries (user
// info, secret-looking query values), for error texts that quote the URL.
func Scrub(msg, rawURL string) string {
	msg = strings.ReplaceAll(msg, rawURL, Redact(rawURL))
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<message withheld: it may quote credentials>"
	}
	var secrets []string
	if u.User != nil {
		secrets = append(secrets, u.User.Username())
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	for k, vs := range u.Query() {
		if secretParam(k) {
			secrets = append(secrets, vs...)
		}
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "REDACTED")
		}
	}
	return msg
}

// redactErr describes why a URL does not parse without quoting it: the
// parser's message repeats the text it choked on, often part of a secret.
func redactErr(error) string {
	return "it does not parse (a '/', '%' or '@' in credentials must be escaped; better, keep credentials out of URLs)"
}
