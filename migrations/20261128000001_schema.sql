-- Portcullis schema: people, catalogue, policy, requests, sessions and their history.
-- DESIGN.md sections 2 and 3. Names of constraints are stable: the application maps
-- some of them to field errors.

CREATE TYPE user_role AS ENUM ('user', 'admin', 'auditor');

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    username            text NOT NULL,
    display_name        text NOT NULL,
    email               text,
    -- NULL: the account cannot sign in until an administrator sets a password.
    password_hash       text,
    role                user_role NOT NULL DEFAULT 'user',
    time_zone           text NOT NULL DEFAULT 'UTC',
    disabled            boolean NOT NULL DEFAULT false,
    failed_logins       integer NOT NULL DEFAULT 0,
    failed_window_start timestamptz,
    locked_until        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    CONSTRAINT users_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 128),
    CONSTRAINT users_email_length CHECK (email IS NULL OR char_length(email) BETWEEN 3 AND 254),
    CONSTRAINT users_time_zone_length CHECK (char_length(time_zone) BETWEEN 1 AND 64),
    CONSTRAINT users_failed_logins_nonnegative CHECK (failed_logins >= 0)
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE groups (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT groups_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT groups_description_length CHECK (char_length(description) <= 1000)
);
CREATE UNIQUE INDEX groups_name_key ON groups (lower(name));

CREATE TABLE group_members (
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);

CREATE TYPE resource_kind AS ENUM ('server', 'database', 'website', 'domain');

CREATE TABLE resources (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    kind        resource_kind NOT NULL,
    platform    text NOT NULL,
    address     text NOT NULL,
    port        integer,
    description text NOT NULL DEFAULT '',
    -- Archived resources keep their history but cannot be requested.
    archived_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT resources_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT resources_platform_length CHECK (char_length(btrim(platform)) BETWEEN 1 AND 64),
    CONSTRAINT resources_address_length CHECK (char_length(btrim(address)) BETWEEN 1 AND 253),
    CONSTRAINT resources_port_range CHECK (port IS NULL OR port BETWEEN 1 AND 65535),
    CONSTRAINT resources_description_length CHECK (char_length(description) <= 1000)
);
CREATE UNIQUE INDEX resources_name_key ON resources (lower(name));

CREATE TYPE protocol AS ENUM ('ssh', 'rdp', 'https', 'none');
CREATE TYPE login_account_mode AS ENUM ('own', 'ephemeral', 'managed');

CREATE TABLE activities (
    id             uuid PRIMARY KEY,
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    platform       text NOT NULL,
    protocol       protocol NOT NULL,
    login_mode     login_account_mode NOT NULL,
    -- ephemeral: a name template such as pc-{username}-{session}; managed: the shared
    -- account's name; own: NULL (the requester's own account name is used).
    login_template text,
    archived_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT activities_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    CONSTRAINT activities_platform_length CHECK (char_length(btrim(platform)) BETWEEN 1 AND 64),
    CONSTRAINT activities_description_length CHECK (char_length(description) <= 1000),
    CONSTRAINT activities_login_template CHECK (
        (login_mode = 'own' AND login_template IS NULL)
        OR (login_mode <> 'own' AND char_length(btrim(login_template)) BETWEEN 1 AND 128)
    )
);
CREATE UNIQUE INDEX activities_name_key ON activities (lower(name));

CREATE TABLE connection_profiles (
    id                       uuid PRIMARY KEY,
    name                     text NOT NULL,
    description              text NOT NULL DEFAULT '',
    max_duration_minutes     integer NOT NULL,
    notes_required           boolean NOT NULL DEFAULT false,
    ticket_required          boolean NOT NULL DEFAULT false,
    ticket_pattern           text,
    schedule_horizon_days    integer NOT NULL DEFAULT 30,
    -- false: automatic approval; true: the ordered approval_tiers must all agree.
    approval_required        boolean NOT NULL DEFAULT false,
    allow_self_approval      boolean NOT NULL DEFAULT false,
    decision_timeout_minutes integer NOT NULL DEFAULT 1440,
    extension_allowed        boolean NOT NULL DEFAULT false,
    extension_minutes        integer NOT NULL DEFAULT 30,
    max_extensions           integer NOT NULL DEFAULT 0,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT profiles_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT profiles_description_length CHECK (char_length(description) <= 1000),
    CONSTRAINT profiles_max_duration CHECK (max_duration_minutes BETWEEN 5 AND 10080),
    CONSTRAINT profiles_ticket_pattern_length CHECK (ticket_pattern IS NULL OR char_length(ticket_pattern) BETWEEN 1 AND 200),
    CONSTRAINT profiles_horizon CHECK (schedule_horizon_days BETWEEN 0 AND 365),
    CONSTRAINT profiles_decision_timeout CHECK (decision_timeout_minutes BETWEEN 1 AND 43200),
    CONSTRAINT profiles_extension_minutes CHECK (extension_minutes BETWEEN 1 AND 1440),
    CONSTRAINT profiles_max_extensions CHECK (max_extensions BETWEEN 0 AND 100)
);
CREATE UNIQUE INDEX connection_profiles_name_key ON connection_profiles (lower(name));

