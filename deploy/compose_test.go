package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwark-dr/bulwark/config"
)

// Paths of the files under test, relative to this package's directory.
const (
	composePath    = "../docker-compose.yml"
	envExamplePath = "../.env.example"
	configPath     = "bulwark.yaml"
	repoRoot       = ".."
)

// The worker service, and the label that marks one-shot jobs.
const (
	workerService = "bulwark-worker"
	roleLabel     = "dr.bulwark.role"
	roleInit      = "init"
)

// composeFile is the part of the Compose file the tests read. Fields accept
// both of Compose's spellings (map or list, string or list) so that a
// rewrite in the other style is still checked.
type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       any          `yaml:"build"`
	Command     stringOrList `yaml:"command"`
	Environment keyValues    `yaml:"environment"`
	Labels      keyValues    `yaml:"labels"`
	Volumes     []mount      `yaml:"volumes"`
	DependsOn   dependsOn    `yaml:"depends_on"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Restart     string       `yaml:"restart"`
}

type healthcheck struct {
	Test    stringOrList `yaml:"test"`
	Disable bool         `yaml:"disable"`
}

// stringOrList is a command written as a string or as a list.
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = stringOrList{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// keyValues is environment or labels: a map, or a list of KEY=VALUE.
type keyValues map[string]string

func (kv *keyValues) UnmarshalYAML(n *yaml.Node) error {
	out := keyValues{}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			k, v, _ := strings.Cut(c.Value, "=")
			out[k] = v
		}
	default:
		return fmt.Errorf("line %d: expected a map or a list", n.Line)
	}
	*kv = out
	return nil
}

// mount is one entry of a service's volumes, short or long syntax.
type mount struct {
	Source, Target string
	ReadOnly       bool
}

func (m *mount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		switch len(parts) {
		case 1:
			m.Target = parts[0]
		default:
			m.Source, m.Target = parts[0], parts[1]
			m.ReadOnly = len(parts) > 2 && slices.Contains(strings.Split(parts[2], ","), "ro")
		}
		return nil
	}
	var long struct {
		Source   string `yaml:"source"`
		Target   string `yaml:"target"`
		ReadOnly bool   `yaml:"read_only"`
	}
	if err := n.Decode(&long); err != nil {
		return err
	}
	m.Source, m.Target, m.ReadOnly = long.Source, long.Target, long.ReadOnly
	return nil
}

// dependsOn maps each dependency to its condition (service_started when the
// short list form is used).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	out := dependsOn{}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			out[c.Value] = "service_started"
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var dep struct {
				Condition string `yaml:"condition"`
			}
			if err := n.Content[i+1].Decode(&dep); err != nil {
				return err
			}
			if dep.Condition == "" {
				dep.Condition = "service_started"
			}
			out[n.Content[i].Value] = dep.Condition
		}
	default:
		return fmt.Errorf("line %d: expected a map or a list", n.Line)
	}
	*d = out
	return nil
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	data, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	if len(c.Services) == 0 {
		t.Fatalf("%s names no services", composePath)
	}
	return &c
}

// names returns the service names in order, for stable messages.
func (c *composeFile) names() []string {
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func TestEveryServiceHasAHealthcheck(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.names() {
		h := c.Services[name].Healthcheck
		switch {
		case h == nil:
			t.Errorf("service %s has no healthcheck", name)
		case h.Disable:
			t.Errorf("service %s disables its healthcheck", name)
		case len(h.Test) == 0 || strings.TrimSpace(strings.Join(h.Test, "")) == "":
			t.Errorf("service %s: healthcheck has no test", name)
		case h.Test[0] == "NONE":
			t.Errorf("service %s: healthcheck test NONE turns the check off", name)
		case len(h.Test) > 1 && h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL":
			t.Errorf("service %s: healthcheck test %q must start with CMD or CMD-SHELL", name, h.Test)
		case len(h.Test) == 1 && (h.Test[0] == "CMD" || h.Test[0] == "CMD-SHELL"):
			t.Errorf("service %s: healthcheck test %q names no command", name, h.Test)
		}
	}
}

func TestImagesArePinned(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.names() {
		s := c.Services[name]
		if s.Image == "" {
			if s.Build == nil {
				t.Errorf("service %s has neither image nor build", name)
			}
			continue
		}
		if err := checkPinned(s.Image); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{} // ARG defaults, which FROM lines may use
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 2 && strings.EqualFold(fields[0], "ARG") {
			if k, v, ok := strings.Cut(fields[1], "="); ok {
				args[k] = v
			}
		}
		if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") {
			continue
		}
		ref := fields[1]
		for _, f := range fields[1:] {
			if !strings.HasPrefix(f, "--") {
				ref = f
				break
			}
		}
		ref = os.Expand(ref, func(k string) string {
			if v, ok := args[k]; ok {
				return v
			}
			return "${" + k + "}" // no default: checkPinned rejects it
		})
		if err := checkPinned(ref); err != nil {
			t.Errorf("Dockerfile %s: %v", strings.TrimSpace(line), err)
		}
	}
}

// checkPinned accepts an image reference with a tag other than latest, or a
// digest, written literally.
func checkPinned(ref string) error {
	if strings.Contains(ref, "$") {
		return fmt.Errorf("image %q is interpolated; write the tag in the file so that it says what runs", ref)
	}
	if strings.Contains(ref, "@sha256:") {
		return nil
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		return fmt.Errorf("image %q has no tag: pin a version", ref)
	case tag == "latest":
		return fmt.Errorf("image %q uses :latest: pin a version", ref)
	}
	return nil
}

// secretKey matches environment variable names whose values are secrets.
var secretKey = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|_PWD$|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY|API_KEY)`)

