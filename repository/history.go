package repository

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// Tamper evidence. Every manifest names the backup that was newest when it
// was written and the SHA-256 of that backup's stored manifest, so the
// backups of a database form a hash chain, newest to oldest. Manifests are
// authenticated, so the links cannot be rewritten without the key. A backup
// removed behind Bulwark's back breaks the chain where the next one names
// it; a manifest replaced by another (even a validly sealed one) no longer
// has the hash its successor recorded. Bulwark's own removals (retention,
// forget) leave a tombstone: an authenticated record of the removed
// backup's manifest hash and link, so the chain continues through it.
//
// What this cannot see: the removal of the newest backups (nothing names
// them yet). Their copies on the other destinations, and the Temporal
// history of the backup workflow, still do.

// HistoryLink is a manifest's link to the backup before it.
type HistoryLink struct {
	Previous       string `json:"previous"`
	PreviousSHA256 string `json:"previous_sha256"` // of that backup's stored manifest
}

const forgottenDir = "/forgotten/"

// TombstoneKey is the key of the record left when backupID was forgotten.
func TombstoneKey(database, backupID string) string {
	return databasesPrefix + database + forgottenDir + backupID + ".json"
}

// Tombstone records a backup that Bulwark removed on purpose.
type Tombstone struct {
	BackupID       string       `json:"backup_id"`
	ManifestSHA256 string       `json:"manifest_sha256"`
	History        *HistoryLink `json:"history,omitempty"`
	ForgottenAt    time.Time    `json:"forgotten_at"`
	Reason         string       `json:"reason"`
}

// tombstoneFile is the stored form: authenticated with the forgotten
// backup's own data key, whose envelope it keeps.
type tombstoneFile struct {
	Body json.RawMessage `json:"body"`
	Key  KeyEnvelope     `json:"key"`
	MAC  string          `json:"mac"`
}

// manifestSHA256 is the hash a successor records of a stored manifest.
func (b *Backup) manifestSHA256() string {
	sum := sha256.Sum256(b.raw)
	return hex.EncodeToString(sum[:])
}

// HistoryLinkFor returns the link a new backup of database records: to the
// newest complete backup, or when there is none, to the newest forgotten
// one; nil for the first backup of a database.
func HistoryLinkFor(ctx context.Context, bucket *blob.Bucket, database string) (*HistoryLink, error) {
	return historyLinkFor(ctx, bucket, nil, database)
}

// AuthenticHistoryLinkFor is HistoryLinkFor for a writer that holds the
// keeper: the newest backup's manifest must authenticate and be stored as
// written before its hash is recorded. Otherwise a read that returned
// damaged bytes (a bit flipped on the way) would become a link to a
// manifest nobody wrote, and every later history check would report the
// backup as replaced. A manifest that does not authenticate is not
// classified as corrupt here: the new backup is not damaged, and a retry
// reads it again.
func AuthenticHistoryLinkFor(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database string) (*HistoryLink, error) {
	return historyLinkFor(ctx, bucket, keeper, database)
}

