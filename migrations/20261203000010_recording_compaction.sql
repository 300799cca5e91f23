-- A live connection's chunks are stored as they came: compressing them on the way in cost
-- PostgreSQL about as much CPU as relaying them, on the connection's path (bench/README.md,
-- "SSH gateway"). Once the recording has ended, the worker moves each chunk's bytes into
-- `packed`, which PostgreSQL compresses; readers take `coalesce(packed, data)`.
ALTER TABLE recording_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE recording_chunks ADD COLUMN packed bytea;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE recording_chunks ALTER COLUMN packed SET COMPRESSION lz4;
    END IF;
END;
$$;

-- When the worker compacted the recording's chunks; NULL until then. The chunks written
-- before this migration were compressed as they came.
ALTER TABLE recordings ADD COLUMN compacted_at timestamptz;
UPDATE recordings SET compacted_at = now() WHERE ended_at IS NOT NULL;
CREATE INDEX recordings_to_compact_idx ON recordings (ended_at) WHERE compacted_at IS NULL;
