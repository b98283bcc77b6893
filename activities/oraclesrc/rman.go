package oraclesrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// RMAN is a client program that must run on the database host (restore needs a mounted instance,
// which SQL cannot drive). Bulwark runs it from a worker on that host, with operating-system
// authentication ("target /"): no password is ever on its command line.

// ErrRMANUnavailable says this worker has no rman program; the pipeline reports it and goes on.
var ErrRMANUnavailable = errors.New("rman is not available on this worker")

// RMANBackupScript returns the script for an incremental backup of the given level (0 is the
// base, 1 the changes since the last level 0 or 1), archived logs included so that the backup
// can be recovered to a consistent point, tagged so reports can find it.
func RMANBackupScript(level int, tag string) (string, error) {
	if level != 0 && level != 1 {
		return "", fmt.Errorf("rman incremental level %d: use 0 or 1", level)
	}
	if !rmanTag.MatchString(tag) {
		return "", fmt.Errorf("rman tag %q: up to 30 letters, digits and _", tag)
	}
	return fmt.Sprintf(`RUN {
  BACKUP INCREMENTAL LEVEL %d DATABASE TAG '%s' PLUS ARCHIVELOG;
  BACKUP CURRENT CONTROLFILE;
}
EXIT;
`, level, tag), nil
}

var rmanTag = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,29}$`)

// RMANRestoreScript returns the point-in-time restore script: until an SCN (decimal) or a time,
// exactly one of them. It is for an operator to run on a mounted instance (the DR runbook shows
// it); OPEN RESETLOGS starts a new incarnation.
func RMANRestoreScript(untilSCN string, untilTime time.Time) (string, error) {
	var until string
	switch {
	case untilSCN != "" && !untilTime.IsZero():
		return "", errors.New("rman restore: give an SCN or a time, not both")
	case untilSCN != "":
		if c, err := CanonicalNumber(untilSCN); err != nil || c != untilSCN || strings.ContainsAny(untilSCN, "-.") || untilSCN == "0" {
			return "", fmt.Errorf("rman restore: bad SCN %q", untilSCN)
		}
		until = "SET UNTIL SCN " + untilSCN + ";"
	case !untilTime.IsZero():
		// RMAN reads UNTIL TIME in the database host's time zone: the
		// caller passes the time in that zone (its Location), and its wall
		// clock is written as it is.
		until = "SET UNTIL TIME \"TO_DATE('" + untilTime.Format("2006-01-02 15:04:05") + "', 'YYYY-MM-DD HH24:MI:SS')\";"
	default:
		return "", errors.New("rman restore: give an SCN or a time")
	}
	return `SHUTDOWN IMMEDIATE;
STARTUP MOUNT;
RUN {
  ` + until + `
  RESTORE DATABASE;
  RECOVER DATABASE;
}
ALTER DATABASE OPEN RESETLOGS;
EXIT;
`, nil
}

// RMANResult is what a run of rman printed, trimmed, and the errors found in it.
type RMANResult struct {
	Output string
	Errors []string
}

var rmanError = regexp.MustCompile(`(?m)^(RMAN-\d{5}|ORA-\d{5}).*$`)

// RunRMAN runs script with `rman target /` (program found on PATH or at path).
func RunRMAN(ctx context.Context, path, script string) (RMANResult, error) {
	if path == "" {
		p, err := exec.LookPath("rman")
		if err != nil {
			return RMANResult{}, ErrRMANUnavailable
		}
		path = p
	}
	cmd := exec.CommandContext(ctx, path, "target", "/")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := RMANResult{Output: tail(out.String(), 64<<10)}
	res.Errors = rmanError.FindAllString(out.String(), 20)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return res, ErrRMANUnavailable
		}
		return res, fmt.Errorf("rman: %w: %s", err, strings.Join(res.Errors, "; "))
	}
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("rman reported: %s", strings.Join(res.Errors, "; "))
	}
	return res, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
