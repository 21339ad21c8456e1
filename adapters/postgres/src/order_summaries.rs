//! Every statement on `order_summaries`, the read model: [`PgReadModel`] (the
//! application's `ReadModel` port) and the [`rebuild`] from the event store, which
//! fills a fresh table and swaps it in. Two statements also read `events`: the
//! commit time of a summary's last event and the read model's lag.
//!
//! The rebuild's statements on its own table are dynamic SQL: that table exists only
//! while a rebuild runs, so no compile-time check can see it; they are built from the
//! constant table names only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use application::projection::fold;
use application::{OrderSummary, ReadModel, StoreError, SummaryFilter};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{CustomerId, OrderId, OrderStatus};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::convert::{from_column, to_column, Misfit};
use crate::store_error;

/// The live table.
const TABLE: &str = "order_summaries";
/// The table a rebuild fills before it is swapped in.
const REBUILD_TABLE: &str = "order_summaries_rebuild";
/// Events read per query by the rebuild.
const REBUILD_CHUNK: i64 = 50_000;
/// Summaries written per statement.
const WRITE_CHUNK: usize = 10_000;
/// How far back (in global positions) the rebuild's final catch-up reads again, for
/// events whose transaction committed after later positions had been read.
const LATE_COMMIT_WINDOW: i64 = 10_000;

/// The read model on a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgReadModel {
    pool: PgPool,
}

