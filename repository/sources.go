package repository

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Source is a destination holding a copy of a database's backups: the same
// objects, byte for byte, under the same keys. Readers that take a list of
// sources use them in preference order; the first is the primary.
type Source struct {
	Name   string // how heals and errors name the destination
	Bucket *blob.Bucket
}

// primaryName names the bucket passed to RestoreImage when
// RestoreOptions.PrimaryName is empty.
const primaryName = "primary"

// Heal reports an object whose copy on the primary could not be used (it
// is missing, or fails its hash, authentication or decoding) and that was
// read from a later source instead.
type Heal struct {
	Key     string `json:"key"`     // object key, the same on every source
	Backup  string `json:"backup"`  // the backup the object belongs to
	Problem string `json:"problem"` // what was wrong with the primary's copy
	From    string `json:"from"`    // name of the source whose copy was used
	// Skipped lists, as "name: problem", the sources between the primary
	// and From whose copies could not be used either.
	Skipped []string `json:"skipped,omitempty"`
	// Repaired is set when the good copy was written back to the primary
	// under the same key; RepairError says why it was not when repair was
	// asked for. A failed repair never fails the read.
	Repaired    bool   `json:"repaired"`
	RepairError string `json:"repair_error,omitempty"`
}

func (h Heal) String() string {
	s := fmt.Sprintf("%s (backup %s) read from %s: %s", h.Key, h.Backup, h.From, h.Problem)
	if len(h.Skipped) > 0 {
		s += "; also unusable on " + strings.Join(h.Skipped, "; ")
	}
	switch {
	case h.Repaired:
		s += "; repaired"
	case h.RepairError != "":
		s += "; not repaired: " + h.RepairError
	}
	return s
}

// HealOptions configures the readers that heal from a list of sources
// (ChainFromWith, CheckPageIndexFrom, PageIndexMismatchFrom).
type HealOptions struct {
	// Repair writes a good copy found on a later source back to the first
	// source, under the same key, before the heal is reported.
	Repair bool
}

// SourceProblem is why one source's copy of an object could not be used.
type SourceProblem struct {
	Source string
	Err    error
}

// NoIntactCopyError reports an object that no source holds intact, with
// what was wrong on each, in source order.
type NoIntactCopyError struct {
	Key      string
	Backup   string
	Problems []SourceProblem
}

func (e *NoIntactCopyError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Source + ": " + p.Err.Error()
	}
	return fmt.Sprintf("no intact copy of %s (backup %s) on any source: %s", e.Key, e.Backup, strings.Join(parts, "; "))
}

// Unwrap returns the sources' errors. When some source failed for a
// transient reason (unreachable, cancelled) only those are returned, so
// that errors.Is(err, ErrCorrupt) — "retrying does not help" — holds only
// when every source's copy is known to be bad.
func (e *NoIntactCopyError) Unwrap() []error {
	var all, transient []error
	for _, p := range e.Problems {
		all = append(all, p.Err)
		if !isDamage(p.Err) {
			transient = append(transient, p.Err)
		}
	}
	if len(transient) > 0 {
		return transient
	}
	return all
}

// isDamage reports errors that say a stored copy is missing or bad — the
// ones another copy can cure. Anything else (storage unreachable, context
// cancelled, local I/O) is not damage and is never healed silently.
func isDamage(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrWrongKey) || errors.Is(err, ErrUnsupportedFormat)
}

// localError marks an error of the reader's own side (the restored file),
// which no other source can cure.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// firstIntact calls try on each source in order until one succeeds and
// returns that source's position, with a Heal when it is not the first.
// The primary's transient errors are returned as they are: only damage
// sends a read to another source. A later source's transient error is
// recorded and the next source tried. With a single source its error is
// returned unwrapped.
func firstIntact(ctx context.Context, sources []Source, key, backup string, try func(Source) error) (int, *Heal, error) {
	var problems []SourceProblem
	for i, s := range sources {
		if err := context.Cause(ctx); err != nil {
			return -1, nil, err
		}
		err := try(s)
		if err == nil {
			if i == 0 {
				return 0, nil, nil
			}
			h := &Heal{Key: key, Backup: backup, Problem: problems[0].Err.Error(), From: s.Name}
			for _, p := range problems[1:] {
				h.Skipped = append(h.Skipped, p.Source+": "+p.Err.Error())
			}
			return i, h, nil
		}
		var local *localError
		if errors.As(err, &local) {
			return -1, nil, local.err
		}
		if i == 0 && (!isDamage(err) || len(sources) == 1) {
			return -1, nil, err
		}
		problems = append(problems, SourceProblem{Source: s.Name, Err: err})
	}
	return -1, nil, &NoIntactCopyError{Key: key, Backup: backup, Problems: problems}
}

