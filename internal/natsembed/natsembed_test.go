package natsembed

import (
	"testing"
	"time"
)

func TestInProcessServerCarriesMessagesWithoutTCPListener(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if u := s.ClientURL(); u != "" {
		t.Fatalf("ClientURL = %q, want none without a listener", u)
	}
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("t.x")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("t.x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "hello" {
		t.Fatalf("got %q", m.Data)
	}
}

func TestTCPListenerOnRandomPort(t *testing.T) {
	s, err := Start(Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if s.ClientURL() == "" {
		t.Fatal("no client URL with a listener")
	}
}

func TestBadListenAddressIsRejected(t *testing.T) {
	if _, err := Start(Options{Listen: "127.0.0.1"}); err == nil {
		t.Fatal("want an error for an address without a port")
	}
}
