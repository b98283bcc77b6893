package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
)

// The end-to-end suite runs the real binaries: the embedded Temporal server
// (bulwark-temporal), workers (bulwark-worker) and the CLI (bulwark).
// `make test` builds them and sets BULWARK_BIN_DIR; without it the suite
// builds them itself (slow the first time: the server links all of Temporal).

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv("BULWARK_BIN_DIR"); d != "" {
			binDir = d
			return
		}
		binDir = filepath.Join(os.TempDir(), "bulwark-e2e-bin")
		root, err := filepath.Abs("..")
		if err != nil {
			buildErr = err
			return
		}
		for name, pkg := range map[string]string{"bulwark": "./starter", "bulwark-worker": "./workers", "bulwark-temporal": "./cmd/bulwark-temporal"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// proc is a child process whose output is captured.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a binary and waits for a line containing ready.
func start(t *testing.T, ready string, path string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(path, args...)
	pr, pw := io.Pipe()
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readyCh := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		seen := false
		for sc.Scan() {
			fmt.Fprintln(p.out, sc.Text())
			if !seen && strings.Contains(sc.Text(), ready) {
				seen = true
				close(readyCh)
			}
		}
	}()
	go func() { cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(p.stop)
	select {
	case <-readyCh:
		return p
	case <-p.done:
		t.Fatalf("%s exited before ready:\n%s", filepath.Base(path), p.out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("%s not ready:\n%s", filepath.Base(path), p.out.String())
	}
	return nil
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process at once, as a crash or an OOM kill would.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cluster is one embedded server, a config directory and its workers.
type cluster struct {
	t       *testing.T
	bin     string
	dir     string
	address string
	config  string
	client  client.Client
	server  *proc
	// serverArgs start the server again on the same port and database.
	serverArgs []string
	uiURL      string
}

func newCluster(t *testing.T, configYAML string) *cluster {
	t.Helper()
	return newClusterWith(t, configYAML, "--headless")
}

// newClusterWithUI also serves the Temporal Web UI, at c.uiURL.
func newClusterWithUI(t *testing.T, configYAML string) *cluster {
	t.Helper()
	port := freePort(t)
	c := newClusterWith(t, configYAML, "--ui-port", fmt.Sprint(port))
	c.uiURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	return c
}

func newClusterWith(t *testing.T, configYAML string, serverFlags ...string) *cluster {
	t.Helper()
	bin := binaries(t)
	dir := t.TempDir()
	port := freePort(t)
	args := append([]string{"server", "start-dev",
		"--ip", "127.0.0.1", "--port", fmt.Sprint(port), "--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "error"}, serverFlags...)
	server := start(t, "bulwark-temporal: frontend", filepath.Join(bin, "bulwark-temporal"), args...)
	c := &cluster{t: t, bin: bin, dir: dir, address: fmt.Sprintf("127.0.0.1:%d", port), config: filepath.Join(dir, "bulwark.yaml"), server: server, serverArgs: args}
	if err := os.WriteFile(c.config, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(client.Options{HostPort: c.address, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c.client = cl
	return c
}

// restartServer stops the server (SIGTERM) and starts it again on the same
// port and database: clients and workers reconnect by themselves.
func (c *cluster) restartServer() {
	c.t.Helper()
	c.server.stop()
	c.server = start(c.t, "bulwark-temporal: frontend", filepath.Join(c.bin, "bulwark-temporal"), c.serverArgs...)
}

func (c *cluster) startWorker() *proc {
	c.t.Helper()
	return start(c.t, "bulwark-worker: ready", filepath.Join(c.bin, "bulwark-worker"), "--config", c.config, "--address", c.address, "--log-level", "info")
}

// cli runs the bulwark CLI and returns its stdout, stderr and exit code.
func (c *cluster) cli(args ...string) (string, string, int) {
	c.t.Helper()
	if !containsArg(args, "--config") {
		args = append(args, "--config", c.config)
	}
	args = append(args, "--address", c.address)
	cmd := exec.Command(filepath.Join(c.bin, "bulwark"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go func() { <-ctx.Done(); cmd.Process.Kill() }()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func (c *cluster) mustCLI(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.cli(args...)
	if code != 0 {
		c.t.Fatalf("bulwark %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

func containsArg(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}
