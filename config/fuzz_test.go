package config

import (
	"errors"
	"net/url"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	// Seeds are small: the fuzz engine's minimisation of new inputs is
	// quadratic in their length.
	f.Add([]byte("host: h\ndestination: d\nkeeper: keyfile://k\ndatabases:\n- name: a\n  path: p\n"))
	f.Add([]byte("host: h\ndestination: file://d?x=1\nkeeper: awskms://a\ncompression: zstd-best\n"))
	f.Add([]byte("host: h\ndestination: s3://u:p@b\nkeeper: base64key://k\n"))
	f.Add([]byte("destination: d\nkeeper: keyfile:///k\ndatabases:\n- name: A B\n  path: p\n- name: a\n"))
	f.Add([]byte("limits:\n  upload: 1.5MiB\nrestore:\n  approval_timeout: -1h\n"))
	f.Add([]byte("temporal:\n  address: x:1\nscratch_dir: ~/s\n"))
	f.Add([]byte("databses: []\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))

	path := filepath.Join(f.TempDir(), "bulwark.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(path, data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *config.Error: %v", err)
			}
			return
		}
		// Whatever is accepted is usable as is.
		u, err := url.Parse(c.Destination)
		if err != nil {
			t.Fatalf("accepted destination %q is not a URL: %v", c.Destination, err)
		}
		switch u.Scheme {
		case "file":
			if !filepath.IsAbs(u.Path) || u.User != nil {
				t.Fatalf("accepted file destination %q", c.Destination)
			}
		case "s3", "gs", "azblob", "mem":
			if u.User != nil {
				t.Fatalf("accepted destination %q with credentials", c.Destination)
			}
		default:
			t.Fatalf("accepted destination scheme %q", u.Scheme)
		}
		if c.Keeper == "" {
			t.Fatal("accepted a config without a keeper")
		}
		switch c.Compression {
		case "", "zstd", "zstd-better", "zstd-best":
		default:
			t.Fatalf("accepted compression %q", c.Compression)
		}
		if c.Restore.ApprovalTimeout < 0 {
			t.Fatalf("accepted approval timeout %d", c.Restore.ApprovalTimeout)
		}
		seen := map[string]bool{}
		for _, d := range c.Databases {
			if !namePattern.MatchString(d.Name) || seen[d.Name] {
				t.Fatalf("accepted database name %q", d.Name)
			}
			seen[d.Name] = true
			if !filepath.IsAbs(d.Path) || d.Host == "" {
				t.Fatalf("accepted database %+v", d)
			}
		}
	})
}
