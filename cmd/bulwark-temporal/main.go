// Command bulwark-temporal runs an embedded Temporal development server backed by SQLite. It
// answers the command line of the Temporal CLI's dev server, so that
// go.temporal.io/sdk/testsuite.StartDevServer can run it through DevServerOptions.ExistingPath:
//
//	bulwark-temporal server start-dev [--ip IP] [--port N] [--http-port N] [--ui-port N] [--headless]
//	    [--db-filename PATH] [--namespace NS]... [--dynamic-config-value KEY=JSON]...
//	    [--search-attribute NAME=TYPE]... [--sqlite-pragma KEY=VALUE]...
//	    [--log-level LEVEL] [--log-format FORMAT]
//
// Once the server is ready it prints one line to stdout,
//
//	bulwark-temporal: frontend 127.0.0.1:7233 ui http://127.0.0.1:43117
//
// (the ui part only when the Web UI runs), and it runs until SIGINT or SIGTERM. Bad flags exit 2,
// a failed start exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/bulwark-dr/bulwark/devserver"
)

const name = "bulwark-temporal"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 2 || args[0] != "server" || args[1] != "start-dev" {
		fmt.Fprintf(stderr, "%s: usage: %s server start-dev [flags] (see server start-dev --help)\n", name, name)
		return 2
	}
	opts, err := parseStartDev(args[2:], stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	srv, err := devserver.Start(opts)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	ready := name + ": frontend " + srv.FrontendHostPort()
	if ui := srv.UIAddress(); ui != "" {
		ready += " ui " + ui
	}
	fmt.Fprintln(stdout, ready)

	<-ctx.Done()
	stopSignals() // a second signal kills the process
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// parseStartDev parses the flags of "server start-dev". Flags take one or two dashes, and values
// follow a space or "=". It returns flag.ErrHelp, after printing the usage to stdout, for -h.
func parseStartDev(args []string, stdout io.Writer) (devserver.Options, error) {
	fs := flag.NewFlagSet("server start-dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller in one line
	var (
		ip, dbFile, logLevel, logFormat           string
		port, httpPort, uiPort                    int
		headless                                  bool
		namespaces, dynamic, searchAttrs, pragmas listFlag
	)
	fs.StringVar(&ip, "ip", devserver.DefaultIP, "IP `address` the frontend and the Web UI listen on")
	fs.IntVar(&port, "port", 7233, "frontend gRPC `port`, 0 for a free one")
	fs.IntVar(&port, "p", 7233, "short for --port")
	fs.IntVar(&httpPort, "http-port", 0, "frontend HTTP `port` (default a free port)")
	fs.IntVar(&uiPort, "ui-port", 0, "Web UI `port` (default a free port)")
	fs.BoolVar(&headless, "headless", false, "do not serve the Web UI")
	fs.StringVar(&dbFile, "db-filename", "", "SQLite `file` to persist to (default in memory)")
	fs.StringVar(&dbFile, "f", "", "short for --db-filename")
	fs.Var(&namespaces, "namespace", "extra `namespace` to create, repeatable (default is always created)")
	fs.Var(&namespaces, "n", "short for --namespace")
	fs.Var(&dynamic, "dynamic-config-value", "dynamic config value as `KEY=JSON`, repeatable")
	fs.Var(&searchAttrs, "search-attribute", "custom search attribute as `NAME=TYPE`, repeatable")
	fs.Var(&pragmas, "sqlite-pragma", "SQLite pragma as `KEY=VALUE`, repeatable")
	fs.StringVar(&logLevel, "log-level", devserver.DefaultLogLevel, "server log `level`: debug, info, warn, error or never")
	fs.StringVar(&logFormat, "log-format", "json", "server log `format`: json, or text (also pretty, console)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: %s server start-dev [flags]\n\nflags:\n", name)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		return devserver.Options{}, err
	}
	if fs.NArg() > 0 {
		return devserver.Options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	opts := devserver.Options{
		IP:         ip,
		Port:       port,
		HTTPPort:   httpPort,
		UI:         !headless,
		Namespaces: namespaces,
		DBFile:     dbFile,
		LogLevel:   logLevel,
	}
	if !headless {
		opts.UIPort = uiPort
	}
	switch strings.ToLower(logFormat) {
	case "json":
		opts.LogFormat = "json"
	case "text", "pretty", "console":
		opts.LogFormat = "console"
	default:
		return devserver.Options{}, fmt.Errorf("--log-format %q: want json or text", logFormat)
	}

	var err error
	if opts.DynamicConfig, err = parseDynamicConfig(dynamic); err != nil {
		return devserver.Options{}, err
	}
	if opts.SearchAttributes, err = parseSearchAttributes(searchAttrs); err != nil {
		return devserver.Options{}, err
	}
	if len(pragmas) > 0 {
		opts.SQLitePragmas = map[string]string{}
		for _, kv := range pragmas {
			k, v, err := splitKeyValue(kv)
			if err != nil {
				return devserver.Options{}, fmt.Errorf("--sqlite-pragma: %w", err)
			}
			opts.SQLitePragmas[k] = v
		}
	}
	return opts, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func splitKeyValue(kv string) (string, string, error) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("%q: want KEY=VALUE", kv)
	}
	return k, v, nil
}

// parseDynamicConfig parses KEY=JSON values as the Temporal CLI does; whole numbers become int,
// the type dynamic config integer settings need.
func parseDynamicConfig(kvs []string) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	values := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		k, raw, err := splitKeyValue(kv)
		if err != nil {
			return nil, fmt.Errorf("--dynamic-config-value: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("--dynamic-config-value %s: value %q is not JSON (quote strings): %v", k, raw, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("--dynamic-config-value %s: value %q has data after the JSON value", k, raw)
		}
		if values[k], err = convertNumbers(v); err != nil {
			return nil, fmt.Errorf("--dynamic-config-value %s: %w", k, err)
		}
	}
	return values, nil
}

// convertNumbers replaces the json.Numbers in v by int when whole and float64 otherwise.
func convertNumbers(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return int(i), nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", v, err)
		}
		return f, nil
	case []any:
		for i := range v {
			c, err := convertNumbers(v[i])
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
	case map[string]any:
		for k := range v {
			c, err := convertNumbers(v[k])
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
	}
	return v, nil
}

// parseSearchAttributes parses NAME=TYPE values; TYPE is a search attribute type such as Keyword,
// Text, Int, Double, Bool, Datetime or KeywordList, in any case.
func parseSearchAttributes(kvs []string) (map[string]enumspb.IndexedValueType, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	attrs := make(map[string]enumspb.IndexedValueType, len(kvs))
	for _, kv := range kvs {
		k, v, err := splitKeyValue(kv)
		if err != nil {
			return nil, fmt.Errorf("--search-attribute: %w", err)
		}
		typ, err := enumspb.IndexedValueTypeFromString(v)
		if err != nil {
			for short, n := range enumspb.IndexedValueType_shorthandValue {
				if strings.EqualFold(short, v) {
					typ, err = enumspb.IndexedValueType(n), nil
				}
			}
		}
		if err != nil || typ == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return nil, fmt.Errorf("--search-attribute %s: unknown type %q", k, v)
		}
		attrs[k] = typ
	}
	return attrs, nil
}
