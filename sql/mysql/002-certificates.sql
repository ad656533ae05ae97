-- passtore schema, version 2 (MySQL / MariaDB): host keys, certificate requests,
-- certificates. Private keys are stored only as ciphertext (key_ciphertext).

CREATE TABLE IF NOT EXISTS private_keys (
  id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  host_id         BIGINT NOT NULL,
  spki_sha256     CHAR(64) CHARACTER SET ascii NOT NULL,
  key_type        VARCHAR(16) NOT NULL,
  state           VARCHAR(8) NOT NULL,
  origin          VARCHAR(10) NOT NULL,
  key_ciphertext  VARBINARY(8192) NOT NULL,
  created_at      VARCHAR(32) NOT NULL,
  created_by      VARCHAR(64) NOT NULL,
  UNIQUE KEY private_keys_spki (spki_sha256),
  KEY private_keys_host (host_id, state),
  CONSTRAINT private_keys_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id),
  CONSTRAINT private_keys_state CHECK (state IN ('pending', 'current', 'history')),
  CONSTRAINT private_keys_origin CHECK (origin IN ('generated', 'imported'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS cert_requests (
  id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  host_id     BIGINT NOT NULL,
  key_id      BIGINT NOT NULL,
  subject     VARCHAR(1024) NOT NULL,
  sans        TEXT NOT NULL,
  pem         TEXT NOT NULL,
  state       VARCHAR(10) NOT NULL,
  created_at  VARCHAR(32) NOT NULL,
  updated_at  VARCHAR(32) NOT NULL,
  KEY cert_requests_host (host_id, state),
  CONSTRAINT cert_requests_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id),
  CONSTRAINT cert_requests_key_fk FOREIGN KEY (key_id) REFERENCES private_keys (id),
  CONSTRAINT cert_requests_state CHECK (state IN ('created', 'sent', 'fulfilled', 'cancelled'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS certificates (
  id                  BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  host_id             BIGINT NOT NULL,
  key_id              BIGINT NOT NULL,
  spki_sha256         CHAR(64) CHARACTER SET ascii NOT NULL,
  fingerprint_sha256  CHAR(64) CHARACTER SET ascii NOT NULL,
  subject             VARCHAR(1024) NOT NULL,
  issuer              VARCHAR(1024) NOT NULL,
  serial              VARCHAR(128) NOT NULL,
  sans                TEXT NOT NULL,
  not_before          VARCHAR(32) NOT NULL,
  not_after           VARCHAR(32) NOT NULL,
  pem                 MEDIUMTEXT NOT NULL,
  state               VARCHAR(8) NOT NULL,
  stored_at           VARCHAR(32) NOT NULL,
  stored_by           VARCHAR(64) NOT NULL,
  deployed_at         VARCHAR(32),
  UNIQUE KEY certificates_fingerprint (fingerprint_sha256),
  KEY certificates_expiry (state, not_after),
  KEY certificates_host (host_id, state),
  CONSTRAINT certificates_host_fk FOREIGN KEY (host_id) REFERENCES hosts (id),
  CONSTRAINT certificates_key_fk FOREIGN KEY (key_id) REFERENCES private_keys (id),
  CONSTRAINT certificates_state CHECK (state IN ('current', 'history'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
