package pgstore

import (
	"fmt"
	"time"
)

// DefaultQueryTimeout bounds every call of a Store when no other timeout is
// given: a caller's context with a later deadline, or none, still gets an
// answer within this time.
const DefaultQueryTimeout = 5 * time.Second

// Option configures Open and Migrate.
type Option func(*options)

type options struct {
	schema       string
	queryTimeout time.Duration
	migrate      bool
}

// WithSchema keeps the store's tables in the named Postgres schema, which
// Migrate creates when it is missing: every connection gets it as its only
// search_path. Tests and tenants sharing one database use one schema each.
// Without it, the tables go where the DSN's search_path (or the server's
// default, usually "public") says.
func WithSchema(name string) Option {
	return func(o *options) { o.schema = name }
}

// WithQueryTimeout sets the time limit of each call of the store (one
// statement, or one transaction with its retry), on top of the caller's
// context; it is also the connect timeout unless the DSN sets
// connect_timeout. Zero or less means DefaultQueryTimeout.
func WithQueryTimeout(d time.Duration) Option {
	return func(o *options) { o.queryTimeout = d }
}

// SkipMigrations makes Open leave the schema alone, for deployments where a
// separate migrate step (a Kubernetes Job calling Migrate) owns it. Open
// then fails with ErrSchemaOutdated until that step has run.
func SkipMigrations() Option {
	return func(o *options) { o.migrate = false }
}

func buildOptions(opts []Option) (options, error) {
	o := options{queryTimeout: DefaultQueryTimeout, migrate: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.queryTimeout <= 0 {
		o.queryTimeout = DefaultQueryTimeout
	}
	if len(o.schema) > maxIdentifierLen {
		return o, fmt.Errorf("pgstore: schema name %q is longer than Postgres allows (%d bytes)", o.schema, maxIdentifierLen)
	}
	return o, nil
}

// maxIdentifierLen is Postgres's NAMEDATALEN-1: longer names are cut short
// silently, so two long schema names could land in one schema.
const maxIdentifierLen = 63
