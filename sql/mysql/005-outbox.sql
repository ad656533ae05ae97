-- passtore schema, version 5 (MySQL / MariaDB): the outbox of passtore-cron.

CREATE TABLE IF NOT EXISTS outbox (
  id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  dedupe_key  VARCHAR(255),
  created_at  VARCHAR(32) NOT NULL,
  recipients  TEXT NOT NULL,
  subject     VARCHAR(998) NOT NULL,
  body        MEDIUMTEXT NOT NULL,
  attachments MEDIUMTEXT NOT NULL,
  state       VARCHAR(8) NOT NULL,
  attempts    INT NOT NULL DEFAULT 0,
  last_error  TEXT,
  sent_at     VARCHAR(32),
  UNIQUE KEY outbox_dedupe (dedupe_key),
  KEY outbox_state (state, id),
  CONSTRAINT outbox_state_check CHECK (state IN ('queued', 'sent'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
