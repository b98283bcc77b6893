package activities

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bulwark-dr/bulwark/activities/sqlexport"
	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/repository"
)

// Export kinds.
const (
	ExportSQL = "sql"
	ExportCSV = "csv"
)

// ExportInput asks for a logical export of a backup.
type ExportInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
	Kind     string `json:"kind"` // sql or csv
}

// ExportOutput describes the files of an export, stored with its backup.
type ExportOutput struct {
	BackupID string            `json:"backup_id"`
	Kind     string            `json:"kind"`
	Files    []ExportFileShort `json:"files"`
	Existing bool              `json:"existing"` // made earlier; not made again
	Duration Duration          `json:"duration"`
}

// ExportFileShort is one exported file, as reported to the workflow.
type ExportFileShort struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
	Rows  int64  `json:"rows,omitempty"`
}

// FetchInput asks for an export's files to be written into a directory on
// this host.
type FetchInput struct {
	Database string `json:"database"`
	BackupID string `json:"backup_id"`
	Kind     string `json:"kind"`
	Dir      string `json:"dir"`
}

// FetchOutput lists the files written.
type FetchOutput struct {
	Paths []string `json:"paths"`
}

func shortFiles(m *repository.ExportManifest) []ExportFileShort {
	out := make([]ExportFileShort, len(m.Files))
	for i, f := range m.Files {
		out[i] = ExportFileShort{Name: f.Name, Bytes: f.Bytes, Rows: f.Rows}
	}
	return out
}

