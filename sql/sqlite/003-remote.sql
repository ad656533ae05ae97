-- passtore schema, version 3 (SQLite): pinned SSH host keys, and the pending password of
-- a change on a host (stored, encrypted, before the host is changed, so none is lost).

ALTER TABLE hosts ADD COLUMN ssh_host_key TEXT;          -- "type base64", pinned by host trust
ALTER TABLE entries ADD COLUMN pending_ciphertext BLOB;  -- the new password while a change is under way
ALTER TABLE entries ADD COLUMN pending_version INTEGER;
ALTER TABLE entries ADD COLUMN pending_at TEXT;