func historyLinkFor(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database string) (*HistoryLink, error) {
	ids, err := ListBackups(ctx, bucket, database)
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		newest := ids[len(ids)-1]
		if keeper == nil {
			b, err := ReadBackup(ctx, bucket, database, newest)
			if err != nil {
				return nil, err
			}
			return &HistoryLink{Previous: b.Manifest.BackupID, PreviousSHA256: b.manifestSHA256()}, nil
		}
		b, _, err := readAuthenticBackup(ctx, bucket, keeper, database, newest)
		if errors.Is(err, ErrWrongKey) {
			// Written under another keeper: it cannot be authenticated
			// here. It is linked as stored when two reads agree on that.
			b, err = readTwice(ctx, bucket, database, newest)
		}
		if err != nil && isDamage(err) {
			return nil, fmt.Errorf("the newest backup %s, which the history must link to, cannot be read intact (%v)", newest, err)
		}
		if err != nil {
			return nil, err
		}
		return &HistoryLink{Previous: b.Manifest.BackupID, PreviousSHA256: b.manifestSHA256()}, nil
	}
	gone, err := forgottenIDs(ctx, bucket, database)
	if err != nil || len(gone) == 0 {
		return nil, err
	}
	newest := gone[len(gone)-1]
	data, err := getObject(ctx, bucket, TombstoneKey(database, newest), 1<<20, nil)
	if err != nil {
		return nil, err
	}
	var f tombstoneFile
	var t Tombstone
	if err := json.Unmarshal(data, &f); err != nil || json.Unmarshal(f.Body, &t) != nil {
		return nil, fmt.Errorf("%w: tombstone of %s is not valid JSON", ErrCorrupt, newest)
	}
	if t.BackupID != newest || !isSHA256Hex(t.ManifestSHA256) {
		return nil, fmt.Errorf("%w: tombstone of %s records backup %q with manifest hash %q", ErrCorrupt, newest, t.BackupID, t.ManifestSHA256)
	}
	return &HistoryLink{Previous: t.BackupID, PreviousSHA256: t.ManifestSHA256}, nil
}

// readTwice reads a backup's manifest twice and returns it when both reads
// return the same bytes.
func readTwice(ctx context.Context, bucket *blob.Bucket, database, backupID string) (*Backup, error) {
	b, err := ReadBackup(ctx, bucket, database, backupID)
	if err != nil {
		return nil, err
	}
	again, err := ReadBackup(ctx, bucket, database, backupID)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(b.raw, again.raw) {
		return nil, &ObjectError{Op: "read", Key: ManifestKey(database, backupID), Err: fmt.Errorf("%w: two reads returned different bytes", ErrCorrupt)}
	}
	return b, nil
}

// WriteTombstone records, before a backup is deleted, that Bulwark removed
// it and why. It must be written before the manifest is deleted.
func WriteTombstone(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID, reason string, now time.Time) error {
	b, err := ReadBackup(ctx, bucket, database, backupID)
	if err != nil {
		return err
	}
	key, err := b.Open(ctx, keeper)
	if err != nil {
		return err
	}
	body, err := json.MarshalIndent(Tombstone{
		BackupID: backupID, ManifestSHA256: b.manifestSHA256(), History: b.Manifest.History,
		ForgottenAt: now.UTC(), Reason: reason,
	}, "  ", "  ")
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(tombstoneFile{Body: body, Key: b.Manifest.Key, MAC: hex.EncodeToString(key.mac([]byte("tombstone"), body))}, "", "  ")
	if err != nil {
		return err
	}
	_, err = putObject(ctx, bucket, TombstoneKey(database, backupID), data, true)
	return err
}

// readTombstone reads and authenticates the tombstone of backupID.
func readTombstone(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID string) (*Tombstone, error) {
	key := TombstoneKey(database, backupID)
	if err := ValidateBackupID(backupID); err != nil {
		// A history link names it: the link is forged or damaged.
		return nil, &ObjectError{Op: "read tombstone", Key: key, Err: fmt.Errorf("%w: the history names %v", ErrCorrupt, err)}
	}
	data, err := getObject(ctx, bucket, key, 1<<20, nil)
	if err != nil {
		return nil, err
	}
	var f tombstoneFile
	var t Tombstone
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, &ObjectError{Op: "parse tombstone", Key: key, Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	dk, err := OpenDataKey(ctx, keeper, f.Key)
	if err != nil {
		return nil, &ObjectError{Op: "open tombstone", Key: key, Err: err}
	}
	mac, err := hex.DecodeString(f.MAC)
	if err != nil || !hmac.Equal(mac, dk.mac([]byte("tombstone"), f.Body)) {
		return nil, &ObjectError{Op: "authenticate tombstone", Key: key, Err: fmt.Errorf("%w: tombstone fails authentication", ErrCorrupt)}
	}
	if err := json.Unmarshal(f.Body, &t); err != nil || t.BackupID != backupID {
		return nil, &ObjectError{Op: "parse tombstone", Key: key, Err: fmt.Errorf("%w: tombstone body is not of %s", ErrCorrupt, backupID)}
	}
	return &t, nil
}

// forgottenIDs lists the backups that have tombstones, oldest first.
func forgottenIDs(ctx context.Context, bucket *blob.Bucket, database string) ([]string, error) {
	objs, err := listDir(ctx, bucket, databasesPrefix+database+forgottenDir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, o := range objs {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, databasesPrefix+database+forgottenDir), ".json")
		if ok && ValidateBackupID(id) == nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, CompareBackupIDs)
	return ids, nil
}

