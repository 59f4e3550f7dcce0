package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/switchboard-xmpp/switchboard/services/roster"
	"github.com/switchboard-xmpp/switchboard/services/roster/sqlitestore"
)

// Accounts is the roster service over a data directory's account database,
// without the rest of the server. The `switchboard user` command uses it;
// it works while a server runs on the same directory, since the store
// shares the database file safely between processes.
type Accounts struct {
	*roster.Service
	store *sqlitestore.Store
}

// OpenAccounts opens (creating when missing) the account database of
// dataDir. digestMD5 also stores the DIGEST-MD5 hash of passwords set
// through it, like the server's option of the same name.
func OpenAccounts(dataDir string, digestMD5 bool, log *slog.Logger) (*Accounts, error) {
	if dataDir == "" {
		dataDir = "./data"
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, &SettingError{SettingDataDir, dataDir, err}
	}
	st, err := sqlitestore.Open(context.Background(), DBPath(dataDir))
	if err != nil {
		return nil, fmt.Errorf("account store %s: %w", DBPath(dataDir), err)
	}
	svc, err := roster.New(roster.Config{Store: st, DigestMD5: digestMD5, Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Accounts{Service: svc, store: st}, nil
}

// Close closes the database.
func (a *Accounts) Close() error { return a.store.Close() }