// requiredRef is a whole value that is a required variable reference,
// ${NAME:?message} or ${NAME?message}: compose fails when NAME is unset, and
// no fallback value is written in the file.
var requiredRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$`)

func TestNoLiteralSecrets(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.names() {
		env := c.Services[name].Environment
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if secretKey.MatchString(k) && !requiredRef.MatchString(env[k]) {
				t.Errorf("service %s: %s = %q: a secret must be a required reference such as ${BULWARK_X:?set it in .env}, never a value or a default", name, k, env[k])
			}
		}
	}
}

// varRef finds ${NAME…} references; group 2 is "?" or ":?" when required.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?\?|:?-)?[^}]*\}`)

// requiredVars returns the variables the compose file requires, outside
// comment lines.
func requiredVars(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(composePath)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			text.WriteString(line + "\n")
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(text.String(), -1) {
		if strings.Contains(m[2], "?") && !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatalf("%s requires no variable: where do its secrets come from?", composePath)
	}
	return out
}

// readEnvFile parses KEY=VALUE lines, skipping blanks and comments.
func readEnvFile(t *testing.T, p string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", p, line)
		}
		out[k] = v
	}
	return out
}

func TestEnvExampleListsEveryRequiredVariable(t *testing.T) {
	example := readEnvFile(t, envExamplePath)
	for _, v := range requiredVars(t) {
		value, ok := example[v]
		if !ok {
			t.Errorf("%s is required by %s but missing from %s", v, composePath, envExamplePath)
			continue
		}
		if !strings.HasPrefix(value, "change-me") {
			t.Errorf("%s: %s=%q: the example holds placeholders only (change-me…)", envExamplePath, v, value)
		}
	}
	for k, v := range example {
		if secretKey.MatchString(k) && !strings.HasPrefix(v, "change-me") {
			t.Errorf("%s: %s=%q looks like a real secret; use a change-me placeholder", envExamplePath, k, v)
		}
	}
}

func TestWorkerMountsTheConfig(t *testing.T) {
	c := loadCompose(t)
	w, ok := c.Services[workerService]
	if !ok {
		t.Fatalf("%s has no %s service", composePath, workerService)
	}
	i := slices.Index(w.Command, "--config")
	if i < 0 || i+1 >= len(w.Command) {
		t.Fatalf("%s command %q does not pass --config", workerService, w.Command)
	}
	target := w.Command[i+1]
	for _, m := range w.Volumes {
		if m.Target != target {
			continue
		}
		if path.Clean(m.Source) != "deploy/bulwark.yaml" {
			t.Errorf("%s mounts %s at %s; want ./deploy/bulwark.yaml", workerService, m.Source, target)
		}
		if !m.ReadOnly {
			t.Errorf("%s mounts its config %s read-write; add :ro", workerService, target)
		}
		return
	}
	t.Errorf("%s runs with --config %s but mounts nothing there", workerService, target)
}

