package main

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/switchboard-xmpp/switchboard/internal/grpcx"
	"github.com/switchboard-xmpp/switchboard/internal/imtest"
	rosterv1 "github.com/switchboard-xmpp/switchboard/proto/roster/v1"
)

// The RFC 6121 tables of the one-process suite (internal/imtest) run
// against the cluster: the two users of every Appendix A cell are on
// different c2s processes, and the sender of every delivery-matrix case is
// on c2s-1 while the account's resources alternate between c2s-2 and
// c2s-1; two routers, the roster service on Postgres, the registry on
// Redis.

// imEnv is the cluster as the shared scenarios see it. Accounts are made
// through the roster service's AccountService, as `switchboard user add`
// does, without a process per account.
func (c *cluster) imEnv(t *testing.T) *imtest.Env {
	t.Helper()
	cc, err := grpcx.NewClient(c.env["ROSTER_GRPC"], c.tls())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	accounts := rosterv1.NewAccountServiceClient(cc)
	password := func(local string) string { return local + "-secret" }
	return &imtest.Env{
		Domain:   "localhost",
		Addrs:    []string{c.env["C2S1_LISTEN"], c.env["C2S2_LISTEN"]},
		TLS:      &tls.Config{InsecureSkipVerify: true}, // the c2s nodes' self-signed certificate
		Password: password,
		Prefix:   "t",
		Parallel: 8,
		CreateAccounts: func(t testing.TB, locals ...string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), imtest.IOTimeout)
			defer cancel()
			for _, l := range locals {
				if _, err := accounts.CreateAccount(ctx, &rosterv1.CreateAccountRequest{Jid: l + "@localhost", Password: password(l)}); err != nil {
					t.Fatalf("CreateAccount %s: %v", l, err)
				}
			}
		},
	}
}

// clusterIMTables runs the whole Appendix A subscription table (72 cells),
// the section 8.5 delivery matrix, the disco feature checks and the
// roster, presence and offline scenarios on c (a part of
// TestClusterIMAcrossNodes_RFC6121, which starts the cluster once).
func clusterIMTables(t *testing.T, c *cluster) {
	env := c.imEnv(t)
	start := time.Now()
	t.Run("SubscriptionStatesAppendixA_3_and_A", func(t *testing.T) { imtest.RunAppendixA(t, env) })
	t.Logf("Appendix A, 72 cells: %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	t.Run("DeliveryMatrix_8_5", func(t *testing.T) { imtest.RunDeliveryMatrix(t, env) })
	t.Logf("delivery matrix: %v", time.Since(start).Round(time.Millisecond))
	t.Run("EveryAdvertisedDiscoFeatureIsExercised_XEP0030", func(t *testing.T) { imtest.RunDiscoFeatures(t, env) })
	t.Run("Scenarios", func(t *testing.T) { imtest.RunScenarios(t, env) })
}
