// Package config reads Bulwark's YAML configuration. Only the commands
// (workers/, starter/) use it; library packages take plain values.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	// Temporal connection defaults; flags, TEMPORAL_* variables and
	// envconfig profiles take precedence.
	Temporal Temporal `yaml:"temporal"`
	// Host is the default host of databases that name none: the worker on
	// that host owns their files. Default: this machine's hostname.
	Host string `yaml:"host"`
	// Destination is where backups are stored: a gocloud.dev blob URL
	// (file:///backups, s3://bucket?region=…) or a plain directory path.
	// It is the shorthand for a single primary destination; after loading
	// it always holds the primary's URL.
	Destination string `yaml:"destination"`
	// Destinations are the places of the 3-2-1 rule: one primary (backups
	// are written there) and secondaries and tertiaries that receive
	// verified copies, each with its own retention and immutability.
	Destinations []Destination `yaml:"destinations"`
	// Keeper wraps the per-backup data keys: keyfile:///path (created on
	// first run with mode 0600) or a gocloud.dev secrets URL (awskms://…).
	Keeper string `yaml:"keeper"`
	// Compression: zstd (default: zstd's fastest level for full backups, its
	// default level for incrementals and differentials, which hold few
	// pages), zstd-better or zstd-best for every backup.
	Compression string     `yaml:"compression"`
	Databases   []Database `yaml:"databases"`
	Restore     Restore    `yaml:"restore"`
	// Limits bound bandwidth to and from the destination.
	Limits Limits `yaml:"limits"`
	// ScratchDir holds images rebuilt during verification. Default: the
	// system temp directory.
	ScratchDir string `yaml:"scratch_dir"`
	// TimeZone is the IANA zone schedules are read in (default UTC).
	TimeZone string `yaml:"timezone"`
	// Schedules become Temporal Schedules (`bulwark schedules apply`).
	Schedules []Schedule `yaml:"schedules"`
	// Notifications say who hears of failures, RPO breaches, DR steps and
	// drill results, and how.
	Notifications Notifications `yaml:"notifications"`
	// Metrics: each worker serves Prometheus metrics on Listen
	// (host:port; empty: off).
	Metrics struct {
		Listen string `yaml:"listen"`
	} `yaml:"metrics"`

	// Dir is the directory of the config file; relative paths resolve
	// against it.
	Dir string `yaml:"-"`
	// Path is where the config was read from.
	Path string `yaml:"-"`
}

// Limits bound bandwidth per worker, in bytes per second (0: unlimited).
type Limits struct {
	Upload   ByteSize `yaml:"upload"`
	Download ByteSize `yaml:"download"`
}

// ByteSize is a size written as 512KiB, 8MiB, 1GiB, 10MB or a plain number.
type ByteSize int64

// UnmarshalYAML parses a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return &valueError{line: n.Line, msg: err.Error()}
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize parses sizes such as 8MiB, 500KB or 1048576.
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) || v*float64(mult) >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a size such as 512KiB, 8MiB or 1GiB", s)
	}
	return int64(v * float64(mult)), nil
}

// Schedule is one recurring backup pipeline run: backup (verified and
// replicated), then cleanup.
type Schedule struct {
	Name     string `yaml:"name"`
	Database string `yaml:"database"`
	// Type is the backup type: full, incremental or differential.
	Type string `yaml:"type"`
	// Cron is a five-field cron expression (minute hour day-of-month month
	// day-of-week) in the config's timezone: "0 2 * * *" is 02:00 daily.
	Cron string `yaml:"cron"`
	// Overlap says what happens when a run is due while the previous one
	// still runs: skip (default), buffer_one, buffer_all, cancel_other,
	// terminate_other or allow_all.
	Overlap string `yaml:"overlap"`
	// CatchupWindow is how late a run missed while the server was down may
	// still start (default 1h).
	CatchupWindow Duration `yaml:"catchup_window"`
	// Cleanup applies retention after the backup (default true).
	Cleanup *bool `yaml:"cleanup"`
	// Paused schedules exist but do not fire.
	Paused bool `yaml:"paused"`
}

// CleanupAfter reports whether the pipeline applies retention.
func (s Schedule) CleanupAfter() bool { return s.Cleanup == nil || *s.Cleanup }

