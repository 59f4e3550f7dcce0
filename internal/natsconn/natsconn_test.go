package natsconn

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/natsembed"
)

func TestConnectCheckAndDrainAgainstARealServer(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := Connect(context.Background(), log, srv.ClientURL(), "test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	check := Check(nc)
	if err := check(); err != nil {
		t.Fatalf("connected client fails its check: %v", err)
	}
	if err := Drain(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() {
		t.Fatal("drained connection is not closed")
	}
	if err := check(); err == nil {
		t.Fatal("closed client passes its check")
	}
}

func TestConnectNamesNATSAndTheURLWhenUnreachable(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := Connect(context.Background(), log, "nats://127.0.0.1:1", "test", 300*time.Millisecond)
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if !strings.Contains(err.Error(), "NATS") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error does not name NATS and the URL: %v", err)
	}
}
