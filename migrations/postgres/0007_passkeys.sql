-- Passkeys (SPEC §11). Times are Unix seconds.

-- A user's registered passkeys. id is opaque (random, base64url);
-- credential_id is the WebAuthn credential id (base64url), one account only;
-- passkey is the credential as webauthn-rs serialises it (public key,
-- counter, flags: nothing secret); sign_count mirrors its counter so that
-- a use moves it forward by a conditional update (a clone using the same
-- value loses); user_handle is the WebAuthn user.id (a UUID), the same for
-- all passkeys of one user; backup_eligible (flag BE) decides swk/hwk and
-- backed_up is the backup state (flag BS) last seen.
CREATE TABLE passkeys (
    id              TEXT    PRIMARY KEY,
    user_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   TEXT    NOT NULL UNIQUE,
    user_handle     TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    passkey         TEXT    NOT NULL,
    sign_count      BIGINT  NOT NULL DEFAULT 0,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    backed_up       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT  NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_user_idx ON passkeys (user_id);

-- The server side of a WebAuthn ceremony between its options and its
-- finish: the challenge state as webauthn-rs serialises it, bound to its
-- purpose ('register', 'sign_in') and, where known, to a user. id_hash is
-- the SHA-256 of the ceremony_id handed out. Single use: the finish deletes
-- the row in the statement that reads it.
CREATE TABLE passkey_ceremonies (
    id_hash    TEXT    PRIMARY KEY,
    purpose    TEXT    NOT NULL,
    user_id    BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry_idx ON passkey_ceremonies (expires_at);
