-- passtore schema, version 10 (MySQL / MariaDB): how each host is reached (a login user
-- other than root, with or without sudo; its deploy profiles), and the vault-held SSH deploy keys. A deploy
-- key's private half is stored only as ciphertext (key_ciphertext).

ALTER TABLE hosts ADD COLUMN IF NOT EXISTS login_user VARCHAR(64);
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS login_sudo TINYINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS profiles VARCHAR(255);
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS drift VARCHAR(1024);
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS drift_checked_at VARCHAR(32);

CREATE TABLE IF NOT EXISTS ssh_keys (
  id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  public_key      VARCHAR(512) CHARACTER SET ascii NOT NULL,
  fingerprint     VARCHAR(64) CHARACTER SET ascii NOT NULL,
  state           VARCHAR(8) NOT NULL,
  key_ciphertext  VARBINARY(1024) NOT NULL,
  created_at      VARCHAR(32) NOT NULL,
  created_by      VARCHAR(64) NOT NULL,
  UNIQUE KEY ssh_keys_public (public_key),
  KEY ssh_keys_state (state),
  CONSTRAINT ssh_keys_state_check CHECK (state IN ('current', 'next', 'previous', 'retired'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
