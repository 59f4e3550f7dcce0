package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/switchboard-xmpp/switchboard/xmpp/client"
	"github.com/switchboard-xmpp/switchboard/xmpp/jid"
	"github.com/switchboard-xmpp/switchboard/xmpp/sasl"
	"github.com/switchboard-xmpp/switchboard/xmpp/stream"
)

// Connect, go online, say something and wait for the answer. This needs a
// server for example.com, so it has no output to check.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := client.Dial(ctx, client.Config{
		JID:      jid.MustParse("juliet@example.com"),
		Password: "r0m30",
		Resource: "balcony",
	})
	switch {
	case errors.Is(err, sasl.NotAuthorized):
		log.Fatal("wrong password")
	case err != nil:
		log.Fatal(err)
	}
	defer c.Close(ctx)
	fmt.Println("bound", c.JID(), "with", c.Mechanism())

	roster, err := c.Online(ctx, client.Presence{Status: "on the balcony"})
	if err != nil {
		log.Fatal(err)
	}
	for _, item := range roster.Items {
		fmt.Println("contact", item.JID, item.Subscription)
	}

	romeo := jid.MustParse("romeo@example.net")
	err = c.SendMessage(ctx, client.Message{To: romeo, Type: client.MessageChat, Body: "Art thou not Romeo?"})
	if err != nil {
		log.Fatal(err)
	}
	m, err := c.NextMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.From, "says", m.Body)
}

// Keep a session up across server restarts, going online each time.
func ExampleKeeper() {
	k := &client.Keeper{
		Config: client.Config{JID: jid.MustParse("bot@example.com"), Password: "s3cret"},
		OnSession: func(ctx context.Context, c *client.Client) {
			if _, err := c.Online(ctx, client.Presence{}); err != nil {
				log.Print(err)
			}
			go func() {
				for {
					m, err := c.NextMessage(ctx)
					if err != nil {
						return // the session ended; the Keeper dials again
					}
					_ = c.SendMessage(ctx, client.Message{To: m.From, Type: m.Type, Body: "echo: " + m.Body})
				}
			}()
		},
	}
	if err := k.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// A test server with a self-signed certificate: trust it explicitly and
// connect to its address, skipping DNS.
func ExampleConfig_selfSigned() {
	pem, err := os.ReadFile("testdata/localhost.pem") // the server's certificate
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	ctx := context.Background()
	c, err := client.Dial(ctx, client.Config{
		JID:       jid.MustParse("juliet@localhost"),
		Password:  "r0m30",
		Addr:      "127.0.0.1:5222",
		TLSConfig: &tls.Config{RootCAs: pool},
	})
	if err != nil {
		log.Fatal(err)
	}
	<-c.Done()
	if errors.Is(c.Err(), stream.Conflict) {
		fmt.Println("another session took our resource")
	}
}
