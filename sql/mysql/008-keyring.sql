-- passtore schema, version 8 (MySQL / MariaDB): the vault's keyring (JSON): root key
-- generation, the wrapped audit key, the time of the last rekey. See sql/sqlite/007.

ALTER TABLE vault ADD COLUMN IF NOT EXISTS keyring TEXT;
