-- Two more provisioners (issue 14): `postgresql` makes a login role on a PostgreSQL server for
-- the session; `command` runs an executable the operator declared in the provisioners file
-- (never from the web). ADD VALUE may run in this migration's transaction as long as nothing
-- here uses the new values as enum values: the checks below compare the text spelling.
ALTER TYPE provisioner_kind ADD VALUE IF NOT EXISTS 'postgresql';
ALTER TYPE provisioner_kind ADD VALUE IF NOT EXISTS 'command';

-- What happens to what a session's role owns when it is dropped.
CREATE TYPE owned_objects_action AS ENUM ('drop', 'reassign');

ALTER TABLE resources
    -- postgresql: the database the service credential connects to (NULL: postgres); the
    -- role's owned objects are reassigned or dropped in this database.
    ADD COLUMN database_name text,
    -- command: the name of an entry in the provisioners file; the web only names it.
    ADD COLUMN provisioner_command text,
    DROP CONSTRAINT resources_provisioner_credential,
    ADD CONSTRAINT resources_provisioner_credential CHECK (
        CASE provisioner::text
            WHEN 'simulated' THEN true
            WHEN 'linux_ssh' THEN credential_id IS NOT NULL AND host_key IS NOT NULL
            WHEN 'postgresql' THEN credential_id IS NOT NULL
            WHEN 'command' THEN provisioner_command IS NOT NULL AND credential_id IS NULL
                                AND host_key IS NULL
            ELSE false
        END
    ),
    ADD CONSTRAINT resources_database_name_format CHECK (
        database_name IS NULL OR database_name ~ '^[A-Za-z_][A-Za-z0-9_$-]{0,62}$'
    ),
    ADD CONSTRAINT resources_provisioner_command_format CHECK (
        provisioner_command IS NULL OR provisioner_command ~ '^[a-z0-9][a-z0-9_-]{0,63}$'
    );

-- postgresql: the activity's `target_groups` are the roles the session's role is granted;
-- this says what becomes of the objects it made when it is dropped.
ALTER TABLE activities
    ADD COLUMN owned_objects owned_objects_action NOT NULL DEFAULT 'drop';

ALTER TABLE provision_steps
    ADD COLUMN database_name       text,
    ADD COLUMN provisioner_command text,
    ADD COLUMN owned_objects       owned_objects_action NOT NULL DEFAULT 'drop',
    -- On the grant: the end of the window the target last accepted (postgresql: the role's
    -- VALID UNTIL). The worker re-applies it when an extension moves the session's end.
    ADD COLUMN valid_until         timestamptz;

-- The revoke copies what the grant recorded, now including the new columns.
CREATE OR REPLACE FUNCTION provision_steps_queue_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO provision_steps (session_id, action, provisioner, credential_id, host, port,
                                 host_key, login_mode, account, target_groups, database_name,
                                 provisioner_command, owned_objects)
    SELECT g.session_id, 'revoke', g.provisioner, g.credential_id, g.host, g.port,
           g.host_key, g.login_mode, g.account, g.target_groups, g.database_name,
           g.provisioner_command, g.owned_objects
    FROM provision_steps g
    WHERE g.session_id = NEW.id AND g.action = 'grant'
    ON CONFLICT (session_id, action) DO NOTHING;
    IF FOUND THEN
        PERFORM pg_notify('portcullis_provision', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$;
