package sqlitesrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"gocloud.dev/blob"
	"golang.org/x/time/rate"

	"github.com/bulwark-dr/bulwark/repository"
)

// ErrTarget marks a restore target that cannot be written or is in use.
var ErrTarget = errors.New("restore target problem")

// TargetError is a restore target problem, described for the operator.
type TargetError struct{ Msg string }

func (e *TargetError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrTarget) hold.
func (e *TargetError) Is(target error) bool { return target == ErrTarget }

func targetErrorf(format string, args ...any) error {
	return &TargetError{Msg: fmt.Sprintf(format, args...)}
}

// RestoreOptions describes the download half of a restore.
type RestoreOptions struct {
	Bucket   *blob.Bucket
	Keeper   repository.SecretsKeeper
	Database string
	BackupID string
	// TempPath receives the image; it is created next to the target so that
	// the final rename stays on one file system.
	TempPath   string
	StartChunk int
	Workers    int
	Limiter    *rate.Limiter
	Progress   func(settledChunks int, bytes, total int64)
	// PrimaryName names Bucket in heals; Fallbacks are the other
	// destinations, tried in order for an object that is missing or damaged
	// on the primary. Repair writes the good copy back; OnHeal hears of
	// every object read from a fallback (from several goroutines).
	PrimaryName string
	Fallbacks   []repository.Source
	Repair      bool
	OnHeal      func(repository.Heal)
}

// TempPathFor is where a restore of backupID to target is staged.
func TempPathFor(target, backupID string) string {
	return target + ".bulwark-restore-" + backupID
}

// RestoreToTemp writes the backup's image to opts.TempPath, fsyncs it and
// checks that its SHA-256 and size equal the manifest's. On a mismatch the
// temp file is removed and ErrCorrupt returned: a wrong file is never left
// where it could be mistaken for a restore.
func RestoreToTemp(ctx context.Context, opts RestoreOptions) (*repository.Manifest, error) {
	// The backup and every backup it depends on, each authenticated: a
	// missing or damaged parent stops the restore before a byte is written.
	sources := append([]repository.Source{{Name: opts.PrimaryName, Bucket: opts.Bucket}}, opts.Fallbacks...)
	chain, heals, err := repository.ChainFromWith(ctx, sources, opts.Keeper, opts.Database, opts.BackupID, repository.HealOptions{Repair: opts.Repair})
	if err != nil {
		return nil, err
	}
	for _, h := range heals {
		if opts.OnHeal != nil {
			opts.OnHeal(h)
		}
	}
	flags := os.O_RDWR | os.O_CREATE
	if opts.StartChunk == 0 {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(opts.TempPath, flags, 0o600)
	if err != nil {
		return nil, targetError("create restore file", opts.TempPath, err)
	}
	m := chain[len(chain)-1].Manifest()
	var progress func(int, int64)
	if opts.Progress != nil {
		progress = func(settled int, bytes int64) { opts.Progress(settled, bytes, m.ImageBytes) }
	}
	sum, err := repository.RestoreImage(ctx, opts.Bucket, chain, f, repository.RestoreOptions{
		Workers: opts.Workers, StartChunk: opts.StartChunk, Progress: progress, Limiter: opts.Limiter,
		Fallbacks: opts.Fallbacks, PrimaryName: opts.PrimaryName, Repair: opts.Repair, OnHeal: opts.OnHeal,
	})
	if cerr := f.Close(); err == nil && cerr != nil {
		err = targetError("close restore file", opts.TempPath, cerr)
	}
	if err != nil {
		if errors.Is(err, repository.ErrCorrupt) || errors.Is(err, repository.ErrNotFound) {
			// Permanent: nothing to resume, and a partial file must not linger.
			_ = os.Remove(opts.TempPath)
		}
		return nil, err
	}
	info, err := os.Stat(opts.TempPath)
	if err != nil {
		return nil, targetError("restored file", opts.TempPath, err)
	}
	// sum is the hash of the pages as they were written to the file, in
	// page order: the file's contents, without reading them back.
	if n := info.Size(); sum != m.ImageDigest() || n != m.ImageBytes {
		_ = os.Remove(opts.TempPath)
		return nil, fmt.Errorf("%w: restored image of %s hashes to %s (%d bytes), manifest says %s (%d bytes)", repository.ErrCorrupt, opts.BackupID, sum, n, m.ImageDigest(), m.ImageBytes)
	}
	return m, nil
}

// CheckTarget says whether a restore may proceed to target: its directory
// must be writable (it is created when missing), and no other process may
// have the target open.
func CheckTarget(target string) (exists bool, err error) {
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, targetError("create restore target directory", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return false, targetError("restore target directory", dir, err)
	}
	if !info.IsDir() {
		return false, targetErrorf("restore target directory %s is not a directory", dir)
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return false, targetError("restore target directory", dir, err)
	}
	ti, err := os.Stat(target)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	case err != nil:
		return false, targetError("restore target", target, err)
	case ti.IsDir():
		return true, targetErrorf("restore target %s is a directory", target)
	}
	if inUse, err := inUseByOtherProcess(target); err != nil {
		return true, targetError("check locks on", target, err)
	} else if inUse {
		return true, targetErrorf("%s is open in another process (it holds SQLite locks); stop the application before restoring over it, or restore to a new path", target)
	}
	return true, nil
}

// SwapIn moves a verified restore into place. An existing target is kept as
// an emergency copy (hard link, or copy where links are not supported) with
// its WAL, and the old WAL and shared-memory files are removed before the
// rename: a stale WAL next to the restored file would be replayed into it.
// It returns the emergency copy's path, or "" when nothing was replaced.
func SwapIn(temp, target, emergency string) (string, error) {
	if _, err := os.Stat(temp); err != nil {
		return "", targetError("restored file", temp, err)
	}
	saved := ""
	if _, err := os.Lstat(target); err == nil {
		if inUse, err := inUseByOtherProcess(target); err == nil && inUse {
			return "", targetErrorf("%s is open in another process; stop the application before restoring over it", target)
		}
		if err := preserve(target, emergency); err != nil {
			return "", targetError("keep emergency copy of", target, err)
		}
		for _, suffix := range []string{"-wal", "-journal"} {
			if _, err := os.Lstat(target + suffix); err == nil {
				if err := preserve(target+suffix, emergency+suffix); err != nil {
					return "", targetError("keep emergency copy of", target+suffix, err)
				}
			}
		}
		if err := repository.SyncDir(filepath.Dir(emergency)); err != nil {
			return "", targetError("fsync directory of", emergency, err)
		}
		for _, suffix := range []string{"-wal", "-shm", "-journal"} {
			if err := os.Remove(target + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return "", targetError("remove stale", target+suffix, err)
			}
		}
		saved = emergency
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", targetError("restore target", target, err)
	}
	if err := os.Rename(temp, target); err != nil {
		return saved, targetError("move restored file to", target, err)
	}
	if err := repository.SyncDir(filepath.Dir(target)); err != nil {
		return saved, targetError("fsync directory of", target, err)
	}
	return saved, nil
}

// preserve makes dst a copy of src that survives src being replaced.
func preserve(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("emergency copy %s already exists; refusing to overwrite it", dst)
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func targetError(op, path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return targetErrorf("%s %s does not exist", op, path)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EROFS):
		return targetErrorf("%s %s is not writable (%v)", op, path, errors.Unwrap(err))
	case errors.Is(err, syscall.ENOTDIR):
		return targetErrorf("%s %s: a part of the path is a file, not a directory", op, path)
	case errors.Is(err, syscall.ENOSPC):
		return targetErrorf("%s %s: no space left on device", op, path)
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}
