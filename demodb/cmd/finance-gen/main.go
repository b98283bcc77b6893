// Command finance-gen creates a demo finance database with demodb.Generate
// and prints its Stats as JSON.
//
//	finance-gen -db demo.db                  # default small database
//	finance-gen -db big.db -size 1073741824  # grow to 1 GiB
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/bulwark-dr/bulwark/demodb"
)

func main() {
	path := flag.String("db", "", "path of the database to create (must not exist)")
	users := flag.Int("users", demodb.DefaultUsers, "number of users")
	perUser := flag.Int("expenses-per-user", demodb.DefaultExpensesPerUser, "average expenses per user")
	seed := flag.Uint64("seed", 1, "seed selecting the contents")
	size := flag.Int64("size", 0, "grow the database to at least this many bytes (0: no target)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the generation to this file")
	flag.Parse()
	if *path == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts := demodb.Options{Users: *users, ExpensesPerUser: *perUser, Seed: *seed, TargetBytes: *size}
	if err := run(*path, opts, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "finance-gen:", err)
		os.Exit(1)
	}
}

func run(path string, opts demodb.Options, cpuProfile string) error {
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := demodb.Generate(ctx, path, opts)
	if err != nil {
		return err
	}
	out := struct {
		demodb.Stats
		Seconds float64 `json:"seconds"`
	}{st, st.Duration.Seconds()}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write stats: %w", err)
	}
	return nil
}
