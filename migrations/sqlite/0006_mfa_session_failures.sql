-- Wrong codes sent with a session (POST /mfa/totp/confirm, /mfa/totp/disable,
-- /mfa/recovery-codes) are counted apart from the login's second step
-- (window_failures, failed_in_row, locked_at), so that a stolen session
-- cannot throttle or lock its owner's logins: their own window, no lock.
ALTER TABLE mfa_totp ADD COLUMN session_window_started_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mfa_totp ADD COLUMN session_window_failures INTEGER NOT NULL DEFAULT 0;