impl PgReadModel {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// One stored summary.
#[derive(Debug)]
struct SummaryRow {
    order_id: Uuid,
    customer_id: String,
    status: String,
    total: i64,
    currency: String,
    product_ids: Vec<String>,
    last_version: i64,
    last_event_id: Uuid,
    last_recorded_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SummaryRow> for OrderSummary {
    type Error = StoreError;

    fn try_from(row: SummaryRow) -> Result<Self, StoreError> {
        Ok(OrderSummary {
            order_id: OrderId::from_uuid(row.order_id),
            customer_id: row.customer_id,
            status: OrderStatus::parse(&row.status).ok_or_else(|| {
                StoreError::Corrupt(format!("order_summaries.status = {:?}", row.status))
            })?,
            total: from_column("order_summaries.total", row.total)?,
            currency: row.currency,
            product_ids: row.product_ids,
            version: from_column("order_summaries.last_version", row.last_version)?,
            last_event_id: row.last_event_id,
            last_recorded_at: row.last_recorded_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The read model's columns of some summaries, one array per column, bound to
/// `UNNEST` (one statement per chunk instead of one per row).
struct Columns<'a> {
    ids: Vec<Uuid>,
    customers: Vec<&'a str>,
    statuses: Vec<&'static str>,
    totals: Vec<i64>,
    currencies: Vec<&'a str>,
    /// One array per row: UNNEST would flatten a text[][], so each travels as JSON.
    products: Vec<serde_json::Value>,
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    recorded: Vec<Option<DateTime<Utc>>>,
    created: Vec<DateTime<Utc>>,
    updated: Vec<DateTime<Utc>>,
}

/// The rows of [`Columns`], as `s.*` (for the rebuild's table).
const UNNEST: &str = "FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::jsonb[], \
                      $7::bigint[], $8::uuid[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[]) \
                      AS s(order_id, customer_id, status, total, currency, products, version, event_id, \
                           recorded_at, created_at, updated_at)";

/// The columns an insert names, in [`Columns`] order (for the rebuild's table).
const INSERTED: &str = "(order_id, customer_id, status, total, currency, product_ids, item_count, \
                        last_version, last_event_id, last_recorded_at, created_at, updated_at)";

impl<'a> Columns<'a> {
    /// # Errors
    /// When a total or a version does not fit its column.
    fn of(summaries: &'a [OrderSummary]) -> Result<Self, Misfit> {
        let n = summaries.len();
        let mut c = Columns {
            ids: Vec::with_capacity(n),
            customers: Vec::with_capacity(n),
            statuses: Vec::with_capacity(n),
            totals: Vec::with_capacity(n),
            currencies: Vec::with_capacity(n),
            products: Vec::with_capacity(n),
            versions: Vec::with_capacity(n),
            event_ids: Vec::with_capacity(n),
            recorded: Vec::with_capacity(n),
            created: Vec::with_capacity(n),
            updated: Vec::with_capacity(n),
        };
        for s in summaries {
            c.ids.push(s.order_id.as_uuid());
            c.customers.push(s.customer_id.as_str());
            c.statuses.push(s.status.as_str());
            c.totals.push(to_column("order_summaries.total", s.total)?);
            c.currencies.push(s.currency.as_str());
            c.products
                .push(serde_json::Value::from(s.product_ids.clone()));
            c.versions
                .push(to_column("order_summaries.last_version", s.version)?);
            c.event_ids.push(s.last_event_id);
            c.recorded.push(s.last_recorded_at);
            c.created.push(s.created_at);
            c.updated.push(s.updated_at);
        }
        Ok(c)
    }

    /// Runs the rebuild's dynamic `sql` (on its own table) with the columns bound.
    async fn execute(self, conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::query(sql)
            .bind(self.ids)
            .bind(self.customers)
            .bind(self.statuses)
            .bind(self.totals)
            .bind(self.currencies)
            .bind(self.products)
            .bind(self.versions)
            .bind(self.event_ids)
            .bind(self.recorded)
            .bind(self.created)
            .bind(self.updated)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Writes summaries into the read model; a stored row at the same or a later version is
/// kept. A missing `last_recorded_at` is read from the event store by event id.
async fn upsert(conn: &mut PgConnection, summaries: &[OrderSummary]) -> Result<(), sqlx::Error> {
    for chunk in summaries.chunks(WRITE_CHUNK) {
        let c = Columns::of(chunk)?;
        sqlx::query!(
            "INSERT INTO order_summaries (order_id, customer_id, status, total, currency, product_ids, \
                                          item_count, last_version, last_event_id, last_recorded_at, \
                                          created_at, updated_at) \
             SELECT s.order_id, s.customer_id, s.status, s.total, s.currency, \
                    ARRAY(SELECT jsonb_array_elements_text(s.products)), jsonb_array_length(s.products), \
                    s.version, s.event_id, \
                    coalesce(s.recorded_at, (SELECT e.recorded_at FROM events e WHERE e.event_id = s.event_id)), \
                    s.created_at, s.updated_at \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::jsonb[], \
                         $7::bigint[], $8::uuid[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[]) \
                  AS s(order_id, customer_id, status, total, currency, products, version, event_id, \
                       recorded_at, created_at, updated_at) \
             ON CONFLICT (order_id) DO UPDATE SET \
                 customer_id = EXCLUDED.customer_id, status = EXCLUDED.status, total = EXCLUDED.total, \
                 currency = EXCLUDED.currency, product_ids = EXCLUDED.product_ids, \
                 item_count = EXCLUDED.item_count, last_version = EXCLUDED.last_version, \
                 last_event_id = EXCLUDED.last_event_id, last_recorded_at = EXCLUDED.last_recorded_at, \
                 created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at \
             WHERE order_summaries.last_version < EXCLUDED.last_version",
            &c.ids,
            // `as _`: arrays of `&str` and of NULLable values, which the macro's check
            // (`&[String]`, `&[DateTime]` only) does not know.
            &c.customers as _,
            &c.statuses as _,
            &c.totals,
            &c.currencies as _,
            &c.products,
            &c.versions,
            &c.event_ids,
            &c.recorded as _,
            &c.created,
            &c.updated,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inserts summaries into the empty, not yet indexed rebuild table.
async fn insert_new(
    conn: &mut PgConnection,
    summaries: &[OrderSummary],
) -> Result<(), sqlx::Error> {
    // Dynamic: the rebuild's table (see the module's doc).
    let sql = format!(
        "INSERT INTO {REBUILD_TABLE} {INSERTED} \
         SELECT s.order_id, s.customer_id, s.status, s.total, s.currency, \
                ARRAY(SELECT jsonb_array_elements_text(s.products)), jsonb_array_length(s.products), \
                s.version, s.event_id, s.recorded_at, s.created_at, s.updated_at \
         {UNNEST}"
    );
    for chunk in summaries.chunks(WRITE_CHUNK) {
        Columns::of(chunk)?.execute(conn, &sql).await?;
    }
    Ok(())
}

#[async_trait]
impl ReadModel for PgReadModel {
    async fn summaries(&self, ids: &[OrderId]) -> Result<Vec<OrderSummary>, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(OrderId::as_uuid).collect();
        let rows = sqlx::query_as!(
            SummaryRow,
            "SELECT order_id, customer_id, status, total, currency, product_ids, last_version, \
                    last_event_id, last_recorded_at, created_at, updated_at \
             FROM order_summaries WHERE order_id = ANY($1)",
            &ids,
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(OrderSummary::try_from).collect()
    }

    async fn save(&self, summaries: &[OrderSummary]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        upsert(&mut tx, summaries).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)
    }

    async fn page(&self, filter: &SummaryFilter) -> Result<Vec<OrderSummary>, StoreError> {
        let (after_at, after_id) = filter
            .after
            .map_or((None, None), |(at, id)| (Some(at), Some(id.as_uuid())));
        let rows = sqlx::query_as!(
            SummaryRow,
            "SELECT order_id, customer_id, status, total, currency, product_ids, last_version, \
                    last_event_id, last_recorded_at, created_at, updated_at \
             FROM order_summaries \
             WHERE ($1::text IS NULL OR customer_id = $1) \
               AND ($2::text IS NULL OR status = $2) \
               AND ($3::timestamptz IS NULL OR (created_at, order_id) < ($3, $4::uuid)) \
             ORDER BY created_at DESC, order_id DESC LIMIT $5",
            filter.customer_id.as_ref().map(CustomerId::as_str),
            filter.status.map(OrderStatus::as_str),
            after_at,
            after_id,
            i64::from(filter.limit),
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(OrderSummary::try_from).collect()
    }

    async fn lag(&self) -> Result<Duration, StoreError> {
        // The newest committed event against the newest applied one; before anything
        // is applied, against the first event.
        let lag_ms = sqlx::query_scalar!(
            r#"SELECT coalesce(greatest(0, extract(epoch FROM
                   (SELECT recorded_at FROM events ORDER BY global_position DESC LIMIT 1)
                 - coalesce((SELECT max(last_recorded_at) FROM order_summaries),
                            (SELECT recorded_at FROM events ORDER BY global_position LIMIT 1))) * 1000),
                   0)::float8 AS "lag_ms!""#,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(Duration::from_secs_f64(lag_ms.max(0.0) / 1000.0))
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildReport {
    pub events: u64,
    pub orders: u64,
    pub elapsed: Duration,
}

impl RebuildReport {
    /// Events folded per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Folds the events after global position `after` into `summaries`, in global order;
/// returns the last position read and the number of events after `new_after` (the
/// events not read before).
async fn fold_events(
    conn: &mut PgConnection,
    summaries: &mut HashMap<Uuid, Option<OrderSummary>>,
    mut after: i64,
    new_after: i64,
    progress: &mut (dyn FnMut(u64) + Send),
) -> anyhow::Result<(i64, u64)> {
    use anyhow::Context;
    let mut count = 0;
    loop {
        progress(count);
        let page = crate::events::for_fold(&mut *conn, after, REBUILD_CHUNK)
            .await
            .context("reading the event store")?;
        let Some((last, _)) = page.last() else {
            return Ok((after, count));
        };
        after = *last;
        for (position, envelope) in &page {
            if *position > new_after {
                count += 1;
            }
            fold(
                summaries
                    .entry(envelope.aggregate_id.as_uuid())
                    .or_default(),
                envelope,
            );
        }
    }
}

/// Creates the indexes of a read-model table named `table` (dynamic: the rebuild's).
fn index_statements(table: &str) -> Vec<String> {
    vec![
        format!("ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (order_id)"),
        format!("CREATE INDEX {table}_newest_idx ON {table} (created_at DESC, order_id DESC)"),
        format!("CREATE INDEX {table}_customer_idx ON {table} (customer_id, created_at DESC, order_id DESC)"),
        format!("CREATE INDEX {table}_status_idx ON {table} (status, created_at DESC, order_id DESC)"),
        format!("CREATE INDEX {table}_recorded_idx ON {table} (last_recorded_at DESC NULLS LAST)"),
    ]
}

/// Rebuilds the read model from the event store: folds every event, in global order,
/// into a fresh `order_summaries_rebuild`, then swaps it in for `order_summaries` in one
/// transaction. Reads keep answering from the old table until the swap.
///
/// The swap locks the live table (the projector waits), folds the events committed
/// since the bulk read (re-reading a window before it, for transactions that
/// committed late), renames, and writes what the late events changed. The result is complete up to the swap; later events
/// reach it through the projector, which skips what the rebuild already applied.
///
/// # Errors
/// When the database fails or a stored event cannot be decoded; the live table is
/// then untouched.
pub async fn rebuild(pool: &PgPool) -> anyhow::Result<RebuildReport> {
    rebuild_reporting(pool, 0, &mut |_, _| {}).await
}

/// [`rebuild`], telling `progress` how many events it has folded of how many: the
/// caller's count of the event store (`expected`), raised when more arrive meanwhile.
///
/// # Errors
/// As [`rebuild`].
#[tracing::instrument(skip_all, err)]
pub async fn rebuild_reporting(
    pool: &PgPool,
    expected: u64,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> anyhow::Result<RebuildReport> {
    use anyhow::Context;
    let started = Instant::now();
    let mut conn = pool.acquire().await.context("connecting to PostgreSQL")?;
    let mut summaries = HashMap::new();
    let (read_to, mut events) = fold_events(&mut conn, &mut summaries, 0, 0, &mut |folded| {
        progress(folded, expected.max(folded));
    })
    .await?;
    tracing::info!(
        events,
        orders = summaries.len(),
        "event store folded; writing the new table"
    );
    let all: Vec<OrderSummary> = summaries.values().flatten().cloned().collect();
    write_rebuild_table(&mut conn, &all).await?;

    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query!("LOCK TABLE order_summaries IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let (late, caught_up) = catch_up(&mut tx, &mut summaries, read_to).await?;
    events += late;
    swap_in(&mut tx).await?;
    upsert(&mut tx, &caught_up).await?;
    tx.commit()
        .await
        .context("swapping the rebuilt read model in")?;
    Ok(RebuildReport {
        events,
        orders: summaries.values().flatten().count() as u64,
        elapsed: started.elapsed(),
    })
}

/// Creates the rebuild's table afresh and fills it with `summaries`: a bulk load into an
/// unlogged table, then the indexes (faster than maintaining them row by row).
/// Dynamic SQL: the table exists only during a rebuild; the names are constants.
async fn write_rebuild_table(
    conn: &mut PgConnection,
    summaries: &[OrderSummary],
) -> anyhow::Result<()> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {REBUILD_TABLE}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE {REBUILD_TABLE} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    ))
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!("ALTER TABLE {REBUILD_TABLE} SET UNLOGGED"))
        .execute(&mut *conn)
        .await?;
    for chunk in summaries.chunks(WRITE_CHUNK) {
        insert_new(conn, chunk).await?;
    }
    sqlx::query(&format!("ALTER TABLE {REBUILD_TABLE} SET LOGGED"))
        .execute(&mut *conn)
        .await?;
    for statement in index_statements(REBUILD_TABLE) {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    Ok(())
}

/// With the live table locked: folds again the events from a window before `read_to`
/// (a transaction that committed late under an earlier position is caught); returns
/// how many events were new and the summaries that moved, to be upserted into the
/// rebuilt table once it is swapped in.
async fn catch_up(
    tx: &mut PgConnection,
    summaries: &mut HashMap<Uuid, Option<OrderSummary>>,
    read_to: i64,
) -> anyhow::Result<(u64, Vec<OrderSummary>)> {
    let before: HashMap<Uuid, u64> = summaries
        .iter()
        .filter_map(|(id, s)| s.as_ref().map(|s| (*id, s.version)))
        .collect();
    let window = (read_to - LATE_COMMIT_WINDOW).max(0);
    let (_, late) = fold_events(&mut *tx, summaries, window, read_to, &mut |_| {}).await?;
    let caught_up: Vec<OrderSummary> = summaries
        .iter()
        .filter_map(|(id, s)| s.as_ref().filter(|s| before.get(id) != Some(&s.version)))
        .cloned()
        .collect();
    Ok((late, caught_up))
}

/// Puts the rebuilt table in the live one's place, with the live names of its
/// constraint and indexes. Dynamic SQL: the rebuild's table exists only now.
async fn swap_in(tx: &mut PgConnection) -> anyhow::Result<()> {
    for statement in [
        format!("ALTER TABLE {TABLE} RENAME TO order_summaries_replaced"),
        format!("ALTER TABLE {REBUILD_TABLE} RENAME TO {TABLE}"),
        "DROP TABLE order_summaries_replaced".to_owned(),
        format!("ALTER TABLE {TABLE} RENAME CONSTRAINT {REBUILD_TABLE}_pkey TO {TABLE}_pkey"),
        format!("ALTER INDEX {REBUILD_TABLE}_newest_idx RENAME TO {TABLE}_newest_idx"),
        format!("ALTER INDEX {REBUILD_TABLE}_customer_idx RENAME TO {TABLE}_customer_idx"),
        format!("ALTER INDEX {REBUILD_TABLE}_status_idx RENAME TO {TABLE}_status_idx"),
        format!("ALTER INDEX {REBUILD_TABLE}_recorded_idx RENAME TO {TABLE}_recorded_idx"),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    Ok(())
}
