-- passtore schema, version 3 (MySQL / MariaDB): pinned SSH host keys, and the pending
-- password of a change on a host (stored, encrypted, before the host is changed).

ALTER TABLE hosts ADD COLUMN IF NOT EXISTS ssh_host_key TEXT;
ALTER TABLE entries ADD COLUMN IF NOT EXISTS pending_ciphertext VARBINARY(4096);
ALTER TABLE entries ADD COLUMN IF NOT EXISTS pending_version INT;
ALTER TABLE entries ADD COLUMN IF NOT EXISTS pending_at VARCHAR(32);
