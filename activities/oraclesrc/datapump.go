package oraclesrc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	go_ora "github.com/sijms/go-ora/v2"
)

// Data Pump without shell access to the database host: the job is started with DBMS_DATAPUMP
// over SQL, the dump file is read out through a BFILE and stored like any other artifact, and an
// import writes it back with UTL_FILE before DBMS_DATAPUMP reads it.

// utlFileChunk is UTL_FILE.PUT_RAW's limit per call; utlFilePieces how many go in one round trip.
const (
	utlFileChunk  = 32767
	utlFilePieces = 16
	bfileRead     = 1 << 20
)

// TableExistsActions are DBMS_DATAPUMP's TABLE_EXISTS_ACTION values.
var TableExistsActions = []string{"SKIP", "APPEND", "TRUNCATE", "REPLACE"}

// DataPumpImport returns the anonymous block that imports dumpFile from directory: the schema
// (and, when tables is not empty, only those tables), remapped to remapTo when it is set, with
// tableExists deciding what happens to tables that exist. It starts the job and detaches; poll
// by job name as for the export.
func DataPumpImport(job, schema, remapTo, directory, dumpFile, logFile, tableExists string, tables []string) (Statement, error) {
	if err := checkDataPumpNames(job, schema, directory, dumpFile, logFile); err != nil {
		return Statement{}, err
	}
	if remapTo != "" {
		if _, err := QuoteIdent(remapTo); err != nil || strings.ContainsAny(remapTo, "'") {
			return Statement{}, fmt.Errorf("%w: remap target %q", ErrIdentifier, remapTo)
		}
	}
	valid := false
	for _, a := range TableExistsActions {
		valid = valid || a == tableExists
	}
	if !valid {
		return Statement{}, fmt.Errorf("table exists action %q is not one of %s", tableExists, strings.Join(TableExistsActions, ", "))
	}
	nameExpr := ""
	if len(tables) > 0 {
		quoted := make([]string, len(tables))
		for i, t := range tables {
			if _, err := QuoteIdent(t); err != nil || strings.ContainsAny(t, "'") {
				return Statement{}, fmt.Errorf("%w: table %q", ErrIdentifier, t)
			}
			quoted[i] = "'" + t + "'"
		}
		nameExpr = "IN (" + strings.Join(quoted, ", ") + ")"
	}
	const block = `DECLARE
  h NUMBER;
BEGIN
  h := DBMS_DATAPUMP.OPEN(operation => 'IMPORT', job_mode => 'SCHEMA', job_name => :job);
  DBMS_DATAPUMP.ADD_FILE(handle => h, filename => :dump_file, directory => :directory,
    filetype => DBMS_DATAPUMP.KU$_FILE_TYPE_DUMP_FILE);
  DBMS_DATAPUMP.ADD_FILE(handle => h, filename => :log_file, directory => :log_directory,
    filetype => DBMS_DATAPUMP.KU$_FILE_TYPE_LOG_FILE, reusefile => 1);
  DBMS_DATAPUMP.METADATA_FILTER(handle => h, name => 'SCHEMA_EXPR', value => :schema_expr);
  IF :name_expr IS NOT NULL THEN
    DBMS_DATAPUMP.METADATA_FILTER(handle => h, name => 'NAME_EXPR', value => :name_expr2, object_path => 'TABLE');
  END IF;
  IF :remap_to IS NOT NULL THEN
    DBMS_DATAPUMP.METADATA_REMAP(handle => h, name => 'REMAP_SCHEMA', old_value => :old_schema, value => :remap_to2);
  END IF;
  DBMS_DATAPUMP.SET_PARAMETER(handle => h, name => 'TABLE_EXISTS_ACTION', value => :table_exists);
  DBMS_DATAPUMP.SET_PARALLEL(handle => h, degree => 1);
  DBMS_DATAPUMP.START_JOB(handle => h);
  DBMS_DATAPUMP.DETACH(handle => h);
END;`
	return Statement{SQL: block, Binds: []Bind{
		{"job", job}, {"dump_file", dumpFile}, {"directory", directory}, {"log_file", logFile},
		{"log_directory", directory}, {"schema_expr", "IN ('" + schema + "')"},
		{"name_expr", nullable(nameExpr)}, {"name_expr2", nullable(nameExpr)},
		{"remap_to", nullable(remapTo)}, {"old_schema", schema}, {"remap_to2", nullable(remapTo)},
		{"table_exists", tableExists},
	}}, nil
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// DataPumpJobStateSQL reads a job's state; no row means it has finished and its master table is
// gone.
const DataPumpJobStateSQL = `SELECT state FROM user_datapump_jobs WHERE job_name = :job`

// UTLFileWriteSQL appends up to utlFilePieces RAW pieces to a file (mode 'wb' for the first
// call, 'ab' after); unused piece binds are NULL.
func UTLFileWriteSQL() string {
	var b strings.Builder
	b.WriteString("DECLARE\n  f UTL_FILE.FILE_TYPE;\nBEGIN\n")
	b.WriteString("  f := UTL_FILE.FOPEN(:directory, :file_name, :open_mode, 32767);\n")
	for i := 1; i <= utlFilePieces; i++ {
		fmt.Fprintf(&b, "  IF :p%d IS NOT NULL THEN UTL_FILE.PUT_RAW(f, :q%d, TRUE); END IF;\n", i, i)
	}
	b.WriteString("  UTL_FILE.FCLOSE(f);\nEND;")
	return b.String()
}

// UTLFileRemoveSQL removes a file of a directory (the dump after it is stored or imported).
const UTLFileRemoveSQL = `BEGIN UTL_FILE.FREMOVE(:directory, :file_name); END;`

// DataPumpResult says what a Data Pump job produced.
type DataPumpResult struct {
	Job      string
	DumpFile string
	Bytes    int64
	Log      string // the job's log, kept with the backup
}

// RunDataPumpExport runs a schema export at scn into directory, copies the dump and its log into
// sink under dumpName and dumpName+".log", and removes both from the directory.
func RunDataPumpExport(ctx context.Context, db *sql.DB, job, schema, directory, scn string, sink FileSink, dumpName string) (DataPumpResult, error) {
	conn, err := pinSession(ctx, db)
	if err != nil {
		return DataPumpResult{}, err
	}
	defer conn.Close()
	dump, logf := strings.ToLower(job)+".dmp", strings.ToLower(job)+".log"
	st, err := DataPumpExport(job, schema, directory, dump, logf, scn)
	if err != nil {
		return DataPumpResult{}, err
	}
	if _, err := conn.ExecContext(ctx, st.SQL, binds(st)...); err != nil {
		return DataPumpResult{}, fmt.Errorf("start Data Pump export %s: %w", job, err)
	}
	if err := waitDataPump(ctx, conn, job); err != nil {
		return DataPumpResult{}, err
	}
	res := DataPumpResult{Job: job, DumpFile: dump}
	logText, err := readDirectoryFile(ctx, conn, directory, logf, nil)
	if err == nil {
		res.Log = string(logText)
	}
	if err := checkDataPumpLog(res.Log); err != nil {
		return res, fmt.Errorf("Data Pump export %s: %w", job, err)
	}
	w, err := sink.Create(dumpName)
	if err != nil {
		return res, err
	}
	n := int64(0)
	if _, err := readDirectoryFile(ctx, conn, directory, dump, func(p []byte) error {
		n += int64(len(p))
		_, err := w.Write(p)
		return err
	}); err != nil {
		w.Close()
		return res, fmt.Errorf("read dump %s from directory %s: %w", dump, directory, err)
	}
	if err := w.Close(); err != nil {
		return res, err
	}
	res.Bytes = n
	if lw, err := sink.Create(dumpName + ".log"); err == nil {
		io.WriteString(lw, res.Log)
		lw.Close()
	}
	for _, f := range []string{dump, logf} {
		conn.ExecContext(ctx, UTLFileRemoveSQL, sql.Named("directory", directory), sql.Named("file_name", f))
	}
	return res, nil
}

// RunDataPumpImport writes the dump from r into directory with UTL_FILE and imports it.
func RunDataPumpImport(ctx context.Context, db *sql.DB, job, schema, remapTo, directory, tableExists string, tables []string, r io.Reader) (DataPumpResult, error) {
	conn, err := pinSession(ctx, db)
	if err != nil {
		return DataPumpResult{}, err
	}
	defer conn.Close()
	dump, logf := strings.ToLower(job)+".dmp", strings.ToLower(job)+".log"
	st, err := DataPumpImport(job, schema, remapTo, directory, dump, logf, tableExists, tables)
	if err != nil {
		return DataPumpResult{}, err
	}
	n, err := writeDirectoryFile(ctx, conn, directory, dump, r)
	if err != nil {
		return DataPumpResult{}, fmt.Errorf("write dump into directory %s with UTL_FILE (needs EXECUTE on UTL_FILE and WRITE on the directory): %w", directory, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), UTLFileRemoveSQL, sql.Named("directory", directory), sql.Named("file_name", dump))
	if _, err := conn.ExecContext(ctx, st.SQL, binds(st)...); err != nil {
		return DataPumpResult{}, fmt.Errorf("start Data Pump import %s: %w", job, err)
	}
	if err := waitDataPump(ctx, conn, job); err != nil {
		return DataPumpResult{}, err
	}
	res := DataPumpResult{Job: job, DumpFile: dump, Bytes: n}
	if logText, err := readDirectoryFile(ctx, conn, directory, logf, nil); err == nil {
		res.Log = string(logText)
	}
	return res, checkDataPumpLog(res.Log)
}

// checkDataPumpLog finds the outcome in a job's log: "successfully completed", or "completed
// with N error(s)" which is reported with the ORA- lines.
func checkDataPumpLog(log string) error {
	if log == "" {
		return errors.New("the job wrote no log")
	}
	if strings.Contains(log, "successfully completed") {
		return nil
	}
	var oras []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "ORA-") {
			oras = append(oras, strings.TrimSpace(l))
		}
	}
	if len(oras) > 5 {
		oras = append(oras[:5], fmt.Sprintf("… %d more", len(oras)-5))
	}
	return fmt.Errorf("the job did not complete successfully: %s", strings.Join(oras, "; "))
}

