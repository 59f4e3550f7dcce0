package sqlitestore

// migrations are the schema versions in order: migrations[i] brings the
// schema to version i+1. Released entries are never edited, only appended
// to, because databases out there already ran them.
var migrations = [][]string{
	// 1: accounts and their SCRAM keys.
	{
		`CREATE TABLE accounts (
			jid              TEXT    NOT NULL PRIMARY KEY,
			disabled         INTEGER NOT NULL DEFAULT 0,
			digest_md5       BLOB,
			digest_md5_realm TEXT,
			created_unix_ms  INTEGER NOT NULL
		)`,
		`CREATE TABLE scram_credentials (
			jid        TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
			hash       TEXT    NOT NULL,
			salt       BLOB    NOT NULL,
			iterations INTEGER NOT NULL,
			stored_key BLOB    NOT NULL,
			server_key BLOB    NOT NULL,
			PRIMARY KEY (jid, hash)
		)`,
	},
}
