-- Rosters (RFC 6121 section 2), subscription states and pending inbound
-- requests (section 3), roster versions with their change log (section
-- 2.6), and offline messages (XEP-0160). Everything belongs to an account
-- and goes with it.
CREATE TABLE roster_meta (
	owner text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES accounts (jid) ON DELETE CASCADE,
	-- Random per roster, so that a re-created account's versions never
	-- match the old ones.
	epoch text   NOT NULL,
	ver   bigint NOT NULL,
	-- Changes after floor are all known; older versions get the roster.
	floor bigint NOT NULL
);

CREATE TABLE roster_entries (
	owner       text COLLATE "C" NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	contact     text COLLATE "C" NOT NULL,
	in_roster   boolean NOT NULL,
	name        text    NOT NULL,
	groups      text[]  NOT NULL,
	sub_to      boolean NOT NULL,
	sub_from    boolean NOT NULL,
	ask         boolean NOT NULL,
	approved    boolean NOT NULL,
	-- The inbound subscribe, whole, while it waits for an answer.
	request     bytea,
	request_seq bigint,
	-- The version at which the item last changed.
	ver         bigint  NOT NULL,
	PRIMARY KEY (owner, contact)
);
CREATE INDEX roster_entries_by_ver ON roster_entries (owner, ver);

CREATE TABLE roster_tombstones (
	owner   text COLLATE "C" NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	contact text COLLATE "C" NOT NULL,
	ver     bigint NOT NULL,
	PRIMARY KEY (owner, contact)
);
CREATE INDEX roster_tombstones_by_ver ON roster_tombstones (owner, ver);

CREATE TABLE offline_messages (
	id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner  text COLLATE "C" NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	stanza bytea       NOT NULL,
	stamp  timestamptz NOT NULL
);
CREATE INDEX offline_messages_by_owner ON offline_messages (owner, id);