// repair writes data back to bucket under key and records the outcome in h.
func repair(ctx context.Context, bucket *blob.Bucket, key string, data []byte, h *Heal) {
	if _, err := putObject(ctx, bucket, key, data, true); err != nil {
		h.RepairError = err.Error()
		return
	}
	h.Repaired = true
}

// ChainFrom is Chain over several copies of the backups: see ChainFromWith.
// It never writes.
func ChainFrom(ctx context.Context, sources []Source, keeper SecretsKeeper, database, backupID string) ([]Layer, []Heal, error) {
	return ChainFromWith(ctx, sources, keeper, database, backupID, HealOptions{})
}

// ChainFromWith returns, like Chain, the backups needed to rebuild
// backupID, oldest first, each authenticated with its data key. Each
// backup's manifest is taken from the first source where it reads, parses,
// authenticates and is stored exactly as written; its key envelope
// (key.json) must equal the authenticated copy in the manifest, and is
// likewise looked for on each source in turn. Every object that had to come
// from a later source is reported as a Heal, and Layer.Source names where
// each manifest came from. When no source holds a usable manifest, the
// error names the backup and what was wrong on each source.
//
// A restore needs only the manifest, which carries the envelope: a key.json
// that no source holds intact is left for CheckObjectsAll to report and does
// not fail the chain.
//
// With opts.Repair, healed objects are written back to sources[0]. A
// manifest is written back only when every other object of its backup is
// intact there (the manifest is written last: its presence says the backup
// is complete); otherwise the heal's RepairError says so. On error, the
// heals made until then are returned with it.
func ChainFromWith(ctx context.Context, sources []Source, keeper SecretsKeeper, database, backupID string, opts HealOptions) ([]Layer, []Heal, error) {
	if len(sources) == 0 {
		return nil, nil, fmt.Errorf("%w: no source to read backup %s from", ErrBadInput, backupID)
	}
	if err := ValidateDatabaseName(database); err != nil {
		return nil, nil, err
	}
	var (
		rev   []Layer
		heals []Heal
	)
	id := backupID
	for {
		if len(rev) == maxChainLength {
			return nil, heals, fmt.Errorf("%w: the chain of %s is longer than %d backups", ErrCorrupt, backupID, maxChainLength)
		}
		if err := ValidateBackupID(id); err != nil {
			return nil, heals, err
		}
		var (
			b   *Backup
			key *DataKey
		)
		at, manifestHeal, err := firstIntact(ctx, sources, ManifestKey(database, id), id, func(s Source) error {
			var err error
			b, key, err = readAuthenticBackup(ctx, s.Bucket, keeper, database, id)
			return err
		})
		if err != nil {
			if id != backupID {
				return nil, heals, fmt.Errorf("backup %s depends on %s, which cannot be read: %w", backupID, id, err)
			}
			return nil, heals, err
		}
		if err := refuseLogical(b.Manifest); err != nil {
			return nil, heals, err
		}
		envelopeHeal, err := healKeyEnvelope(ctx, sources, b, opts)
		if err != nil {
			return nil, heals, fmt.Errorf("key envelope of backup %s: %w", id, err)
		}
		if envelopeHeal != nil {
			heals = append(heals, *envelopeHeal)
		}
		if manifestHeal != nil {
			if opts.Repair {
				repairManifest(ctx, sources[0], b, manifestHeal)
			}
			heals = append(heals, *manifestHeal)
		}
		if len(rev) > 0 {
			if err := checkParent(rev[len(rev)-1].Manifest(), b.Manifest); err != nil {
				return nil, heals, err
			}
		}
		rev = append(rev, Layer{Backup: b, Key: key, Source: sources[at].Name})
		if b.Manifest.Type == BackupFull {
			break
		}
		id = b.Manifest.Parent
	}
	chain := make([]Layer, len(rev))
	for i, l := range rev {
		chain[len(rev)-1-i] = l
	}
	return chain, heals, nil
}