func TestDependenciesAndOneShots(t *testing.T) {
	c := loadCompose(t)
	adoptedBy := map[string][]string{} // one-shot → long-running services that wait for it
	for _, name := range c.names() {
		s := c.Services[name]
		for dep, cond := range s.DependsOn {
			target, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s depends on %s, which is not a service", name, dep)
				continue
			}
			switch cond {
			case "service_healthy":
				if target.Labels[roleLabel] == roleInit {
					t.Errorf("service %s waits for one-shot %s to be healthy; wait for service_completed_successfully", name, dep)
				}
			case "service_completed_successfully":
				if target.Labels[roleLabel] != roleInit {
					t.Errorf("service %s waits for %s to complete, but %s is not labelled %s=%s", name, dep, dep, roleLabel, roleInit)
				}
				if s.Labels[roleLabel] != roleInit {
					adoptedBy[dep] = append(adoptedBy[dep], name)
				}
			default:
				t.Errorf("service %s depends on %s with condition %q; use service_healthy (or service_completed_successfully for a one-shot)", name, dep, cond)
			}
		}
	}
	for _, name := range c.names() {
		s := c.Services[name]
		if s.Labels[roleLabel] != roleInit {
			continue
		}
		// `docker compose up --wait` fails on an exited container unless a
		// running service waits for it to complete.
		if len(adoptedBy[name]) == 0 {
			t.Errorf("one-shot %s is not awaited (service_completed_successfully) by any long-running service", name)
		}
		if s.Restart == "always" || s.Restart == "unless-stopped" {
			t.Errorf("one-shot %s has restart: %s; it would run forever", name, s.Restart)
		}
	}
}

func TestMountedFilesExist(t *testing.T) {
	c := loadCompose(t)
	for _, name := range c.names() {
		for _, m := range c.Services[name].Volumes {
			if !strings.HasPrefix(m.Source, ".") && !strings.HasPrefix(m.Source, "/") {
				if m.Source != "" {
					if _, ok := c.Volumes[m.Source]; !ok {
						t.Errorf("service %s mounts volume %s, which is not declared under volumes:", name, m.Source)
					}
				}
				continue
			}
			p := filepath.Join(repoRoot, filepath.FromSlash(m.Source))
			fi, err := os.Stat(p)
			if err != nil {
				t.Errorf("service %s mounts %s: %v", name, m.Source, err)
				continue
			}
			if !m.ReadOnly {
				t.Errorf("service %s mounts %s from the repository read-write; add :ro", name, m.Source)
			}
			if fi.IsDir() && !strings.HasPrefix(filepath.ToSlash(m.Source), "./deploy/") {
				checkScripts(t, p)
			}
		}
	}
	checkScripts(t, ".") // everything under deploy/
}

// setE matches a `set -e` (or -eu, -euo …) line.
var setE = regexp.MustCompile(`(?m)^set -[a-z]*e`)

