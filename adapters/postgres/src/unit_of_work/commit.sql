-- The command's unit of work in one statement (unit_of_work.rs). `$1`-`$10` append
-- the events: the insert writes nothing unless the stream is at version `$10`.
-- `$11`-`$17` are the outbox rows, `$18`-`$22` the idempotency record, `$23`-`$27`
-- the snapshot. Every later part is written only when the append wrote all its
-- events (`$1`'s length); an absent part is NULL.
WITH appended AS (
    INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type,
                        schema_version, payload, metadata, traceparent, occurred_at)
    SELECT e.event_id, $2, 'Order', e.version, e.event_type, e.schema_version,
           e.payload, e.metadata, e.traceparent, e.occurred_at
    FROM UNNEST($1::uuid[], $3::bigint[], $4::text[], $5::int[], $6::jsonb[],
                $7::jsonb[], $8::text[], $9::timestamptz[])
         AS e(event_id, version, event_type, schema_version, payload, metadata,
              traceparent, occurred_at)
    WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $2) = $10
    RETURNING 1),
complete AS (
    SELECT (SELECT count(*) FROM appended) = coalesce(cardinality($1::uuid[]), 0) AS ok),
outboxed AS (
    INSERT INTO outbox (event_id, aggregate_id, version, event_type, message,
                        occurred_at, traceparent)
    SELECT o.event_id, o.aggregate_id, o.version, o.event_type, o.message,
           o.occurred_at, o.traceparent
    FROM UNNEST($11::uuid[], $12::uuid[], $13::bigint[], $14::text[], $15::text[],
                $16::timestamptz[], $17::text[])
         WITH ORDINALITY AS o(event_id, aggregate_id, version, event_type, message,
                              occurred_at, traceparent, n)
    WHERE (SELECT ok FROM complete)
    ORDER BY o.n
    RETURNING 1),
remembered AS (
    INSERT INTO idempotency_keys (scope, key, fingerprint, order_id, version)
    SELECT $18, $19, $20, $21, $22
    WHERE $18::text IS NOT NULL AND (SELECT ok FROM complete)
    RETURNING 1),
previous AS (
    SELECT version, last_occurred_at FROM snapshots
    WHERE $23::uuid IS NOT NULL AND stream_id = $23 AND version < $24
    ORDER BY version DESC LIMIT 1),
snapshotted AS (
    INSERT INTO snapshots (stream_id, version, state_schema, state, last_occurred_at)
    SELECT $23, $24, $25, $26, GREATEST($27,
           (SELECT last_occurred_at FROM previous),
           (SELECT max(occurred_at) FROM events WHERE stream_id = $23 AND version <= $24
              AND version > coalesce((SELECT version FROM previous), 0)),
           (SELECT max(t) FROM UNNEST($9::timestamptz[]) AS t))
    WHERE $23::uuid IS NOT NULL AND (SELECT ok FROM complete)
    ON CONFLICT (stream_id, version) DO NOTHING
    RETURNING 1)
SELECT (SELECT ok FROM complete) AS "complete!",
       (SELECT count(*) FROM outboxed) AS "outboxed!"
