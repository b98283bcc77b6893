// Package devserver runs a complete Temporal server (frontend, history, matching and the internal
// worker that drives Schedules) inside the current process, backed by SQLite, for development and
// tests. It can also serve the Temporal Web UI.
//
// A Server persists to a SQLite file when Options.DBFile is set, so namespaces, workflow histories
// and schedules survive a restart on the same file; otherwise it keeps everything in memory.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults applied by Start to zero-valued Options fields.
const (
	DefaultIP        = "127.0.0.1"
	DefaultNamespace = "default"
	DefaultLogLevel  = "error"
	DefaultLogFormat = "json"
	// DefaultRetention is the workflow retention period of the namespaces Start creates.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultStartTimeout bounds how long Start waits for the frontend (and the UI) to answer.
	DefaultStartTimeout = 30 * time.Second
)

// Options configures a Server. The zero value is a usable in-memory server on free 127.0.0.1 ports.
type Options struct {
	// IP is the address the frontend (and the UI) listen on; default DefaultIP. "localhost" means
	// 127.0.0.1. The internal services always listen on free 127.0.0.1 ports.
	IP string
	// Port is the frontend gRPC port; 0 picks a free one.
	Port int
	// HTTPPort is the frontend HTTP API port; 0 picks a free one.
	HTTPPort int

	// UI serves the Temporal Web UI. Setting UIPort also turns the UI on.
	UI bool
	// UIPort is the Web UI port; 0 picks a free one when the UI is on.
	UIPort int

	// Namespaces are created when missing; DefaultNamespace is always among them.
	Namespaces []string
	// Retention is the retention period of namespaces Start creates; 0 means DefaultRetention.
	// Existing namespaces keep theirs.
	Retention time.Duration
	// SearchAttributes are custom search attributes registered in every namespace of Namespaces.
	SearchAttributes map[string]enumspb.IndexedValueType

	// DBFile is the SQLite file to persist to; "" keeps everything in memory. Missing parent
	// directories are created, and the schema is set up only when the file is new (absent or
	// empty). An existing file is reused as is: schema upgrades are not handled.
	DBFile string
	// SQLitePragmas are extra SQLite connection pragmas, such as "journal_mode": "wal".
	SQLitePragmas map[string]string

	// LogLevel of the server log (written to stderr): "debug", "info", "warn", "error" or "never";
	// default DefaultLogLevel.
	LogLevel string
	// LogFormat of the server log: "json" or "console"; default DefaultLogFormat.
	LogFormat string

	// DynamicConfig holds extra dynamic config values by key, overriding this package's defaults
	// (which turn frontend.enableServerVersionCheck off). Integer settings need int values.
	DynamicConfig map[string]any

	// StartTimeout bounds how long Start waits for the server to answer; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Server is a running development server. Its methods are safe for concurrent use.
type Server struct {
	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{}

	frontendHostPort string
	uiAddress        string
	muteLog          *atomic.Bool

	stopOnce sync.Once
	stopErr  error
}

// Start starts a server and returns once its frontend answers health checks, its namespaces
// exist and, if enabled, its Web UI accepts connections. The caller must call Stop.
func Start(opts Options) (*Server, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	ports, err := opts.allocatePorts()
	if err != nil {
		return nil, err
	}

	const clusterName = "active"
	sqlConf, err := prepareSQLite(opts, clusterName)
	if err != nil {
		return nil, err
	}

	mute := new(atomic.Bool)
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{
		Level:  zapLevel(opts.LogLevel),
		Format: zapFormat(opts.LogFormat),
	}).WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return muteCore{c, mute} })))
	conf := buildConfig(opts, ports, sqlConf, clusterName)
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("create authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("create claim mapper: %w", err)
	}
	ts, err := temporal.NewServer(
		temporal.WithConfig(conf),
		// DefaultServices includes the internal worker service, which runs Schedules.
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(ports.frontendInternal),
			primitives.HistoryService:  static.SingleLocalHost(ports.history),
			primitives.MatchingService: static.SingleLocalHost(ports.matching),
			primitives.WorkerService:   static.SingleLocalHost(ports.worker),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicConfig(opts.DynamicConfig)),
	)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()

	s := &Server{temporal: ts, frontendHostPort: ports.frontendInternal, muteLog: mute}
	if err := ts.Start(); err != nil {
		// A failed start has already stopped the services it started.
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	if err := waitFrontend(ctx, s.frontendHostPort, opts.Namespaces, opts.SearchAttributes); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if ports.ui != "" {
		s.startUI(opts, ports.ui)
		if err := waitListening(ctx, ports.uiDial); err != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("wait for web ui: %w", err)
		}
		s.uiAddress = "http://" + ports.uiDial
	}
	return s, nil
}

// FrontendHostPort returns the host:port clients dial to reach the frontend gRPC API.
func (s *Server) FrontendHostPort() string { return s.frontendHostPort }

// UIAddress returns the Web UI base URL, such as "http://127.0.0.1:8233", or "" when the UI is off.
func (s *Server) UIAddress() string { return s.uiAddress }

// Stop stops the Web UI and the server and waits for them to finish. It mutes the server log, fatal
// entries aside, because the services log the polls and tasks the shutdown cuts off as errors.
// Calling Stop again returns the first result.
//
// The Temporal SQLite plugin pools connections for the life of the process and never closes them:
// after Stop the database file stays open (an in-memory database stays allocated) until the process
// exits, and a new Start on the same file in the same process reuses that connection.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.muteLog.Store(true)
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("stop temporal server: %w", err)
		}
	})
	return s.stopErr
}