// Notifications are channels and the event kinds routed to each.
type Notifications struct {
	Channels []Channel `yaml:"channels"`
	// Routes maps an event kind (failure, rpo_breach, dr_step,
	// drill_result, test, or * for all) to channel names.
	Routes map[string][]string `yaml:"routes"`
}

// Channel is one notification channel: a webhook or an SMTP server.
type Channel struct {
	Name    string   `yaml:"name"`
	Webhook *Webhook `yaml:"webhook"`
	SMTP    *SMTP    `yaml:"smtp"`
}

// Webhook posts JSON. A URL that carries a token is a secret: give it in
// the environment variable named by url_env rather than in this file.
type Webhook struct {
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
	Format string `yaml:"format"` // json (default) or slack
}

// SMTP sends email; the password comes from the variable password_env.
type SMTP struct {
	Addr        string   `yaml:"addr"`
	From        string   `yaml:"from"`
	To          []string `yaml:"to"`
	Username    string   `yaml:"username"`
	PasswordEnv string   `yaml:"password_env"`
	RequireTLS  bool     `yaml:"require_tls"`
}

// NotificationKinds are the event kinds routes may name.
var NotificationKinds = []string{"failure", "rpo_breach", "dr_step", "drill_result", "test", "*"}

// Destination roles, in replication order.
const (
	RolePrimary   = "primary"
	RoleSecondary = "secondary"
	RoleTertiary  = "tertiary"
)

// Destination is one place backups are kept.
type Destination struct {
	Name string `yaml:"name"`
	// URL is a gocloud.dev blob URL or a plain directory.
	URL  string `yaml:"url"`
	Role string `yaml:"role"`
	// Retention is the grandfather-father-son policy cleanup applies here.
	// An empty policy keeps everything (cleanup skips the destination).
	Retention Retention `yaml:"retention"`
	// ObjectLock makes objects write-once (S3 Object Lock) for a period.
	ObjectLock ObjectLock `yaml:"object_lock"`
}

// Retention is a keep policy; see package retention for the rules.
type Retention struct {
	KeepLast    int      `yaml:"keep_last"`
	KeepWithin  Duration `yaml:"keep_within"`
	KeepDaily   int      `yaml:"keep_daily"`
	KeepWeekly  int      `yaml:"keep_weekly"`
	KeepMonthly int      `yaml:"keep_monthly"`
	KeepYearly  int      `yaml:"keep_yearly"`
}

// Empty reports whether the policy sets no rule at all.
func (r Retention) Empty() bool { return r == Retention{} }

// ObjectLock is S3 Object Lock: mode governance or compliance, for a period
// from the time each object is written.
type ObjectLock struct {
	Mode   string   `yaml:"mode"`
	Period Duration `yaml:"period"`
}

// Primary returns the destination backups are written to.
func (c *Config) Primary() Destination {
	for _, d := range c.Destinations {
		if d.Role == RolePrimary {
			return d
		}
	}
	return Destination{}
}

// DestinationNamed returns the destination called name.
func (c *Config) DestinationNamed(name string) (Destination, error) {
	names := make([]string, 0, len(c.Destinations))
	for _, d := range c.Destinations {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return Destination{}, fmt.Errorf("destination %q is not in %s (configured: %s)", name, c.Path, strings.Join(names, ", "))
}

// Temporal holds connection defaults.
type Temporal struct {
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
}

// Database is one SQLite database to protect.
type Database struct {
	Name string `yaml:"name"`
	// Engine is sqlite (the default) or oracle.
	Engine string `yaml:"engine"`
	Path   string `yaml:"path"`
	Host   string `yaml:"host"`
	Verify *bool  `yaml:"verify_after_backup"`
	// Oracle says how to reach an Oracle database (engine: oracle).
	Oracle *Oracle `yaml:"oracle"`
	// RPO is the recovery point objective: scheduled runs alert when the
	// newest verified backup is older (0: no check).
	RPO Duration `yaml:"rpo"`
	// Drill is the scheduled restore test of this database.
	Drill *Drill `yaml:"drill"`
}

// Engines.
const (
	EngineSQLite = "sqlite"
	EngineOracle = "oracle"
)

// Oracle is the connection and scope of an Oracle database's backups. The
// password is read by the worker from the environment variable PasswordEnv
// or the file PasswordFile; it is never written in the config.
type Oracle struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	Service      string `yaml:"service"`
	User         string `yaml:"user"`
	Password     string `yaml:"password"` // refused: see PasswordEnv
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// Schema to back up (default: the user's); Tables limits the backup to
	// some tables (their schema's code, views and sequences come along).
	Schema string   `yaml:"schema"`
	Tables []string `yaml:"tables"`
	// DataPumpDirectory is the Oracle DIRECTORY object a Data Pump export
	// is written to and read back from (empty: no Data Pump export).
	DataPumpDirectory string `yaml:"datapump_directory"`
	// RMANPath is the rman program on a worker that runs on the database
	// host ("" looks on PATH; RMAN backups are skipped, with a note, where
	// there is none).
	RMANPath string `yaml:"rman_path"`
}

