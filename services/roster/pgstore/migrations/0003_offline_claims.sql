-- Claims on offline messages (XEP-0160): a router that takes a message to
-- deliver it claims it until claimed_until, so that two routers flushing
-- the same box at once never both deliver it; a claim that ends without
-- the message being deleted (its router died) lets it be taken again.
ALTER TABLE offline_messages ADD COLUMN claimed_until timestamptz;
