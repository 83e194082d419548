-- The second factor (SPEC §10). Times are Unix seconds.

-- How each session was authenticated: RFC 8176 method names separated by
-- spaces ("pwd", "pwd otp mfa", "pwd recovery_code mfa") and the assurance
-- level; access tokens copy them, also on refresh.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN aal TEXT NOT NULL DEFAULT 'aal1';

-- A user's TOTP factor: pending (enabled_at NULL, until pending_expires_at)
-- or enabled. The secret is AES-256-GCM encrypted (nonce, ciphertext and
-- tag, base64) with the user id as associated data. last_step is the last
-- accepted time step: a step is accepted only above it, by a conditional
-- update, so no code is accepted twice, across instances. The failure
-- counters are moved only after a right password (through an mfa_token).
CREATE TABLE mfa_totp (
    user_id            BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_ciphertext  TEXT    NOT NULL,
    created_at         BIGINT NOT NULL,
    pending_expires_at BIGINT,
    enabled_at         BIGINT,
    last_step          BIGINT NOT NULL DEFAULT -1,
    last_used_at       BIGINT,
    failed_in_row      BIGINT NOT NULL DEFAULT 0,
    window_started_at  BIGINT NOT NULL DEFAULT 0,
    window_failures    BIGINT NOT NULL DEFAULT 0,
    locked_at          BIGINT
);

-- Recovery codes: one keyed hash (HMAC-SHA-256 under a key derived from
-- MFA_ENCRYPTION_KEY) per row, spent by a conditional update.
CREATE TABLE mfa_recovery_codes (
    code_hash  TEXT    PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX mfa_recovery_codes_user_idx ON mfa_recovery_codes (user_id);

-- The token between the password and the second step of a login: stored
-- hashed, single-use, short-lived, burnt after 5 wrong codes, bound to the
-- password hash it was issued against (password_stamp: its SHA-256).
CREATE TABLE mfa_tokens (
    token_hash     TEXT    PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_stamp TEXT    NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    failures       BIGINT NOT NULL DEFAULT 0,
    used_at        BIGINT
);
CREATE INDEX mfa_tokens_user_idx ON mfa_tokens (user_id);
