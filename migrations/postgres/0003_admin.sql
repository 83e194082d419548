-- The trail names who did it: the acting superuser of an admin action
-- (NULL for the user's own actions and for the `user` commands), and what
-- changed, as a JSON object (NULL when there is nothing to add).
ALTER TABLE security_events ADD COLUMN actor_id BIGINT;
ALTER TABLE security_events ADD COLUMN details TEXT;
-- A user's trail, newest first (GET /events, GET /api/users/{id}/events).
CREATE INDEX security_events_user_id_idx ON security_events (user_id, id);
