-- The SSH gateway, the browser terminal and their recordings (issue 15), and the activity
-- and profile switches they obey. The tables are shared by the gateway (which writes them),
-- the Account page (keys) and View Logs (recordings).

-- Public keys people register on their Account page. The gateway accepts a key only for a
-- connection string of a session that belongs to the key's owner. A key belongs to one
-- person: the same key cannot be registered twice.
CREATE TABLE user_ssh_keys (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    -- The algorithm as OpenSSH names it (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...).
    algorithm    text NOT NULL,
    -- The key in OpenSSH's one-line form, without its comment: "<algorithm> <base64>".
    public_key   text NOT NULL,
    -- "SHA256:<base64 without padding>", as `ssh-keygen -lf` prints it.
    fingerprint  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    CONSTRAINT user_ssh_keys_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
    CONSTRAINT user_ssh_keys_public_key_length CHECK (char_length(public_key) BETWEEN 16 AND 16384),
    CONSTRAINT user_ssh_keys_fingerprint_format CHECK (fingerprint ~ '^SHA256:[A-Za-z0-9+/]{43}$')
);
CREATE UNIQUE INDEX user_ssh_keys_fingerprint_key ON user_ssh_keys (fingerprint);
CREATE UNIQUE INDEX user_ssh_keys_user_name_key ON user_ssh_keys (user_id, lower(name));

-- Whether an activity allows scp/sftp through the gateway (off by default), and whether a
-- Lock on a session of it removes the access on the target (revoke) instead of only
-- freezing connections through Portcullis.
ALTER TABLE activities
    ADD COLUMN file_transfer boolean NOT NULL DEFAULT false,
    ADD COLUMN revoke_on_lock boolean NOT NULL DEFAULT false;

-- Whether sessions under a profile record what the user types, besides what they see.
ALTER TABLE connection_profiles
    ADD COLUMN record_input boolean NOT NULL DEFAULT false;

-- One recording per connection through the gateway or the browser terminal, in asciicast
-- v2: the header comes from this row, the events from recording_chunks in seq order.
CREATE TYPE recording_via AS ENUM ('ssh', 'browser');
CREATE TYPE recording_mode AS ENUM ('shell', 'exec', 'sftp');

CREATE TABLE recordings (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES activity_sessions (id),
    -- Who connected (the session's requester; kept even if the account is deleted later).
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    user_name   text NOT NULL,
    via         recording_via NOT NULL,
    mode        recording_mode NOT NULL,
    -- The command of an exec (`ssh host command`), as the client sent it; '' for a shell.
    command     text NOT NULL DEFAULT '',
    -- The terminal size at the start (asciicast header); 80x24 when no PTY was asked for.
    width       integer NOT NULL DEFAULT 80,
    height      integer NOT NULL DEFAULT 24,
    -- Whether input ("i" events) is recorded too (the profile's record_input at the start).
    with_input  boolean NOT NULL DEFAULT false,
    client_addr inet,
    started_at  timestamptz NOT NULL DEFAULT now(),
    -- NULL while the connection is open.
    ended_at    timestamptz,
    end_reason  text,
    -- Bytes of output (and input, when recorded) so far.
    bytes       bigint NOT NULL DEFAULT 0,
    CONSTRAINT recordings_command_length CHECK (char_length(command) <= 4096),
    CONSTRAINT recordings_size CHECK (width BETWEEN 1 AND 1000 AND height BETWEEN 1 AND 1000),
    CONSTRAINT recordings_end_reason_length CHECK (end_reason IS NULL OR char_length(end_reason) <= 500)
);
CREATE INDEX recordings_session_idx ON recordings (session_id, started_at);
CREATE INDEX recordings_started_idx ON recordings (started_at);
CREATE INDEX recordings_open_idx ON recordings (started_at) WHERE ended_at IS NULL;

-- The recording as it flows, about one chunk a second per connection, so a crash loses at
-- most about a second and any instance can serve or follow it.
CREATE TABLE recording_chunks (
    recording_id uuid NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    -- asciicast v2 event lines, each a JSON array `[seconds, "o"|"i"|"r", data]` and a
    -- newline, with seconds counted from recordings.started_at.
    events       text NOT NULL,
    -- The output of these events as plain text (escape sequences removed), for search.
    plain        text NOT NULL DEFAULT '',
    PRIMARY KEY (recording_id, seq),
    CONSTRAINT recording_chunks_seq CHECK (seq >= 0)
);
CREATE INDEX recording_chunks_plain_idx ON recording_chunks
    USING gin (to_tsvector('simple', plain));

-- Whoever follows a live recording hears of each new chunk (channel portcullis_recordings,
-- payload: the recording id), whichever instance wrote it.
CREATE FUNCTION recording_chunks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_recordings', NEW.recording_id::text);
    RETURN NULL;
END;
$$;
CREATE TRIGGER recording_chunks_announce
    AFTER INSERT ON recording_chunks
    FOR EACH ROW EXECUTE FUNCTION recording_chunks_notify();
