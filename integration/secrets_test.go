package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/config"
	"github.com/bulwark-dr/bulwark/destinations/destinationtest"
	"github.com/bulwark-dr/bulwark/keeper"
	"github.com/bulwark-dr/bulwark/workflows"
)

// Issue #7, part 6: secrets stay secret. A run of everything a deployment
// does — scheduled pipelines (backup, verify, replication to S3, retention),
// a failing pipeline and its alert, a drill with notifications over SMTP
// and a webhook (each refusing once and quoting the secret it was sent, as
// careless servers do), a restore, schedules — is given known secrets: the
// key file's key, an SMTP password, a webhook token, S3 credentials and an
// Oracle password. Then every place they could leak to is searched for each
// secret in every encoding it might take: worker and server logs (both at
// debug), both processes' argv, the Temporal history and description of
// every workflow in the namespace and every schedule, Temporal's own
// database, all objects on both destinations (attributes, metadata and
// bytes), every other file the run wrote, the CLI's output and the
// notifications as received. A hit fails naming the secret's kind, its
// encoding and the place; the secret itself is never printed.
func TestChaosSecrets(t *testing.T) {
	part := newChaosPart("secrets", "TestChaosSecrets")
	defer part.record(t)
	s3 := destinationtest.StartS3(t)
	sec := newTestSecrets(t)
	// StartS3 pointed the AWS SDK at its server with fixed dummy
	// credentials; ours replace them (the fake server accepts any).
	t.Setenv("AWS_ACCESS_KEY_ID", sec.s3AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sec.s3SecretKey)
	t.Setenv("BULWARK_TEST_SMTP_PASSWORD", sec.smtpPassword)
	t.Setenv("BULWARK_ORACLE_PASSWORD", sec.oraclePassword)

	mail := startSecretsMailbox(t, sec.smtpPassword)
	hook := newSecretsWebhook(sec.webhookToken)
	defer hook.srv.Close()
	t.Setenv("BULWARK_TEST_WEBHOOK", hook.srv.URL+"/hooks/"+sec.webhookToken)

	c := newClusterWith(t, "", "--headless", "--log-level", "debug")
	keyPath := filepath.Join(c.dir, "keys", "bulwark.key")
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, []byte(base64.StdEncoding.EncodeToString(sec.key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "ghost.db"), []byte("this is not a database, so its backup fails"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`keeper: keyfile://%[1]s
host: e2e
scratch_dir: %[2]s/scratch
destinations:
  - name: local
    url: %[2]s/backups
    role: primary
    retention: {keep_last: 1}
  - name: cloud
    url: %[3]s
    role: secondary
    retention: {keep_last: 1}
databases:
  - name: finance
    path: %[2]s/finance.db
    drill: {cron: "0 4 1 * *", queries: ["SELECT count(*) FROM users"]}
  - name: ghost
    path: %[2]s/ghost.db
#ORACLE
notifications:
  channels:
    - name: mail
      smtp: {addr: "%[4]s", from: bulwark@example.com, to: [ops@example.com], username: bulwark, password_env: BULWARK_TEST_SMTP_PASSWORD}
    - name: hook
      webhook: {url_env: BULWARK_TEST_WEBHOOK}
  routes:
    "*": [mail, hook]
schedules:
  - {name: finance-nightly, database: finance, type: full, cron: "0 2 * * *", paused: true}
`, keyPath, c.dir, s3.URL, mail.addr)
	// The Oracle database, its password in the worker's environment, on a
	// listener that takes the connection and hangs up: a backup of it
	// fails in the driver, whose errors like to quote connection strings.
	refuser, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { refuser.Close() })
	go func() {
		for {
			conn, err := refuser.Accept()
			if err != nil {
				return
			}
			conn.Read(make([]byte, 4096))
			conn.Close()
		}
	}()
	oracle := fmt.Sprintf(`  - name: central
    engine: oracle
    oracle: {host: 127.0.0.1, port: %d, service: FREEPDB1, user: bulwark, password_env: BULWARK_ORACLE_PASSWORD, schema: FINANCE}`,
		refuser.Addr().(*net.TCPAddr).Port)
	withOracle := strings.Replace(cfg, "#ORACLE", oracle, 1)
	if _, err := config.Parse(c.config, []byte(withOracle)); err != nil {
		t.Logf("the config does not take the Oracle entry yet (%v): the Oracle password is only in the worker's environment", err)
		withOracle = cfg
	}
	if err := os.WriteFile(c.config, []byte(withOracle), 0o600); err != nil {
		t.Fatal(err)
	}
	newFinance(t, c.dir, 2<<20)
	worker := start(t, "bulwark-worker: ready", filepath.Join(c.bin, "bulwark-worker"),
		"--config", c.config, "--address", c.address, "--log-level", "debug")

	scan := newSecretScan(t, sec, part)
	scan.selfCheck(t)
	argv := func(when string) {
		for name, p := range map[string]*proc{"worker": worker, "server": c.server} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid))
			if err != nil {
				t.Fatalf("argv of the %s: %v", name, err)
			}
			scan.place(fmt.Sprintf("argv of the %s (%s)", name, when), b)
		}
	}
	argv("at start")

	var cliOut bytes.Buffer
	cli := func(args ...string) (string, int) {
		out, errOut, code := c.cli(args...)
		fmt.Fprintf(&cliOut, "$ bulwark %s\n%s%s", strings.Join(args, " "), out, errOut)
		return out, code
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pipeline := func(id, database, typ string) (workflows.PipelineResult, error) {
		run, err := c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: activities.WorkflowQueue},
			workflows.PipelineWorkflow, workflows.PipelineRequest{Database: database, Host: "e2e", Type: typ, Verify: true, Cleanup: true, RPO: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var res workflows.PipelineResult
		err = run.Get(ctx, &res)
		return res, err
	}
	// Two scheduled-style runs: backup, verify, copy to S3; the second's
	// retention removes the first everywhere (keep_last 1).
	for i, typ := range []string{"full", "incremental"} {
		res, err := pipeline(fmt.Sprintf("pipeline/finance/secrets-%d", i), "finance", typ)
		if err != nil {
			t.Fatalf("pipeline %d: %v", i, err)
		}
		if r := res.Backup.Replication; r == nil || len(r.Copies) != 1 || len(r.Failed) != 0 {
			t.Fatalf("pipeline %d: replication %+v", i, r)
		}
	}
	// A drill: its drill_result goes to both channels, each of which
	// refuses the first attempt.
	if out, code := cli("drill", "finance"); code != 0 || !strings.Contains(out, "PASSED") {
		t.Fatalf("drill (exit %d):\n%s", code, out)
	}
	// A failing run, and its failure alert.
	if _, err := pipeline("pipeline/ghost/secrets", "ghost", "full"); err == nil {
		t.Fatal("the backup of a file that is not a database succeeded")
	}
	// An Oracle backup whose connection fails: a few attempts go into the
	// workflow's history (and the worker's log), then it is terminated.
	orun, err := c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backup/central/secrets", TaskQueue: activities.WorkflowQueue},
		workflows.BackupWorkflow, workflows.BackupRequest{Database: "central", Engine: "oracle", Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		d, err := c.client.DescribeWorkflowExecution(ctx, orun.GetID(), orun.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		if p := d.GetPendingActivities(); len(p) == 1 && p[0].GetAttempt() >= 3 && p[0].GetLastFailure() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Oracle backup did not fail its first attempts: %v", d.GetPendingActivities())
		}
	}
	if err := c.client.TerminateWorkflow(ctx, orun.GetID(), orun.GetRunID(), "secrets test: the Oracle listener refuses"); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(c.dir, "restored", "finance.db")
	if out, code := cli("restore", "finance", "latest", "--to", target); code != 0 {
		t.Fatalf("restore (exit %d):\n%s", code, out)
	}
	for _, args := range [][]string{{"schedules", "apply"}, {"list", "finance"}, {"status"}, {"drills", "finance"}, {"verify", "finance", "latest"}} {
		if out, code := cli(args...); code != 0 {
			t.Fatalf("bulwark %s (exit %d):\n%s", strings.Join(args, " "), code, out)
		}
	}
	argv("at the end")

	// The secrets were used, and the refusals happened: otherwise finding
	// none of them proves nothing.
	if ok, attempts := mail.authenticated(); ok == 0 || attempts <= ok {
		t.Fatalf("SMTP: %d logins with the password in %d attempts; want one refusal, then logins", ok, attempts)
	}
	if ok, requests := hook.delivered(); ok == 0 || requests <= ok {
		t.Fatalf("webhook: %d deliveries with the token in %d requests; want one refusal, then deliveries", ok, requests)
	}
	usedKey := false
	for _, r := range s3.Requests() {
		if strings.Contains(r.Header.Get("Authorization"), "Credential="+sec.s3AccessKey+"/") {
			usedKey = true
		}
	}
	if !usedKey {
		t.Fatal("the worker did not sign its S3 requests with the access key it was given")
	}

	// Temporal: every workflow in the namespace, its history and its
	// description (memo, search attributes, pending activities); every
	// schedule.
	ids, histories := scanWorkflows(t, c, scan)
	for _, id := range []string{"pipeline/finance/secrets-0", "pipeline/finance/secrets-1", "pipeline/ghost/secrets",
		workflows.BackupWorkflowID("finance"), workflows.DrillWorkflowID("finance")} {
		if !ids[id] {
			t.Fatalf("workflow %s is not in the namespace's listing: the listing is incomplete", id)
		}
	}
	schedules := scanSchedules(t, c, scan)
	if schedules < 1 {
		t.Fatal("no schedule listed; schedules apply made one")
	}

	// Storage: every object on both destinations.
	primary, err := fileblob.OpenBucket(filepath.Join(c.dir, "backups"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	cloud, err := blob.OpenBucket(ctx, s3.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer cloud.Close()
	objects := scanBucket(t, scan, "local", primary) + scanBucket(t, scan, "cloud (s3)", cloud)
	manifests := 0
	for _, k := range scan.objectKeys {
		if strings.HasSuffix(k, "/manifest.json") {
			manifests++
		}
	}
	if manifests < 2 {
		t.Fatalf("%d manifests among the objects: the backups are missing", manifests)
	}
	// The backups were sealed under the key given: their envelopes name
	// its fingerprint (and only that).
	var envelope struct {
		Keeper string `json:"keeper"`
	}
	for _, k := range scan.objectKeys {
		if strings.HasSuffix(k, "/key.json") {
			b, err := primary.ReadAll(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &envelope); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			break
		}
	}
	if want := "keyfile " + keeper.Fingerprint([32]byte(sec.key)); envelope.Keeper != want {
		t.Fatalf("the backups' key envelope names keeper %q, not the key given (%s)", envelope.Keeper, want)
	}

	// The processes stop so that their logs are complete.
	worker.stop()
	c.server.stop()
	scan.place("worker log (debug)", []byte(worker.out.String()))
	scan.place("server log (debug)", []byte(c.server.out.String()))
	scan.place("CLI output", cliOut.Bytes())
	scan.place("notifications as received (SMTP messages, webhook bodies)", append(mail.messages(), hook.bodies()...))
	// Every other file of the run: Temporal's database, the config, the
	// databases and their restores, scratch, anything in the primary's
	// directory that is not an object (scanned above); not the key file.
	scanned := map[string]bool{}
	for _, k := range scan.objectKeys {
		scanned[filepath.Join("backups", filepath.FromSlash(k))] = true
	}
	files := 0
	err = filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(c.dir, path)
		switch {
		case d.IsDir() && rel == "keys":
			return filepath.SkipDir
		case d.IsDir() || scanned[rel]:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scan.place("file "+rel, b)
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	part.note("%d places scanned, %d with a secret: %d workflow histories, %d schedules, %d objects (%d manifests) on local and S3, %d other files, logs, argv, CLI output, notifications",
		scan.places, len(scan.dirty), histories, schedules, objects, manifests, files)
	part.note("secrets: %s; forms: raw, base64 (std and url, 3 alignments), hex, URL- and JSON-escaped", strings.Join(sec.kinds(), ", "))
}

// testSecrets are the secrets of one run, random each time.
type testSecrets struct {
	key                                                                  []byte
	smtpPassword, webhookToken, s3AccessKey, s3SecretKey, oraclePassword string
}

func newTestSecrets(t *testing.T) testSecrets {
	t.Helper()
	r := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	return testSecrets{
		key: r(32),
		// Characters that URL and JSON encoding change, so that those
		// forms differ from the raw one.
		smtpPassword:   "smtp+" + hex.EncodeToString(r(10)) + "/p&ss=",
		webhookToken:   "whk_" + hex.EncodeToString(r(16)),
		s3AccessKey:    "AKIA" + strings.ToUpper(hex.EncodeToString(r(8))),
		s3SecretKey:    base64.StdEncoding.EncodeToString(r(30)),
		oraclePassword: "Ora#" + hex.EncodeToString(r(10)) + "<!>",
	}
}

func (s testSecrets) all() []struct {
	kind string
	raw  []byte
} {
	return []struct {
		kind string
		raw  []byte
	}{
		{"keyfile key", s.key},
		{"SMTP password", []byte(s.smtpPassword)},
		{"webhook token", []byte(s.webhookToken)},
		{"S3 access key id", []byte(s.s3AccessKey)},
		{"S3 secret access key", []byte(s.s3SecretKey)},
		{"Oracle password", []byte(s.oraclePassword)},
	}
}

func (s testSecrets) kinds() []string {
	var out []string
	for _, x := range s.all() {
		out = append(out, x.kind)
	}
	return out
}

// secretForm is one encoding of one secret.
type secretForm struct {
	kind, form string
	b          []byte
}

// secretForms returns raw in every encoding it could be stored or logged
// in. Base64 is taken at the three alignments a secret can have inside a
// longer encoded text (only the characters that depend on the secret
// alone), so that a secret in the middle of an encoded payload is found.
func secretForms(kind string, raw []byte) []secretForm {
	forms := []secretForm{{kind, "raw", raw}}
	add := func(form string, b []byte) {
		for _, f := range forms {
			if bytes.Equal(f.b, b) {
				return
			}
		}
		forms = append(forms, secretForm{kind, form, b})
	}
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.StdEncoding}, {"base64url", base64.URLEncoding}} {
		for pad := 0; pad < 3; pad++ {
			s := enc.e.EncodeToString(append(make([]byte, pad), raw...))
			from, to := (8*pad+5)/6, 8*(pad+len(raw))/6
			add(fmt.Sprintf("%s@%d", enc.name, pad), []byte(s[from:to]))
		}
	}
	add("hex", []byte(hex.EncodeToString(raw)))
	add("HEX", []byte(strings.ToUpper(hex.EncodeToString(raw))))
	add("url-query-escaped", []byte(url.QueryEscape(string(raw))))
	add("url-path-escaped", []byte(url.PathEscape(string(raw))))
	if j, err := json.Marshal(string(raw)); err == nil {
		add("json-escaped", j[1:len(j)-1])
	}
	return forms
}

// secretScan searches places for the secrets and keeps the tally in a
// chaos part: a place is a run, which survives when no secret is in it.
type secretScan struct {
	t          *testing.T
	part       *chaosPart
	forms      []secretForm
	places     int
	dirty      map[string]bool
	objectKeys []string
}

func newSecretScan(t *testing.T, s testSecrets, part *chaosPart) *secretScan {
	sc := &secretScan{t: t, part: part, dirty: map[string]bool{}}
	for _, x := range s.all() {
		sc.forms = append(sc.forms, secretForms(x.kind, x.raw)...)
	}
	return sc
}

// find returns "<kind> (<form>)" of every secret in data.
func (s *secretScan) find(data []byte) []string {
	var found []string
	seen := map[string]bool{}
	for _, f := range s.forms {
		if !seen[f.kind] && bytes.Contains(data, f.b) {
			seen[f.kind] = true
			found = append(found, fmt.Sprintf("%s (%s)", f.kind, f.form))
		}
	}
	return found
}

// place scans one place, counting it once. A hit names the secret's kind,
// its form and the place, never the secret.
func (s *secretScan) place(name string, data ...[]byte) {
	s.t.Helper()
	s.places++
	var hits []string
	for _, d := range data {
		for _, h := range s.find(d) {
			if !slices.Contains(hits, h) {
				hits = append(hits, h)
			}
		}
	}
	if len(hits) == 0 {
		s.part.survived()
		return
	}
	s.dirty[name] = true
	s.part.Runs++
	for _, hit := range hits {
		detail := hit + " found in " + name
		s.part.Failures = append(s.part.Failures, chaosFailure{Detail: detail})
		s.t.Error(detail)
	}
}

// selfCheck proves that the scan finds each secret wherever it hides:
// raw in text, base64 at each alignment inside a longer payload, hex, and
// inside protobuf and protojson (where payloads are base64).
func (s *secretScan) selfCheck(t *testing.T) {
	t.Helper()
	kinds := map[string][]byte{}
	for _, f := range s.forms {
		if f.form == "raw" {
			kinds[f.kind] = f.b
		}
	}
	for kind, raw := range kinds {
		for pad := 0; pad < 5; pad++ {
			payload := append(append(bytes.Repeat([]byte("x"), pad), raw...), "tail"...)
			for what, data := range map[string][]byte{
				"raw":       append([]byte("log line: "), payload...),
				"base64":    []byte(`{"data":"` + base64.StdEncoding.EncodeToString(payload) + `"}`),
				"base64url": []byte(base64.RawURLEncoding.EncodeToString(payload)),
				"hex":       []byte(hex.EncodeToString(payload)),
				"json":      secretsJSON(t, map[string]string{"v": string(payload)}),
			} {
				if len(s.find(data)) == 0 {
					t.Fatalf("self-check: the scan misses the %s %s at offset %d", kind, what, pad)
				}
			}
		}
	}
}

func secretsJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scanWorkflows scans the history and description of every workflow
// execution in the namespace; it returns their workflow ids and how many
// executions there were.
func scanWorkflows(t *testing.T, c *cluster, scan *secretScan) (map[string]bool, int) {
	t.Helper()
	ctx := context.Background()
	list := func() []*workflowservice.ListWorkflowExecutionsResponse {
		var pages []*workflowservice.ListWorkflowExecutionsResponse
		var token []byte
		for {
			resp, err := c.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", PageSize: 200, NextPageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, resp)
			if token = resp.GetNextPageToken(); len(token) == 0 {
				return pages
			}
		}
	}
	// Visibility trails the executions a little: wait until no workflow is
	// still listed as running and the listing is stable.
	var pages []*workflowservice.ListWorkflowExecutionsResponse
	prev := -1
	waitFor(t, 30*time.Second, func() bool {
		pages = list()
		n, running := 0, 0
		for _, p := range pages {
			for _, e := range p.GetExecutions() {
				n++
				if e.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
					running++
				}
			}
		}
		stable := n == prev && running == 0
		prev = n
		if !stable {
			time.Sleep(400 * time.Millisecond)
		}
		return stable
	})
	ids, runs := map[string]bool{}, 0
	for _, p := range pages {
		scan.place("workflow listing (visibility)", secretsProto(t, p), secretsProtoJSON(t, p))
		for _, e := range p.GetExecutions() {
			id, run := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			it := c.client.GetWorkflowHistory(ctx, id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			h := &historypb.History{}
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					t.Fatalf("history of %s: %v", id, err)
				}
				h.Events = append(h.Events, ev)
			}
			desc, err := c.client.DescribeWorkflowExecution(ctx, id, run)
			if err != nil {
				t.Fatalf("describe %s: %v", id, err)
			}
			scan.place(fmt.Sprintf("Temporal history and description of %s (%s, run %s)", id, e.GetType().GetName(), run),
				secretsProto(t, h), secretsProtoJSON(t, h), secretsProto(t, desc), secretsProtoJSON(t, desc))
			ids[id] = true
			runs++
		}
	}
	return ids, runs
}

