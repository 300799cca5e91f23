-- Single sign-on: the accounts an OpenID Connect provider vouches for. The provider's
-- (issuer, subject) names a person for good (usernames, names and emails change), so an
-- account is found by it, never by a name the provider sends.
CREATE TABLE user_identities (
    issuer       text NOT NULL,
    subject      text NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_sign_in timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject),
    CONSTRAINT user_identities_issuer_length CHECK (char_length(issuer) BETWEEN 1 AND 2048),
    -- OpenID Connect Core: a subject is at most 255 ASCII characters.
    CONSTRAINT user_identities_subject_length CHECK (char_length(subject) BETWEEN 1 AND 255)
);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);
