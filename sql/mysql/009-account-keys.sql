-- passtore schema, version 9 (MySQL / MariaDB): keys of accounts at CAs. See sql/sqlite/008.

CREATE TABLE IF NOT EXISTS account_keys (
  name            VARCHAR(512) NOT NULL PRIMARY KEY,
  key_ciphertext  BLOB NOT NULL,
  created_at      VARCHAR(32) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
