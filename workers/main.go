// Command bulwark-worker runs Bulwark's workflows and activities. Run one on
// every host that has SQLite databases to protect; each polls the shared
// workflow and storage queues and its own host's queue.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	_ "gocloud.dev/blob/fileblob" // file:// destinations
	_ "gocloud.dev/blob/memblob"  // mem:// destinations (tests)
	_ "gocloud.dev/blob/s3blob"   // s3:// destinations

	"github.com/bulwark-dr/bulwark/activities"
	"github.com/bulwark-dr/bulwark/activities/oraclesrc"
	"github.com/bulwark-dr/bulwark/activities/sqlitesrc"
	"github.com/bulwark-dr/bulwark/config"
	"github.com/bulwark-dr/bulwark/destinations"
	"github.com/bulwark-dr/bulwark/keeper"
	"github.com/bulwark-dr/bulwark/metrics"
	"github.com/bulwark-dr/bulwark/notify"
	"github.com/bulwark-dr/bulwark/repository"
	"github.com/bulwark-dr/bulwark/retention"
	"github.com/bulwark-dr/bulwark/workflows"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark-worker:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("bulwark-worker", flag.ContinueOnError)
	configPath := fs.String("config", envOr("BULWARK_CONFIG", "bulwark.yaml"), "config file (env BULWARK_CONFIG)")
	host := fs.String("host", "", "this worker's host name (default: the config's host, else the hostname)")
	address := fs.String("address", "", "Temporal frontend host:port (default: TEMPORAL_ADDRESS, profile, config, localhost:7233)")
	namespace := fs.String("namespace", "", "Temporal namespace")
	profile := fs.String("profile", os.Getenv("TEMPORAL_PROFILE"), "Temporal envconfig profile")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	if *host == "" {
		*host = cfg.Host
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var dests []activities.Destination
	for _, d := range cfg.Destinations {
		b, err := destinations.Open(ctx, destinations.Destination{
			Name: d.Name, URL: d.URL,
			Lock: destinations.Lock{Mode: d.ObjectLock.Mode, Period: time.Duration(d.ObjectLock.Period)},
		})
		if err != nil {
			return fmt.Errorf("open destination %s (%s): %w", d.Name, keeper.Redact(d.URL), err)
		}
		defer b.Close()
		dests = append(dests, activities.Destination{
			Name: d.Name, Role: d.Role, Bucket: b,
			LockMode: d.ObjectLock.Mode, LockPeriod: time.Duration(d.ObjectLock.Period),
			Retention: retention.Policy{
				KeepLast: d.Retention.KeepLast, KeepWithin: time.Duration(d.Retention.KeepWithin),
				KeepDaily: d.Retention.KeepDaily, KeepWeekly: d.Retention.KeepWeekly,
				KeepMonthly: d.Retention.KeepMonthly, KeepYearly: d.Retention.KeepYearly,
			},
		})
	}
	bucket := dests[0].Bucket // the primary: config orders it first
	var fallbacks []repository.Source
	for _, d := range dests[1:] {
		fallbacks = append(fallbacks, repository.Source{Name: d.Name, Bucket: d.Bucket})
	}
	// A worker of a new installation creates the key file; see keeper.Open.
	kp, err := keeper.Open(ctx, cfg.Keeper, true)
	if err != nil {
		return err
	}
	defer kp.Close()

	opts, err := cfg.ClientOptions(*address, *namespace, *profile)
	if err != nil {
		return err
	}
	// One registry per worker: the SDK's metrics and Bulwark's, on
	// /metrics when the config names an address.
	var m *metrics.Bulwark
	if listen := cfg.Metrics.Listen; listen != "" {
		m = metrics.New()
		addr, stopMetrics, err := m.Serve(listen)
		if err != nil {
			return fmt.Errorf("metrics.listen %s: %w", listen, err)
		}
		defer stopMetrics()
		opts.MetricsHandler = m.SDKHandler()
		logger.Info("metrics", "url", "http://"+addr+"/metrics")
	}
	opts.Logger = tlog.NewStructuredLogger(logger)
	c, err := client.Dial(opts)
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", opts.HostPort, err)
	}
	defer c.Close()

	workerName := fmt.Sprintf("%s/%d", *host, os.Getpid())
	scratch := cfg.ScratchDir
	if scratch == "" {
		scratch = filepath.Join(os.TempDir(), "bulwark-scratch")
	}
	uploadLimit := repository.NewLimiter(int64(cfg.Limits.Upload))
	downloadLimit := repository.NewLimiter(int64(cfg.Limits.Download))
	sqliteActs := &activities.SQLiteActivities{
		Host: *host, Databases: cfg.DatabasesOn(*host), Bucket: bucket,
		Keeper:      sqlitesrc.KeeperWithDescription{Keeper: kp, Description: kp.Description},
		Compression: cfg.Compression, Workers: runtime.GOMAXPROCS(0), Tool: "bulwark " + version,
		UploadLimit: uploadLimit, DownloadLimit: downloadLimit, ScratchDir: scratch,
		PrimaryName: dests[0].Name, Fallbacks: fallbacks, Metrics: m,
	}
	notifier, err := notifierFor(cfg)
	if err != nil {
		return err
	}
	storageActs := &activities.StorageActivities{
		Notifier: notifier, Metrics: m,
		Bucket: bucket, Destinations: dests, Keeper: kp, TempDir: scratch, Worker: workerName, Workers: runtime.GOMAXPROCS(0),
		DownloadLimit: downloadLimit, UploadLimit: uploadLimit,
	}

	// Heartbeats reach the server at most once a second: often enough for a
	// live progress bar and for a resumed attempt to lose little work. The
	// SDK's default (0.8 × the heartbeat timeout) would make both stale.
	activityOpts := worker.Options{
		Identity:                           workerName,
		MaxConcurrentActivityExecutionSize: 2,
		DefaultHeartbeatThrottleInterval:   time.Second,
		MaxHeartbeatThrottleInterval:       time.Second,
	}
	wfWorker := worker.New(c, activities.WorkflowQueue, worker.Options{Identity: workerName})
	RegisterWorkflows(wfWorker)
	storageWorker := worker.New(c, activities.StorageQueue, activityOpts)
	storageWorker.RegisterActivity(storageActs)
	hostWorker := worker.New(c, activities.HostQueue(*host), activityOpts)
	hostWorker.RegisterActivity(sqliteActs)
	workers := []worker.Worker{wfWorker, storageWorker, hostWorker}
	queues := []string{activities.WorkflowQueue, activities.StorageQueue, activities.HostQueue(*host)}

	// Oracle databases are reached over the network: a worker polls the
	// oracle queue when the config names one (and, on the database host,
	// runs RMAN too). The password stays in this process.
	oracleActs := &activities.OracleActivities{Databases: map[string]activities.OracleDatabase{}, Bucket: bucket,
		Keeper: kp, KeeperDescription: kp.Description, Tool: "bulwark " + version, Metrics: m}
	for _, d := range cfg.Databases {
		if !d.IsOracle() {
			continue
		}
		o := d.Oracle
		oracleActs.Databases[d.Name] = activities.OracleDatabase{
			Name: d.Name, Conn: oraclesrc.Conn{Host: o.Host, Port: o.Port, Service: o.Service, User: o.User},
			Password: o.ReadPassword, Schema: o.Schema, Tables: o.Tables,
			DataPumpDirectory: o.DataPumpDirectory, RMANPath: o.RMANPath,
		}
	}
	if len(oracleActs.Databases) > 0 {
		oracleWorker := worker.New(c, activities.OracleQueue, activityOpts)
		oracleWorker.RegisterActivity(oracleActs)
		workers = append(workers, oracleWorker)
		queues = append(queues, activities.OracleQueue)
	}

	for _, w := range workers {
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop()
	}
	logger.Info("worker running", "host", *host, "queues", queues,
		"databases", len(sqliteActs.Databases), "destinations", len(dests), "primary", keeper.Redact(cfg.Destination), "keeper", kp.Description)
	fmt.Fprintf(os.Stderr, "bulwark-worker: ready on %s (host %s, %d database(s))\n", opts.HostPort, *host, len(sqliteActs.Databases))
	<-ctx.Done()
	return nil
}