// readAuthenticBackup reads a backup's manifest and accepts it only if it
// parses, its data key unwraps, its MAC holds, and the file is byte for
// byte what SealManifest writes: the MAC covers the body, so this last
// check catches damage to the few bytes around it (field names, spacing,
// the case of the MAC's hex digits) that would otherwise go unnoticed.
func readAuthenticBackup(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID string) (*Backup, *DataKey, error) {
	b, err := ReadBackup(ctx, bucket, database, backupID)
	if err != nil {
		return nil, nil, err
	}
	key, err := b.Open(ctx, keeper)
	if err != nil {
		return nil, nil, err
	}
	if err := checkManifestForm(b.raw); err != nil {
		return nil, nil, &ObjectError{Op: "check manifest", Key: ManifestKey(database, backupID), Err: err}
	}
	return b, key, nil
}

// checkManifestForm checks that an authenticated manifest file is exactly
// what SealManifest writes for its body and MAC.
func checkManifestForm(raw []byte) error {
	var f manifestFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("%w: manifest is not valid JSON: %v", ErrCorrupt, err)
	}
	mac, err := hex.DecodeString(f.MAC)
	if err != nil {
		return fmt.Errorf("%w: manifest MAC is not hex", ErrCorrupt)
	}
	want, err := json.MarshalIndent(manifestFile{Body: f.Body, MAC: hex.EncodeToString(mac)}, "", "  ")
	if err != nil || !bytes.Equal(want, raw) {
		return fmt.Errorf("%w: manifest file differs from its written form outside the authenticated body", ErrCorrupt)
	}
	return nil
}