func waitDataPump(ctx context.Context, conn *sql.Conn, job string) error {
	for {
		var state string
		err := conn.QueryRowContext(ctx, DataPumpJobStateSQL, sql.Named("job", job)).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("poll Data Pump job %s: %w", job, err)
		}
		if state == "NOT RUNNING" || state == "STOPPED" {
			return fmt.Errorf("Data Pump job %s is %s", job, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// readDirectoryFile reads a file of a directory object through a BFILE, in pieces given to each
// (nil: collect and return the whole file, for logs).
func readDirectoryFile(ctx context.Context, conn *sql.Conn, directory, name string, each func([]byte) error) ([]byte, error) {
	var all []byte
	err := conn.Raw(func(driverConn any) error {
		oc, ok := driverConn.(*go_ora.Connection)
		if !ok {
			return fmt.Errorf("driver connection is %T, not go-ora's", driverConn)
		}
		f, err := go_ora.CreateBFile2(oc, directory, name)
		if err != nil {
			return err
		}
		if err := f.OpenContext(ctx); err != nil {
			return err
		}
		defer f.Close()
		size, err := f.GetLength()
		if err != nil {
			return err
		}
		for off := int64(0); off < size; {
			n := min(int64(bfileRead), size-off)
			p, err := f.ReadBytesFromPosContext(ctx, off, n)
			if err != nil {
				return fmt.Errorf("at byte %d: %w", off, err)
			}
			if len(p) == 0 {
				return fmt.Errorf("at byte %d of %d: BFILE read returned nothing", off, size)
			}
			off += int64(len(p))
			if each == nil {
				all = append(all, p...)
			} else if err := each(p); err != nil {
				return err
			}
		}
		return nil
	})
	return all, err
}

// writeDirectoryFile writes r into a file of a directory object with UTL_FILE.
func writeDirectoryFile(ctx context.Context, conn *sql.Conn, directory, name string, r io.Reader) (int64, error) {
	query := UTLFileWriteSQL()
	buf := make([]byte, utlFileChunk)
	mode := "wb"
	var total int64
	for {
		args := []any{sql.Named("directory", directory), sql.Named("file_name", name), sql.Named("open_mode", mode)}
		pieces := 0
		var eof bool
		for i := 1; i <= utlFilePieces; i++ {
			var piece []byte
			if !eof {
				n, err := io.ReadFull(r, buf)
				if n > 0 {
					piece = append([]byte(nil), buf[:n]...)
					pieces++
					total += int64(n)
				}
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					eof = true
				} else if err != nil {
					return total, err
				}
			}
			args = append(args, sql.Named(fmt.Sprintf("p%d", i), nullableRaw(piece)), sql.Named(fmt.Sprintf("q%d", i), piece))
		}
		if pieces == 0 && mode == "ab" {
			return total, nil
		}
		if _, err := conn.ExecContext(ctx, query, args...); err != nil {
			return total, err
		}
		mode = "ab"
		if eof {
			return total, nil
		}
	}
}

func nullableRaw(p []byte) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: "x", Valid: true}
}