// IsOracle reports whether d is an Oracle database.
func (d Database) IsOracle() bool { return d.Engine == EngineOracle }

// Drill restores a backup to scratch on a schedule and checks it: SQLite's
// integrity checks and the application's queries (read-only SELECTs that
// must return a row).
type Drill struct {
	Cron    string   `yaml:"cron"`
	Backup  string   `yaml:"backup"` // latest (default), an id or a time
	Queries []string `yaml:"queries"`
}

// VerifyAfterBackup reports whether backups of d are verified right away
// (the default).
func (d Database) VerifyAfterBackup() bool { return d.Verify == nil || *d.Verify }

// Restore holds restore settings.
type Restore struct {
	// ApprovalTimeout bounds how long a restore that would replace a file
	// waits for approval.
	ApprovalTimeout Duration `yaml:"approval_timeout"`
}

// Duration is a time.Duration written as "24h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string, or a whole number of days or
// weeks (90d, 4w): retention and lock periods are counted in days.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &valueError{line: n.Line, msg: err.Error()}
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses 30m, 24h, 90d or 4w.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			if v, err := strconv.Atoi(n); err == nil && v >= 0 && v <= 100*366 {
				return time.Duration(v) * unit, nil
			}
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30m, 24h or 90d", s)
	}
	return v, nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// valueError is a value that does not parse, at a line of the file; Parse
// turns it into an Error naming the setting.
type valueError struct {
	line int
	msg  string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// fieldAtLine returns the dotted path (databases[0].path) of the scalar
// value on line in a YAML document, or "" when there is none.
func fieldAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if f := fieldAtLine(c, line, prefix); f != "" {
				return f
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			path := key
			if prefix != "" {
				path = prefix + "." + key
			}
			if val.Kind == yaml.ScalarNode && val.Line == line {
				return path
			}
			if f := fieldAtLine(val, line, path); f != "" {
				return f
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if f := fieldAtLine(c, line, fmt.Sprintf("%s[%d]", prefix, i)); f != "" {
				return f
			}
		}
	}
	return ""
}

// Error is a configuration problem: the field, what is wrong and the fix.
type Error struct {
	File  string
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("config %s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("config %s: %s: %s", e.File, e.Field, e.Msg)
}

// Load reads and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &Error{File: path, Msg: "file does not exist; create one with `bulwark init` or pass --config"}
	}
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return Parse(path, data)
}

