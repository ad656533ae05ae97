-- passtore schema, version 2 (SQLite): host keys, certificate requests, certificates.
-- Private keys are stored only as ciphertext (key_ciphertext); certificates, requests
-- and their metadata are public and kept in cleartext so that expiry is a query.

CREATE TABLE private_keys (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  host_id         INTEGER NOT NULL REFERENCES hosts (id),
  spki_sha256     TEXT NOT NULL UNIQUE,     -- hex SHA-256 of the public key (SPKI DER)
  key_type        TEXT NOT NULL,            -- rsa-2048, rsa-4096, ec-p256, …
  state           TEXT NOT NULL CHECK (state IN ('pending', 'current', 'history')),
  origin          TEXT NOT NULL CHECK (origin IN ('generated', 'imported')),
  key_ciphertext  BLOB NOT NULL,            -- PKCS#8 DER, AES-256-GCM bound to host and SPKI
  created_at      TEXT NOT NULL,
  created_by      TEXT NOT NULL
);
CREATE INDEX private_keys_host ON private_keys (host_id, state);

CREATE TABLE cert_requests (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  host_id     INTEGER NOT NULL REFERENCES hosts (id),
  key_id      INTEGER NOT NULL REFERENCES private_keys (id),
  subject     TEXT NOT NULL,
  sans        TEXT NOT NULL,                -- comma-separated DNS names
  pem         TEXT NOT NULL,
  state       TEXT NOT NULL CHECK (state IN ('created', 'sent', 'fulfilled', 'cancelled')),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE INDEX cert_requests_host ON cert_requests (host_id, state);

CREATE TABLE certificates (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  host_id             INTEGER NOT NULL REFERENCES hosts (id),
  key_id              INTEGER NOT NULL REFERENCES private_keys (id),
  spki_sha256         TEXT NOT NULL,
  fingerprint_sha256  TEXT NOT NULL UNIQUE,
  subject             TEXT NOT NULL,
  issuer              TEXT NOT NULL,
  serial              TEXT NOT NULL,
  sans                TEXT NOT NULL,
  not_before          TEXT NOT NULL,        -- ISO 8601 UTC
  not_after           TEXT NOT NULL,        -- ISO 8601 UTC
  pem                 TEXT NOT NULL,
  state               TEXT NOT NULL CHECK (state IN ('current', 'history')),
  stored_at           TEXT NOT NULL,
  stored_by           TEXT NOT NULL,
  deployed_at         TEXT
);
CREATE INDEX certificates_expiry ON certificates (state, not_after);
CREATE INDEX certificates_host ON certificates (host_id, state);
