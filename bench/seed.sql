-- Benchmark volume, part 1: people, catalogue, policies and the live sessions.
-- Run by bench/run.sh after `portcullis migrate` and `portcullis seed apply seed/demo.toml`
-- (the demo users, profiles and the argon2 hash of alice come from there):
--
--   psql -v ON_ERROR_STOP=1 -v users=9995 -v resources=19968 -v live=5000 -f bench/seed.sql
--
-- With the 5 demo users and 32 demo resources that makes 10,000 users and 20,000 resources.
-- Everything is set-based (generate_series), deterministic in shape (random only in ids and
-- small jitters), and consistent with the schema's checks. bench/seed_history.sql adds the
-- million historical sessions; run.sh clones the database in between to get the same data
-- with an empty history.
--
-- Who is who (run.sh and examples/bench_wizard.rs rely on this):
--   u00001..u00064  dashboard and Resource Selection users (wrk)
--   u00065..u00128  wizard users (bench_wizard run)
--   u00001..u00160  "operators": 25 live sessions each (20 on the Active tab, 5 Scheduled)
--                   and 1,000 historical sessions each
--   every user      member of team (n % 40) + 1, a fifth of them of a second team; every
--                   team has a policy granting 2 or 3 activities on 2,000 to 4,000 resources.

\set ON_ERROR_STOP on
\timing on

BEGIN;

-- Time-ordered ids like the application's Uuid::now_v7 (48-bit milliseconds, version 7).
CREATE FUNCTION pg_temp.uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
            || substr(replace(gen_random_uuid()::text, '-', ''), 14))::uuid
$$;

-- Users ------------------------------------------------------------------------------------
CREATE TEMP TABLE b_user AS
SELECT n, pg_temp.uuid7(now() - interval '3 years' + n * interval '2 hours') AS id,
       'u' || lpad(n::text, 5, '0') AS username
FROM generate_series(1, :users) n;
CREATE UNIQUE INDEX ON b_user (n);

INSERT INTO users (id, username, display_name, email, password_hash, role, time_zone,
                   created_at, updated_at)
SELECT b.id, b.username,
       (ARRAY['Ada','Ben','Chloe','Dmitri','Elena','Farid','Grace','Hiro','Ines','Jonas',
              'Kemi','Lars','Mei','Nadia','Omar','Priya','Quinn','Rosa','Sven','Tariq',
              'Uma','Viktor','Wen','Yusuf'])[1 + b.n % 24]
       || ' ' ||
       (ARRAY['Abbott','Becker','Castillo','Dubois','Eriksen','Fischer','Garcia','Haddad',
              'Ivanova','Jensen','Kowalski','Larsen','Moreau','Nakamura','Okafor','Petrov',
              'Quispe','Rossi','Schmidt','Tanaka','Urbina','Vogel','Weber','Xu','Yilmaz',
              'Zhang','Novak','Silva','Costa','Lindqvist'])[1 + (b.n / 24) % 30],
       b.username || '@corp.example',
       (SELECT password_hash FROM users WHERE username = 'alice'),
       CASE WHEN b.n % 500 = 250 THEN 'admin'::user_role
            WHEN b.n % 500 = 400 THEN 'auditor'::user_role
            ELSE 'user'::user_role END,
       (ARRAY['UTC','Europe/Berlin','Europe/London','America/New_York','America/Los_Angeles',
              'Asia/Tokyo','Australia/Sydney','Asia/Kolkata'])[1 + b.n % 8],
       now() - interval '3 years' + b.n * interval '2 hours', now()
FROM b_user b;

-- Groups: 40 teams; everyone in one, a fifth in a second; 50 more approvers. ----------------
CREATE TEMP TABLE b_team AS
SELECT t, gen_random_uuid() AS id, 'Team ' || lpad(t::text, 2, '0') AS name
FROM generate_series(1, 40) t;

INSERT INTO groups (id, name, description)
SELECT id, name, 'Operations team ' || t || '.' FROM b_team;

INSERT INTO group_members (group_id, user_id)
SELECT tm.id, u.id FROM b_user u JOIN b_team tm ON tm.t = 1 + u.n % 40
UNION
SELECT tm.id, u.id FROM b_user u JOIN b_team tm ON tm.t = 1 + (u.n * 7 + 3) % 40
WHERE u.n % 5 = 0;