// Parse decodes and validates a config; path is used for messages and to
// resolve relative paths.
func Parse(path string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			var root yaml.Node
			_ = yaml.Unmarshal(data, &root)
			return nil, &Error{File: path, Field: fieldAtLine(&root, ve.line, ""), Msg: fmt.Sprintf("line %d: %s", ve.line, ve.msg)}
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if strings.Contains(msg, "not found in type") {
			msg += " (unknown setting: check its spelling against the README's config example)"
		}
		return nil, &Error{File: path, Msg: msg}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	c.Path, c.Dir = abs, filepath.Dir(abs)
	if err := c.normalize(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) fail(field, format string, args ...any) error {
	return &Error{File: c.Path, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (c *Config) normalize() error {
	if c.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return c.fail("host", "not set and the hostname is unknown (%v); set host: to this machine's name", err)
		}
		c.Host = h
	}
	if err := c.normalizeDestinations(); err != nil {
		return err
	}
	if c.Keeper == "" {
		return c.fail("keeper", "missing; set it to keyfile:///path/to/bulwark.key (created on first run) or a KMS URL such as awskms://alias/bulwark")
	}
	if err := c.checkKeeper(); err != nil {
		return err
	}
	switch c.Compression {
	case "", "zstd", "zstd-better", "zstd-best":
	default:
		return c.fail("compression", "%q is not one of zstd (fastest, the default), zstd-better, zstd-best", c.Compression)
	}
	if c.ScratchDir != "" {
		c.ScratchDir = c.abs(c.ScratchDir)
	}
	seen := map[string]bool{}
	for i := range c.Databases {
		d := &c.Databases[i]
		field := fmt.Sprintf("databases[%d]", i)
		if d.Name == "" {
			return c.fail(field+".name", "missing; give each database a short name such as finance")
		}
		if !namePattern.MatchString(d.Name) {
			return c.fail(field+".name", "%q must be 1-63 characters of a-z, 0-9, '-' or '_' (it becomes part of object keys); for example %q", d.Name, suggestName(d.Name))
		}
		if seen[d.Name] {
			return c.fail(field+".name", "%q is used twice; database names must be unique", d.Name)
		}
		seen[d.Name] = true
		switch d.Engine {
		case "", EngineSQLite:
			d.Engine = EngineSQLite
			if d.Oracle != nil {
				return c.fail(field+".oracle", "set for a SQLite database; add engine: oracle")
			}
		case EngineOracle:
			if err := c.normalizeOracle(field, d); err != nil {
				return err
			}
			if d.Host == "" {
				d.Host = c.Host
			}
			continue
		default:
			return c.fail(field+".engine", "%q is not sqlite or oracle", d.Engine)
		}
		if d.Path == "" {
			return c.fail(field+".path", "missing; set it to the SQLite file of %s", d.Name)
		}
		d.Path = c.abs(d.Path)
		if d.Host == "" {
			d.Host = c.Host
		}
	}
	for i, d := range c.Databases {
		if d.Drill == nil {
			continue
		}
		field := fmt.Sprintf("databases[%d].drill", i)
		if d.IsOracle() {
			return c.fail(field, "drills restore SQLite files; an Oracle backup is checked by verify (row counts and digests of every table) and restored with `bulwark oracle restore`")
		}
		if err := checkCron(d.Drill.Cron); err != nil {
			return c.fail(field+".cron", "%v", err)
		}
		if len(d.Drill.Queries) > 20 {
			return c.fail(field+".queries", "%d queries; at most 20", len(d.Drill.Queries))
		}
		for j, q := range d.Drill.Queries {
			if strings.TrimSpace(q) == "" || len(q) > 4000 {
				return c.fail(fmt.Sprintf("%s.queries[%d]", field, j), "must be a SELECT of at most 4000 bytes")
			}
		}
		if d.Drill.Backup == "" {
			c.Databases[i].Drill.Backup = "latest"
		}
	}
	if c.Restore.ApprovalTimeout < 0 {
		return c.fail("restore.approval_timeout", "must not be negative")
	}
	if err := c.normalizeSchedules(); err != nil {
		return err
	}
	if err := c.normalizeNotifications(); err != nil {
		return err
	}
	return nil
}

// normalizeDestinations turns the destination shorthand into a list, checks
// names, roles, retention and locks, and orders the list primary first.
func (c *Config) normalizeDestinations() error {
	switch {
	case c.Destination != "" && len(c.Destinations) > 0:
		return c.fail("destination", "set either destination (one place) or destinations (a list with roles), not both")
	case c.Destination == "" && len(c.Destinations) == 0:
		return c.fail("destination", "missing; set it to a directory (./backups), file:///backups or s3://bucket?region=eu-west-2, or list destinations: with a role each")
	case c.Destination != "":
		c.Destinations = []Destination{{Name: "primary", URL: c.Destination, Role: RolePrimary}}
	}
	seen := map[string]bool{}
	primaries := 0
	for i := range c.Destinations {
		d := &c.Destinations[i]
		field := fmt.Sprintf("destinations[%d]", i)
		if c.Destination != "" {
			field = "destination"
		}
		if d.Name == "" {
			return c.fail(field+".name", "missing; name each destination, for example local, nas or cloud")
		}
		if !namePattern.MatchString(d.Name) {
			return c.fail(field+".name", "%q must be 1-63 characters of a-z, 0-9, '-' or '_'; for example %q", d.Name, suggestName(d.Name))
		}
		if seen[d.Name] {
			return c.fail(field+".name", "%q is used twice; destination names must be unique", d.Name)
		}
		seen[d.Name] = true
		urlField := field + ".url"
		if c.Destination != "" {
			urlField = "destination"
		}
		if d.URL == "" {
			return c.fail(urlField, "missing; set it to a directory, file:///path, s3://bucket?region=… , gs://… or azblob://…")
		}
		u, err := c.destinationURL(d.URL, urlField)
		if err != nil {
			return err
		}
		d.URL = u
		switch d.Role {
		case RolePrimary:
			primaries++
		case RoleSecondary, RoleTertiary:
		case "":
			return c.fail(field+".role", "missing; set it to primary (backups are written there), secondary or tertiary (they receive verified copies)")
		default:
			return c.fail(field+".role", "%q is not one of primary, secondary, tertiary", d.Role)
		}
		r := d.Retention
		for name, v := range map[string]int{"keep_last": r.KeepLast, "keep_daily": r.KeepDaily, "keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly} {
			if v < 0 {
				return c.fail(field+".retention."+name, "must not be negative (0 means the rule is off)")
			}
		}
		if r.KeepWithin < 0 {
			return c.fail(field+".retention.keep_within", "must not be negative")
		}
		switch strings.ToLower(d.ObjectLock.Mode) {
		case "":
			if d.ObjectLock.Period != 0 {
				return c.fail(field+".object_lock.mode", "missing; a lock period needs a mode: governance or compliance")
			}
		case "governance", "compliance":
			d.ObjectLock.Mode = strings.ToLower(d.ObjectLock.Mode)
			if !strings.HasPrefix(d.URL, "s3://") {
				return c.fail(field+".object_lock", "only s3:// destinations can lock objects (S3 Object Lock); %s cannot", strings.SplitN(d.URL, "://", 2)[0]+"://")
			}
			if d.ObjectLock.Period <= 0 {
				return c.fail(field+".object_lock.period", "missing; set how long each object stays locked, such as 90d")
			}
		default:
			return c.fail(field+".object_lock.mode", "%q is not one of governance, compliance", d.ObjectLock.Mode)
		}
	}
	if primaries != 1 {
		return c.fail("destinations", "%d destinations have role primary; exactly one must (backups are written there, then copied to the others)", primaries)
	}
	// Primary first, then secondaries, then tertiaries, each in file order:
	// the order of replication and of fallback reads.
	rank := map[string]int{RolePrimary: 0, RoleSecondary: 1, RoleTertiary: 2}
	sort.SliceStable(c.Destinations, func(i, j int) bool { return rank[c.Destinations[i].Role] < rank[c.Destinations[j].Role] })
	c.Destination = c.Destinations[0].URL
	return nil
}

// normalizeNotifications checks channels and routes. Secrets are only
// named here (environment variables); their values are read by the worker.
func (c *Config) normalizeNotifications() error {
	n := &c.Notifications
	names := map[string]bool{}
	for i, ch := range n.Channels {
		field := fmt.Sprintf("notifications.channels[%d]", i)
		if !namePattern.MatchString(ch.Name) {
			return c.fail(field+".name", "%q must be 1-63 characters of a-z, 0-9, '-' or '_'; for example %q", ch.Name, suggestName(ch.Name))
		}
		if names[ch.Name] {
			return c.fail(field+".name", "%q is used twice; channel names must be unique", ch.Name)
		}
		names[ch.Name] = true
		switch {
		case (ch.Webhook == nil) == (ch.SMTP == nil):
			return c.fail(field, "set exactly one of webhook or smtp")
		case ch.Webhook != nil:
			w := ch.Webhook
			if (w.URL == "") == (w.URLEnv == "") {
				return c.fail(field+".webhook", "set exactly one of url or url_env (the name of an environment variable holding a URL with a token)")
			}
			if w.URL != "" {
				u, err := url.Parse(w.URL)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return c.fail(field+".webhook.url", "is not an http(s) URL")
				}
				if u.User != nil || u.RawQuery != "" {
					return c.fail(field+".webhook.url", "carries credentials or a query (often a token); put the URL in an environment variable and name it in url_env")
				}
			}
			switch w.Format {
			case "":
				w.Format = "json"
			case "json", "slack":
			default:
				return c.fail(field+".webhook.format", "%q is not one of json, slack", w.Format)
			}
		default:
			m := ch.SMTP
			if m.Addr == "" || !strings.Contains(m.Addr, ":") {
				return c.fail(field+".smtp.addr", "missing or without a port; for example smtp.example.com:587")
			}
			if m.From == "" || len(m.To) == 0 {
				return c.fail(field+".smtp", "needs from and at least one address in to")
			}
			if m.Username != "" && m.PasswordEnv == "" {
				return c.fail(field+".smtp.password_env", "missing; name the environment variable that holds %s's password (never the password itself)", m.Username)
			}
		}
	}
	for kind, chans := range n.Routes {
		if !slices.Contains(NotificationKinds, kind) {
			return c.fail("notifications.routes", "%q is not an event kind: use %s", kind, strings.Join(NotificationKinds, ", "))
		}
		for _, name := range chans {
			if !names[name] {
				return c.fail("notifications.routes."+kind, "channel %q is not configured", name)
			}
		}
	}
	return nil
}

