package sasl

import (
	"bytes"
	"testing"
)

func TestScramCacheLogsInAndDerivesOncePerSalt(t *testing.T) {
	k, err := NewScramKeys(HashSHA256, testPassword, 4096)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tlsConfig(accounts{testUser: {Scram: []ScramKeys{k}}})
	cache := NewScramCache(0)
	for i := range 3 {
		c, err := cache.NewClient(ScramSHA256, testUser, testPassword, "", "", nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if user, err, _ := run(t, cfg, c); err != nil || user != testUser {
			t.Fatalf("login %d: %q, %v", i, user, err)
		}
	}
	if hits, misses := cache.Stats(); hits != 2 || misses != 1 {
		t.Errorf("hits %d, misses %d; want 2 and 1", hits, misses)
	}

	// A wrong password is not taken from the cache: it fails.
	c, _ := cache.NewClient(ScramSHA256, testUser, "not the password", "", "", nil, true)
	if _, err, _ := run(t, cfg, c); err == nil {
		t.Error("a wrong password logged in")
	}
	// Nor are the other hash's or another salt's keys.
	k1, err := NewScramKeys(HashSHA1, testPassword, 4096)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := NewScramKeys(HashSHA256, testPassword, 4096) // a new salt
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mech string
		keys ScramKeys
	}{{ScramSHA1, k1}, {ScramSHA256, k2}} {
		cfg := tlsConfig(accounts{testUser: {Scram: []ScramKeys{tc.keys}}})
		_, before := cache.Stats()
		c, _ := cache.NewClient(tc.mech, testUser, testPassword, "", "", nil, true)
		if _, err, _ := run(t, cfg, c); err != nil {
			t.Errorf("%s with a new salt: %v", tc.mech, err)
		}
		if _, after := cache.Stats(); after != before+1 {
			t.Errorf("%s with a new salt was not derived afresh", tc.mech)
		}
	}
}

func TestScramCacheHoldsWhatPBKDF2Gives(t *testing.T) {
	cache := NewScramCache(2)
	salt := []byte("0123456789abcdef")
	want, err := hashSHA256.saltedPassword("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := cache.saltedPassword(hashSHA256, "pencil", salt, 4096)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %x, %v; want %x", got, err, want)
		}
	}
	// Inputs that concatenate alike are different entries.
	a, _ := cache.saltedPassword(hashSHA256, "pencil1", []byte("23"), 4096)
	b, _ := cache.saltedPassword(hashSHA256, "pencil", []byte("123"), 4096)
	if bytes.Equal(a, b) {
		t.Error("two different inputs share an entry")
	}
	if n := len(cache.entries); n > 2 {
		t.Errorf("%d entries in a cache of 2", n)
	}
}

// BenchmarkScramSHA256ClientServerLoginCached is
// BenchmarkScramSHA256ClientServerLogin with the client's salted password
// cached: what a load tool pays per login to an account it used before.
func BenchmarkScramSHA256ClientServerLoginCached(b *testing.B) {
	k, err := NewScramKeys(HashSHA256, testPassword, 4096)
	if err != nil {
		b.Fatal(err)
	}
	cfg := tlsConfig(accounts{testUser: {Scram: []ScramKeys{k}}})
	cache := NewScramCache(0)
	b.ReportAllocs()
	for b.Loop() {
		c, _ := cache.NewClient(ScramSHA256Plus, testUser, testPassword, "", CBTLSExporter, bothBindings[CBTLSExporter], true)
		if _, err, _ := run(b, cfg, c); err != nil {
			b.Fatal(err)
		}
	}
}
