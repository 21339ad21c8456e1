-- Outbox relay guarantees: partitions, poison messages, wake-ups, membership.
--
-- Partitions. Every outbox row falls in one of 64 partitions derived from its order id
-- (so all rows of one order share a partition). A partition is published by one relay
-- at a time: relays split the partitions among the live members of `relay_members`,
-- and a cycle holds a transaction-level advisory lock on each partition it publishes,
-- so even while membership changes two relays never publish one partition at once.
-- The expression is immutable: the partition of a row never changes.
ALTER TABLE outbox
    ADD COLUMN partition INTEGER GENERATED ALWAYS AS (abs(hashtextextended(aggregate_id::text, 0) % 64)::integer) STORED;

-- Poison messages. A row that cannot be published (too large for the broker, not
-- valid JSON) is retried with back-off (`next_attempt_at`), then parked with its
-- error after a bounded number of attempts. While a row of an order waits or is
-- parked, the later rows of that order are held back (no consumer sees a gap); other
-- orders keep flowing. Operators retry or skip parked rows with `outbox-relay`.
ALTER TABLE outbox
    ADD COLUMN attempts        INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN last_error      TEXT,
    ADD COLUMN next_attempt_at TIMESTAMPTZ,
    ADD COLUMN parked_at       TIMESTAMPTZ;

-- Only rows that failed are looked up by order (to hold back their successors), so
-- the index stays as small as the number of failing rows.
CREATE INDEX outbox_failing_aggregate_idx ON outbox (aggregate_id, id) WHERE attempts > 0;

-- Rows an operator chose to skip (`outbox-relay skip-parked`), kept for the record.
CREATE TABLE outbox_dead_letters (
    id              BIGINT      PRIMARY KEY,
    event_id        UUID        NOT NULL,
    aggregate_id    UUID        NOT NULL,
    version         BIGINT      NOT NULL,
    event_type      TEXT        NOT NULL,
    message         TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    skipped_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Wake-ups. Every statement that inserts outbox rows notifies channel `outbox` when
-- its transaction commits (notifications of one transaction are folded into one), so
-- an idle relay publishes within milliseconds instead of at its next poll.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Live relays. Each relay refreshes its heartbeat every second; one not seen for a
-- few seconds is dead, and the others take its partitions over.
CREATE TABLE relay_members (
    relay_id        UUID        PRIMARY KEY,
    host            TEXT        NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    heartbeat_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
