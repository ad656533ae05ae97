-- passtore schema, version 5 (SQLite): the outbox of passtore-cron. Mail is queued right
-- after what it reports, sent later, and kept until sent: nothing is dropped; dedupe_key makes a reminder or a warning go out once, not once per run.

CREATE TABLE outbox (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  dedupe_key  TEXT UNIQUE,
  created_at  TEXT NOT NULL,
  recipients  TEXT NOT NULL,
  subject     TEXT NOT NULL,
  body        TEXT NOT NULL,
  attachments TEXT NOT NULL,              -- JSON: [{ "filename": …, "content": … }] (public data only)
  state       TEXT NOT NULL CHECK (state IN ('queued', 'sent')),
  attempts    INTEGER NOT NULL DEFAULT 0,
  last_error  TEXT,
  sent_at     TEXT
);
CREATE INDEX outbox_state ON outbox (state, id);
