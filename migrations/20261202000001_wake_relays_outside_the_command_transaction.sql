-- Wake-ups leave the command's transaction.
--
-- The `outbox_notify` trigger made every transaction that wrote outbox rows send
-- `NOTIFY outbox`. PostgreSQL serializes the commits of all transactions that
-- notified (they take one database-wide lock on the notification queue and hold it
-- through commit), which cost about 40% of the database's commit rate in pgbench.
--
-- The order service now sends the wake-up itself, after its commit and outside every
-- command's transaction, coalescing the commits of a moment into one `NOTIFY outbox`
-- (adapters `OutboxWaker`); the relays' operator commands notify after their own
-- writes. A writer that does neither (psql, another program) is published at the
-- relays' next poll (`RELAY_POLL_INTERVAL_MS`), so a missed wake-up costs latency,
-- never an event: the outbox rows stay the source of truth.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
