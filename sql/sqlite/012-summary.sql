-- passtore schema, version 11 (SQLite): the sealed summary of what is current (a change
-- counter, the key generations, the sealed audit head and a digest of every entry's name,
-- version and state, under an HMAC; src/vault/summary.ts), so an entry or the vault
-- record set back with SQL is refused.

ALTER TABLE vault ADD COLUMN summary TEXT;