CREATE TABLE approval_tiers (
    id                 uuid PRIMARY KEY,
    profile_id         uuid NOT NULL REFERENCES connection_profiles (id) ON DELETE CASCADE,
    position           smallint NOT NULL,
    approvals_required integer NOT NULL,
    CONSTRAINT approval_tiers_position CHECK (position BETWEEN 1 AND 3),
    CONSTRAINT approval_tiers_required CHECK (approvals_required BETWEEN 1 AND 100),
    CONSTRAINT approval_tiers_profile_position_key UNIQUE (profile_id, position)
);

CREATE TABLE approval_tier_users (
    tier_id uuid NOT NULL REFERENCES approval_tiers (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (tier_id, user_id)
);
CREATE INDEX approval_tier_users_user_idx ON approval_tier_users (user_id);

CREATE TABLE approval_tier_groups (
    tier_id  uuid NOT NULL REFERENCES approval_tiers (id) ON DELETE CASCADE,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (tier_id, group_id)
);
CREATE INDEX approval_tier_groups_group_idx ON approval_tier_groups (group_id);

CREATE TABLE access_policies (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    profile_id  uuid NOT NULL REFERENCES connection_profiles (id) ON DELETE RESTRICT,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT policies_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT policies_description_length CHECK (char_length(description) <= 1000)
);
CREATE UNIQUE INDEX access_policies_name_key ON access_policies (lower(name));
CREATE INDEX access_policies_profile_idx ON access_policies (profile_id);

CREATE TABLE policy_users (
    policy_id uuid NOT NULL REFERENCES access_policies (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, user_id)
);
CREATE INDEX policy_users_user_idx ON policy_users (user_id);

CREATE TABLE policy_groups (
    policy_id uuid NOT NULL REFERENCES access_policies (id) ON DELETE CASCADE,
    group_id  uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, group_id)
);
CREATE INDEX policy_groups_group_idx ON policy_groups (group_id);

CREATE TABLE policy_activities (
    policy_id   uuid NOT NULL REFERENCES access_policies (id) ON DELETE CASCADE,
    activity_id uuid NOT NULL REFERENCES activities (id) ON DELETE RESTRICT,
    PRIMARY KEY (policy_id, activity_id)
);
CREATE INDEX policy_activities_activity_idx ON policy_activities (activity_id);

CREATE TABLE policy_resources (
    policy_id   uuid NOT NULL REFERENCES access_policies (id) ON DELETE CASCADE,
    resource_id uuid NOT NULL REFERENCES resources (id) ON DELETE RESTRICT,
    PRIMARY KEY (policy_id, resource_id)
);
CREATE INDEX policy_resources_resource_idx ON policy_resources (resource_id);

-- One wizard submission. Its id is the wizard draft's id, so a replayed Finish finds it.
-- Names and rules are copied from the catalogue at Finish so history shows them as they were.
CREATE TABLE requests (
    id                uuid PRIMARY KEY,
    requester_id      uuid NOT NULL REFERENCES users (id),
    policy_id         uuid REFERENCES access_policies (id) ON DELETE SET NULL,
    profile_id        uuid REFERENCES connection_profiles (id) ON DELETE SET NULL,
    activity_id       uuid REFERENCES activities (id) ON DELETE SET NULL,
    policy_name       text NOT NULL,
    profile_name      text NOT NULL,
    activity_name     text NOT NULL,
    protocol          protocol NOT NULL,
    login_mode        login_account_mode NOT NULL,
    login_template    text,
    notes             text NOT NULL DEFAULT '',
    ticket_number     text NOT NULL DEFAULT '',
    start_now         boolean NOT NULL,
    requested_start   timestamptz NOT NULL,
    duration_minutes  integer NOT NULL,
    tier_count        smallint NOT NULL,
    allow_self_approval boolean NOT NULL DEFAULT false,
    decision_deadline timestamptz,
    extension_minutes integer NOT NULL DEFAULT 0,
    max_extensions    integer NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT requests_notes_length CHECK (char_length(notes) <= 2000),
    CONSTRAINT requests_ticket_length CHECK (char_length(ticket_number) <= 64),
    CONSTRAINT requests_duration CHECK (duration_minutes BETWEEN 5 AND 10080),
    CONSTRAINT requests_tier_count CHECK (tier_count BETWEEN 0 AND 3),
    CONSTRAINT requests_deadline CHECK ((tier_count = 0) = (decision_deadline IS NULL))
);
CREATE INDEX requests_requester_idx ON requests (requester_id, created_at DESC);

CREATE TYPE session_status AS ENUM (
    'waiting_for_approval', 'pending', 'provisioning', 'available', 'logged_in', 'locked',
    'completed', 'canceled', 'approval_denied', 'expired', 'failed'
);