var overlapPolicies = []string{"skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other", "allow_all"}

// normalizeSchedules checks the schedules: unique names, a configured
// database, a backup type, a cron expression of five fields in range.
func (c *Config) normalizeSchedules() error {
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return c.fail("timezone", "%q is not an IANA time zone such as UTC or Europe/London", c.TimeZone)
	}
	seen := map[string]bool{}
	for i := range c.Schedules {
		s := &c.Schedules[i]
		field := fmt.Sprintf("schedules[%d]", i)
		if !namePattern.MatchString(s.Name) {
			return c.fail(field+".name", "%q must be 1-63 characters of a-z, 0-9, '-' or '_'; for example %q", s.Name, suggestName(s.Name))
		}
		if seen[s.Name] {
			return c.fail(field+".name", "%q is used twice; schedule names must be unique", s.Name)
		}
		seen[s.Name] = true
		if _, err := c.Database(s.Database); err != nil {
			return c.fail(field+".database", "%q is not a configured database", s.Database)
		}
		switch s.Type {
		case "full", "incremental", "differential":
		case "":
			return c.fail(field+".type", "missing; set it to full, incremental or differential")
		default:
			return c.fail(field+".type", "%q is not one of full, incremental, differential", s.Type)
		}
		if err := checkCron(s.Cron); err != nil {
			return c.fail(field+".cron", "%v", err)
		}
		if s.Overlap == "" {
			s.Overlap = "skip"
		}
		if !slices.Contains(overlapPolicies, s.Overlap) {
			return c.fail(field+".overlap", "%q is not one of %s", s.Overlap, strings.Join(overlapPolicies, ", "))
		}
		if s.CatchupWindow < 0 {
			return c.fail(field+".catchup_window", "must not be negative")
		}
		if s.CatchupWindow == 0 {
			s.CatchupWindow = Duration(time.Hour)
		}
	}
	return nil
}