// checkKeyEnvelope checks a stored key envelope against the authenticated
// copy in b's manifest: it must be exactly the bytes WriteKeyEnvelope wrote.
func checkKeyEnvelope(ctx context.Context, bucket *blob.Bucket, b *Backup, want []byte) error {
	m := b.Manifest
	key := KeyEnvelopeKey(m.Database.Name, m.BackupID)
	data, err := getObject(ctx, bucket, key, 1<<20, nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(data, want) {
		return &ObjectError{Op: "check key envelope", Key: key, Err: fmt.Errorf("%w: key envelope differs from the authenticated copy in the manifest", ErrCorrupt)}
	}
	return nil
}

// healKeyEnvelope finds an intact key envelope of b, starting with the
// primary. No intact copy anywhere is not an error (see ChainFromWith);
// a transient error on the primary is.
func healKeyEnvelope(ctx context.Context, sources []Source, b *Backup, opts HealOptions) (*Heal, error) {
	m := b.Manifest
	want, err := marshalEnvelope(m.Key)
	if err != nil {
		return nil, err
	}
	_, h, err := firstIntact(ctx, sources, KeyEnvelopeKey(m.Database.Name, m.BackupID), m.BackupID, func(s Source) error {
		return checkKeyEnvelope(ctx, s.Bucket, b, want)
	})
	if err != nil {
		var none *NoIntactCopyError
		if errors.As(err, &none) || len(sources) == 1 && isDamage(err) {
			return nil, nil
		}
		return nil, err
	}
	if h != nil && opts.Repair {
		repair(ctx, sources[0].Bucket, h.Key, want, h)
	}
	return h, nil
}

// repairManifest writes b's manifest back to the primary if every other
// object of the backup is intact there.
func repairManifest(ctx context.Context, primary Source, b *Backup, h *Heal) {
	problems, err := checkStoredObjects(ctx, primary.Bucket, b)
	if err != nil {
		h.RepairError = fmt.Sprintf("not written back: checking the backup's other objects on %s: %v", primary.Name, err)
		return
	}
	if len(problems) > 0 {
		h.RepairError = fmt.Sprintf("not written back: %d other objects of the backup are missing or damaged on %s (first: %v), and a manifest is only written over a complete backup", len(problems), primary.Name, problems[0])
		return
	}
	repair(ctx, primary.Bucket, h.Key, b.raw, h)
}

// ObjectProblem is a missing or damaged object found by CheckObjectsAll.
type ObjectProblem struct {
	Key string
	Err error // wraps ErrNotFound, ErrCorrupt, ErrWrongKey or ErrUnsupportedFormat
}

func (p ObjectProblem) String() string { return p.Key + ": " + p.Err.Error() }

// CheckObjectsAll checks every object a backup stores in bucket — manifest,
// key envelope, each chunk, page index — and returns one problem for each
// that is missing or damaged, in that order. Unlike CheckObjects it does not
// stop at the first. The manifest must authenticate with keeper and be
// stored exactly as written; the key envelope must equal the manifest's
// copy; chunks and the page index must have the size and SHA-256 the
// manifest records (chunks are not decrypted). When the manifest itself is
// unusable the objects it lists cannot be checked: only the key envelope is,
// on its own (well-formed and unwrapped by keeper).
//
// Errors that say nothing about the objects (storage unreachable, context
// cancelled, bad names) are returned as the error, with the problems found
// so far.
func CheckObjectsAll(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID string) ([]ObjectProblem, error) {
	if err := ValidateDatabaseName(database); err != nil {
		return nil, err
	}
	if err := ValidateBackupID(backupID); err != nil {
		return nil, err
	}
	b, _, err := readAuthenticBackup(ctx, bucket, keeper, database, backupID)
	if err == nil {
		return checkStoredObjects(ctx, bucket, b)
	}
	if !isDamage(err) {
		return nil, err
	}
	problems := []ObjectProblem{{Key: ManifestKey(database, backupID), Err: err}}
	key := KeyEnvelopeKey(database, backupID)
	if err := checkEnvelopeAlone(ctx, bucket, keeper, key); err != nil {
		if !isDamage(err) {
			return problems, err
		}
		problems = append(problems, ObjectProblem{Key: key, Err: err})
	}
	return problems, nil
}

// checkEnvelopeAlone checks a key envelope without a manifest to compare it
// with: it must be in its written form and unwrap with keeper.
func checkEnvelopeAlone(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, key string) error {
	data, err := getObject(ctx, bucket, key, 1<<20, nil)
	if err != nil {
		return err
	}
	var env KeyEnvelope
	if err := jsonUnmarshalStrict(data, &env); err != nil {
		return &ObjectError{Op: "parse key envelope", Key: key, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	if want, err := marshalEnvelope(env); err != nil || !bytes.Equal(want, data) {
		return &ObjectError{Op: "check key envelope", Key: key, Err: fmt.Errorf("%w: key envelope differs from its written form", ErrCorrupt)}
	}
	if _, err := OpenDataKey(ctx, keeper, env); err != nil {
		return &ObjectError{Op: "open key envelope", Key: key, Err: err}
	}
	return nil
}

// checkStoredObjects checks, in bucket, the key envelope, chunks and page
// index of the authenticated backup b (which may have been read from
// another source), and returns the damaged ones.
func checkStoredObjects(ctx context.Context, bucket *blob.Bucket, b *Backup) ([]ObjectProblem, error) {
	m := b.Manifest
	database, backupID := m.Database.Name, m.BackupID
	var problems []ObjectProblem
	note := func(key string, err error) error {
		if err == nil {
			return nil
		}
		if !isDamage(err) {
			return err
		}
		problems = append(problems, ObjectProblem{Key: key, Err: err})
		return nil
	}
	want, err := marshalEnvelope(m.Key)
	if err != nil {
		return nil, err
	}
	if err := note(KeyEnvelopeKey(database, backupID), checkKeyEnvelope(ctx, bucket, b, want)); err != nil {
		return problems, err
	}
	var buf []byte
	for _, c := range m.Chunks {
		key := ChunkKey(database, backupID, c.Index)
		buf, err = getObject(ctx, bucket, key, MaxChunkBytes, buf)
		if err == nil {
			err = checkStoredHash(key, fmt.Sprintf("chunk %d", c.Index), buf, ObjectRef{StoredBytes: c.StoredBytes, StoredSHA256: c.StoredSHA256})
		}
		if err := note(key, err); err != nil {
			return problems, err
		}
	}
	if m.PageIndex != nil {
		key := PageIndexKey(database, backupID)
		if err := note(key, checkStoredStream(ctx, bucket, key, "page index", *m.PageIndex)); err != nil {
			return problems, err
		}
	}
	return problems, nil
}

// checkStoredHash checks an object's bytes against the size and SHA-256 its
// manifest records.
func checkStoredHash(key, what string, data []byte, want ObjectRef) error {
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != want.StoredSHA256 {
		return &ObjectError{Op: "check " + what, Key: key, Err: fmt.Errorf("%w: stored object (%d bytes) differs from the hash the manifest records (bit rot, truncation or tampering)", ErrCorrupt, len(data))}
	}
	return nil
}

// checkStoredStream is checkStoredHash for an object read as a stream.
func checkStoredStream(ctx context.Context, bucket *blob.Bucket, key, what string, want ObjectRef) error {
	sum, n, err := hashObject(ctx, bucket, key)
	if err != nil {
		return err
	}
	if sum != want.StoredSHA256 {
		return &ObjectError{Op: "check " + what, Key: key, Err: fmt.Errorf("%w: stored object (%d bytes) differs from the hash the manifest records (bit rot, truncation or tampering)", ErrCorrupt, n)}
	}
	return nil
}

// openObject opens an object for reading; a missing object is ErrNotFound.
func openObject(ctx context.Context, bucket *blob.Bucket, key string) (*blob.Reader, error) {
	r, err := bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, &ObjectError{Op: "read", Key: key, Err: ErrNotFound}
		}
		return nil, &ObjectError{Op: "open", Key: key, Err: err}
	}
	return r, nil
}

// copyObject copies the object key from one bucket to another as a stream,
// committing the copy only if it has the size and SHA-256 of want. For file
// destinations the new file and its directory are fsynced.
func copyObject(ctx context.Context, from, to *blob.Bucket, key string, want ObjectRef) error {
	r, err := openObject(ctx, from, key)
	if err != nil {
		return err
	}
	defer r.Close()
	_, _, err = putStream(ctx, to, key, newCheckedReader(r, key, want.StoredSHA256, want.StoredBytes), true)
	return unwrapCorruptRead(err)
}

// CheckPageIndexFrom reads the whole page index of layer l, authenticating
// every segment and the object's hash, from the first source whose copy is
// intact, and reports a Heal when that is not sources[0] (written back to
// it with opts.Repair). Both formats are checked on their own: a sparse
// index's bitmaps and hashes authenticate without its chain. When no
// source has an intact copy the error is a *NoIntactCopyError naming the
// key and each source's problem.
func CheckPageIndexFrom(ctx context.Context, sources []Source, l Layer, opts HealOptions) ([]Heal, error) {
	_, h, err := healPageIndex(ctx, sources, l, opts, func(s Source) error {
		_, err := checkPageIndex(ctx, s.Bucket, l)
		return err
	})
	return h, err
}

// PageIndexMismatchFrom is PageIndexMismatch over several copies: it
// compares f with the page index of the last backup of chain, merged along
// the chain. It reads every index from sources[0]; when one of them is
// damaged there, it finds the first source with an intact copy of each
// index the merge needs (newest first, down to the first that lists every
// page, as in CheckPageIndexFrom, with a Heal for each taken from
// elsewhere) and compares again. An error reading f is returned as it is.
func PageIndexMismatchFrom(ctx context.Context, sources []Source, chain []Layer, f io.ReaderAt, opts HealOptions) (uint32, []Heal, error) {
	if len(sources) == 0 {
		return 0, nil, fmt.Errorf("%w: no source to read the page index from", ErrBadInput)
	}
	buckets := make([]*blob.Bucket, len(chain))
	for i := range buckets {
		buckets[i] = sources[0].Bucket
	}
	page, err := pageIndexMismatch(ctx, chain, buckets, f)
	var local *localError
	if errors.As(err, &local) {
		return 0, nil, local.err
	}
	if err == nil || !isDamage(err) || len(sources) == 1 {
		return page, nil, err
	}
	var heals []Heal
	for i := len(chain) - 1; i >= 0; i-- {
		var sparse bool
		at, h, err := healPageIndex(ctx, sources, chain[i], opts, func(s Source) error {
			var err error
			sparse, err = checkPageIndex(ctx, s.Bucket, chain[i])
			return err
		})
		heals = append(heals, h...)
		if err != nil {
			return 0, heals, err
		}
		buckets[i] = sources[at].Bucket
		if !sparse {
			break
		}
	}
	page, err = pageIndexMismatch(ctx, chain, buckets, f)
	if errors.As(err, &local) {
		return 0, heals, local.err
	}
	return page, heals, err
}

// healPageIndex finds the first source on which try succeeds for l's page
// index and returns its position, with a Heal when it is not the first.
func healPageIndex(ctx context.Context, sources []Source, l Layer, opts HealOptions, try func(Source) error) (int, []Heal, error) {
	if len(sources) == 0 {
		return -1, nil, fmt.Errorf("%w: no source to read the page index from", ErrBadInput)
	}
	m := l.Manifest()
	key := PageIndexKey(m.Database.Name, m.BackupID)
	at, h, err := firstIntact(ctx, sources, key, m.BackupID, try)
	if err != nil || h == nil {
		return at, nil, err
	}
	if opts.Repair {
		if err := copyObject(ctx, sources[at].Bucket, sources[0].Bucket, key, *m.PageIndex); err != nil {
			h.RepairError = err.Error()
		} else {
			h.Repaired = true
		}
	}
	return at, []Heal{*h}, nil
}