// scanSchedules scans every schedule's description.
func scanSchedules(t *testing.T, c *cluster, scan *secretScan) int {
	t.Helper()
	ctx := context.Background()
	it, err := c.client.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		desc, err := c.client.WorkflowService().DescribeSchedule(ctx, &workflowservice.DescribeScheduleRequest{Namespace: "default", ScheduleId: e.ID})
		if err != nil {
			t.Fatal(err)
		}
		scan.place("Temporal schedule "+e.ID, secretsProto(t, desc), secretsProtoJSON(t, desc))
		n++
	}
	return n
}

func secretsProto(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func secretsProtoJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scanBucket scans every object of a destination: its attributes (user
// metadata, content type and the other headers, as stored in plaintext) and
// its bytes. It returns the number of objects.
func scanBucket(t *testing.T, scan *secretScan, name string, b *blob.Bucket) int {
	t.Helper()
	ctx := context.Background()
	it := b.List(nil)
	n := 0
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("list %s: %v", name, err)
		}
		attrs, err := b.Attributes(ctx, obj.Key)
		if err != nil {
			t.Fatalf("%s: attributes of %s: %v", name, obj.Key, err)
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			t.Fatalf("%s: read %s: %v", name, obj.Key, err)
		}
		keys := make([]string, 0, len(attrs.Metadata))
		for k := range attrs.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var meta bytes.Buffer
		for _, k := range keys {
			fmt.Fprintf(&meta, "%s: %s\n", k, attrs.Metadata[k])
		}
		fmt.Fprintf(&meta, "%s|%s|%s|%s|%s|%s|%x", attrs.ContentType, attrs.ContentEncoding, attrs.ContentDisposition,
			attrs.ContentLanguage, attrs.CacheControl, attrs.ETag, attrs.MD5)
		scan.place(fmt.Sprintf("%s object %s (attributes and bytes)", name, obj.Key), []byte(obj.Key), meta.Bytes(), data)
		scan.objectKeys = append(scan.objectKeys, obj.Key)
		n++
	}
	return n
}