INSERT INTO group_members (group_id, user_id)
SELECT g.id, u.id FROM b_user u, groups g
WHERE g.name = 'Approvers' AND u.n % 200 = 100;

-- Resources: 19,968 across sites, roles and kinds. -----------------------------------------
CREATE TEMP TABLE b_resource AS
SELECT i, gen_random_uuid() AS id,
       kind, platform, prefix || '-' || site || '-' || role || '-' || lpad(i::text, 5, '0') AS name,
       port
FROM (
    SELECT i,
           (ARRAY['fra','ams','lon','nyc','sfo','sgp','syd','tyo'])[1 + i % 8] AS site,
           (ARRAY['web','app','db','cache','batch','edge','mq','build'])[1 + (i / 8) % 8] AS role,
           CASE WHEN i % 10 < 5 THEN 'server' WHEN i % 10 < 7 THEN 'server'
                WHEN i % 10 < 9 THEN 'database' ELSE 'website' END::resource_kind AS kind,
           CASE WHEN i % 10 < 5 THEN 'Linux' WHEN i % 10 < 7 THEN 'Windows'
                WHEN i % 10 = 7 THEN 'PostgreSQL' WHEN i % 10 = 8 THEN 'SQL Server'
                ELSE 'Web' END AS platform,
           CASE WHEN i % 10 < 5 THEN 'lnx' WHEN i % 10 < 7 THEN 'win'
                WHEN i % 10 = 7 THEN 'pg' WHEN i % 10 = 8 THEN 'sql' ELSE 'www' END AS prefix,
           CASE WHEN i % 10 < 5 THEN 22 WHEN i % 10 < 7 THEN 3389
                WHEN i % 10 = 7 THEN 5432 WHEN i % 10 = 8 THEN 1433 ELSE 443 END AS port
    FROM generate_series(0, :resources - 1) i
) x;
CREATE UNIQUE INDEX ON b_resource (i);

INSERT INTO resources (id, name, kind, platform, address, port, description, archived_at)
SELECT id, name, kind, platform, name || '.corp.example', port,
       initcap(platform) || ' ' || kind::text || ' in ' || split_part(name, '-', 2),
       CASE WHEN i % 97 = 0 THEN now() - interval '90 days' END
FROM b_resource;

-- Activities: the six demo ones and fourteen more. ------------------------------------------
INSERT INTO activities (id, name, description, platform, protocol, login_mode, login_template)
SELECT gen_random_uuid(), name, description, platform, protocol::protocol, mode::login_account_mode, template
FROM (VALUES
    ('Linux patching', 'Apply operating system updates.', 'Linux', 'ssh', 'own', NULL),
    ('Linux log review', 'Read system logs as an ephemeral user.', 'Linux', 'ssh', 'ephemeral', 'pc-{username}-{session}'),
    ('Linux deployment', 'Deploy a release with the deploy account.', 'Linux', 'ssh', 'managed', 'svc_deploy'),
    ('Windows patching', 'Install Windows updates.', 'Windows', 'rdp', 'ephemeral', 'pc_{username}_{session}'),
    ('Windows event review', 'Read event logs.', 'Windows', 'rdp', 'own', NULL),
    ('IIS administration', 'Manage web sites on IIS.', 'Windows', 'rdp', 'managed', 'CORP\svc-iis'),
    ('PostgreSQL read-only', 'Query production read-only.', 'PostgreSQL', 'ssh', 'managed', 'svc_readonly'),
    ('PostgreSQL migration', 'Run a schema migration.', 'PostgreSQL', 'ssh', 'managed', 'svc_migrate'),
    ('SQL Server maintenance', 'Index and statistics maintenance.', 'SQL Server', 'rdp', 'managed', 'CORP\svc-sqladmin'),
    ('SQL Server read-only', 'Query production read-only.', 'SQL Server', 'rdp', 'own', NULL),
    ('Web admin console', 'Administer a web application.', 'Web', 'https', 'own', NULL),
    ('Web break-glass', 'Emergency access with a managed admin.', 'Web', 'https', 'managed', 'admin'),
    ('Cache flush', 'Flush a cache node.', 'Linux', 'ssh', 'ephemeral', 'pc-{username}-{session}'),
    ('Batch rerun', 'Rerun a failed batch job.', 'Linux', 'ssh', 'own', NULL)
) v(name, description, platform, protocol, mode, template);

