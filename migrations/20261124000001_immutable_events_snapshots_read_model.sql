-- Event sourcing guarantees and the read side.
--
-- Immutable events. The event store is append-only: the database itself refuses to
-- change or remove a stored event, whoever asks (the service, an operator's psql, a
-- bug). UPDATE and DELETE are refused row by row, TRUNCATE for the statement (row
-- triggers do not fire on TRUNCATE). Schema evolution never rewrites rows: readers
-- upcast old `schema_version`s (see application/src/envelope.rs). Throwaway test
-- databases are dropped whole, so nothing ever needs to delete events.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_immutable_rows BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_immutable_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- Snapshots. Every SNAPSHOT_INTERVAL events (default 100) a command stores the
-- order's whole state, in the same transaction as the events, so a snapshot never
-- exists without the events it summarizes. A load takes the latest snapshot whose
-- `state_schema` is the code's and applies only the later events.
--
-- * `state_schema` is the shape of `state` (domain `OrderSnapshot::STATE_SCHEMA_VERSION`):
--   a snapshot of another shape is ignored and the stream replayed, so deploying a
--   new state shape never breaks loading (the old snapshots are simply not used).
-- * `last_occurred_at` is the `occurred_at` of the event at `version`: a temporal
--   query (`?asOf=`) uses only snapshots not later than its instant.
-- * Snapshots are a cache: deleting them all changes nothing but speed.
CREATE TABLE snapshots (
    stream_id        UUID        NOT NULL,
    version          BIGINT      NOT NULL CHECK (version >= 1),
    state_schema     INTEGER     NOT NULL,
    state            JSONB       NOT NULL,
    last_occurred_at TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT snapshots_pkey PRIMARY KEY (stream_id, version)
);

-- The read model: one summary per order, built by the projector from the Kafka topic
-- (or rebuilt from the event store by `order-service projections rebuild`), read by
-- `GET /orders`. Eventually consistent.
--
-- * `last_version` is the version of the last event applied: the projector applies
--   only `last_version + 1`, skips older or equal ones (redeliveries) and fetches the
--   missing ones from the event store when an event arrives ahead.
-- * `product_ids` are the order's lines (`item_count` is their number): an ItemAdded
--   of a product already in the order adds no line.
-- * `last_event_id` / `last_recorded_at`: the last applied event and when it was
--   committed, for `X-Read-Model-Lag-Ms`.
-- * Pages are newest first by `(created_at, order_id)`, which never change, so a
--   cursor stays valid while orders change.
CREATE TABLE order_summaries (
    order_id         UUID        NOT NULL,
    customer_id      TEXT        NOT NULL,
    status           TEXT        NOT NULL,
    total            BIGINT      NOT NULL,
    currency         TEXT        NOT NULL,
    product_ids      TEXT[]      NOT NULL,
    item_count       INTEGER     NOT NULL,
    last_version     BIGINT      NOT NULL,
    last_event_id    UUID        NOT NULL,
    last_recorded_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id)
);

CREATE INDEX order_summaries_newest_idx ON order_summaries (created_at DESC, order_id DESC);
CREATE INDEX order_summaries_customer_idx ON order_summaries (customer_id, created_at DESC, order_id DESC);
CREATE INDEX order_summaries_status_idx ON order_summaries (status, created_at DESC, order_id DESC);
CREATE INDEX order_summaries_recorded_idx ON order_summaries (last_recorded_at DESC NULLS LAST);
