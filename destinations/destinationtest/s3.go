package destinationtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob" // s3:// URLs
)

// S3Bucket is the name of the bucket that StartS3 creates.
const S3Bucket = "bulwark-test"

// S3Server is an S3 protocol server (gofakes3 over an in-memory backend)
// listening on 127.0.0.1 for the duration of a test.
type S3Server struct {
	// URL is the s3:// destination URL of S3Bucket on this server, as a
	// user would write it in Bulwark's configuration.
	URL string
	// Endpoint is the server's http://127.0.0.1:port address.
	Endpoint string

	mu       sync.Mutex
	requests []S3Request
}

// S3Request is a request as the S3 server received it, before gofakes3
// handled it: what a client really sent, whatever its SDK was told to do.
type S3Request struct {
	Method string
	// Path is the request path: /bucket/key (StartS3's URL is path-style).
	Path   string
	Query  url.Values
	Header http.Header
}

// Op names the S3 operation of an object request on the bucket
// (PutObject, CopyObject, CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload, GetObject, HeadObject,
// DeleteObject), or returns "" for anything else.
func (r S3Request) Op() string {
	if !strings.HasPrefix(r.Path, "/"+S3Bucket+"/") || r.Path == "/"+S3Bucket+"/" {
		return ""
	}
	_, uploads := r.Query["uploads"]
	uploadID := r.Query.Get("uploadId") != ""
	switch {
	case r.Method == http.MethodPost && uploads:
		return "CreateMultipartUpload"
	case r.Method == http.MethodPost && uploadID:
		return "CompleteMultipartUpload"
	case r.Method == http.MethodPut && uploadID:
		return "UploadPart"
	case r.Method == http.MethodDelete && uploadID:
		return "AbortMultipartUpload"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "CopyObject"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodGet:
		return "GetObject"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return ""
}

// Key returns the object key of an object request (Path without the
// bucket), unescaped.
func (r S3Request) Key() string {
	return strings.TrimPrefix(r.Path, "/"+S3Bucket+"/")
}

// Requests returns the requests the server has received so far, in order
// of arrival. Bodies are not kept.
func (s *S3Server) Requests() []S3Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]S3Request(nil), s.requests...)
}

// record wraps the S3 handler so that every request's method, path, query
// and headers are kept for Requests.
func (s *S3Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, S3Request{
			Method: r.Method,
			Path:   r.URL.Path,
			Query:  r.URL.Query(),
			Header: r.Header.Clone(),
		})
		s.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// StartS3 starts an in-process S3 server on loopback, creates S3Bucket on it
// and points the AWS SDK's environment at it: dummy static credentials, no
// shared config or credentials files, no EC2 instance metadata lookups, no
// endpoint or profile overrides. Credentials come from the environment only,
// never from the URL. The server records every request it receives (see
// Requests). The server stops when the test ends.
//
// StartS3 calls t.Setenv, so the test (and its parents) must not be
// parallel.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	isolateAWSEnvironment(t)

	s := &S3Server{}
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(s.record(faker.Server()))
	t.Cleanup(srv.Close)

	// Create the bucket with a plain HTTP request: path-style PUT /bucket.
	req, err := http.NewRequest(http.MethodPut, srv.URL+"/"+S3Bucket, nil)
	if err != nil {
		t.Fatalf("create bucket request: %v", err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("create bucket %s: %v", S3Bucket, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket %s: %s", S3Bucket, resp.Status)
	}

	q := url.Values{}
	q.Set("endpoint", srv.URL)
	q.Set("region", "us-east-1")
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	s.URL = "s3://" + S3Bucket + "?" + q.Encode()
	s.Endpoint = srv.URL
	return s
}

// OpenS3 starts an S3 server with StartS3 and opens its bucket through the
// s3blob driver, by URL. The bucket is closed when the test ends.
func OpenS3(t *testing.T) *blob.Bucket {
	t.Helper()
	srv := StartS3(t)
	return OpenURL(t, srv.URL)
}

// OpenURL opens a destination URL with the drivers linked into the test
// binary (this package links s3blob; tests blank-import fileblob and memblob
// as they need them) and closes the bucket when the test ends, checking the
// error.
func OpenURL(t testing.TB, u string) *blob.Bucket {
	t.Helper()
	b, err := blob.OpenBucket(context.Background(), u)
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close bucket %s: %v", u, err)
		}
	})
	return b
}

// isolateAWSEnvironment makes the AWS SDK's default configuration resolve to
// dummy static credentials and nothing else, so that no request can leave
// loopback: no instance metadata (IMDS), no SSO, STS web identity or
// credential_process from a developer's ~/.aws, no endpoint overrides.
func isolateAWSEnvironment(t testing.TB) {
	t.Helper()
	for _, k := range []string{
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
		"AWS_CA_BUNDLE", "AWS_REGION", "AWS_DEFAULT_REGION",
	} {
		t.Setenv(k, "") // restores the old value when the test ends
		_ = os.Unsetenv(k)
	}
	empty := filepath.Join(t.TempDir(), "aws-empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatalf("write empty AWS config: %v", err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "bulwark-test-access-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "bulwark-test-secret-key")
}
