-- Data migrations that SQL alone cannot express (they run in Rust, once,
-- after the schema migrations); each records its name here when done.
CREATE TABLE data_migrations (
    name       TEXT    PRIMARY KEY,
    applied_at BIGINT  NOT NULL
);
