package oraclesrc

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRMANBackupScript(t *testing.T) {
	for _, level := range []int{0, 1} {
		s, err := RMANBackupScript(level, "BULWARK_L0_20241126")
		if err != nil {
			t.Fatal(err)
		}
		want := "RUN {\n  BACKUP INCREMENTAL LEVEL " + string(rune('0'+level)) + " DATABASE TAG 'BULWARK_L0_20241126' PLUS ARCHIVELOG;\n" +
			"  BACKUP CURRENT CONTROLFILE;\n}\nEXIT;\n"
		if s != want {
			t.Errorf("level %d script =\n%s\nwant\n%s", level, s, want)
		}
	}
	if _, err := RMANBackupScript(0, strings.Repeat("T", 30)); err != nil {
		t.Errorf("30-character tag: %v", err)
	}
	for _, level := range []int{-1, 2, 3} {
		if s, err := RMANBackupScript(level, "T"); err == nil || !strings.Contains(err.Error(), "use 0 or 1") {
			t.Errorf("level %d: %q, %v", level, s, err)
		}
	}
	for _, tag := range []string{"", "1ST", "_X", "A'B", "A B", "A-B", strings.Repeat("T", 31), "ÄB", "X;SHUTDOWN ABORT", "ABC\n", "A\nSHUTDOWN"} {
		if s, err := RMANBackupScript(0, tag); err == nil || !strings.Contains(err.Error(), "rman tag") {
			t.Errorf("tag %q: %q, %v", tag, s, err)
		}
	}
}

func TestRMANRestoreScript(t *testing.T) {
	s, err := RMANRestoreScript("48213377", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := "SHUTDOWN IMMEDIATE;\nSTARTUP MOUNT;\nRUN {\n  SET UNTIL SCN 48213377;\n  RESTORE DATABASE;\n  RECOVER DATABASE;\n}\nALTER DATABASE OPEN RESETLOGS;\nEXIT;\n"
	if s != want {
		t.Errorf("SCN script =\n%s\nwant\n%s", s, want)
	}
	// A time is written as its wall clock in its own location: RMAN reads
	// it in the database host's zone, which the caller gives.
	at := time.Date(2024, 11, 26, 4, 9, 12, 999, time.FixedZone("CET", 3600))
	s, err = RMANRestoreScript("", at)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, "  SET UNTIL TIME \"TO_DATE('2024-11-26 04:09:12', 'YYYY-MM-DD HH24:MI:SS')\";\n  RESTORE DATABASE;") ||
		strings.Contains(s, "SET UNTIL SCN") || !strings.HasSuffix(s, "ALTER DATABASE OPEN RESETLOGS;\nEXIT;\n") {
		t.Errorf("time script =\n%s", s)
	}
	if s, err := RMANRestoreScript("1", at); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("SCN and time: %q, %v", s, err)
	}
	if s, err := RMANRestoreScript("", time.Time{}); err == nil || !strings.Contains(err.Error(), "give an SCN or a time") {
		t.Errorf("neither: %q, %v", s, err)
	}
	for _, scn := range []string{"0", "-1", "1.5", "1E5", "abc", "0123", " 123", "123 ", "1;SHUTDOWN ABORT", "+5"} {
		if s, err := RMANRestoreScript(scn, time.Time{}); err == nil || !strings.Contains(err.Error(), "bad SCN") {
			t.Errorf("SCN %q: %q, %v", scn, s, err)
		}
	}
}

// fakeRMAN writes an executable named rman into a new directory: it records its arguments and
// standard input next to itself, prints output and exits with code.
func fakeRMAN(t *testing.T, output string, code int) (dir string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake rman is a shell script")
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Fatal("the fake rman needs /bin/sh:", err)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal("the fake rman needs cat:", err)
	}
	dir = t.TempDir()
	// Absolute paths and builtins only: the tests run it with a PATH that holds nothing else.
	script := "#!/bin/sh\n" +
		"for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$0.args\"\n" +
		cat + " > \"$0.stdin\"\n" +
		cat + " \"$0.out\"\n" +
		"exit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "rman.out"), []byte(output+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rman"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunRMANUnavailable(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	res, err := RunRMAN(context.Background(), "", "EXIT;\n")
	if !errors.Is(err, ErrRMANUnavailable) {
		t.Errorf("RunRMAN without rman = %+v, %v; want ErrRMANUnavailable", res, err)
	}
}

