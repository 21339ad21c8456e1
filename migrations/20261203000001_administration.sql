-- The administration (`/admin` routes, the operator console, the operator
-- subcommands): the reason a skipped row was given up, the record of every
-- administrative action, and the jobs (replays, rebuilds) with their progress.

-- Why an operator skipped a row. Rows skipped before this migration have none.
ALTER TABLE outbox_dead_letters ADD COLUMN reason TEXT;

-- Every state-changing administrative call: who, when, what, the target, the outcome.
-- Written in the same transaction as the call's effect, so an effect without its
-- record (or a record of an effect that was rolled back) cannot exist. Newest first is
-- the only order it is read in, by id.
CREATE TABLE admin_actions (
    id       BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- The acting user (a token's `sub`, `cli:<user>` on the command line); NULL when
    -- authentication is off and no user was named.
    user_id  TEXT,
    action   TEXT        NOT NULL,
    target   TEXT        NOT NULL,
    outcome  TEXT        NOT NULL
);

-- Replays and rebuilds, run in the background by the service (or in the foreground by
-- a subcommand), with their progress. A runner holds a session-level advisory lock
-- (class 0x6f626a62, "objb", and `lock_key`) on a connection of its own while the job
-- runs; PostgreSQL releases it the moment that connection closes (a restart, a crash),
-- so a `running` job whose lock nobody holds has lost its runner and is marked
-- `failed` when next read. Nothing resumes: a job does not survive its runner.
CREATE TABLE admin_jobs (
    job_id       UUID        PRIMARY KEY,
    kind         TEXT        NOT NULL CHECK (kind IN ('replay', 'rebuild')),
    state        TEXT        NOT NULL DEFAULT 'running'
                             CHECK (state IN ('running', 'succeeded', 'failed')),
    -- What the job was asked to do (a replay's filter), for the record.
    spec         JSONB       NOT NULL,
    processed    BIGINT      NOT NULL DEFAULT 0 CHECK (processed >= 0),
    total        BIGINT      NOT NULL DEFAULT 0 CHECK (total >= 0),
    lock_key     INTEGER     NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    finished_at  TIMESTAMPTZ,
    error        TEXT,
    CHECK ((state = 'running') = (finished_at IS NULL))
);

-- One rebuild at a time, across every service instance: a second one's insert fails
-- on this index, and is answered 409.
CREATE UNIQUE INDEX admin_jobs_one_rebuild_idx ON admin_jobs (kind)
    WHERE kind = 'rebuild' AND state = 'running';
