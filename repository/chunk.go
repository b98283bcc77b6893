package repository

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// A chunk object is
//
//	"BWC1" | nonce (12 bytes) | tag (32 bytes) | AES-256-GCM(zstd(payload))
//
// with additional authenticated data "bulwark chunk v1" | backup id | index |
// tag, so a chunk moved to another backup or another position fails to open.
// The tag is an HMAC of the compressed payload at its position: a resumed
// backup compares it with a freshly compressed chunk to decide whether the
// object can be kept, without decrypting and without object metadata.
// The payload is a page set:
//
//	page size (uint32 BE) | count (uint32 BE) | count × page number (uint32 BE) | count × page
//
// Full backups store runs of consecutive pages; incremental backups store
// only the pages that changed, with the same framing.
const (
	chunkMagic     = "BWC1"
	chunkNonceSize = 12
	chunkTagSize   = 32
	chunkHeader    = len(chunkMagic) + chunkNonceSize + chunkTagSize
	// MaxChunkBytes bounds a chunk object and its payload. Readers refuse
	// anything larger instead of allocating what a hostile object asks for.
	MaxChunkBytes = 64 << 20
)

func chunkAAD(backupID string, index int, tag []byte) []byte {
	aad := make([]byte, 0, 72+len(backupID))
	aad = append(aad, "bulwark chunk v1\x00"...)
	aad = append(aad, backupID...)
	aad = append(aad, 0)
	aad = binary.BigEndian.AppendUint64(aad, uint64(index))
	return append(aad, tag...)
}

// SealChunk encrypts a compressed payload into a chunk object, appending to dst.
func (k *DataKey) SealChunk(dst, compressed []byte, backupID string, index int) []byte {
	dst = append(dst, chunkMagic...)
	nonce := make([]byte, chunkNonceSize)
	// A random nonce, not a counter: a retried backup re-seals chunk i with
	// the same key but possibly different pages, which a counter would turn
	// into nonce reuse.
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	dst = append(dst, nonce...)
	tag := k.chunkMAC(backupID, index, compressed)
	dst = append(dst, tag...)
	return k.chunkAEAD.Seal(dst, nonce, compressed, chunkAAD(backupID, index, tag))
}

// chunkTag returns the tag stored in a chunk object's header, or nil.
func chunkTag(object []byte) []byte {
	if len(object) < chunkHeader || string(object[:len(chunkMagic)]) != chunkMagic {
		return nil
	}
	return object[len(chunkMagic)+chunkNonceSize : chunkHeader]
}

// OpenChunk authenticates and decrypts a chunk object, appending the
// compressed payload to dst.
func (k *DataKey) OpenChunk(dst, object []byte, backupID string, index int) ([]byte, error) {
	if len(object) < chunkHeader+k.chunkAEAD.Overhead() || string(object[:len(chunkMagic)]) != chunkMagic {
		return nil, fmt.Errorf("%w: chunk %d is not a Bulwark chunk object (%d bytes)", ErrCorrupt, index, len(object))
	}
	nonce := object[len(chunkMagic) : len(chunkMagic)+chunkNonceSize]
	out, err := k.chunkAEAD.Open(dst, nonce, object[chunkHeader:], chunkAAD(backupID, index, chunkTag(object)))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d of backup %s fails authentication (altered, truncated, or moved from another backup or position)", ErrCorrupt, index, backupID)
	}
	return out, nil
}

// chunkMAC authenticates a chunk's compressed payload at its position; it is
// the tag in the chunk's header.
func (k *DataKey) chunkMAC(backupID string, index int, payload []byte) []byte {
	var idx [8]byte
	putUint64(idx[:], uint64(index))
	return k.mac([]byte("chunk"), []byte(backupID), idx[:], payload)
}

func (k *DataKey) equalChunkMAC(backupID string, index int, payload, stored []byte) bool {
	return stored != nil && hmac.Equal(k.chunkMAC(backupID, index, payload), stored)
}

// PageSet is a decoded chunk payload: page numbers and their contents.
type PageSet struct {
	PageSize int
	Pages    []uint32 // page numbers, 1-based, strictly increasing
	Data     []byte   // len(Pages) × PageSize bytes
}

// Page returns the contents of the i-th page in the set.
func (p *PageSet) Page(i int) []byte {
	return p.Data[i*p.PageSize : (i+1)*p.PageSize]
}

// AppendPayloadHeader appends the header of a page-set payload for the given
// page numbers; the page contents follow it.
func AppendPayloadHeader(dst []byte, pageSize int, pages []uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(pageSize))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(pages)))
	for _, p := range pages {
		dst = binary.BigEndian.AppendUint32(dst, p)
	}
	return dst
}

// DecodePayload parses a page-set payload, checking every length against the
// expected page size so that a hostile payload cannot cause out-of-range
// writes.
func DecodePayload(payload []byte, wantPageSize int) (PageSet, error) {
	if len(payload) < 8 {
		return PageSet{}, fmt.Errorf("%w: payload of %d bytes is shorter than its header", ErrCorrupt, len(payload))
	}
	pageSize := int(binary.BigEndian.Uint32(payload[0:4]))
	count := int(binary.BigEndian.Uint32(payload[4:8]))
	if pageSize != wantPageSize {
		return PageSet{}, fmt.Errorf("%w: payload page size %d, manifest says %d", ErrCorrupt, pageSize, wantPageSize)
	}
	if count < 0 || count > (len(payload)-8)/4 {
		return PageSet{}, fmt.Errorf("%w: payload claims %d pages in %d bytes", ErrCorrupt, count, len(payload))
	}
	pagesEnd := 8 + 4*count
	if len(payload)-pagesEnd != count*pageSize {
		return PageSet{}, fmt.Errorf("%w: payload has %d bytes of page data for %d pages of %d bytes", ErrCorrupt, len(payload)-pagesEnd, count, pageSize)
	}
	pages := make([]uint32, count)
	prev := uint32(0)
	for i := range pages {
		p := binary.BigEndian.Uint32(payload[8+4*i:])
		if p <= prev {
			return PageSet{}, fmt.Errorf("%w: page numbers not increasing at entry %d (%d after %d)", ErrCorrupt, i, p, prev)
		}
		pages[i], prev = p, p
	}
	return PageSet{PageSize: pageSize, Pages: pages, Data: payload[pagesEnd:]}, nil
}

// isChunkObject reports whether b starts like a chunk object; used by tests
// and diagnostics.
func isChunkObject(b []byte) bool { return bytes.HasPrefix(b, []byte(chunkMagic)) }

// sealTagSize is the length of the AES-GCM tag that ends every sealed chunk.
const sealTagSize = 16

// sealTag returns the hex AES-GCM tag of a sealed chunk object.
func sealTag(object []byte) string {
	if len(object) < sealTagSize {
		return ""
	}
	return hex.EncodeToString(object[len(object)-sealTagSize:])
}