// ExportBackup makes a logical export (an SQL dump, or one CSV per table) of
// a backup and stores it, compressed and encrypted, with the backup. The
// image is rebuilt from the backup's chain in scratch space and read in one
// transaction; files stream to storage in parts, so memory stays bounded.
// An export that already exists is not made again.
func (a *StorageActivities) ExportBackup(ctx context.Context, in ExportInput) (ExportOutput, error) {
	start := time.Now()
	out := ExportOutput{BackupID: in.BackupID, Kind: in.Kind}
	if in.Kind != ExportSQL && in.Kind != ExportCSV {
		return out, badInput("export format %q is not sql or csv", in.Kind)
	}
	chain, err := repository.Chain(ctx, a.Bucket, a.Keeper, in.Database, in.BackupID)
	if err != nil {
		return out, boundary(err)
	}
	key := chain[len(chain)-1].Key
	if m, err := repository.ReadExportManifest(ctx, a.Bucket, key, in.Database, in.BackupID, in.Kind); err == nil {
		out.Files, out.Existing = shortFiles(m), true
		return out, nil
	} else if !errors.Is(err, repository.ErrNotFound) {
		return out, boundary(err)
	}

	dir := a.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return out, fmt.Errorf("scratch directory %s: %w", dir, err)
	}
	f, err := createScratch(dir, "export", in.BackupID)
	if err != nil {
		return out, fmt.Errorf("scratch file in %s: %w", dir, err)
	}
	defer os.Remove(f.Name())
	hb := startHeartbeat(ctx, Progress{Phase: "export"})
	defer hb.close()
	_, err = repository.RestoreImage(ctx, a.Bucket, chain, f, repository.RestoreOptions{Workers: a.Workers, Limiter: a.DownloadLimit})
	f.Close()
	if err != nil {
		return out, boundary(err)
	}

	db, err := sql.Open("sqlite", "file:"+f.Name()+"?mode=ro&immutable=1")
	if err != nil {
		return out, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, err
	}
	defer tx.Rollback()
	manifest := repository.ExportManifest{BackupID: in.BackupID, Kind: in.Kind}
	write := func(name, table string, fill func(w *repository.ExportWriter) (int64, error)) error {
		w, err := repository.NewExportWriter(ctx, a.Bucket, key, in.Database, in.BackupID, in.Kind, name)
		if err != nil {
			return err
		}
		rows, err := fill(w)
		if err != nil {
			return fmt.Errorf("export %s: %w", name, err)
		}
		file, err := w.Close()
		if err != nil {
			return err
		}
		file.Rows, file.Table = rows, table
		manifest.Files = append(manifest.Files, file)
		hb.set(Progress{Phase: "export", Chunk: len(manifest.Files)})
		return nil
	}
	if in.Kind == ExportSQL {
		err = write(in.Database+".sql", "", func(w *repository.ExportWriter) (int64, error) {
			st, err := sqlexport.Dump(ctx, tx, w)
			var rows int64
			for _, t := range st.Tables {
				rows += t.Rows
			}
			return rows, err
		})
	} else {
		var tables []string
		if tables, err = sqlexport.Tables(ctx, tx); err == nil {
			for i, t := range tables {
				if err = write(csvFileName(t, i), t, func(w *repository.ExportWriter) (int64, error) {
					return sqlexport.WriteCSV(ctx, tx, t, w)
				}); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return out, boundary(err)
	}
	if err := repository.WriteExportManifest(ctx, a.Bucket, key, in.Database, manifest); err != nil {
		return out, fmt.Errorf("write export manifest: %w", err)
	}
	out.Files, out.Duration = shortFiles(&manifest), Duration(time.Since(start))
	return out, nil
}

// FetchExport writes the files of a stored export into a directory on this
// host, each checked against the export manifest, fsynced and renamed into
// place. It never overwrites a file: an existing one is an error that names
// it.
func (a *SQLiteActivities) FetchExport(ctx context.Context, in FetchInput) (FetchOutput, error) {
	var out FetchOutput
	if !filepath.IsAbs(in.Dir) {
		return out, badInput("export directory %q must be an absolute path", in.Dir)
	}
	b, err := repository.ReadBackup(ctx, a.Bucket, in.Database, in.BackupID)
	if err != nil {
		return out, boundary(err)
	}
	key, err := b.Open(ctx, a.Keeper.Keeper)
	if err != nil {
		return out, boundary(err)
	}
	m, err := repository.ReadExportManifest(ctx, a.Bucket, key, in.Database, in.BackupID, in.Kind)
	if err != nil {
		return out, boundary(err)
	}
	if err := os.MkdirAll(in.Dir, 0o700); err != nil {
		return out, boundary(&sqlitesrc.TargetError{Msg: fmt.Sprintf("export directory %s: %v", in.Dir, err)})
	}
	for _, f := range m.Files {
		dst := filepath.Join(in.Dir, f.Name)
		if _, err := os.Lstat(dst); err == nil {
			return out, boundary(&sqlitesrc.TargetError{Msg: fmt.Sprintf("%s already exists; export into an empty directory (nothing is overwritten)", dst)})
		}
	}
	for _, f := range m.Files {
		dst := filepath.Join(in.Dir, f.Name)
		tmp := dst + ".bulwark-partial"
		file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return out, boundary(&sqlitesrc.TargetError{Msg: fmt.Sprintf("create %s: %v", tmp, err)})
		}
		err = repository.CopyExportFile(ctx, a.Bucket, key, in.Database, in.BackupID, in.Kind, f, file)
		if err == nil {
			err = file.Sync()
		}
		if cerr := file.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, dst)
		}
		if err != nil {
			os.Remove(tmp)
			return out, boundary(fmt.Errorf("write %s: %w", dst, err))
		}
		out.Paths = append(out.Paths, dst)
	}
	return out, boundary(repository.SyncDir(in.Dir))
}

// csvFileName names the CSV file of a table: <table>.csv when the table's
// name is a safe file name, otherwise table-<n>-<hash>.csv (the export
// manifest records which table each file holds).
func csvFileName(table string, n int) string {
	name := table + ".csv"
	if repository.ValidateExportName(name) == nil {
		return name
	}
	sum := sha256.Sum256([]byte(table))
	return fmt.Sprintf("table-%d-%s.csv", n+1, hex.EncodeToString(sum[:4]))
}
