-- passtore schema, version 10 (SQLite): how each host is reached (a login user other than
-- root, with or without sudo; its deploy profiles), and the vault-held SSH deploy keys. A deploy key's private
-- half is stored only as ciphertext (key_ciphertext).

ALTER TABLE hosts ADD COLUMN login_user TEXT;                         -- null: root
ALTER TABLE hosts ADD COLUMN login_sudo INTEGER NOT NULL DEFAULT 0;   -- 1: root commands through sudo
ALTER TABLE hosts ADD COLUMN profiles TEXT;                           -- deploy profiles, space-separated; null: grid
ALTER TABLE hosts ADD COLUMN drift TEXT;                              -- what the last drift check found; null: nothing
ALTER TABLE hosts ADD COLUMN drift_checked_at TEXT;

CREATE TABLE ssh_keys (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  public_key      TEXT NOT NULL UNIQUE,     -- "ssh-ed25519 base64 comment", as in authorized_keys
  fingerprint     TEXT NOT NULL,            -- SHA256:…, as ssh-keygen -l shows it
  state           TEXT NOT NULL CHECK (state IN ('current', 'next', 'previous', 'retired')),
  key_ciphertext  BLOB NOT NULL,            -- PKCS#8 DER, AES-256-GCM bound to the fingerprint
  created_at      TEXT NOT NULL,
  created_by      TEXT NOT NULL
);
CREATE INDEX ssh_keys_state ON ssh_keys (state);
