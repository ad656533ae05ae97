-- passtore schema, version 6 (MySQL / MariaDB): indexes for the completer's user@ and
-- :service lists.

CREATE INDEX IF NOT EXISTS entries_user ON entries (user);
CREATE INDEX IF NOT EXISTS entries_service ON entries (service);
