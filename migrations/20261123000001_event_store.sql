-- The event store: every order's stream of domain events, the source of truth.
--
-- * One row per event. `(stream_id, version)` is unique: two commands racing on one
--   order cannot both append the same version; the loser's transaction fails on the
--   constraint `events_stream_version_key` and is re-run (optimistic concurrency).
-- * `global_position` orders all events of all streams (for replays and projections).
-- * `payload` keeps the event in the schema version it was written with
--   (`schema_version`); readers upcast, nobody rewrites a stored event.
-- * `occurred_at` is when the behaviour ran; `recorded_at` when the row was written.
CREATE TABLE events (
    global_position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        UUID        NOT NULL,
    stream_id       UUID        NOT NULL,
    aggregate_type  TEXT        NOT NULL,
    version         BIGINT      NOT NULL CHECK (version >= 1),
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL CHECK (schema_version >= 1),
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    traceparent     TEXT,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

-- The transactional outbox: the events chosen for publication, written in the same
-- transaction as the events themselves, so a row exists if and only if its event was
-- committed. The relay publishes rows in `id` order and deletes them once the broker
-- has acknowledged them.
--
-- * `message` is the exact JSON value published on Kafka, stored as text so its bytes
--   are what the producer sends (JSONB would reorder keys).
-- * Within one order, a later version is always inserted after the earlier version
--   committed (the unique constraint above makes the later append wait), so `id`
--   order is version order per aggregate.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        UUID        NOT NULL,
    aggregate_id    UUID        NOT NULL,
    version         BIGINT      NOT NULL,
    event_type      TEXT        NOT NULL,
    message         TEXT        NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    traceparent     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Idempotency keys: the first answer of a command sent with `Idempotency-Key`,
-- stored in the same transaction as the events it produced. `scope` is the acting
-- user when authentication is on and '' otherwise. Rows older than 24 hours may be
-- purged by the service.
CREATE TABLE idempotency_keys (
    scope           TEXT        NOT NULL,
    key             TEXT        NOT NULL,
    fingerprint     TEXT        NOT NULL,
    order_id        UUID        NOT NULL,
    version         BIGINT      NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
