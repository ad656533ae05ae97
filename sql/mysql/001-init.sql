-- passtore schema, version 1 (MySQL / MariaDB).
-- Only columns named *_ciphertext hold secrets, and they hold them only as AES-256-GCM
-- ciphertext bound to their row; everything else is cleartext by design (SPEC 4).

CREATE TABLE vault (
  id                  VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  created_at          VARCHAR(32) NOT NULL,
  data_key_generation INT NOT NULL,
  data_key_ciphertext VARBINARY(255) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE key_slots (
  id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind                VARCHAR(16) NOT NULL,
  name                VARCHAR(255) NOT NULL,
  kdf                 TEXT NOT NULL,
  root_key_ciphertext VARBINARY(255) NOT NULL,
  failed_attempts     INT NOT NULL DEFAULT 0,
  created_at          VARCHAR(32) NOT NULL,
  created_by          VARCHAR(64) NOT NULL,
  UNIQUE KEY key_slots_kind_name (kind, name),
  CONSTRAINT key_slots_kind CHECK (kind IN ('passphrase', 'keyfile'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE hosts (
  id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  fqdn        VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  address     VARCHAR(64),
  port        INT NOT NULL DEFAULT 22,
  created_at  VARCHAR(32) NOT NULL,
  UNIQUE KEY hosts_fqdn (fqdn)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE entries (
  id                BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  host_id           BIGINT NOT NULL,
  user              VARCHAR(32) NOT NULL,
  service           VARCHAR(32) NOT NULL,
  version           INT NOT NULL,
  state             VARCHAR(8) NOT NULL,
  secret_ciphertext VARBINARY(4096),
  updated_at        VARCHAR(32) NOT NULL,
  updated_by        VARCHAR(64) NOT NULL,
  UNIQUE KEY entries_identity (host_id, user, service),
  CONSTRAINT entries_host FOREIGN KEY (host_id) REFERENCES hosts (id),
  CONSTRAINT entries_state CHECK (state IN ('set', 'unset'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE entry_history (
  id                BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  fqdn              VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user              VARCHAR(32) NOT NULL,
  service           VARCHAR(32) NOT NULL,
  version           INT NOT NULL,
  secret_ciphertext VARBINARY(4096),
  reason            VARCHAR(8) NOT NULL,
  archived_at       VARCHAR(32) NOT NULL,
  archived_by       VARCHAR(64) NOT NULL,
  KEY entry_history_entry (fqdn, user, service),
  CONSTRAINT entry_history_reason CHECK (reason IN ('updated', 'deleted'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE audit (
  seq       BIGINT NOT NULL PRIMARY KEY,
  at        VARCHAR(32) NOT NULL,
  operator  VARCHAR(64) NOT NULL,
  action    VARCHAR(32) NOT NULL,
  target    VARCHAR(400) NOT NULL,
  outcome   VARCHAR(16) NOT NULL,
  detail    TEXT NOT NULL,
  prev_hash CHAR(64) CHARACTER SET ascii NOT NULL,
  hash      CHAR(64) CHARACTER SET ascii NOT NULL,
  mac       CHAR(64) CHARACTER SET ascii,
  KEY audit_target (target(253))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
