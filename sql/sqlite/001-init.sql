-- passtore schema, version 1 (SQLite).
-- Only columns named *_ciphertext hold secrets, and they hold them only as AES-256-GCM
-- ciphertext bound to their row; everything else is cleartext by design (SPEC 4).

CREATE TABLE vault (
  id                  TEXT PRIMARY KEY,   -- random; part of every ciphertext's associated data
  created_at          TEXT NOT NULL,
  data_key_generation INTEGER NOT NULL,   -- bumped by rekey
  data_key_ciphertext BLOB NOT NULL       -- the data key, wrapped under the root key
);

CREATE TABLE key_slots (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  kind                TEXT NOT NULL CHECK (kind IN ('passphrase', 'keyfile')),
  name                TEXT NOT NULL,      -- operator name, or key file path
  kdf                 TEXT NOT NULL,      -- JSON: algorithm, parameters, salt
  root_key_ciphertext BLOB NOT NULL,      -- the root key, wrapped under this slot's key
  failed_attempts     INTEGER NOT NULL DEFAULT 0,
  created_at          TEXT NOT NULL,
  created_by          TEXT NOT NULL,
  UNIQUE (kind, name)
);

CREATE TABLE hosts (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  fqdn        TEXT NOT NULL UNIQUE,
  address     TEXT,
  port        INTEGER NOT NULL DEFAULT 22,
  created_at  TEXT NOT NULL
);

CREATE TABLE entries (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  host_id           INTEGER NOT NULL REFERENCES hosts (id),
  user              TEXT NOT NULL,
  service           TEXT NOT NULL,
  version           INTEGER NOT NULL,
  state             TEXT NOT NULL CHECK (state IN ('set', 'unset')),
  secret_ciphertext BLOB,                 -- NULL only while state = 'unset'
  updated_at        TEXT NOT NULL,
  updated_by        TEXT NOT NULL,
  UNIQUE (host_id, user, service)
);

CREATE TABLE entry_history (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  fqdn              TEXT NOT NULL,
  user              TEXT NOT NULL,
  service           TEXT NOT NULL,
  version           INTEGER NOT NULL,
  secret_ciphertext BLOB,
  reason            TEXT NOT NULL CHECK (reason IN ('updated', 'deleted')),
  archived_at       TEXT NOT NULL,
  archived_by       TEXT NOT NULL
);
CREATE INDEX entry_history_entry ON entry_history (fqdn, user, service);

CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,            -- 1, 2, 3 … with no gaps
  at        TEXT NOT NULL,
  operator  TEXT NOT NULL,
  action    TEXT NOT NULL,
  target    TEXT NOT NULL,
  outcome   TEXT NOT NULL,
  detail    TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL,                  -- SHA-256 over prev_hash and this record
  mac       TEXT                            -- HMAC of hash under the audit key; NULL while locked
);
CREATE INDEX audit_target ON audit (target);