// secretsMailbox is an SMTP server on loopback that takes AUTH PLAIN with
// the one password, answers the first attempt with a temporary failure
// that quotes the credentials, and keeps the messages it accepts.
type secretsMailbox struct {
	addr     string
	password string

	mu       sync.Mutex
	attempts int
	authOK   int
	msgs     [][]byte
}

func startSecretsMailbox(t *testing.T, password string) *secretsMailbox {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &secretsMailbox{addr: l.Addr().String(), password: password}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &secretsSession{m: m}, nil }))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true // loopback; Bulwark sends the password without TLS only to localhost
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return m
}

// authenticated returns the logins with the right password and all
// attempts.
func (m *secretsMailbox) authenticated() (ok, attempts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.authOK, m.attempts
}

func (m *secretsMailbox) messages() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Join(m.msgs, []byte("\n"))
}

type secretsSession struct {
	m      *secretsMailbox
	authed bool
}

func (s *secretsSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *secretsSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s.m.mu.Lock()
		defer s.m.mu.Unlock()
		s.m.attempts++
		if s.m.attempts == 1 {
			// A careless server that quotes what it was sent.
			return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
				Message: fmt.Sprintf("Temporary authentication failure for %s:%s", user, pass)}
		}
		if user != "bulwark" || pass != s.m.password {
			return smtp.ErrAuthFailed
		}
		s.m.authOK++
		s.authed = true
		return nil
	}), nil
}

