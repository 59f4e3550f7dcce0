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
	// 2: rosters, their versions and change log, pending subscription
	// requests, offline messages (RFC 6121, XEP-0160).
	{
		`CREATE TABLE roster_meta (
			owner TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (jid) ON DELETE CASCADE,
			epoch TEXT    NOT NULL,
			ver   INTEGER NOT NULL,
			floor INTEGER NOT NULL
		)`,
		`CREATE TABLE roster_entries (
			owner      TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
			contact    TEXT    NOT NULL,
			in_roster  INTEGER NOT NULL,
			name       TEXT    NOT NULL,
			groups     TEXT    NOT NULL,
			sub_to     INTEGER NOT NULL,
			sub_from   INTEGER NOT NULL,
			ask        INTEGER NOT NULL,
			approved   INTEGER NOT NULL,
			request    BLOB,
			request_seq INTEGER,
			ver        INTEGER NOT NULL,
			PRIMARY KEY (owner, contact)
		)`,
		`CREATE INDEX roster_entries_by_ver ON roster_entries (owner, ver)`,
		`CREATE TABLE roster_tombstones (
			owner   TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
			contact TEXT    NOT NULL,
			ver     INTEGER NOT NULL,
			PRIMARY KEY (owner, contact)
		)`,
		`CREATE INDEX roster_tombstones_by_ver ON roster_tombstones (owner, ver)`,
		`CREATE TABLE offline_messages (
			id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
			owner         TEXT    NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
			stanza        BLOB    NOT NULL,
			stamp_unix_ms INTEGER NOT NULL
		)`,
		`CREATE INDEX offline_messages_by_owner ON offline_messages (owner, id)`,
	},
	// 3: claims on offline messages (XEP-0160): the time a router's claim
	// on a message ends; NULL for none.
	{
		`ALTER TABLE offline_messages ADD COLUMN claimed_until_unix_ms INTEGER`,
	},
}
