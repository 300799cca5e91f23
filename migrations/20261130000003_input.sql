-- A failed sign-in for an existing account updates its users row (the failure count); one
-- for a name no account has, or a disabled account, changed nothing, and so answered 1.7 to
-- 3.1 ms sooner (no row written, no commit to flush): the time told which names exist. Such
-- a failure now updates one row here instead, in the same statement, so both cost one row
-- update and one commit. No name is kept: a name's hash picks one of 64 rows, which spreads
-- concurrent failures over as many row locks as different accounts would have.
CREATE TABLE sign_in_decoys (
    slot     smallint PRIMARY KEY CHECK (slot BETWEEN 0 AND 63),
    failures bigint NOT NULL DEFAULT 0,
    last_at  timestamptz
);
INSERT INTO sign_in_decoys (slot) SELECT generate_series(0, 63);