// CheckHistory walks the hash chain from backupID back to the first backup
// that has no link (the database's first, or one written before links
// existed) and returns every break: a backup that is missing with no
// tombstone, a manifest or tombstone that is not the one its successor
// recorded, or one that does not authenticate. After a break the walk goes
// on from the newest backup older than the missing one, so one check names
// every break.
func CheckHistory(ctx context.Context, bucket *blob.Bucket, keeper SecretsKeeper, database, backupID string) ([]string, error) {
	ids, err := ListBackups(ctx, bucket, database)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	for _, id := range ids {
		listed[id] = true
	}
	var problems []string
	cur := backupID
	var link *HistoryLink
	for steps := 0; steps <= len(ids)+1 && cur != ""; steps++ {
		if !listed[cur] {
			break
		}
		b, err := ReadBackup(ctx, bucket, database, cur)
		if err == nil {
			_, err = b.Open(ctx, keeper)
		}
		if err != nil {
			if !IsNotFound(err) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongKey) {
				return problems, err
			}
			problems = append(problems, fmt.Sprintf("backup %s cannot be read to follow its history: %v", cur, err))
			cur = olderListed(ids, cur)
			continue
		}
		link = b.Manifest.History
		// Follow the link through tombstones to the next listed backup.
		for link != nil {
			if listed[link.Previous] {
				prev, err := ReadBackup(ctx, bucket, database, link.Previous)
				if err == nil && prev.manifestSHA256() != link.PreviousSHA256 {
					problems = append(problems, fmt.Sprintf("backup %s was altered or replaced: its manifest is not the one %s recorded (SHA-256 %s, recorded %s)",
						link.Previous, cur, prev.manifestSHA256(), link.PreviousSHA256))
				}
				break
			}
			t, err := readTombstone(ctx, bucket, keeper, database, link.Previous)
			if IsNotFound(err) {
				problems = append(problems, fmt.Sprintf("backup %s is missing and was not removed by Bulwark (no tombstone): the history of %s names it", link.Previous, cur))
				break
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrWrongKey) {
					return problems, err
				}
				problems = append(problems, fmt.Sprintf("the tombstone of %s cannot be trusted: %v", link.Previous, err))
				break
			}
			if t.ManifestSHA256 != link.PreviousSHA256 {
				problems = append(problems, fmt.Sprintf("the tombstone of %s does not record the manifest %s named (SHA-256 %s, recorded %s)", link.Previous, cur, t.ManifestSHA256, link.PreviousSHA256))
			}
			// Links run from newer to older backups; tombstones, which
			// nothing else orders, could otherwise send the walk round a loop.
			if t.History != nil && CompareBackupIDs(t.History.Previous, link.Previous) >= 0 {
				problems = append(problems, fmt.Sprintf("the tombstone of %s links to %s, which is not older (a forged or looping history)", link.Previous, t.History.Previous))
				link = nil
				break
			}
			cur, link = link.Previous, t.History
		}
		switch {
		case link == nil:
			cur = ""
		case listed[link.Previous]:
			cur = link.Previous
		default:
			cur = olderListed(ids, link.Previous)
		}
	}
	return problems, nil
}

// olderListed returns the newest listed backup older than id, or "".
func olderListed(ids []string, id string) string {
	for i := len(ids) - 1; i >= 0; i-- {
		if CompareBackupIDs(ids[i], id) < 0 {
			return ids[i]
		}
	}
	return ""
}
