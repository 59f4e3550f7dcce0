package app

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-xmpp/switchboard/internal/bus"
	busv1 "github.com/switchboard-xmpp/switchboard/proto/bus/v1"
)

// A stop drains the clients first: with DrainRedirect set, an open stream
// is told to go to that host (RFC 6120 section 4.9.3.19).
func TestStopSendsClientsToTheDrainRedirect_RFC6120_4_9_3_19(t *testing.T) {
	cfg := testConfig(t)
	cfg.DrainRedirect = "xmpp2.localhost:5333"
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-a.Ready()
	client := dial(t, a.C2SAddr())
	_, _, d := openStreamDecoder(t, client, "localhost")
	cancel()

	client.SetDeadline(time.Now().Add(10 * time.Second))
	var streamErr struct {
		Host string `xml:"urn:ietf:params:xml:ns:xmpp-streams see-other-host"`
	}
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("reading after stop: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "error" {
			if err := d.DecodeElement(&streamErr, &se); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if streamErr.Host != "xmpp2.localhost:5333" {
		t.Errorf("see-other-host %q, want the configured redirect", streamErr.Host)
	}
	io.WriteString(client, "</stream:stream>")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

// A drain asked for on the bus (the admin API's drain) ends the
// one-process server too: Run returns nil without its context ending.
func TestControlDrainEndsRun(t *testing.T) {
	cfg := testConfig(t)
	cfg.NATSListen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-a.Ready()
	nc, err := nats.Connect(a.NATSURL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, _ := proto.Marshal(&busv1.ControlRequest{Op: &busv1.ControlRequest_Drain{Drain: &busv1.Drain{Mode: busv1.Drain_MODE_SYSTEM_SHUTDOWN}}})
	// Ready comes as c2s starts; its control subscription follows.
	var m *nats.Msg
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err = nc.Request(bus.New(bus.DefaultPrefix, bus.DefaultPartitions).Control(cfg.NodeID), b, 10*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	var resp busv1.ControlResponse
	if err := proto.Unmarshal(m.Data, &resp); err != nil || resp.GetError() != "" {
		t.Fatalf("drain: %v %v", &resp, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after the drain: %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		// Readiness said so meanwhile.
		if r, err := http.Get("http://" + a.MetricsAddr().String() + "/readyz"); err == nil {
			r.Body.Close()
			t.Logf("readyz: %s", r.Status)
		}
		t.Fatal("Run did not return after the drain")
	}
}
