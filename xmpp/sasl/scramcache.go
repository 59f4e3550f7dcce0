package sasl

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// ScramCache keeps the salted passwords a SCRAM client derived, keyed by
// hash, password, salt and iteration count, so that logging in again to
// an account whose server keeps its salt costs the client no PBKDF2 run.
// RFC 5802 section 5.1 allows a client to cache this value. It is meant
// for clients that log in many times with one password, such as a load
// tool; an interactive client gains little from it.
//
// The password is not kept: an entry is found by a SHA-256 digest of its
// inputs. A ScramCache is safe for concurrent use; the zero value is not
// usable, make one with NewScramCache.
type ScramCache struct {
	max int

	mu      sync.Mutex
	entries map[[sha256.Size]byte][]byte

	hits, misses atomic.Uint64
}

// DefaultScramCacheSize is the capacity NewScramCache uses for a size of
// zero or less.
const DefaultScramCacheSize = 100_000

// NewScramCache returns a cache of at most size salted passwords. When
// full, it starts again empty (a load tool reuses a fixed set of accounts,
// so a cache large enough for them never fills).
func NewScramCache(size int) *ScramCache {
	if size <= 0 {
		size = DefaultScramCacheSize
	}
	return &ScramCache{max: size, entries: make(map[[sha256.Size]byte][]byte)}
}

// NewClient is NewScramClient with the salted password taken from the
// cache when it has it, and added to it otherwise.
func (k *ScramCache) NewClient(mech, username, password, authzid, cbType string, cbData []byte, serverSupportsPlus bool) (Client, error) {
	cl, err := NewScramClient(mech, username, password, authzid, cbType, cbData, serverSupportsPlus)
	if err != nil {
		return nil, err
	}
	cl.(*scramClient).cache = k
	return cl, nil
}

// Stats returns how many logins found their salted password in the cache
// and how many derived it.
func (k *ScramCache) Stats() (hits, misses uint64) { return k.hits.Load(), k.misses.Load() }

// saltedPassword returns Hi(password, salt, iterations) for h, from the
// cache or derived and kept.
func (k *ScramCache) saltedPassword(h scramHash, password string, salt []byte, iterations int) ([]byte, error) {
	d := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(iterations))
	// Each variable-length part is preceded by its length, so that no
	// two inputs share a digest input.
	for _, part := range [][]byte{[]byte(h.name), []byte(password), salt} {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(part)))
		d.Write(l[:])
		d.Write(part)
	}
	d.Write(n[:])
	var key [sha256.Size]byte
	d.Sum(key[:0])

	k.mu.Lock()
	salted, ok := k.entries[key]
	k.mu.Unlock()
	if ok {
		k.hits.Add(1)
		return salted, nil
	}
	k.misses.Add(1)
	salted, err := h.saltedPassword(password, salt, iterations)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if len(k.entries) >= k.max {
		clear(k.entries)
	}
	k.entries[key] = salted
	k.mu.Unlock()
	return salted, nil
}