func (opts *Options) normalize() error {
	if opts.IP == "" || opts.IP == "localhost" {
		opts.IP = DefaultIP
	}
	if net.ParseIP(opts.IP) == nil {
		return fmt.Errorf("ip %q: not an IP address", opts.IP)
	}
	for name, p := range map[string]int{"port": opts.Port, "http port": opts.HTTPPort, "ui port": opts.UIPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("%s %d: out of range", name, p)
		}
	}
	if opts.UIPort != 0 {
		opts.UI = true
	}

	namespaces := []string{DefaultNamespace}
	for _, ns := range opts.Namespaces {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			return errors.New("empty namespace name")
		}
		if !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	opts.Namespaces = namespaces
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Retention < 0 {
		return fmt.Errorf("retention %v: negative", opts.Retention)
	}
	for name, typ := range opts.SearchAttributes {
		if name == "" || typ == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return fmt.Errorf("search attribute %q: name and type are required", name)
		}
	}

	if opts.LogLevel == "" {
		opts.LogLevel = DefaultLogLevel
	}
	opts.LogLevel = strings.ToLower(opts.LogLevel)
	if zapLevel(opts.LogLevel) == "" {
		return fmt.Errorf("log level %q: want debug, info, warn, error or never", opts.LogLevel)
	}
	if opts.LogFormat == "" {
		opts.LogFormat = DefaultLogFormat
	}
	if zapFormat(opts.LogFormat) == "" {
		return fmt.Errorf("log format %q: want json or console", opts.LogFormat)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	return nil
}

func zapLevel(level string) string {
	switch level {
	case "debug", "info", "warn", "error":
		return level
	case "never":
		return "fatal"
	}
	return ""
}

func zapFormat(format string) string {
	switch format {
	case "json", "console":
		return format
	}
	return ""
}

// buildConfig assembles the static server configuration: one cluster, one history shard, SQLite for
// both the default and the visibility store, archival off.
func buildConfig(opts Options, ports ports, sqlConf *config.SQL, clusterName string) *config.Config {
	const store = "sqlite-default"
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = loopback
	conf.Persistence.DefaultStore = store
	conf.Persistence.VisibilityStore = store
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{store: {SQL: sqlConf}}
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             ports.frontendInternal,
				HTTPAddress:            ports.httpInternal,
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): {RPC: config.RPC{
			BindOnIP: opts.IP,
			GRPCPort: ports.frontendPort,
			HTTPPort: ports.httpPort,
		}},
		string(primitives.HistoryService):  internalService(ports.history),
		string(primitives.MatchingService): internalService(ports.matching),
		string(primitives.WorkerService):   internalService(ports.worker),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = ports.frontendInternal
	return &conf
}

func internalService(hostPort string) config.Service {
	_, port, _ := net.SplitHostPort(hostPort)
	p, _ := strconv.Atoi(port)
	return config.Service{RPC: config.RPC{BindOnIP: loopback, GRPCPort: p}}
}

// dynamicConfig returns this package's dynamic config defaults overlaid with extra.
func dynamicConfig(extra map[string]any) dynamicconfig.StaticClient {
	values := map[string]any{
		// On by default, it polls an internet service.
		"frontend.enableServerVersionCheck": false,
		// As the Temporal CLI's dev server: a larger host-level cache and visibility rate limit.
		"history.hostLevelCacheMaxSize":    8096,
		"frontend.namespaceRPS.visibility": 100,
		// Make new search attributes and Nexus endpoints visible at once; the cache being off
		// needs higher persistence rate limits.
		"system.forceSearchAttributesCacheRefreshOnRead": true,
		"system.forceNexusEndpointRefreshOnRead":         true,
		"frontend.persistenceMaxQPS":                     10000,
		"history.persistenceMaxQPS":                      45000,
	}
	dc := make(dynamicconfig.StaticClient, len(values)+len(extra))
	for k, v := range values {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	for k, v := range extra {
		dc[dynamicconfig.MakeKey(k)] = v
	}
	return dc
}

func (s *Server) startUI(opts Options, listen string) {
	host, port, _ := net.SplitHostPort(listen)
	p, _ := strconv.Atoi(port)
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // the UI server joins host and port with a bare colon
	}
	s.ui = newUIServer(host, p, s.frontendHostPort, opts.Namespaces[0])
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		// Start blocks until Stop. It exits the process if it cannot listen, which is why
		// allocatePorts has checked that the port is free.
		_ = s.ui.Start()
	}()
}

// muteCore passes log entries to its Core until mute is set, and then only fatal ones.
type muteCore struct {
	zapcore.Core
	mute *atomic.Bool
}

func (c muteCore) muted(l zapcore.Level) bool { return c.mute.Load() && l < zapcore.DPanicLevel }

func (c muteCore) Enabled(l zapcore.Level) bool { return !c.muted(l) && c.Core.Enabled(l) }

func (c muteCore) With(fields []zapcore.Field) zapcore.Core {
	return muteCore{c.Core.With(fields), c.mute}
}

func (c muteCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.muted(e.Level) {
		return ce
	}
	return c.Core.Check(e, ce)
}