CREATE TEMP TABLE b_activity AS
SELECT row_number() OVER (ORDER BY lower(name)) - 1 AS k, id, name, protocol, login_mode, login_template
FROM activities WHERE archived_at IS NULL;

-- Policies: one per team, rotating through the three demo profiles, each granting 2 or 3
-- activities and a contiguous (rotated) slice of 2,000 to 4,000 resources. -----------------
CREATE TEMP TABLE b_policy AS
SELECT tm.t, gen_random_uuid() AS id, tm.name || ' operations' AS name, tm.id AS team_id,
       cp.id AS profile_id, cp.name AS profile_name, cp.approval_required,
       2000 + (tm.t % 5) * 500 AS size, (tm.t * 491) % :resources AS offset_
FROM b_team tm
JOIN connection_profiles cp
  ON cp.name = (ARRAY['Standard', 'Self-service', 'Change window'])[1 + tm.t % 3];

INSERT INTO access_policies (id, name, description, profile_id)
SELECT id, name, 'Team access for ' || name || '.', profile_id FROM b_policy;

INSERT INTO policy_groups (policy_id, group_id) SELECT id, team_id FROM b_policy;

INSERT INTO policy_activities (policy_id, activity_id)
SELECT DISTINCT p.id, a.id
FROM b_policy p
CROSS JOIN generate_series(0, 2) j
JOIN b_activity a ON a.k = (p.t * 3 + j * 7) % (SELECT count(*) FROM b_activity)
WHERE j < 2 + p.t % 2;

INSERT INTO policy_resources (policy_id, resource_id)
SELECT p.id, r.id
FROM b_policy p
JOIN b_resource r ON (r.i - p.offset_ + :resources) % :resources < p.size;

-- Live sessions: 5,000, each with its request and events. -----------------------------------
-- Slots 0-19 of a user are on the Active tab (available, logged in, locked, waiting for
-- approval with a start in the past), 20-24 on Scheduled (pending, waiting with a future
-- start). Times are chosen so that the worker moves none of them during a benchmark (ends
-- hours away, starts days away, decision deadlines a day away).
CREATE TEMP TABLE b_live AS
WITH slots AS (
    SELECT k,
           CASE WHEN k <= 4000 THEN 1 + (k - 1) / 25 ELSE 161 + (k * 7919) % (:users - 160) END AS user_n,
           CASE WHEN k <= 4000 THEN (k - 1) % 25 ELSE (k * 31) % 25 END AS slot
    FROM generate_series(1, :live) k
), shaped AS (
    SELECT s.*,
           CASE WHEN slot < 9 THEN 'available' WHEN slot < 14 THEN 'logged_in'
                WHEN slot < 15 THEN 'locked' WHEN slot < 20 THEN 'waiting_for_approval'
                WHEN slot < 23 THEN 'pending' ELSE 'waiting_for_approval' END::session_status AS status,
           CASE WHEN slot < 20 THEN now() - (slot * 3 + 2) * interval '1 minute'
                ELSE now() + (1 + slot % 5) * interval '1 day' + (k % 60) * interval '1 minute' END AS requested_start,
           CASE WHEN slot < 20 THEN now() - (slot * 3 + 5) * interval '1 minute'
                ELSE now() - (slot % 5) * interval '1 day' - (k % 60) * interval '1 minute' END AS created_at
    FROM slots s
)
SELECT sh.*, u.id AS user_id, u.username, p.id AS policy_id, p.name AS policy_name,
       p.profile_id, p.profile_name,
       a.id AS activity_id, a.name AS activity_name, a.protocol, a.login_mode, a.login_template,
       r.id AS resource_id, r.name AS resource_name, r.name || '.corp.example' AS resource_address,
       r.port AS resource_port,
       pg_temp.uuid7(sh.created_at) AS request_id, pg_temp.uuid7(sh.created_at) AS session_id