// checkScripts requires every shell script under dir to be executable and
// to stop on errors.
func checkScripts(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".sh") {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable (chmod +x): gvenzl's entrypoint would source it into its own shell", p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !setE.Match(data) {
			t.Errorf("%s does not `set -e`: a failing step would pass unnoticed", p)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestBulwarkConfig checks deploy/bulwark.yaml against the compose file:
// what it names exists there, and it holds no secret.
func TestBulwarkConfig(t *testing.T) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", configPath, err)
	}
	checkNoSecretKeys(t, &doc, "")

	var cfg struct {
		Temporal struct {
			Address string `yaml:"address"`
		} `yaml:"temporal"`
		Destinations []struct {
			Name string `yaml:"name"`
			URL  string `yaml:"url"`
		} `yaml:"destinations"`
		Keeper     string `yaml:"keeper"`
		ScratchDir string `yaml:"scratch_dir"`
		Metrics    struct {
			Listen string `yaml:"listen"`
		} `yaml:"metrics"`
		Databases []struct {
			Name   string `yaml:"name"`
			Engine string `yaml:"engine"`
			Path   string `yaml:"path"`
			Oracle struct {
				Host        string `yaml:"host"`
				PasswordEnv string `yaml:"password_env"`
			} `yaml:"oracle"`
		} `yaml:"databases"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", configPath, err)
	}
	c := loadCompose(t)
	worker := c.Services[workerService]

	// Hosts the config names are services of the cluster.
	service := func(field, hostport string) {
		host := hostport
		if h, _, ok := strings.Cut(hostport, ":"); ok {
			host = h
		}
		if _, ok := c.Services[host]; !ok {
			t.Errorf("%s: %s names host %q, which is not a service of %s", configPath, field, host, composePath)
		}
	}
	service("temporal.address", cfg.Temporal.Address)

	// volumeOf returns the worker's named volume holding p ("" if none).
	volumeOf := func(p string) string {
		best, vol := "", ""
		for _, m := range worker.Volumes {
			if strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/") {
				continue
			}
			if (p == m.Target || strings.HasPrefix(p, m.Target+"/")) && len(m.Target) > len(best) {
				best, vol = m.Target, m.Source
			}
		}
		return vol
	}
	persistent := func(field, p string) string {
		v := volumeOf(p)
		if v == "" {
			t.Errorf("%s: %s %s is on no volume of %s: it would vanish with the container", configPath, field, p, workerService)
		}
		return v
	}

	keyVolume := ""
	if u, err := url.Parse(cfg.Keeper); err == nil && u.Scheme == "keyfile" {
		keyVolume = persistent("keeper", u.Path)
	}
	persistent("scratch_dir", cfg.ScratchDir)
	sawS3 := false
	for _, d := range cfg.Destinations {
		u, err := url.Parse(d.URL)
		if err != nil {
			t.Errorf("%s: destination %s: %v", configPath, d.Name, err)
			continue
		}
		switch u.Scheme {
		case "file":
			if v := persistent("destination "+d.Name, u.Path); v != "" && v == keyVolume {
				t.Errorf("%s: the key file and destination %s share volume %s: whoever holds the backups would hold the key", configPath, d.Name, v)
			}
		case "s3":
			sawS3 = true
			if bucket := c.Services["minio-init"].Environment["BULWARK_BUCKET"]; u.Host != bucket {
				t.Errorf("%s: destination %s uses bucket %q; minio-init creates %q", configPath, d.Name, u.Host, bucket)
			}
			if e, err := url.Parse(u.Query().Get("endpoint")); err != nil || e.Host == "" {
				t.Errorf("%s: destination %s has no endpoint", configPath, d.Name)
			} else {
				service("destination "+d.Name+" endpoint", e.Host)
			}
			for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
				if worker.Environment[k] == "" {
					t.Errorf("%s: destination %s is on S3 but %s sets no %s", configPath, d.Name, workerService, k)
				}
			}
		}
	}
	if !sawS3 {
		t.Errorf("%s has no s3:// destination on MinIO", configPath)
	}
	if _, port, ok := strings.Cut(cfg.Metrics.Listen, ":"); !ok || !strings.Contains(strings.Join(worker.Healthcheck.Test, " "), ":"+port+"/metrics") {
		t.Errorf("%s: metrics.listen %q is not what the %s healthcheck reads", configPath, cfg.Metrics.Listen, workerService)
	}
	for _, db := range cfg.Databases {
		switch db.Engine {
		case "", "sqlite":
			persistent("database "+db.Name, db.Path)
		case "oracle":
			service("database "+db.Name+" oracle.host", db.Oracle.Host)
			if env := db.Oracle.PasswordEnv; env == "" || worker.Environment[env] == "" {
				t.Errorf("%s: database %s reads its password from %q, which %s does not set", configPath, db.Name, env, workerService)
			}
		}
	}
}

// checkNoSecretKeys fails on any setting that would hold a secret itself
// rather than name the variable or file that holds it (password_env,
// url_env, password_file).
func checkNoSecretKeys(t *testing.T, n *yaml.Node, at string) {
	t.Helper()
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			checkNoSecretKeys(t, c, at)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if secretKey.MatchString(strings.ToUpper(k)) && !strings.HasSuffix(k, "_env") && !strings.HasSuffix(k, "_file") {
				t.Errorf("%s line %d: %s%s holds a secret; name an environment variable with %s_env instead", configPath, n.Content[i].Line, at, k, k)
			}
			checkNoSecretKeys(t, n.Content[i+1], at+k+".")
		}
	}
}

// TestBulwarkConfigParses runs the config's own validation on
// deploy/bulwark.yaml, Oracle database included.
func TestBulwarkConfigParses(t *testing.T) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(configPath, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Destinations) < 2 || cfg.Destinations[1].ObjectLock.Mode == "" {
		t.Errorf("want a primary and a locked secondary, got %+v", cfg.Destinations)
	}
	oracle := 0
	for _, d := range cfg.Databases {
		if d.IsOracle() {
			oracle++
			if d.Oracle.PasswordEnv == "" || d.Oracle.DataPumpDirectory == "" {
				t.Errorf("oracle database %s: %+v", d.Name, d.Oracle)
			}
		}
	}
	if oracle != 1 {
		t.Errorf("%d Oracle databases in %s, want 1", oracle, configPath)
	}
}

// composeCommands returns the Compose implementations installed here:
// docker-compose (v1, Debian's package, or v2 standalone) and the docker
// compose plugin. With none, the test is skipped, unless
// BULWARK_REQUIRE_DOCKER_COMPOSE is set (CI installs docker-compose).
func composeCommands(t *testing.T) [][]string {
	t.Helper()
	var cmds [][]string
	if p, err := exec.LookPath("docker-compose"); err == nil {
		cmds = append(cmds, []string{p})
	}
	if p, err := exec.LookPath("docker"); err == nil {
		if exec.Command(p, "compose", "version").Run() == nil {
			cmds = append(cmds, []string{p, "compose"})
		}
	}
	if len(cmds) == 0 {
		if os.Getenv("BULWARK_REQUIRE_DOCKER_COMPOSE") != "" {
			t.Fatal("docker-compose is required (BULWARK_REQUIRE_DOCKER_COMPOSE is set) but neither docker-compose nor `docker compose` is installed; apt-get install docker-compose")
		}
		t.Skip("neither docker-compose nor `docker compose` is installed (apt-get install docker-compose)")
	}
	return cmds
}

// runCompose runs `compose --env-file envFile -f docker-compose.yml args…`
// in the repository root, with no BULWARK_* or COMPOSE_* variable of the
// caller's environment, so that only envFile supplies them.
func runCompose(t *testing.T, compose []string, envFile string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(slices.Clone(compose[1:]), "--env-file", envFile, "-f", "docker-compose.yml")
	cmd := exec.CommandContext(ctx, compose[0], append(argv, args...)...)
	cmd.Dir = repoRoot
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BULWARK_") && !strings.HasPrefix(kv, "COMPOSE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func TestComposeConfigValidates(t *testing.T) {
	cmds := composeCommands(t)
	dir := t.TempDir()
	envFile := filepath.Join(dir, "test.env")
	var b strings.Builder
	b.WriteString("COMPOSE_PROJECT_NAME=bulwark-test\n")
	for _, v := range requiredVars(t) {
		fmt.Fprintf(&b, "%s=test-value-of-%s\n", v, strings.ToLower(v))
	}
	if err := os.WriteFile(envFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, compose := range cmds {
		name := strings.Join(compose, " ")
		t.Run(filepath.Base(name), func(t *testing.T) {
			version, _ := exec.Command(compose[0], append(slices.Clone(compose[1:]), "version")...).CombinedOutput()
			t.Logf("%s: %s", name, strings.SplitN(strings.TrimSpace(string(version)), "\n", 2)[0])
			if out, err := runCompose(t, compose, envFile, "config", "-q"); err != nil {
				t.Fatalf("%s config -q: %v\n%s", name, err, out)
			}
			out, err := runCompose(t, compose, envFile, "config")
			if err != nil {
				t.Fatalf("%s config: %v\n%s", name, err, out)
			}
			// The env file's values reach the services: the interpolation
			// works in this Compose version.
			if !strings.Contains(out, "test-value-of-bulwark_s3_secret_key") {
				t.Errorf("%s config: BULWARK_S3_SECRET_KEY from the env file does not appear in the resolved file:\n%s", name, out)
			}
			// Without them compose refuses to start, naming what is missing.
			out, err = runCompose(t, compose, empty, "config", "-q")
			if err == nil {
				t.Fatalf("%s config succeeded without the required variables; a secret would default to empty", name)
			}
			if !strings.Contains(out, "BULWARK_") {
				t.Errorf("%s config failed without naming the missing variable:\n%s", name, out)
			}
		})
	}
}
