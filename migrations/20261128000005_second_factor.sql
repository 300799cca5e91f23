-- Second factor (TOTP, RFC 6238) with single-use recovery codes, and the per-address
-- sign-in rate limit.

-- One authenticator per user. The secret is sealed with the application's key (AES-256-GCM,
-- the user id as associated data), never stored in clear.
CREATE TABLE user_totp (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed bytea NOT NULL,
    -- NULL while enrolling: the factor is on only once a right code has been entered.
    confirmed_at  timestamptz,
    -- The last time step (unix seconds / 30) whose code was accepted: a code is accepted
    -- only for a later step, so none is accepted twice.
    last_step     bigint NOT NULL DEFAULT -1,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Ten per enrolment (or regeneration). Only a SHA-256 of each is kept.
CREATE TABLE user_recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- Sign-in attempts (password and code POSTs) per client address in the current window,
-- shared by every instance.
CREATE TABLE sign_in_attempts (
    address      inet PRIMARY KEY,
    window_start timestamptz NOT NULL,
    attempts     integer NOT NULL
);
CREATE INDEX sign_in_attempts_window_idx ON sign_in_attempts (window_start);
