package repository

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// keyAlgorithm names how chunk and MAC keys are derived from the data key
// and how chunks are sealed. It is recorded in every envelope.
const keyAlgorithm = "hkdf-sha256/aes-256-gcm/hmac-sha256"

// KeyEnvelope is a backup's data key wrapped by a secrets keeper (envelope
// encryption). It is stored as key.json before any chunk and copied into the
// manifest. Wrapped is ciphertext: without the keeper it reveals nothing.
type KeyEnvelope struct {
	Format    int       `json:"format"`
	Algorithm string    `json:"algorithm"`
	Keeper    string    `json:"keeper"` // a description of the keeper, never key material
	Wrapped   []byte    `json:"wrapped"`
	CreatedAt time.Time `json:"created_at"`
}

// DataKey is an unwrapped per-backup data key and the subkeys derived from it.
// It lives only in worker memory.
type DataKey struct {
	chunkAEAD cipher.AEAD
	macKey    []byte
}

// NewDataKey creates a random data key and wraps it with keeper.
func NewDataKey(ctx context.Context, keeper SecretsKeeper, keeperDescription string, now time.Time) (*DataKey, KeyEnvelope, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, KeyEnvelope{}, fmt.Errorf("generate data key: %w", err)
	}
	wrapped, err := keeper.Encrypt(ctx, raw)
	if err != nil {
		return nil, KeyEnvelope{}, fmt.Errorf("wrap data key with keeper %s: %w", keeperDescription, err)
	}
	key, err := deriveDataKey(raw)
	if err != nil {
		return nil, KeyEnvelope{}, err
	}
	return key, KeyEnvelope{
		Format:    FormatVersion,
		Algorithm: keyAlgorithm,
		Keeper:    keeperDescription,
		Wrapped:   wrapped,
		CreatedAt: now.UTC(),
	}, nil
}

// OpenDataKey unwraps env with keeper. A keeper that cannot open the envelope
// yields ErrWrongKey: the usual cause is a different key file or KMS key than
// the one the backup was written with.
func OpenDataKey(ctx context.Context, keeper SecretsKeeper, env KeyEnvelope) (*DataKey, error) {
	if env.Format > FormatVersion {
		return nil, fmt.Errorf("%w: key envelope format %d, this Bulwark reads up to %d", ErrUnsupportedFormat, env.Format, FormatVersion)
	}
	if env.Algorithm != keyAlgorithm {
		return nil, fmt.Errorf("%w: key envelope algorithm %q is not %q", ErrCorrupt, env.Algorithm, keyAlgorithm)
	}
	raw, err := keeper.Decrypt(ctx, env.Wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: the configured keeper cannot unwrap this backup's data key (it was wrapped by %s): %v", ErrWrongKey, env.Keeper, err)
	}
	if len(raw) != 32 {
		return nil, fmt.Errorf("%w: unwrapped data key has %d bytes, want 32", ErrCorrupt, len(raw))
	}
	return deriveDataKey(raw)
}

func deriveDataKey(raw []byte) (*DataKey, error) {
	chunkKey, err := hkdf.Key(sha256.New, raw, nil, "bulwark chunk encryption v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive chunk key: %w", err)
	}
	macKey, err := hkdf.Key(sha256.New, raw, nil, "bulwark authentication v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive mac key: %w", err)
	}
	block, err := aes.NewCipher(chunkKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &DataKey{chunkAEAD: aead, macKey: macKey}, nil
}

// mac returns HMAC-SHA256 over the given parts, each length-prefixed so that
// no two different part lists collide.
func (k *DataKey) mac(parts ...[]byte) []byte {
	h := hmac.New(sha256.New, k.macKey)
	var n [8]byte
	for _, p := range parts {
		putUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	return h.Sum(nil)
}

func marshalEnvelope(env KeyEnvelope) ([]byte, error) {
	return json.MarshalIndent(env, "", "  ")
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32)
	b[4], b[5], b[6], b[7] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// SecretsKeeper wraps and unwraps data keys; *secrets.Keeper satisfies it.
type SecretsKeeper interface {
	Encrypt(ctx context.Context, plaintext []byte) ([]byte, error)
	Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error)
}

func randRead(b []byte) (int, error) { return rand.Read(b) }

func equalMAC(a, b []byte) bool { return hmac.Equal(a, b) }