FROM shaped sh
JOIN b_user u ON u.n = sh.user_n
JOIN b_policy p ON p.t = 1 + sh.user_n % 40
JOIN LATERAL (
    SELECT pa.activity_id FROM policy_activities pa WHERE pa.policy_id = p.id
    ORDER BY pa.activity_id OFFSET sh.k % 2 LIMIT 1
) pa ON true
JOIN activities a ON a.id = pa.activity_id
JOIN b_resource r ON r.i = (p.offset_ + (sh.k * 37) % p.size) % :resources;

-- Seeding is not an application action: no notifications, no NOTIFY, no per-row foreign-key
-- trigger (every reference above is made by construction from the rows it points to).
SET LOCAL session_replication_role = replica;

INSERT INTO requests (id, requester_id, policy_id, profile_id, activity_id, policy_name,
                      profile_name, activity_name, protocol, login_mode, login_template, notes,
                      ticket_number, start_now, requested_start, duration_minutes, tier_count,
                      decision_deadline, extension_minutes, max_extensions, created_at)
SELECT request_id, user_id, policy_id, profile_id, activity_id, policy_name, profile_name,
       activity_name, protocol, login_mode, login_template,
       (ARRAY['Patch window', 'Investigate alert', 'Deploy release', 'Rotate certificates',
              'Disk cleanup', 'Customer escalation', ''])[1 + k % 7],
       CASE WHEN k % 3 = 0 THEN 'CHG' || lpad((k * 13 % 1000000)::text, 6, '0') ELSE '' END,
       slot < 20, requested_start, 480,
       CASE WHEN status = 'waiting_for_approval' THEN 1 ELSE 0 END,
       CASE WHEN status = 'waiting_for_approval' THEN now() + interval '6 days' END,
       30, 2, created_at
FROM b_live;

INSERT INTO activity_sessions (id, request_id, requester_id, resource_id, resource_name,
                               resource_address, resource_port, activity_name, status,
                               current_tier, locked_from, lock_message, login_account,
                               requested_start, available_at, ends_at, created_at, updated_at,
                               notes, ticket_number)
SELECT session_id, request_id, user_id, resource_id, resource_name, resource_address,
       resource_port, activity_name, status,
       CASE WHEN status = 'waiting_for_approval' THEN 1::int2 END,
       CASE WHEN status = 'locked' THEN 'available'::session_status END,
       CASE WHEN status = 'locked' THEN 'Locked by an administrator.' END,
       CASE WHEN status IN ('available', 'logged_in', 'locked') THEN
            CASE login_mode WHEN 'own' THEN username
                            WHEN 'managed' THEN login_template
                            ELSE replace(replace(login_template, '{username}', username), '{session}', left(session_id::text, 8)) END
       END,
       requested_start,
       CASE WHEN status IN ('available', 'logged_in', 'locked') THEN requested_start END,
       CASE WHEN status IN ('available', 'logged_in', 'locked') THEN now() + (2 + k % 6) * interval '1 hour'
            ELSE requested_start + interval '480 minutes' END,
       created_at, created_at,
       -- the request's notes and ticket number, as above
       (ARRAY['Patch window', 'Investigate alert', 'Deploy release', 'Rotate certificates',
              'Disk cleanup', 'Customer escalation', ''])[1 + k % 7],
       CASE WHEN k % 3 = 0 THEN 'CHG' || lpad((k * 13 % 1000000)::text, 6, '0') ELSE '' END
FROM b_live;

INSERT INTO session_events (session_id, at, actor_id, actor_name, kind, from_status, to_status, comment)
SELECT session_id, created_at, user_id, username, 'requested', NULL::session_status,
       CASE WHEN status IN ('pending', 'waiting_for_approval') THEN status
            ELSE 'provisioning'::session_status END,
       'Requested.'
FROM b_live
UNION ALL
SELECT session_id, requested_start, NULL, 'Portcullis', 'provisioned',
       'provisioning'::session_status, 'available'::session_status,
       'Login account is ready.'
FROM b_live WHERE status IN ('available', 'logged_in', 'locked')
ORDER BY 2;

COMMIT;

ANALYZE;