// RegisterWorkflows registers every Bulwark workflow on w.
func RegisterWorkflows(w worker.Registry) {
	for _, wf := range workflows.All() {
		w.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{})
	}
}

// notifierFor builds the notification router from the config, reading the
// secrets it names (webhook URLs with tokens, SMTP passwords) from the
// environment. Nil when no channel is configured.
func notifierFor(cfg *config.Config) (*notify.Router, error) {
	n := cfg.Notifications
	if len(n.Channels) == 0 {
		return nil, nil
	}
	var channels []notify.Channel
	for _, ch := range n.Channels {
		switch {
		case ch.Webhook != nil:
			u := ch.Webhook.URL
			if ch.Webhook.URLEnv != "" {
				if u = os.Getenv(ch.Webhook.URLEnv); u == "" {
					return nil, fmt.Errorf("notification channel %s: environment variable %s (its webhook URL) is not set", ch.Name, ch.Webhook.URLEnv)
				}
			}
			channels = append(channels, notify.Webhook{Label: ch.Name, URL: u, Format: ch.Webhook.Format})
		case ch.SMTP != nil:
			m := ch.SMTP
			password := ""
			if m.PasswordEnv != "" {
				if password = os.Getenv(m.PasswordEnv); password == "" {
					return nil, fmt.Errorf("notification channel %s: environment variable %s (the SMTP password) is not set", ch.Name, m.PasswordEnv)
				}
			}
			channels = append(channels, notify.SMTP{Label: ch.Name, Addr: m.Addr, From: m.From, To: m.To, Username: m.Username, Password: password, RequireTLS: m.RequireTLS})
		}
	}
	r, err := notify.NewRouter(channels, n.Routes)
	if err != nil {
		return nil, fmt.Errorf("notifications in %s: %w", cfg.Path, err)
	}
	return r, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
