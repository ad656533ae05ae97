-- passtore schema, version 6 (SQLite): indexes for the completer's user@ and :service
-- lists, so they are read from an index and not by scanning every entry.

CREATE INDEX entries_user ON entries (user);
CREATE INDEX entries_service ON entries (service);
