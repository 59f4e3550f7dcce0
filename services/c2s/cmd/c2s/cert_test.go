package main

import (
	"bytes"
	"sync"
	"testing"
)

func TestNodesSharingADataDirectoryGetOneValidSelfSignedPair(t *testing.T) {
	s := &settings{dataDir: t.TempDir()}
	const nodes = 8
	var wg sync.WaitGroup
	leaves := make([][]byte, nodes)
	errs := make([]error, nodes)
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cert, err := selfSigned(s, "localhost")
			errs[i] = err
			if err == nil {
				leaves[i] = cert.Certificate[0]
			}
		}()
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if !bytes.Equal(leaves[i], leaves[0]) {
			t.Fatalf("node %d got another certificate than node 0", i)
		}
	}
}