const rmanFailure = `Recovery Manager: Release 23.0.0.0.0 - Production on Tue Nov 26 03:09:12 2024
connected to target database: FREE (DBID=1458377456)
RMAN-00571: ===========================================================
RMAN-00569: =============== ERROR MESSAGE STACK FOLLOWS ===============
RMAN-00571: ===========================================================
RMAN-03009: failure of backup command on ORA_DISK_1 channel at 11/26/2024 03:09:14
ORA-19504: failed to create file "/opt/oracle/fra/FREE/backupset/o1_mf_nnnd0.bkp"
Recovery Manager complete.`

func TestRunRMANFailure(t *testing.T) {
	dir := fakeRMAN(t, rmanFailure, 1)
	t.Setenv("PATH", dir)
	script, err := RMANBackupScript(0, "BULWARK_L0")
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunRMAN(context.Background(), "", script)
	if err == nil || errors.Is(err, ErrRMANUnavailable) {
		t.Fatalf("failing rman: %v", err)
	}
	for _, want := range []string{"RMAN-03009: failure of backup command", "ORA-19504", "exit status 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if len(res.Errors) != 5 || res.Errors[3] != "RMAN-03009: failure of backup command on ORA_DISK_1 channel at 11/26/2024 03:09:14" {
		t.Errorf("Errors = %q", res.Errors)
	}
	if !strings.Contains(res.Output, "Recovery Manager: Release 23") {
		t.Errorf("Output = %q", res.Output)
	}
	// argv is exactly "target /": operating-system authentication, no password anywhere.
	rman := filepath.Join(dir, "rman")
	if args := readFile(t, rman+".args"); args != "target\n/\n" {
		t.Errorf("argv = %q", args)
	}
	if stdin := readFile(t, rman+".stdin"); stdin != script {
		t.Errorf("stdin = %q, want the script %q", stdin, script)
	}
}

func TestRunRMANSuccess(t *testing.T) {
	dir := fakeRMAN(t, "Recovery Manager: Release 23.0.0.0.0\nconnected to target database: FREE (DBID=1458377456)\n"+
		"Starting backup at 26-NOV-24\nchannel ORA_DISK_1: starting incremental level 0 datafile backup set\nFinished backup at 26-NOV-24\n"+
		"Recovery Manager complete.", 0)
	// The program at an explicit path, with PATH holding none.
	t.Setenv("PATH", t.TempDir())
	script, _ := RMANRestoreScript("48213377", time.Time{})
	res, err := RunRMAN(context.Background(), filepath.Join(dir, "rman"), script)
	if err != nil || len(res.Errors) != 0 || !strings.Contains(res.Output, "Finished backup") {
		t.Errorf("successful rman: %+v, %v", res, err)
	}
	if stdin := readFile(t, filepath.Join(dir, "rman.stdin")); stdin != script {
		t.Errorf("stdin = %q", stdin)
	}
	if args := readFile(t, filepath.Join(dir, "rman.args")); args != "target\n/\n" {
		t.Errorf("argv = %q", args)
	}
}

func TestRunRMANErrorsWithExitZero(t *testing.T) {
	// rman can print an error stack and still exit 0 (a RUN block it gave up on): the output
	// decides.
	dir := fakeRMAN(t, "RMAN-06054: media recovery requesting unknown archived log for thread 1 with sequence 42\nRecovery Manager complete.", 0)
	res, err := RunRMAN(context.Background(), filepath.Join(dir, "rman"), "EXIT;\n")
	if err == nil || !strings.Contains(err.Error(), "RMAN-06054") || len(res.Errors) != 1 {
		t.Errorf("rman with an error stack and exit 0: %+v, %v", res, err)
	}
}

func TestRunRMANContext(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell script")
	}
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal("the fake rman needs sleep:", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rman"), []byte("#!/bin/sh\nexec "+sleep+" 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := RunRMAN(ctx, filepath.Join(dir, "rman"), "EXIT;\n"); err == nil {
		t.Error("rman outlived its context without an error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("RunRMAN returned after %v", d)
	}
}
