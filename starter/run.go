package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/demodb"
)

func listOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       fmt.Sprintf("list/%d", time.Now().UnixNano()),
		TaskQueue:                activities.WorkflowQueue,
		WorkflowExecutionTimeout: 10 * time.Minute,
	}
}

func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

const demoConfig = `# Bulwark configuration written by "bulwark init". See README.md.
# Relative paths are relative to this file.
destination: backups            # a directory, file:///…, s3://bucket?region=…
keeper: keyfile://keys/bulwark.key   # created on first run, mode 0600; or awskms://…
compression: zstd
databases:
  - name: finance
    path: demo/finance.db
    verify_after_backup: true
    rpo: 26h                      # alert when the newest verified backup is older
    drill:                        # a monthly restore test (strategy section 8)
      cron: "0 4 1 * *"
      queries:
        - SELECT count(*) FROM users
restore:
  approval_timeout: 24h
# The strategy's schedule (section 2.3), applied with "bulwark schedules apply".
# The daily full runs Monday to Saturday: on Sunday the weekly full has 02:00.
timezone: UTC
schedules:
  - {name: finance-daily-full, database: finance, type: full, cron: "0 2 * * 1-6"}
  - {name: finance-noon-differential, database: finance, type: differential, cron: "0 12 * * *"}
  - {name: finance-weekly-full, database: finance, type: full, cron: "0 2 * * sun"}
  - {name: finance-monthly-full, database: finance, type: full, cron: "0 3 1 * *"}
`

// initState writes a starter config and the demo database under dir when
// they are missing. It never overwrites anything.
func initState(ctx context.Context, g *globals, dir string, demoUsers int) (string, error) {
	cfgPath := g.config
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(cfgPath, []byte(demoConfig), 0o600); err != nil {
			return "", err
		}
		fmt.Fprintf(g.stderr, "wrote %s\n", cfgPath)
	}
	demo := filepath.Join(filepath.Dir(cfgPath), "demo", "finance.db")
	if _, err := os.Stat(demo); errors.Is(err, os.ErrNotExist) && strings.Contains(readFileOr(cfgPath), "demo/finance.db") {
		if err := os.MkdirAll(filepath.Dir(demo), 0o700); err != nil {
			return "", err
		}
		st, err := demodb.Generate(ctx, demo, demodb.Options{Users: demoUsers})
		if err != nil {
			return "", fmt.Errorf("create demo database: %w", err)
		}
		fmt.Fprintf(g.stderr, "created demo database %s (%s, %d users) in %s\n", demo, humanBytes(st.Bytes), demoUsers, st.Duration.Round(time.Millisecond))
	}
	return cfgPath, nil
}

func readFileOr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func cmdInit(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	g.register(fs)
	users := fs.Int("demo-users", 50, "users in the demo database")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	_, err := initState(ctx, g, filepath.Dir(g.config), *users)
	return err
}

// cmdRun starts the embedded Temporal server (state in <state>/temporal.db)
// and a worker as child processes, runs one command against them, and stops
// them. The binaries are found next to this one.
func cmdRun(ctx context.Context, g *globals, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	state := fs.String("state", ".bulwark", "state directory: Temporal's database, config, keys, backups, demo database")
	users := fs.Int("demo-users", 50, "users in the demo database when one is created")
	keep := fs.Bool("keep", false, "keep the server and worker running after the command (until Ctrl-C)")
	if err := fs.Parse(args); err != nil {
		return usagef("run: %v", err)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		rest = []string{"backup", "finance"}
	}
	if os.Getenv("BULWARK_CONFIG") == "" {
		g.config = filepath.Join(*state, "bulwark.yaml")
	} else {
		g.config = os.Getenv("BULWARK_CONFIG")
	}
	for _, a := range rest {
		if a == "--config" || strings.HasPrefix(a, "--config=") {
			return usagef("run sets --config to %s; set BULWARK_CONFIG to use another", g.config)
		}
	}
	if _, err := initState(ctx, g, *state, *users); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	binDir := filepath.Dir(self)
	port, err := freePort()
	if err != nil {
		return err
	}
	address := fmt.Sprintf("127.0.0.1:%d", port)

	serverArgs := []string{"server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--db-filename", filepath.Join(*state, "temporal.db"), "--log-level", "error"}
	// A one-off command needs no Web UI; a server kept running (make serve)
	// is for watching and starting workflows by hand, so it gets one.
	uiPort := 0
	if *keep {
		if uiPort, err = freePort(); err != nil {
			return err
		}
		serverArgs = append(serverArgs, "--ui-port", fmt.Sprint(uiPort))
	} else {
		serverArgs = append(serverArgs, "--headless")
	}
	server, err := startChild(ctx, filepath.Join(*state, "temporal.log"), filepath.Join(binDir, "bulwark-temporal"), "bulwark-temporal: frontend", 60*time.Second, serverArgs...)
	if err != nil {
		return fmt.Errorf("start the embedded Temporal server: %w", err)
	}
	defer server.stop()
	worker, err := startChild(ctx, filepath.Join(*state, "worker.log"), filepath.Join(binDir, "bulwark-worker"), "bulwark-worker: ready", 30*time.Second,
		"--config", g.config, "--address", address, "--log-level", "warn")
	if err != nil {
		return fmt.Errorf("start the worker: %w", err)
	}
	defer worker.stop()

	cmdArgs := append(append([]string{}, rest...), "--config", g.config, "--address", address)
	start := time.Now()
	g.lastBackup = ""
	err = dispatch(ctx, g, cmdArgs)
	if err == nil && len(fs.Args()) == 0 && g.lastBackup != "" {
		fmt.Fprintf(g.stdout, "\nDone in %s on the embedded Temporal server (state in %s; logs in temporal.log and worker.log there).\n", time.Since(start).Round(time.Millisecond), *state)
		fmt.Fprintf(g.stdout, "Restore it with:\n  %s run restore finance %s --to %s\n", relBin(self), g.lastBackup, filepath.Join(*state, "restored", "finance.db"))
		fmt.Fprintf(g.stdout, "List backups with:\n  %s run list\n", relBin(self))
	}
	if *keep && err == nil {
		fmt.Fprintf(g.stderr, "server at %s, Temporal Web UI at http://127.0.0.1:%d, worker running; Ctrl-C to stop\n", address, uiPort)
		<-ctx.Done()
	}
	return err
}

type child struct {
	cmd  *exec.Cmd
	done chan error
}

// startChild runs a program and waits until it prints a line containing
// ready on stdout or stderr. Its output is appended to logPath.
func startChild(ctx context.Context, logPath, path, ready string, timeout time.Duration, args ...string) (*child, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s not found; build it with `make build`", path)
	}
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); pw.Close(); logFile.Close() }()
	readyCh := make(chan struct{})
	var tail []string
	go func() {
		sc := bufio.NewScanner(pr)
		isReady := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if !isReady && strings.Contains(line, ready) {
				isReady = true
				close(readyCh)
				continue
			}
			if !isReady && len(tail) < 20 {
				tail = append(tail, line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case <-readyCh:
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v): %s", filepath.Base(path), err, strings.Join(tail, " | "))
	case <-time.After(timeout):
		c.stop()
		return nil, fmt.Errorf("%s not ready after %s: %s", filepath.Base(path), timeout, strings.Join(tail, " | "))
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// relBin shows a binary path relative to the working directory when it is
// below it, so that printed commands can be pasted as they are.
func relBin(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
