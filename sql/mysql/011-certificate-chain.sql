-- passtore schema, version 11 (MySQL / MariaDB): the issuing chain stored with a
-- certificate. See sql/sqlite/011.

ALTER TABLE certificates ADD COLUMN IF NOT EXISTS chain_pem MEDIUMTEXT;
