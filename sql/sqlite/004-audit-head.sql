-- passtore schema, version 4 (SQLite): the sealed head of the audit chain (last sealed
-- record's number and hash, with an HMAC), so removing the newest records is detected.

ALTER TABLE vault ADD COLUMN audit_head TEXT;
