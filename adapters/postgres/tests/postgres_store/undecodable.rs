//! Stored events that cannot be decoded: the stream is corrupt and the queries answer
//! `Internal`.

use application::{Actor, CommandError, EventStore, QueryError, StoreError};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{
    commands, ctx, insert_raw_event, line, new_order_id, pg_store, place_order, queries, written,
};

/// Places an order, then appends `(event_type, schema_version, payload)` at version 2
/// by SQL; `load` must refuse the stream and the use cases answer `Internal`.
async fn assert_undecodable(pool: &PgPool, event_type: &str, schema_version: i32, payload: Value) {
    let id = new_order_id();
    commands(pool).place(&ctx(), place_order(id)).await.unwrap();
    insert_raw_event(pool, id, 2, event_type, schema_version, payload).await;

    let error = pg_store(pool).load(id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");

    let queries = queries(pool);
    let error = queries
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::Internal(StoreError::Corrupt(_))),
        "{error:?}"
    );
    let error = queries
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::Internal(StoreError::Corrupt(_))),
        "{error:?}"
    );
    let before = written(pool).await;
    let error = commands(pool)
        .add_item(&ctx(), id, line("sku-2", 1, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::Internal(StoreError::Corrupt(_))),
        "{error:?}"
    );
    assert_eq!(written(pool).await, before);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_stored_event_of_an_unknown_type_is_corrupt_and_queries_answer_internal(pool: PgPool) {
    assert_undecodable(&pool, "OrderTeleported", 1, json!({"to": "Mars"})).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_stored_event_of_a_future_schema_version_is_corrupt_and_queries_answer_internal(
    pool: PgPool,
) {
    let payload = json!({
        "productId": "sku-2", "quantity": 1, "unitPrice": 10000,
        "subtotal": 310000, "discount": 31000, "total": 279000
    });
    assert_undecodable(&pool, "ItemAdded", 99, payload).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_stored_payload_that_breaks_its_schema_is_corrupt_and_queries_answer_internal(
    pool: PgPool,
) {
    assert_undecodable(
        &pool,
        "ItemAdded",
        1,
        json!({"productId": "", "quantity": 0}),
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_stored_global_position_that_does_not_fit_a_position_is_corrupt_not_clamped(
    pool: PgPool,
) {
    let id = new_order_id();
    commands(&pool)
        .place(&ctx(), place_order(id))
        .await
        .unwrap();
    // A valid event, but at a negative position (only an operator's SQL can put it there).
    sqlx::query(
        "INSERT INTO events (global_position, event_id, stream_id, aggregate_type, version, \
                             event_type, schema_version, payload, metadata, occurred_at) \
         OVERRIDING SYSTEM VALUE \
         VALUES (-1, $1, $2, 'Order', 2, 'DeliveryAddressChanged', 1, $3, $4, now())",
    )
    .bind(Uuid::now_v7())
    .bind(id.as_uuid())
    .bind(json!({"address": {"line1": "2 Hàng Bài", "city": "Hanoi", "country": "VN"}}))
    .bind(json!({"userId": null, "correlationId": "c-1", "causationId": "c-1"}))
    .execute(&pool)
    .await
    .unwrap();

    let error = pg_store(&pool).load(id).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::Corrupt(m) if m.contains("events.global_position = -1")),
        "{error:?}"
    );
    let error = queries(&pool)
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::Internal(StoreError::Corrupt(_))),
        "{error:?}"
    );
}
