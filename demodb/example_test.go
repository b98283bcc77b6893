package demodb_test

import (
	"context"
	"log"
	"path/filepath"
	"sync"
	"time"

	"github.com/bulwark-dr/bulwark/demodb"
)

// A hot backup taken while RunWriter commits must pass CheckConsistent:
// writer_state changes in the same transaction as the rows it describes, so
// only a copy of one committed state satisfies it.
func ExampleCheckConsistent() {
	ctx := context.Background()
	dir, src := "/tmp/demo", "/tmp/demo/finance.db"
	if _, err := demodb.Generate(ctx, src, demodb.Options{Seed: 1}); err != nil {
		log.Fatal(err)
	}

	writing, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := demodb.RunWriter(writing, src, demodb.WriterOptions{}); err != nil {
			log.Print(err)
		}
	})

	backup := filepath.Join(dir, "backup.db")
	// ... back up src to backup while the writer runs ...
	if err := demodb.CheckConsistent(ctx, backup); err != nil {
		log.Fatalf("backup is not a committed state: %v", err)
	}
	stop()
	wg.Wait()
}
