-- Benchmark volume, part 2: the historical sessions (ended over the past two years), each
-- with its request and two events (requested, and the one that ended it). Run after
-- bench/seed.sql, on the database that should carry the history:
--
--   psql -v ON_ERROR_STOP=1 -v history=1000000 -f bench/seed_history.sql
--
-- Operators u00001..u00160 get 1,000 each (160,000); the rest is spread evenly over the
-- other seeded users (about 85 each). Rows are inserted in time order, as they would have
-- accumulated.

\set ON_ERROR_STOP on
\timing on

BEGIN;
SET LOCAL work_mem = '256MB';

CREATE FUNCTION pg_temp.uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
            || substr(replace(gen_random_uuid()::text, '-', ''), 14))::uuid
$$;

CREATE TEMP TABLE h_user AS
SELECT substr(username, 2)::int AS n, id, username FROM users WHERE username ~ '^u[0-9]{5}$';
CREATE UNIQUE INDEX ON h_user (n);

CREATE TEMP TABLE h_resource AS
SELECT right(name, 5)::int AS i, id, name, address, port FROM resources
WHERE name ~ '^(lnx|win|pg|sql|www)-[a-z]+-[a-z]+-[0-9]{5}$';
CREATE UNIQUE INDEX ON h_resource (i);

-- The team policies as bench/seed.sql made them (same slice formula).
CREATE TEMP TABLE h_policy AS
SELECT substr(p.name, 6, 2)::int AS t, p.id, p.name, cp.id AS profile_id, cp.name AS profile_name,
       (SELECT count(*) FROM approval_tiers at WHERE at.profile_id = cp.id)::int2 AS tiers,
       cp.decision_timeout_minutes,
       2000 + (substr(p.name, 6, 2)::int % 5) * 500 AS size,
       (substr(p.name, 6, 2)::int * 491) % (SELECT count(*) FROM h_resource) AS offset_
FROM access_policies p JOIN connection_profiles cp ON cp.id = p.profile_id
WHERE p.name ~ '^Team [0-9]{2} operations$';

CREATE TEMP TABLE h_policy_activity AS
SELECT pa.policy_id, row_number() OVER (PARTITION BY pa.policy_id ORDER BY pa.activity_id) - 1 AS j,
       count(*) OVER (PARTITION BY pa.policy_id) AS of, a.id, a.name, a.protocol, a.login_mode,
       a.login_template
FROM policy_activities pa JOIN activities a ON a.id = pa.activity_id
WHERE pa.policy_id IN (SELECT id FROM h_policy);

CREATE TEMP TABLE h AS
WITH base AS (
    SELECT k,
           CASE WHEN k <= 160000 THEN 1 + (k - 1) % 160
                ELSE 161 + (k * 7919) % ((SELECT count(*) FROM h_user) - 160) END AS user_n,
           now() - interval '1 day'
                 - ((k::bigint * 104729) % 1000003) / 1000003.0 * interval '729 days' AS created_at,
           (ARRAY['completed','completed','completed','completed','completed','completed',
                  'completed','completed','completed','completed','completed','completed',
                  'completed','completed','canceled','canceled','approval_denied','expired',
                  'expired','failed'])[1 + k % 20]::session_status AS status,
           30 + (k % 8) * 30 AS duration
    FROM generate_series(1::bigint, :history) k
)
SELECT b.*, b.created_at + (b.k % 30) * interval '1 minute' AS requested_start,
       u.id AS user_id, u.username,
       p.id AS policy_id, p.name AS policy_name, p.profile_id, p.profile_name, p.tiers,
       p.decision_timeout_minutes,
       a.id AS activity_id, a.name AS activity_name, a.protocol, a.login_mode, a.login_template,
       r.id AS resource_id, r.name AS resource_name, r.address AS resource_address,
       r.port AS resource_port
FROM base b
JOIN h_user u ON u.n = b.user_n
JOIN h_policy p ON p.t = 1 + b.user_n % 40
JOIN h_policy_activity a ON a.policy_id = p.id AND a.j = b.k % a.of
JOIN h_resource r ON r.i = (p.offset_ + (b.k * 37) % p.size) % (SELECT count(*) FROM h_resource);

