-- passtore schema, version 7 (SQLite): side by side. run_lease: the one passtore-cron run
-- that may act at a time (holder machine, pid, start, expiry; an expired lease is taken
-- over). outbox claims: a sender claims a mail before sending it, so concurrent senders
-- never send one twice; a claim whose sender died lapses at claimed_until.

CREATE TABLE run_lease (
  name       TEXT PRIMARY KEY,
  token      TEXT NOT NULL,              -- the holder's random token; '' when free
  machine    TEXT NOT NULL,
  pid        INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  expires_at TEXT NOT NULL               -- ISO time; '' when free
);
INSERT INTO run_lease (name, token, machine, pid, started_at, expires_at) VALUES ('cron', '', '', 0, '', '');

ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
