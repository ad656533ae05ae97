-- passtore schema, version 11 (MySQL / MariaDB): the sealed summary of what is current
-- (src/vault/summary.ts).

ALTER TABLE vault ADD COLUMN IF NOT EXISTS summary TEXT;