// checkCron accepts five fields, each *, a number, a range a-b, a list
// a,b,c or a step */n or a-b/n, within the field's range; day-of-week 0-7
// (0 and 7 are Sunday) or sun-sat.
func checkCron(expr string) error {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return fmt.Errorf("%q is not a cron expression of five fields (minute hour day-of-month month day-of-week), such as \"0 2 * * *\" for 02:00 daily", expr)
	}
	names := []string{"minute", "hour", "day of month", "month", "day of week"}
	limits := [][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
	days := strings.NewReplacer("sun", "0", "mon", "1", "tue", "2", "wed", "3", "thu", "4", "fri", "5", "sat", "6")
	for i, f := range fields {
		if i == 4 {
			f = days.Replace(strings.ToLower(f))
		}
		for _, part := range strings.Split(f, ",") {
			rng, step, hasStep := strings.Cut(part, "/")
			if hasStep {
				if n, err := strconv.Atoi(step); err != nil || n < 1 {
					return fmt.Errorf("%s field %q: step %q is not a positive number", names[i], fields[i], step)
				}
			}
			if rng == "*" {
				continue
			}
			lo, hi, isRange := strings.Cut(rng, "-")
			if !isRange {
				hi = lo
			}
			a, errA := strconv.Atoi(lo)
			b, errB := strconv.Atoi(hi)
			if errA != nil || errB != nil || a > b || a < limits[i][0] || b > limits[i][1] {
				return fmt.Errorf("%s field %q: %q is outside %d-%d", names[i], fields[i], rng, limits[i][0], limits[i][1])
			}
		}
	}
	return nil
}

