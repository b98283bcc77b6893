package sqlitesrc

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// imageHasher computes the SHA-256 of the image on its own goroutine, so
// that hashing a gigabyte does not add to the time the snapshot's reader
// spends on every page. Pages are copied into a small ring of batches; the
// reader only waits when the hasher falls a whole ring behind.
type imageHasher struct {
	h     hash.Hash
	free  chan []byte
	full  chan []byte
	done  chan struct{}
	batch []byte
}

const imageHashBatch = 1 << 20

func newImageHasher() *imageHasher {
	ih := &imageHasher{h: sha256.New(), free: make(chan []byte, 4), full: make(chan []byte, 4), done: make(chan struct{})}
	for range 4 {
		ih.free <- make([]byte, 0, imageHashBatch)
	}
	go func() {
		defer close(ih.done)
		for b := range ih.full {
			ih.h.Write(b)
			ih.free <- b[:0]
		}
	}()
	return ih
}

// Write queues p for hashing; p may be reused by the caller afterwards.
func (ih *imageHasher) Write(p []byte) {
	for len(p) > 0 {
		if ih.batch == nil {
			ih.batch = <-ih.free
		}
		n := min(len(p), cap(ih.batch)-len(ih.batch))
		ih.batch = append(ih.batch, p[:n]...)
		p = p[n:]
		if len(ih.batch) == cap(ih.batch) {
			ih.full <- ih.batch
			ih.batch = nil
		}
	}
}

// Sum waits for everything queued and returns the hex digest.
func (ih *imageHasher) Sum() string {
	if len(ih.batch) > 0 {
		ih.full <- ih.batch
		ih.batch = nil
	}
	close(ih.full)
	<-ih.done
	return hex.EncodeToString(ih.h.Sum(nil))
}

// Close stops the hasher without a result (the backup failed).
func (ih *imageHasher) Close() {
	select {
	case <-ih.done:
	default:
		ih.batch = nil
		close(ih.full)
		<-ih.done
	}
}
