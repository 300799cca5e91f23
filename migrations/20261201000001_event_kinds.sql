-- Session event kinds become an enum, mirrored by `domain::event::EventKind`: a misspelt kind
-- is refused by the database instead of silently matching no trigger (issue 12).
CREATE TYPE session_event_kind AS ENUM (
    'requested',
    'approval',
    'tier_approved',
    'approved',
    'denied',
    'expired',
    'withdrawn',
    'started',
    'provisioned',
    'provisioning_failed',
    'connected',
    'locked',
    'unlocked',
    'extended',
    'ended',
    'window_ended',
    'revoked',
    'access_granted',
    'access_removed',
    'access_removal_failed',
    'access_extended',
    'extension_failed',
    'connection_string_shown',
    'password_revealed'
);

-- The email trigger's WHEN clause depends on the column: drop it while the type changes.
DROP TRIGGER session_events_enqueue_notifications ON session_events;
ALTER TABLE session_events DROP CONSTRAINT session_events_kind;
ALTER TABLE session_events
    ALTER COLUMN kind TYPE session_event_kind USING kind::session_event_kind;

-- notifications_enqueue() keeps its body: its literals ('requested', 'approved', ...) are now
-- read as session_event_kind values, so a misspelt one raises instead of matching nothing.
CREATE TRIGGER session_events_enqueue_notifications
    AFTER INSERT ON session_events
    FOR EACH ROW WHEN (NEW.kind IN ('requested', 'tier_approved', 'approved', 'denied', 'expired'))
    EXECUTE FUNCTION notifications_enqueue();
