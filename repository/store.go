package repository

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// putObject writes data under key and makes it durable. Object stores are
// durable once the write is acknowledged; for file:// destinations (local
// disk, network shares) the file is fsynced, and so is its directory when
// syncDirectory is set, because a manifest must never be listed ahead of
// data that a power cut could still take away. It returns the local
// directory of the object ("" for object stores) so that callers writing
// many objects can fsync each directory once instead.
func putObject(ctx context.Context, bucket *blob.Bucket, key string, data []byte, syncDirectory bool) (string, error) {
	dir, _, err := putStream(ctx, bucket, key, bytes.NewReader(data), syncDirectory)
	return dir, err
}

// putStream is putObject for a stream of unknown length, such as an object
// being copied from another destination. A read error aborts the write, so
// no partial object becomes visible.
func putStream(ctx context.Context, bucket *blob.Bucket, key string, r io.Reader, syncDirectory bool) (string, int64, error) {
	var file *os.File
	opts := &blob.WriterOptions{
		ContentType:                 "application/octet-stream",
		DisableContentTypeDetection: true,
		BeforeWrite: func(as func(any) bool) error {
			var f *os.File
			if as(&f) {
				file = f
			}
			return nil
		},
	}
	// Cancelling writeCtx aborts the write: no partial object becomes visible.
	writeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := bucket.NewWriter(writeCtx, key, opts)
	if err != nil {
		return "", 0, &ObjectError{Op: "create object", Key: key, Err: err}
	}
	n, err := io.Copy(w, r)
	if err != nil {
		cancel()
		_ = w.Close()
		return "", n, &ObjectError{Op: "write object", Key: key, Err: err}
	}
	if file != nil {
		if err := file.Sync(); err != nil {
			cancel()
			_ = w.Close()
			return "", n, &ObjectError{Op: "fsync object", Key: key, Err: err}
		}
	}
	if err := w.Close(); err != nil {
		return "", n, &ObjectError{Op: "close object", Key: key, Err: err}
	}
	if file == nil {
		return "", n, nil
	}
	// The temp file was renamed into the object's directory (fileblob with
	// no_tmp_dir); that rename is durable once the directory is synced.
	dir := filepath.Dir(file.Name())
	if syncDirectory {
		if err := SyncDir(dir); err != nil {
			return dir, n, &ObjectError{Op: "fsync directory of", Key: key, Err: err}
		}
	}
	return dir, n, nil
}

// SyncDir fsyncs a directory, making the renames and creations in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// getObject reads a whole object of at most limit bytes. A missing object is
// ErrNotFound; a larger one is ErrCorrupt (no Bulwark object is that big).
func getObject(ctx context.Context, bucket *blob.Bucket, key string, limit int64, buf []byte) ([]byte, error) {
	r, err := bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, &ObjectError{Op: "read", Key: key, Err: ErrNotFound}
		}
		return nil, &ObjectError{Op: "open", Key: key, Err: err}
	}
	defer r.Close()
	if r.Size() > limit {
		return nil, &ObjectError{Op: "read", Key: key, Err: fmt.Errorf("%w: object of %d bytes exceeds the %d-byte limit", ErrCorrupt, r.Size(), limit)}
	}
	buf = buf[:0]
	if int64(cap(buf)) < r.Size() {
		buf = make([]byte, 0, r.Size())
	}
	buf, err = readAllInto(buf, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, &ObjectError{Op: "read", Key: key, Err: err}
	}
	if int64(len(buf)) > limit {
		return nil, &ObjectError{Op: "read", Key: key, Err: fmt.Errorf("%w: object exceeds the %d-byte limit", ErrCorrupt, limit)}
	}
	return buf, nil
}

func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// IsNotFound reports whether err means a missing backup or object.
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || gcerrors.Code(err) == gcerrors.NotFound
}

// listDir lists one level under prefix (which ends in "/"): objects, and
// directories as IsDir entries. Every listing in this package goes through
// it, one directory level at a time, because flat listings of file://
// buckets put keys out of order and lose some across pages, while delimited
// listings do not. It also drops what is not a stored object: a common
// prefix that some S3 servers repeat across pages, and in-flight
// <key>.<random>.tmp files of file:// buckets in no_tmp_dir mode.
func listDir(ctx context.Context, bucket *blob.Bucket, prefix string) ([]*blob.ListObject, error) {
	var out []*blob.ListObject
	seen := map[string]bool{}
	it := bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		if seen[obj.Key] || (!obj.IsDir && strings.HasSuffix(obj.Key, ".tmp")) {
			continue
		}
		seen[obj.Key] = true
		out = append(out, obj)
	}
}

// listTree lists every object under prefix, in key order.
func listTree(ctx context.Context, bucket *blob.Bucket, prefix string) ([]*blob.ListObject, error) {
	var out []*blob.ListObject
	dirs := []string{prefix}
	for len(dirs) > 0 {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		objs, err := listDir(ctx, bucket, dir)
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			if obj.IsDir {
				dirs = append(dirs, obj.Key)
			} else {
				out = append(out, obj)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
