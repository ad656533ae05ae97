-- passtore schema, version 9 (SQLite): keys of accounts at CAs (the ACME account key),
-- encrypted under the data key like every other private key, so they are in backups and
-- restored with them.

CREATE TABLE account_keys (
  name            TEXT PRIMARY KEY,   -- e.g. 'acme https://ca.example/directory'
  key_ciphertext  BLOB NOT NULL,      -- the PEM private key, AES-256-GCM under the data key
  created_at      TEXT NOT NULL
);