func (c *Config) abs(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[2:])
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(c.Dir, p)
}

// destinationURL turns a directory or URL into a blob URL. file:// URLs get
// create_dir (a first backup needs no manual mkdir), no_tmp_dir (temp files
// next to their objects, so the final rename never crosses devices on a
// mounted share) and metadata=skip (Bulwark's objects describe themselves;
// sidecar files would double the file count).
func (c *Config) destinationURL(raw, field string) (string, error) {
	if !strings.Contains(raw, "://") {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(c.abs(raw)), RawQuery: fileQuery(nil)}).String(), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parser's message quotes what it choked on, often a secret.
		return "", c.fail(field, "is not a valid URL (a '/', '%%' or '@' in credentials must be escaped; better, keep credentials in the environment)")
	}
	if u.User != nil {
		return "", c.fail(field, "contains credentials; remove them from the URL and provide them through the environment (for S3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile)")
	}
	switch u.Scheme {
	case "file":
		p, err := c.fileURLPath(u, field)
		if err != nil {
			return "", err
		}
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p), RawQuery: fileQuery(u.Query())}).String(), nil
	case "s3", "gs", "azblob", "mem":
		return raw, nil
	}
	return "", c.fail(field, "scheme %q is not supported; use a directory, file://, s3://, gs://, azblob:// or mem://", u.Scheme)
}

// fileQuery adds Bulwark's defaults for file:// destinations.
func fileQuery(q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	for k, v := range map[string]string{"create_dir": "1", "no_tmp_dir": "1", "metadata": "skip"} {
		if q.Get(k) == "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// fileURLPath resolves the path of a file:// or keyfile:// URL:
// file:///abs, file://localhost/abs (the host means this machine), or
// file://relative/dir against the config's directory.
func (c *Config) fileURLPath(u *url.URL, field string) (string, error) {
	switch {
	case u.Host == "" || u.Host == "localhost":
		if u.Path == "" || u.Path == "/" {
			if u.Scheme == "keyfile" {
				return "", c.fail(field, "keyfile URL names no file; use keyfile:///path/to/bulwark.key")
			}
			return "", c.fail(field, "%s:// URL names no directory; use %s:///absolute/path or a plain directory", u.Scheme, u.Scheme)
		}
		return filepath.Clean(filepath.FromSlash(u.Path)), nil
	default:
		return c.abs(filepath.FromSlash(u.Host + u.Path)), nil
	}
}

func (c *Config) checkKeeper() error {
	u, err := url.Parse(c.Keeper)
	if err != nil || u.Scheme == "" {
		return c.fail("keeper", "is not a URL; use keyfile:///path/to/bulwark.key (a '/', '%%' or '@' in credentials must be escaped, and credentials belong in the environment)")
	}
	if u.User != nil {
		return c.fail("keeper", "contains credentials; provide them through the environment instead")
	}
	switch u.Scheme {
	case "base64key":
		return c.fail("keeper", "base64key:// holds the key itself, and config files end up in git and backups; use keyfile:///path/to/bulwark.key")
	case "keyfile":
		p, err := c.fileURLPath(u, "keeper")
		if err != nil {
			return err
		}
		c.Keeper = (&url.URL{Scheme: "keyfile", Path: filepath.ToSlash(p)}).String()
	}
	return nil
}

// Database returns the configured database called name.
func (c *Config) Database(name string) (Database, error) {
	for _, d := range c.Databases {
		if d.Name == name {
			return d, nil
		}
	}
	names := make([]string, 0, len(c.Databases))
	for _, d := range c.Databases {
		names = append(names, d.Name)
	}
	if len(names) == 0 {
		return Database{}, c.fail("databases", "none configured; add one with a name and a path")
	}
	return Database{}, fmt.Errorf("database %q is not in %s (configured: %s)", name, c.Path, strings.Join(names, ", "))
}

// DatabasesOn returns name → path of the databases that live on host.
func (c *Config) DatabasesOn(host string) map[string]string {
	out := map[string]string{}
	for _, d := range c.Databases {
		if d.Host == host && !d.IsOracle() {
			out[d.Name] = d.Path
		}
	}
	return out
}

func suggestName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ' || r == '.':
			b.WriteRune('-')
		}
	}
	out := strings.Trim(b.String(), "-_")
	if out == "" {
		return "finance"
	}
	if len(out) > 63 {
		out = out[:63]
	}
	return out
}

