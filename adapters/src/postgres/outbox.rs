//! Writing the outbox, shared by the command unit of work and the relay's replay.

use application::EventEnvelope;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// Inserts `events` into the outbox in the given order (their `id` order), each with
/// the exact JSON to publish.
///
/// # Errors
/// When the database fails.
pub async fn insert(conn: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), sqlx::Error> {
    let event_ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let aggregate_ids: Vec<Uuid> = events.iter().map(|e| e.aggregate_id.as_uuid()).collect();
    let versions: Vec<i64> = events
        .iter()
        .map(|e| i64::try_from(e.version).unwrap_or(i64::MAX))
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type()).collect();
    let messages: Vec<String> = events.iter().map(|e| e.to_wire().to_string()).collect();
    let occurred: Vec<DateTime<Utc>> = events.iter().map(|e| e.occurred_at).collect();
    let traceparents: Vec<Option<String>> = events.iter().map(|e| e.traceparent.clone()).collect();
    sqlx::query(
        "INSERT INTO outbox (event_id, aggregate_id, version, event_type, message, occurred_at, traceparent) \
         SELECT e.event_id, e.aggregate_id, e.version, e.event_type, e.message, e.occurred_at, e.traceparent \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]) \
              WITH ORDINALITY AS e(event_id, aggregate_id, version, event_type, message, occurred_at, traceparent, n) \
         ORDER BY e.n",
    )
    .bind(&event_ids)
    .bind(&aggregate_ids)
    .bind(&versions)
    .bind(&types)
    .bind(&messages)
    .bind(&occurred)
    .bind(&traceparents)
    .execute(conn)
    .await?;
    Ok(())
}
