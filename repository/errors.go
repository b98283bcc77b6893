package repository

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers classify with errors.Is; the activity boundary maps
// them to non-retryable application errors.
var (
	// ErrBadInput marks input that can never succeed, such as an invalid name.
	ErrBadInput = errors.New("bad input")
	// ErrNotFound marks a backup or object that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt marks stored data that fails a hash, authentication or
	// structural check. Retrying does not help; another copy might.
	ErrCorrupt = errors.New("corrupt backup data")
	// ErrWrongKey marks a key envelope that the configured keeper cannot open.
	ErrWrongKey = errors.New("wrong key")
	// ErrUnsupportedFormat marks a manifest written by a newer Bulwark.
	ErrUnsupportedFormat = errors.New("unsupported format version")
)

// ObjectError names the object an operation failed on. It wraps one of the
// sentinel errors or the underlying storage error.
type ObjectError struct {
	Op  string // what was being done, e.g. "read chunk"
	Key string // object key
	Err error
}

func (e *ObjectError) Error() string { return fmt.Sprintf("%s %s: %v", e.Op, e.Key, e.Err) }

// Unwrap returns the underlying error.
func (e *ObjectError) Unwrap() error { return e.Err }