func (s *secretsSession) Mail(string, *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	return nil
}

func (s *secretsSession) Rcpt(string, *smtp.RcptOptions) error { return nil }

func (s *secretsSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.m.msgs = append(s.m.msgs, b)
	return nil
}

func (s *secretsSession) Reset()        {}
func (s *secretsSession) Logout() error { return nil }

// secretsWebhook receives notifications at /hooks/<token>. The first
// request gets a 503 whose text echoes the path, token and all, as many
// servers and proxies do: Bulwark must not carry that text into its errors
// verbatim.
type secretsWebhook struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	ok       int
	received [][]byte
}

func newSecretsWebhook(token string) *secretsWebhook {
	h := &secretsWebhook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.requests++
		h.received = append(h.received, body)
		if h.requests == 1 {
			http.Error(w, "upstream unavailable for POST "+r.URL.Path, http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/hooks/"+token {
			http.Error(w, "unknown hook", http.StatusNotFound)
			return
		}
		h.ok++
		w.WriteHeader(http.StatusNoContent)
	}))
	return h
}

// delivered returns the deliveries to the right path and all requests.
func (h *secretsWebhook) delivered() (ok, requests int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok, h.requests
}

func (h *secretsWebhook) bodies() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Join(h.received, []byte("\n"))
}