ALTER TABLE h ADD COLUMN request_id uuid, ADD COLUMN session_id uuid, ADD COLUMN ended_at timestamptz;
UPDATE h SET request_id = pg_temp.uuid7(created_at), session_id = pg_temp.uuid7(created_at),
             ended_at = CASE status
                 WHEN 'completed' THEN requested_start + duration * interval '1 minute'
                 WHEN 'canceled' THEN created_at + interval '5 minutes'
                 WHEN 'approval_denied' THEN created_at + interval '20 minutes'
                 WHEN 'expired' THEN requested_start + duration * interval '1 minute'
                 ELSE requested_start + interval '1 minute' END;

-- Seeding is not an application action: no notifications, no NOTIFY, no per-row foreign-key
-- trigger (every reference is made by construction from the rows it points to).
SET LOCAL session_replication_role = replica;

INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id, policy_name,
                      profile_name, activity_name, protocol, login_mode, login_template, notes,
                      ticket_number, start_now, requested_start, duration_minutes, tier_count,
                      decision_deadline, extension_minutes, max_extensions, created_at)
SELECT request_id, user_id, policy_id, profile_id, activity_id, policy_name, profile_name,
       activity_name, protocol, login_mode, login_template,
       (ARRAY['Patch window', 'Investigate alert', 'Deploy release', 'Rotate certificates',
              'Disk cleanup', 'Customer escalation', 'Quarterly audit', ''])[1 + k % 8],
       CASE WHEN k % 3 = 0 THEN 'CHG' || lpad((k * 13 % 1000000)::text, 6, '0') ELSE '' END,
       k % 30 = 0, requested_start, duration, tiers,
       CASE WHEN tiers > 0 THEN created_at + decision_timeout_minutes * interval '1 minute' END,
       30, 2, created_at
FROM h ORDER BY created_at;

INSERT INTO activity_sessions (id, request_id, requester_id, resource_id, resource_name,
                               resource_address, resource_port, activity_name, status,
                               login_account, requested_start, available_at, ends_at, ended_at,
                               created_at, updated_at, notes, ticket_number)
SELECT session_id, request_id, user_id, resource_id, resource_name, resource_address,
       resource_port, activity_name, status,
       CASE WHEN status = 'completed' THEN
            CASE login_mode WHEN 'own' THEN username
                            WHEN 'managed' THEN login_template
                            ELSE replace(replace(login_template, '{username}', username), '{session}', left(session_id::text, 8)) END
       END,
       requested_start,
       CASE WHEN status = 'completed' THEN requested_start END,
       requested_start + duration * interval '1 minute',
       ended_at, created_at, ended_at,
       -- the request's notes and ticket number, as above
       (ARRAY['Patch window', 'Investigate alert', 'Deploy release', 'Rotate certificates',
              'Disk cleanup', 'Customer escalation', 'Quarterly audit', ''])[1 + k % 8],
       CASE WHEN k % 3 = 0 THEN 'CHG' || lpad((k * 13 % 1000000)::text, 6, '0') ELSE '' END
FROM h ORDER BY created_at;

INSERT INTO session_events (session_id, at, actor_id, actor_name, kind, from_status, to_status, comment)
SELECT session_id, at, actor_id, actor_name, kind, from_status, to_status, comment
FROM (
    SELECT session_id, created_at AS at, user_id AS actor_id, username AS actor_name,
           'requested' AS kind, NULL::session_status AS from_status,
           CASE WHEN tiers > 0 THEN 'waiting_for_approval' ELSE 'provisioning' END::session_status AS to_status,
           'Requested.' AS comment
    FROM h
    UNION ALL
    SELECT session_id, ended_at, CASE WHEN status = 'canceled' THEN user_id END,
           CASE WHEN status = 'canceled' THEN username ELSE 'Portcullis' END,
           CASE status WHEN 'completed' THEN 'window_ended' WHEN 'canceled' THEN 'ended'
                       WHEN 'approval_denied' THEN 'denied' WHEN 'expired' THEN 'expired'
                       ELSE 'provisioning_failed' END,
           CASE status WHEN 'completed' THEN 'available' WHEN 'failed' THEN 'provisioning'
                       ELSE 'waiting_for_approval' END::session_status,
           status,
           CASE status WHEN 'completed' THEN 'The session window ended.'
                       WHEN 'canceled' THEN 'Withdrawn by the requester.'
                       WHEN 'approval_denied' THEN 'Not needed now.'
                       WHEN 'expired' THEN 'No decision came in time.'
                       ELSE 'The provisioner could not create the account.' END
    FROM h
) e
ORDER BY at;

COMMIT;

ANALYZE;
