//! The outbox as the relay sees it. Every statement lives in `order-postgres`
//! (`outbox`, `outbox_dead_letters` and `relay_members`, one module per table); here
//! due rows become the events the producer sends, and the partitions are split among
//! the live members.

use chrono::{DateTime, Utc};
use order_kafka::OutgoingEvent;
use sqlx::PgConnection;

pub use order_postgres::outbox::{
    backlog, backlog_by_partition, begin_cycle, delete, lock_partitions, parked, record_failure,
    retry_parked, ParkedRow, ParkedSelection, PartitionBacklog, LOCK_CLASS, PARTITIONS,
};
pub use order_postgres::outbox_dead_letters::skip_parked;
pub use order_postgres::relay_members::{
    assigned_partitions, heartbeat, leave, live_members, Member, MemberSession, MEMBER_LOCK_CLASS,
};

/// One outbox row due for publishing, as the producer sends it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub partition: i32,
    /// The failed attempts so far.
    pub attempts: u32,
    pub event: OutgoingEvent,
    /// When the row was written (≈ when its transaction committed), for the latency metric.
    pub created_at: DateTime<Utc>,
}

impl From<order_postgres::outbox::DueRow> for OutboxRow {
    fn from(row: order_postgres::outbox::DueRow) -> Self {
        OutboxRow {
            id: row.id,
            partition: row.partition,
            attempts: row.attempts,
            created_at: row.created_at,
            event: OutgoingEvent {
                event_id: row.event_id,
                aggregate_id: row.aggregate_id,
                event_type: row.event_type,
                occurred_at: row.occurred_at,
                traceparent: row.traceparent,
                value: row.message,
            },
        }
    }
}

/// The oldest due rows of `partitions`, in `id` order (see
/// [`order_postgres::outbox::due`]).
///
/// # Errors
/// When the database fails.
pub async fn due(
    conn: &mut PgConnection,
    partitions: &[i32],
    limit: u32,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let rows = order_postgres::outbox::due(conn, partitions, limit).await?;
    Ok(rows.into_iter().map(OutboxRow::from).collect())
}
