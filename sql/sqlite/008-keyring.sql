-- passtore schema, version 8 (SQLite): the vault's keyring (JSON): the root key's
-- generation, the audit key wrapped under the root key (so it survives a rekey that
-- replaces the root key), and when the last such rekey was. NULL for a vault made
-- before version 7 until its first rekey: its data key is then wrapped under the root
-- key itself and its audit key derived from it.

ALTER TABLE vault ADD COLUMN keyring TEXT;
