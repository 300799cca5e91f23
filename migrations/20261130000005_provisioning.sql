-- Real access on the target (issue 14): a resource names how access to it is granted, with a
-- service credential; every grant and revoke on a target is a recorded step.

-- simulated: nothing is done on the target (the demo's hosts); linux_ssh: accounts are made
-- and removed over SSH with the resource's service credential.
CREATE TYPE provisioner_kind AS ENUM ('simulated', 'linux_ssh');

-- What Portcullis logs in to a target with. The secret (an OpenSSH private key) is sealed
-- with the key file, like generated passwords, and never shown again after saving.
CREATE TABLE service_credentials (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    username          text NOT NULL,
    secret_ciphertext bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT service_credentials_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT service_credentials_username_format CHECK (username ~ '^[a-z_][a-z0-9_-]{0,31}$')
);
CREATE UNIQUE INDEX service_credentials_name_key ON service_credentials (lower(name));

ALTER TABLE resources
    ADD COLUMN provisioner   provisioner_kind NOT NULL DEFAULT 'simulated',
    ADD COLUMN credential_id uuid REFERENCES service_credentials (id) ON DELETE RESTRICT,
    -- The target's SSH host key as `type base64`, pinned: a different key fails the step.
    ADD COLUMN host_key      text,
    ADD CONSTRAINT resources_provisioner_credential CHECK (
        provisioner = 'simulated' OR (credential_id IS NOT NULL AND host_key IS NOT NULL)
    ),
    ADD CONSTRAINT resources_host_key_format CHECK (
        host_key IS NULL OR host_key ~ '^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/]+={0,3}$'
    );

-- The groups an activity's login account joins on the target for the session (sudo, wheel,
-- adm, ...), and leaves at the end.
ALTER TABLE activities
    ADD COLUMN target_groups text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT activities_target_groups CHECK (
        cardinality(target_groups) <= 16
        AND array_to_string(target_groups, ',') ~ '^([a-z_][a-z0-9_-]{0,31}(,[a-z_][a-z0-9_-]{0,31})*)?$'
    );
ALTER TABLE requests ADD COLUMN target_groups text[] NOT NULL DEFAULT '{}';

CREATE TYPE provision_action AS ENUM ('grant', 'revoke');

-- One grant or revoke of one session on its target, with what it needs to be done again by
-- any instance (the target as it was at the grant: a later edit of the resource does not
-- redirect a revoke). No secret is stored here.
CREATE TABLE provision_steps (
    id              bigserial PRIMARY KEY,
    session_id      uuid NOT NULL REFERENCES activity_sessions (id),
    action          provision_action NOT NULL,
    provisioner     provisioner_kind NOT NULL,
    credential_id   uuid REFERENCES service_credentials (id) ON DELETE RESTRICT,
    host            text NOT NULL,
    port            integer NOT NULL,
    host_key        text,
    login_mode      login_account_mode NOT NULL,
    account         text NOT NULL,
    target_groups   text[] NOT NULL DEFAULT '{}',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    done_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT provision_steps_one_per_action UNIQUE (session_id, action),
    CONSTRAINT provision_steps_last_error_length CHECK (char_length(last_error) <= 2000)
);
-- The worker's queue: revokes still to do, by when they are due.
CREATE INDEX provision_steps_due_idx ON provision_steps (next_attempt_at) WHERE done_at IS NULL;

-- Every way a session ends (the requester, an administrator, the window, a revocation, a
-- failed grant) queues the removal of what its grant made, in the ending transaction itself:
-- no code path can end a session and forget the target.
CREATE FUNCTION provision_steps_queue_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO provision_steps (session_id, action, provisioner, credential_id, host, port,
                                 host_key, login_mode, account, target_groups)
    SELECT g.session_id, 'revoke', g.provisioner, g.credential_id, g.host, g.port,
           g.host_key, g.login_mode, g.account, g.target_groups
    FROM provision_steps g
    WHERE g.session_id = NEW.id AND g.action = 'grant'
    ON CONFLICT (session_id, action) DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('portcullis_provision', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER activity_sessions_queue_revoke
    AFTER UPDATE OF status ON activity_sessions
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'canceled', 'approval_denied', 'expired', 'failed')
          AND OLD.status NOT IN ('completed', 'canceled', 'approval_denied', 'expired', 'failed'))
    EXECUTE FUNCTION provision_steps_queue_revoke();
