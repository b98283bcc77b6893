// Command bulwark is Bulwark's command-line interface. Every command starts
// or queries Temporal workflows; the workers do the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `bulwark — durable backup and disaster recovery for SQLite and Oracle, on Temporal

Usage:
  bulwark run [command [args]]     start the embedded Temporal server and a worker on
                                   --state (default .bulwark), run the command, stop;
                                   with no command: back up and verify the demo database
  bulwark init                     write a starter config (and demo database) if missing
  bulwark backup <database>        take a hot backup: --type full|incremental|differential
                                   (verified unless --no-verify)
  bulwark list [<database>]        list complete backups and their last verification
  bulwark verify <database> [<backup>|latest]
  bulwark restore <database> [<backup>|latest|<RFC3339 time>] [--to <file>] [--yes] [--repair]
  bulwark restore-table <database> <backup>|latest <table> [--into <file>] [--mode replace|append|new-name] [--yes]
  bulwark oracle restore <database> [<backup>|latest|<time>] [--table T]... [--schema S]
             [--mode create|replace|append|new-name] [--new-name N] [--datapump [--table-exists A]]
                                   restore an Oracle schema or tables from a logical backup,
                                   checked by row counts and digests (emergency copy first)
  bulwark oracle rman <database> --level 0|1
                                   RMAN incremental on the database host's worker
  bulwark export <database> [<backup>|latest] --format sql|csv --to <dir>
  bulwark replicate <database> [<backup>|latest] [--to <destination>]...
                                   copy a backup to the other destinations, verified there
  bulwark forget <database> [--destination <name>] [--dry-run]
                                   apply each destination's retention (GFS, chain-aware);
                                   --dry-run prints every backup with the rule that keeps it
  bulwark schedules apply [--dry-run] | list
                                   reconcile Temporal Schedules with the config's schedules
                                   (create, update, delete), or show them with their next runs
  bulwark dr start [<incident>] --scenario corruption|hardware_failure|ransomware|site_disaster
             [--database NAME[:P1]]... [--target NAME=[host:]/path]... [--anomaly-since T] [--from DEST]
  bulwark dr status|approve|resume|abort|report <incident>
                                   the disaster-recovery runbook (also from the Temporal UI/CLI)
  bulwark drill <database> [<backup>] [--query SQL]...
                                   restore to scratch, check integrity and the queries, record it
  bulwark drills <database>        the drill history
  bulwark capacity [<database>]    bytes per destination and database, growth per day, and the
                                   space each destination's retention will need (projected)
  bulwark approve <restore-workflow-id> | reject <restore-workflow-id>
  bulwark status [<workflow-id>]   every database's health at a glance (newest backup, verified
                                   age against the RPO, copies, last drill); with an id, what
                                   that workflow is doing or waiting for

Global flags (before or after the command):
  --config FILE    config file (env BULWARK_CONFIG; default bulwark.yaml)
  --address H:P    Temporal frontend (env TEMPORAL_ADDRESS, envconfig profile, config)
  --namespace NS   Temporal namespace (env TEMPORAL_NAMESPACE)
  --profile NAME   Temporal envconfig profile (env TEMPORAL_PROFILE)
  --json           machine-readable output
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, &globals{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "bulwark:", err)
			fmt.Fprintln(os.Stderr, "run `bulwark help` for usage")
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "bulwark:", oneLine(err))
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// globals are the flags every command accepts.
type globals struct {
	config    string
	address   string
	namespace string
	profile   string
	json      bool
	// lastBackup is the id of the backup a command just made, for run's hint.
	lastBackup string
	stdout     io.Writer
	stderr     io.Writer
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.config, "config", envOr("BULWARK_CONFIG", "bulwark.yaml"), "config file")
	fs.StringVar(&g.address, "address", "", "Temporal frontend host:port")
	fs.StringVar(&g.namespace, "namespace", "", "Temporal namespace")
	fs.StringVar(&g.profile, "profile", os.Getenv("TEMPORAL_PROFILE"), "Temporal envconfig profile")
	fs.BoolVar(&g.json, "json", false, "JSON output")
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func dispatch(ctx context.Context, g *globals, args []string) error {
	if len(args) == 0 {
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(g.stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(g.stdout, "bulwark", version)
		return nil
	case "run":
		return cmdRun(ctx, g, rest)
	case "init":
		return cmdInit(ctx, g, rest)
	case "backup":
		return cmdBackup(ctx, g, rest)
	case "list":
		return cmdList(ctx, g, rest)
	case "verify":
		return cmdVerify(ctx, g, rest)
	case "restore":
		return cmdRestore(ctx, g, rest)
	case "export":
		return cmdExport(ctx, g, rest)
	case "replicate":
		return cmdReplicate(ctx, g, rest)
	case "forget":
		return cmdForget(ctx, g, rest)
	case "capacity":
		return cmdCapacity(ctx, g, rest)
	case "schedules":
		return cmdSchedules(ctx, g, rest)
	case "dr":
		return cmdDR(ctx, g, rest)
	case "drill":
		return cmdDrill(ctx, g, rest)
	case "drills":
		return cmdDrills(ctx, g, rest)
	case "restore-table":
		return cmdRestoreTable(ctx, g, rest)
	case "approve", "reject":
		return cmdApprove(ctx, g, cmd, rest)
	case "status":
		return cmdStatus(ctx, g, rest)
	case "oracle":
		return cmdOracle(ctx, g, rest)
	}
	return usagef("unknown command %q", cmd)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// oneLine keeps the operator-facing part of an error on one line: Temporal
// wraps activity failures in several layers that repeat each other.
func oneLine(err error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "\n", " ")
	return msg
}
