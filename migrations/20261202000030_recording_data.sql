-- Recording events as bytes (issue 15's bulk throughput). Each chunk held asciicast v2 JSON
-- text, so every relayed byte was escaped (a NUL is six bytes, `\u0000`) and compressed by
-- PostgreSQL's pglz: about 40 CPU seconds per GB of output inside PostgreSQL alone. Now a
-- chunk holds the events' bytes as they came, each behind a 13-byte frame (src/domain/cast.rs:
-- microseconds as int8, the kind 'o', 'i' or 'r' as one byte, the data's length as int4,
-- all big-endian as int8send/int4send write them), and the asciicast is rendered on reading.
ALTER TABLE recording_chunks ADD COLUMN data bytea NOT NULL DEFAULT '\x';

-- The existing chunks, converted. PostgreSQL's text cannot hold a NUL, so the NULs of the
-- old output (`\u0000`, an even number of backslashes before it) are dropped: a terminal
-- shows nothing for them.
UPDATE recording_chunks c SET data = coalesce((
    SELECT string_agg(
               int8send(round((e.event ->> 0)::numeric * 1000000)::bigint)
               || convert_to(e.event ->> 1, 'UTF8')
               || int4send(octet_length(convert_to(e.event ->> 2, 'UTF8')))
               || convert_to(e.event ->> 2, 'UTF8'),
               '\x'::bytea ORDER BY l.n)
    FROM regexp_split_to_table(c.events, E'\n') WITH ORDINALITY AS l (line, n),
         LATERAL (SELECT regexp_replace(l.line, '((?:^|[^\\])(?:\\\\)*)(?:\\u0000)+', '\1', 'g')::json
                  AS event) e
    WHERE l.line <> ''), '\x')
WHERE c.events <> '';

ALTER TABLE recording_chunks DROP COLUMN events;
ALTER TABLE recording_chunks ALTER COLUMN data DROP DEFAULT;

-- lz4 where the server has it (PostgreSQL 14+ built with it, as Debian's and the official
-- images are): several times cheaper than pglz on a bulk transfer's chunks, and it gives
-- up on incompressible output quickly.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE recording_chunks ALTER COLUMN data SET COMPRESSION lz4;
        ALTER TABLE recording_chunks ALTER COLUMN plain SET COMPRESSION lz4;
    END IF;
END;
$$;
