-- The change feed (SPEC §9): every change that can end a session or alter
-- what a protected request sees about its user writes a row here, in the
-- same transaction, whoever makes it (a server, a `user` command run by
-- another process, code added later). Servers poll the feed to drop what
-- they keep in memory. A row with a session_id names one session; without,
-- the user as a whole. AUTOINCREMENT: ids are never reused after a purge.
CREATE TABLE change_feed (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT  NOT NULL,
    session_id TEXT,
    changed_at BIGINT  NOT NULL
);
CREATE INDEX change_feed_changed_idx ON change_feed (changed_at);

-- Any change to a user.
CREATE TRIGGER users_feed_update AFTER UPDATE ON users
BEGIN
    INSERT INTO change_feed (user_id, session_id, changed_at)
    VALUES (OLD.id, NULL, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER users_feed_delete AFTER DELETE ON users
BEGIN
    INSERT INTO change_feed (user_id, session_id, changed_at)
    VALUES (OLD.id, NULL, CAST(strftime('%s', 'now') AS INTEGER));
END;
-- A session revoked or deleted; not the touches of last_used_at or a
-- refresh's new expiry, which would flood the feed and change nothing.
CREATE TRIGGER sessions_feed_revoke AFTER UPDATE OF revoked_at ON sessions
    WHEN OLD.revoked_at IS NOT NEW.revoked_at
BEGIN
    INSERT INTO change_feed (user_id, session_id, changed_at)
    VALUES (OLD.user_id, OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER sessions_feed_delete AFTER DELETE ON sessions
BEGIN
    INSERT INTO change_feed (user_id, session_id, changed_at)
    VALUES (OLD.user_id, OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
