package pgstore

import "errors"

// Errors of the store itself. Account errors are the roster package's
// (roster.ErrAccountExists, roster.ErrAccountNotFound); everything else a
// method returns is trouble with Postgres, which the roster service reports
// as Unavailable.
var (
	// ErrSchemaNewer means the database was migrated by a newer version of
	// this program. Nothing is changed: this code cannot know whether the
	// newer schema still fits it.
	ErrSchemaNewer = errors.New("pgstore: database schema is newer than this program knows")
	// ErrSchemaOutdated means Open was told not to migrate and the schema
	// is older than this program needs: run Migrate (the migrate command)
	// first.
	ErrSchemaOutdated = errors.New("pgstore: database schema needs migrating")
)
