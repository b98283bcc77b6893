package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/workflows"
)

const oracleUsage = `bulwark oracle restore <database> [backup] [flags]   restore a schema or tables from a logical backup
bulwark oracle rman <database> --level 0|1                 RMAN backup on the database host's worker`

func cmdOracle(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return usagef("oracle needs a subcommand:\n%s", oracleUsage)
	}
	switch args[0] {
	case "restore":
		return cmdOracleRestore(ctx, g, args[1:])
	case "rman":
		return cmdOracleRMAN(ctx, g, args[1:])
	}
	return usagef("unknown oracle subcommand %q:\n%s", args[0], oracleUsage)
}

func cmdOracleRestore(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("oracle restore", flag.ContinueOnError)
	g.register(fs)
	var tables stringList
	fs.Var(&tables, "table", "restore only this table (repeatable); default the whole schema")
	schema := fs.String("schema", "", "target schema (default: the backup's schema)")
	mode := fs.String("mode", "", "schema: create (default; refuses if objects exist) or replace; tables: replace (default), append or new-name")
	newName := fs.String("new-name", "", "the new table name, with --mode new-name")
	dataPump := fs.Bool("datapump", false, "import the stored Data Pump dump instead of restoring from rows")
	tableExists := fs.String("table-exists", "SKIP", "Data Pump TABLE_EXISTS_ACTION: SKIP, APPEND, TRUNCATE or REPLACE")
	s, db, pos, err := databaseCommand(g, fs, args, 1, 2, "oracle restore takes a database name and optionally a backup (id, latest or a time; default latest)")
	if err != nil {
		return err
	}
	defer s.Close()
	if !db.IsOracle() {
		return fmt.Errorf("database %s is a SQLite database; use `bulwark restore`", db.Name)
	}
	in := activities.OracleRestoreInput{TargetSchema: *schema, Tables: tables, Mode: *mode, NewName: *newName,
		TableExistsAction: strings.ToUpper(*tableExists)}
	if *dataPump {
		in.Method = "datapump"
	}
	ref := backupRef(pos)
	req := workflows.OracleRestoreRequest{Database: db.Name, Backup: ref, OracleRestoreInput: in}
	run, err := s.start(ctx, workflows.OracleRestoreWorkflowID(db.Name), workflows.OracleRestoreWorkflow, req)
	if err != nil {
		return err
	}
	var res workflows.OracleRestoreResult
	werr := s.wait(ctx, run, "oracle restore", &res)
	if g.json && werr == nil {
		return printJSON(g, res)
	}
	if res.EmergencyBackup != "" {
		fmt.Fprintf(g.stdout, "emergency copy of what was replaced: backup %s (verified)\n", res.EmergencyBackup)
	}
	if res.BackupID != "" {
		fmt.Fprintf(g.stdout, "restored backup %s into schema %s\n", res.BackupID, res.Report.Schema)
	}
	for _, t := range res.Report.Tables {
		state := "verified: rows and digest match the backup"
		if !t.Verified {
			state = "DIFFERS: " + t.Problem
		}
		fmt.Fprintf(g.stdout, "  %-30s %10d rows  %s\n", t.Target, t.Rows, state)
	}
	for _, inv := range res.Report.Invalid {
		fmt.Fprintf(g.stdout, "  INVALID after recompilation: %s\n", inv)
	}
	for _, w := range res.Report.Warnings {
		fmt.Fprintf(g.stdout, "  note: %s\n", w)
	}
	return werr
}

func cmdOracleRMAN(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("oracle rman", flag.ContinueOnError)
	g.register(fs)
	level := fs.Int("level", 0, "incremental level: 0 (base) or 1 (changes since the last 0 or 1)")
	tag := fs.String("tag", "BULWARK", "RMAN backup tag")
	s, db, _, err := databaseCommand(g, fs, args, 1, 1, "oracle rman takes a database name")
	if err != nil {
		return err
	}
	defer s.Close()
	if !db.IsOracle() {
		return fmt.Errorf("database %s is a SQLite database; RMAN is for Oracle", db.Name)
	}
	run, err := s.start(ctx, workflows.RMANBackupWorkflowID(db.Name), workflows.RMANBackupWorkflow,
		activities.RMANInput{Database: db.Name, Level: *level, Tag: *tag})
	if err != nil {
		return err
	}
	var out activities.RMANOutput
	if err := s.wait(ctx, run, "rman", &out); err != nil {
		return err
	}
	if g.json {
		return printJSON(g, out)
	}
	if !out.Available {
		fmt.Fprintln(g.stdout, out.Note)
		return nil
	}
	fmt.Fprintf(g.stdout, "RMAN level %d backup of %s done in %s\n", *level, db.Name, time.Duration(out.Duration).Round(time.Second))
	return nil
}
