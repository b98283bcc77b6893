package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeater records the latest progress as the activity's heartbeat once a
// second, independently of how fast chunks settle: a slow link or a
// bandwidth limit must not make a live worker look dead, and the heartbeat
// timeout then only has to detect workers that really are gone.
type heartbeater[T any] struct {
	mu       sync.Mutex
	last     T
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func startHeartbeat[T any](ctx context.Context, initial T) *heartbeater[T] {
	h := &heartbeater[T]{last: initial, stop: make(chan struct{}), done: make(chan struct{})}
	activity.RecordHeartbeat(ctx, initial)
	go func() {
		defer close(h.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, h.get())
			}
		}
	}()
	return h
}

func (h *heartbeater[T]) set(p T) {
	h.mu.Lock()
	h.last = p
	h.mu.Unlock()
}

func (h *heartbeater[T]) get() T {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// close stops the ticker; the final progress is left for the caller's
// result. Calling it again does nothing.
func (h *heartbeater[T]) close() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.done
}
