-- Clients of Sign in with Portcullis (SPEC §13). Times are Unix seconds.

-- A registered application. client_id is opaque (random, base64url);
-- secret_hash is the SHA-256 (hex) of a confidential client's secret, which
-- has 256 bits of entropy and is shown once; NULL for a public client.
-- redirect_uris and post_logout_redirect_uris are JSON arrays of strings,
-- compared exactly (see domain::oauth_client). first_party clients are not
-- asked for consent.
CREATE TABLE oauth_clients (
    client_id                 TEXT    PRIMARY KEY,
    name                      TEXT    NOT NULL,
    secret_hash               TEXT,
    redirect_uris             TEXT    NOT NULL,
    post_logout_redirect_uris TEXT    NOT NULL,
    first_party               INTEGER NOT NULL DEFAULT 0,
    created_at                INTEGER  NOT NULL,
    updated_at                INTEGER  NOT NULL
);
