// Command finance-writer runs demodb.RunWriter against an existing database,
// so that a benchmark can keep the database busy from a separate process
// while a backup runs. It stops after -duration, or on SIGINT or SIGTERM,
// and prints the WriterStats as one JSON object on stdout:
//
//	{"commits":41234,"max_commit_latency_ns":8123456,"p99_commit_latency_ns":912384,
//	 "errors":0,"elapsed_ns":10000423871,"commits_per_second":4123.2,
//	 "max_commit_latency":"8.123456ms","p99_commit_latency":"912.384µs"}
//
// It exits with status 1 if the writer failed; the statistics are printed
// either way.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bulwark-dr/bulwark/demodb"
)

func main() {
	path := flag.String("db", "", "path of an existing database (see finance-gen)")
	duration := flag.Duration("duration", 0, "how long to write (0: until SIGINT or SIGTERM)")
	pause := flag.Duration("pause", 0, "pause between commits (0: as fast as possible)")
	seed := flag.Uint64("seed", 1, "seed selecting the sequence of changes")
	flag.Parse()
	if *path == "" || flag.NArg() > 0 || *duration < 0 || *pause < 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	start := time.Now()
	st, err := demodb.RunWriter(ctx, *path, demodb.WriterOptions{Seed: *seed, Pause: *pause})
	elapsed := time.Since(start)

	out := struct {
		demodb.WriterStats
		Elapsed          time.Duration `json:"elapsed_ns"`
		CommitsPerSecond float64       `json:"commits_per_second"`
		MaxLatency       string        `json:"max_commit_latency"`
		P99Latency       string        `json:"p99_commit_latency"`
	}{st, elapsed, float64(st.Commits) / elapsed.Seconds(), st.MaxCommitLatency.String(), st.P99CommitLatency.String()}
	if jerr := json.NewEncoder(os.Stdout).Encode(out); jerr != nil && err == nil {
		err = fmt.Errorf("write stats: %w", jerr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "finance-writer:", err)
		os.Exit(1)
	}
}