CREATE TABLE activity_sessions (
    id                  uuid PRIMARY KEY,
    request_id          uuid NOT NULL REFERENCES requests (id),
    -- Copied from the request: the dashboard filters and sorts by it without a join.
    requester_id        uuid NOT NULL REFERENCES users (id),
    resource_id         uuid REFERENCES resources (id) ON DELETE SET NULL,
    resource_name       text NOT NULL,
    resource_address    text NOT NULL,
    resource_port       integer,
    activity_name       text NOT NULL,
    status              session_status NOT NULL,
    -- The approval tier now deciding (1..tier_count) while Waiting for Approval.
    current_tier        smallint,
    -- Where an unlock returns to, while Locked.
    locked_from         session_status,
    lock_message        text,
    login_account       text,
    -- AES-256-GCM nonce || ciphertext of the generated password; wiped when the session ends.
    password_ciphertext bytea,
    requested_start     timestamptz NOT NULL,
    available_at        timestamptz,
    ends_at             timestamptz NOT NULL,
    extensions_used     integer NOT NULL DEFAULT 0,
    ended_at            timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_request_resource_key UNIQUE (request_id, resource_id),
    CONSTRAINT sessions_current_tier CHECK (
        (status = 'waiting_for_approval') = (current_tier IS NOT NULL)
        AND (current_tier IS NULL OR current_tier BETWEEN 1 AND 3)
    ),
    CONSTRAINT sessions_locked_from CHECK (
        (status = 'locked') = (locked_from IS NOT NULL)
        AND (locked_from IS NULL OR locked_from IN ('available', 'logged_in'))
    ),
    CONSTRAINT sessions_window CHECK (ends_at > requested_start),
    CONSTRAINT sessions_extensions CHECK (extensions_used >= 0),
    CONSTRAINT sessions_password_only_while_usable CHECK (
        password_ciphertext IS NULL OR status IN ('provisioning', 'available', 'logged_in', 'locked')
    )
);
-- The dashboard: one requester's sessions, newest first, by tab.
CREATE INDEX sessions_requester_created_idx ON activity_sessions (requester_id, created_at DESC, id);
CREATE INDEX sessions_live_requester_idx ON activity_sessions (requester_id, created_at DESC)
    WHERE status IN ('waiting_for_approval', 'pending', 'provisioning', 'available', 'logged_in', 'locked');
-- The worker and the approvals page: the few sessions that can still move.
CREATE INDEX sessions_live_status_idx ON activity_sessions (status, requested_start)
    WHERE status IN ('waiting_for_approval', 'pending', 'provisioning', 'available', 'logged_in', 'locked');
CREATE INDEX sessions_request_idx ON activity_sessions (request_id);
CREATE INDEX sessions_resource_idx ON activity_sessions (resource_id, created_at DESC);

CREATE TYPE approval_decision AS ENUM ('approved', 'denied');

CREATE TABLE approval_decisions (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES activity_sessions (id),
    tier        smallint NOT NULL,
    approver_id uuid NOT NULL REFERENCES users (id),
    decision    approval_decision NOT NULL,
    comment     text NOT NULL DEFAULT '',
    decided_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT approval_decisions_tier CHECK (tier BETWEEN 1 AND 3),
    CONSTRAINT approval_decisions_comment_length CHECK (char_length(comment) <= 1000),
    CONSTRAINT approval_decisions_denial_has_comment CHECK (decision = 'approved' OR char_length(btrim(comment)) > 0),
    CONSTRAINT approval_decisions_one_per_approver UNIQUE (session_id, tier, approver_id)
);

-- The record of everything that happened to a session. Append-only: see the trigger below.
CREATE TABLE session_events (
    id          bigserial PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES activity_sessions (id),
    at          timestamptz NOT NULL DEFAULT now(),
    -- NULL actor: the system (the worker, the provisioner).
    actor_id    uuid REFERENCES users (id),
    actor_name  text NOT NULL,
    kind        text NOT NULL,
    from_status session_status,
    to_status   session_status,
    comment     text NOT NULL DEFAULT '',
    client_addr inet,
    CONSTRAINT session_events_kind CHECK (kind ~ '^[a-z_]{1,32}$'),
    CONSTRAINT session_events_comment_length CHECK (char_length(comment) <= 2000)
);
CREATE INDEX session_events_session_idx ON session_events (session_id, id);

CREATE FUNCTION session_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'session_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER session_events_no_update_delete
    BEFORE UPDATE OR DELETE ON session_events
    FOR EACH ROW EXECUTE FUNCTION session_events_append_only();
CREATE TRIGGER session_events_no_truncate
    BEFORE TRUNCATE ON session_events
    FOR EACH STATEMENT EXECUTE FUNCTION session_events_append_only();

-- Facts about this installation (for example, when the demo data was loaded).
CREATE TABLE installation (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every change an administrator makes (web or command line), with the object before and after.
CREATE TABLE admin_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid REFERENCES users (id),
    actor_name  text NOT NULL,
    action      text NOT NULL,
    object_kind text NOT NULL,
    object_id   uuid,
    object_name text NOT NULL,
    before      jsonb,
    after       jsonb
);
CREATE INDEX admin_audit_at_idx ON admin_audit (at DESC);
CREATE TRIGGER admin_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION session_events_append_only();
