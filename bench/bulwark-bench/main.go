// Command bulwark-bench runs one Bulwark data-plane operation (the code the
// SnapshotSQLite and RestoreSQLite activities run) and prints its figures as
// JSON, so that bench/run.sh can compare them with baselines measured in the
// same run. Peak RSS is this process's, which is what a worker would add.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"gocloud.dev/blob/fileblob"

	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/keeper"
	"github.com/bulwark-dr/bulwark/repository"
)

type result struct {
	Op           string  `json:"op"`
	Seconds      float64 `json:"seconds"`
	ImageBytes   int64   `json:"image_bytes"`
	StoredBytes  int64   `json:"stored_bytes"`
	Chunks       int     `json:"chunks"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	BackupID     string  `json:"backup_id"`
	Type         string  `json:"type,omitempty"`
	ChangedPages int64   `json:"changed_pages,omitempty"`
	PageCount    int64   `json:"page_count,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 2 {
		return fmt.Errorf("usage: bulwark-bench backup|restore [flags]")
	}
	op := os.Args[1]
	fs := flag.NewFlagSet(op, flag.ExitOnError)
	db := fs.String("db", "", "database to back up")
	store := fs.String("store", "", "directory of the fileblob destination")
	keyFile := fs.String("key", "", "key file (created if missing)")
	id := fs.String("id", "", "backup id (backup: to write, default a new one; restore: to read)")
	typ := fs.String("type", "full", "backup: full, incremental or differential")
	to := fs.String("to", "", "restore: file to write")
	compression := fs.String("compression", repository.CompressionDefault, "zstd, zstd-better or zstd-best")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here")
	fs.Parse(os.Args[2:])
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	ctx := context.Background()
	bucket, err := fileblob.OpenBucket(*store, &fileblob.Options{CreateDir: true, NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	if err != nil {
		return err
	}
	defer bucket.Close()
	kp, err := keeper.Open(ctx, "keyfile://"+filepath.ToSlash(*keyFile), true)
	if err != nil {
		return err
	}
	if *id == "" && op == "backup" {
		*id = repository.NewBackupID(time.Now(), fmt.Sprintf("%08x", rand.Uint32()))
	}
	res := result{Op: op, BackupID: *id}
	start := time.Now()
	switch op {
	case "backup":
		r, err := sqlitesrc.Backup(ctx, sqlitesrc.BackupOptions{
			Type: repository.BackupType(*typ), Path: *db, Database: "finance", BackupID: *id, Host: "bench", Tool: "bulwark-bench",
			Bucket: bucket, Keeper: sqlitesrc.KeeperWithDescription{Keeper: kp, Description: kp.Description},
			Compression: *compression, Workers: runtime.GOMAXPROCS(0),
		})
		if err != nil {
			return err
		}
		res.ImageBytes, res.StoredBytes, res.Chunks = r.Manifest.ImageBytes, r.Manifest.StoredBytes, len(r.Manifest.Chunks)
		res.Type, res.ChangedPages, res.PageCount = string(r.Manifest.Type), r.ChangedPages, r.Manifest.PageCount
	case "restore":
		tmp := sqlitesrc.TempPathFor(*to, *id)
		m, err := sqlitesrc.RestoreToTemp(ctx, sqlitesrc.RestoreOptions{
			Bucket: bucket, Keeper: kp, Database: "finance", BackupID: *id, TempPath: tmp, Workers: runtime.GOMAXPROCS(0),
		})
		if err != nil {
			return err
		}
		if _, err := sqlitesrc.SwapIn(tmp, *to, *to+".emergency"); err != nil {
			return err
		}
		res.ImageBytes, res.StoredBytes, res.Chunks = m.ImageBytes, m.StoredBytes, len(m.Chunks)
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	res.Seconds = time.Since(start).Seconds()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	res.PeakRSSBytes = ru.Maxrss * 1024
	return json.NewEncoder(os.Stdout).Encode(res)
}