// normalizeOracle checks an Oracle database's connection settings.
func (c *Config) normalizeOracle(field string, d *Database) error {
	o := d.Oracle
	if o == nil {
		return c.fail(field+".oracle", "missing; an Oracle database needs host, port, service, user and password_env or password_file")
	}
	field += ".oracle"
	if d.Path != "" {
		return c.fail(field, "an Oracle database has no path; remove databases[].path")
	}
	if o.Password != "" {
		return c.fail(field+".password", "passwords are never written in the config; put it in an environment variable named by password_env, or a file named by password_file")
	}
	if o.Host == "" {
		return c.fail(field+".host", "missing")
	}
	if o.Port == 0 {
		o.Port = 1521
	}
	if o.Port < 1 || o.Port > 65535 {
		return c.fail(field+".port", "%d is not a TCP port", o.Port)
	}
	if o.Service == "" {
		return c.fail(field+".service", "missing; the service name, for example FREEPDB1")
	}
	if o.User == "" {
		return c.fail(field+".user", "missing")
	}
	switch {
	case o.PasswordEnv == "" && o.PasswordFile == "":
		return c.fail(field+".password_env", "missing; name the environment variable (or set password_file) that holds the password of %s", o.User)
	case o.PasswordEnv != "" && o.PasswordFile != "":
		return c.fail(field+".password_env", "set password_env or password_file, not both")
	case o.PasswordFile != "":
		o.PasswordFile = c.abs(o.PasswordFile)
	}
	if o.Schema == "" {
		o.Schema = strings.ToUpper(o.User)
	}
	if !oracleIdent.MatchString(o.Schema) {
		return c.fail(field+".schema", "%q is not a plain Oracle name (a letter, then letters, digits, _ $ #)", o.Schema)
	}
	o.Schema = strings.ToUpper(o.Schema)
	for j, t := range o.Tables {
		if !oracleIdent.MatchString(t) {
			return c.fail(fmt.Sprintf("%s.tables[%d]", field, j), "%q is not a plain Oracle name", t)
		}
		o.Tables[j] = strings.ToUpper(t)
	}
	if o.DataPumpDirectory != "" {
		if !oracleIdent.MatchString(o.DataPumpDirectory) {
			return c.fail(field+".datapump_directory", "%q is not a plain Oracle name", o.DataPumpDirectory)
		}
		o.DataPumpDirectory = strings.ToUpper(o.DataPumpDirectory)
	}
	return nil
}

var oracleIdent = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_$#]{0,127}$`)

// ReadPassword reads the password of an Oracle database from where the
// config says it is. The error never contains the password.
func (o *Oracle) ReadPassword() (string, error) {
	if o.PasswordFile != "" {
		data, err := os.ReadFile(o.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("read the Oracle password file: %w", err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	v, ok := os.LookupEnv(o.PasswordEnv)
	if !ok || v == "" {
		return "", fmt.Errorf("environment variable %s (the Oracle password of %s) is not set", o.PasswordEnv, o.User)
	}
	return v, nil
}
