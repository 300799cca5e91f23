-- API tokens: a name, scopes, an expiry; only the SHA-256 of the secret is stored, so a
-- leaked database gives no usable token. Revoked tokens stay listed (revoked_at) for the record.
CREATE TYPE api_scope AS ENUM ('read', 'request', 'approve', 'admin');

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    token_sha256 bytea NOT NULL,
    scopes       api_scope[] NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    CONSTRAINT api_tokens_hash_length CHECK (octet_length(token_sha256) = 32),
    CONSTRAINT api_tokens_scopes_present CHECK (cardinality(scopes) BETWEEN 1 AND 4),
    CONSTRAINT api_tokens_expiry_after_creation CHECK (expires_at > created_at)
);
CREATE UNIQUE INDEX api_tokens_token_sha256_key ON api_tokens (token_sha256);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, created_at DESC);

-- Idempotency keys of POST /api/v1/requests: one request per (user, key); the body's digest
-- tells a retry (same body) from a mistake (another body under the same key).
CREATE TABLE api_idempotency_keys (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         text NOT NULL,
    body_sha256 bytea NOT NULL,
    request_id  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key),
    CONSTRAINT api_idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255)
);
