-- passtore schema, version 7 (MySQL / MariaDB): side by side. run_lease: the one
-- passtore-cron run that may act at a time, on this machine or any other sharing the
-- database; outbox claims: a mail is claimed before it is sent. Re-runnable up to its record.

CREATE TABLE IF NOT EXISTS run_lease (
  name       VARCHAR(32) NOT NULL PRIMARY KEY,
  token      VARCHAR(128) NOT NULL,
  machine    VARCHAR(255) NOT NULL,
  pid        INT NOT NULL,
  started_at VARCHAR(32) NOT NULL,
  expires_at VARCHAR(32) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT IGNORE INTO run_lease (name, token, machine, pid, started_at, expires_at) VALUES ('cron', '', '', 0, '', '');

ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_by VARCHAR(128);
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_until VARCHAR(32);
