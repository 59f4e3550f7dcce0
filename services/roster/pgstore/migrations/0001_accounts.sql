-- Accounts and their SCRAM keys. JIDs and hash names compare byte for byte
-- (COLLATE "C"), as the roster.Store contract asks: no locale may decide
-- that two addresses are equal or how keys sort.
CREATE TABLE accounts (
	jid              text COLLATE "C" NOT NULL PRIMARY KEY,
	disabled         boolean          NOT NULL DEFAULT false,
	digest_md5       bytea,
	digest_md5_realm text,
	created          timestamptz      NOT NULL,
	-- A realm without its hash is meaningless.
	CHECK (digest_md5_realm IS NULL OR digest_md5 IS NOT NULL)
);

CREATE TABLE scram_credentials (
	jid        text COLLATE "C" NOT NULL REFERENCES accounts (jid) ON DELETE CASCADE,
	hash       text COLLATE "C" NOT NULL,
	salt       bytea            NOT NULL,
	iterations integer          NOT NULL,
	stored_key bytea            NOT NULL,
	server_key bytea            NOT NULL,
	PRIMARY KEY (jid, hash)
);
