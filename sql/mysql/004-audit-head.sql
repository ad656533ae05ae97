-- passtore schema, version 4 (MySQL / MariaDB): the sealed head of the audit chain.

ALTER TABLE vault ADD COLUMN IF NOT EXISTS audit_head TEXT;
