//! The outbox: written if and only if the transaction commits, one row per committed
//! event holding its envelope.

use application::envelope::format_time;
use application::{Actor, CommandContext, CommandError, EventStore, IdempotencyRecord, StoreError};
use chrono::{DateTime, Utc};
use domain::{CancellationReason, Carrier, OrderError, PaymentId, TrackingNumber};
use order_postgres::PgEventStore;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::support::{
    address, amount, append_and_commit, card, commands, ctx, ctx_with_key, line, new_order_id,
    outbox_versions, paid_order_history, place_order, written, NOTHING, TRACEPARENT,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_unit_of_work_dropped_without_commit_leaves_no_event_and_no_outbox_row(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let events = paid_order_history(id);

    let mut uow = store.begin().await.unwrap();
    uow.append(id, 0, &events).await.unwrap();
    uow.enqueue(&events).await.unwrap();
    drop(uow);

    assert_eq!(written(&pool).await, NOTHING);
    assert!(store.load(id).await.unwrap().is_empty());
    // The rollback released the stream: the same versions can be appended now.
    append_and_commit(&store, id, 0, &events).await.unwrap();
    assert_eq!(store.load(id).await.unwrap().len(), 3);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_rejected_command_writes_no_event_and_no_outbox_row(pool: PgPool) {
    let commands = commands(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    let before = written(&pool).await;

    let below_total = commands
        .pay(
            &ctx(),
            id,
            PaymentId::parse("pay-1").unwrap(),
            amount(269_999),
            card(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            below_total,
            CommandError::Rejected(OrderError::PaymentBelowTotal { .. })
        ),
        "{below_total:?}"
    );
    let not_paid = commands
        .ship(
            &ctx(),
            id,
            TrackingNumber::parse("VN123").unwrap(),
            Carrier::parse("VNPost").unwrap(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            not_paid,
            CommandError::Rejected(OrderError::InvalidState { .. })
        ),
        "{not_paid:?}"
    );
    let unknown = new_order_id();
    let missing = commands
        .add_item(
            &ctx_with_key("", "key-1", "fp-1"),
            unknown,
            line("sku-2", 1, 1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(missing, CommandError::NotFound(o) if o == unknown),
        "{missing:?}"
    );

    assert_eq!(written(&pool).await, before);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn each_committed_event_has_one_outbox_row_holding_its_envelope_in_version_order(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let traced = CommandContext {
        traceparent: Some(TRACEPARENT.to_owned()),
        actor: Actor::unrestricted(Some("user-456".to_owned())),
        ..CommandContext::anonymous()
    };
    let a = new_order_id();
    let b = new_order_id();
    // Two orders, their commands interleaved.
    commands.place(&traced, place_order(a)).await.unwrap();
    commands.place(&traced, place_order(b)).await.unwrap();
    commands
        .add_item(&traced, a, line("sku-2", 3, 10_000))
        .await
        .unwrap();
    commands
        .cancel(
            &traced,
            b,
            CancellationReason::parse("changed mind").unwrap(),
        )
        .await
        .unwrap();
    commands
        .change_delivery_address(&traced, a, address("2 Hàng Bài"))
        .await
        .unwrap();
    commands
        .pay(
            &traced,
            a,
            PaymentId::parse("pay-1").unwrap(),
            amount(297_000),
            card(),
        )
        .await
        .unwrap();
    commands
        .ship(
            &traced,
            a,
            TrackingNumber::parse("VN123").unwrap(),
            Carrier::parse("VNPost").unwrap(),
        )
        .await
        .unwrap();

    assert_eq!(outbox_versions(&pool, a).await, [1, 2, 3, 4, 5]);
    assert_eq!(outbox_versions(&pool, b).await, [1, 2]);
    assert_eq!(written(&pool).await.outbox, 7);

    let store = PgEventStore::new(pool.clone());
    for id in [a, b] {
        let loaded = store.load(id).await.unwrap();
        let events = sqlx::query(
            "SELECT event_id, version, event_type, schema_version, payload, metadata, \
                    occurred_at, traceparent \
             FROM events WHERE stream_id = $1 ORDER BY version",
        )
        .bind(id.as_uuid())
        .fetch_all(&pool)
        .await
        .unwrap();
        let outbox = sqlx::query(
            "SELECT event_id, aggregate_id, version, event_type, message, occurred_at, traceparent \
             FROM outbox WHERE aggregate_id = $1 ORDER BY id",
        )
        .bind(id.as_uuid())
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(outbox.len(), events.len());
        assert_eq!(loaded.len(), events.len());

        for ((row, event), envelope) in outbox.iter().zip(&events).zip(&loaded) {
            let event_id: Uuid = event.get("event_id");
            let version: i64 = event.get("version");
            let event_type: String = event.get("event_type");
            let occurred_at: DateTime<Utc> = event.get("occurred_at");
            assert_eq!(row.get::<Uuid, _>("event_id"), event_id);
            assert_eq!(row.get::<Uuid, _>("aggregate_id"), id.as_uuid());
            assert_eq!(row.get::<i64, _>("version"), version);
            assert_eq!(row.get::<String, _>("event_type"), event_type);
            assert_eq!(row.get::<DateTime<Utc>, _>("occurred_at"), occurred_at);
            assert_eq!(
                row.get::<Option<String>, _>("traceparent").as_deref(),
                Some(TRACEPARENT)
            );

            let message: Value = serde_json::from_str(row.get("message")).unwrap();
            assert_eq!(message["eventId"], json!(event_id.to_string()));
            assert_eq!(message["aggregateType"], json!("Order"));
            assert_eq!(message["aggregateId"], json!(id.to_string()));
            assert_eq!(message["version"], json!(version));
            assert_eq!(message["eventType"], json!(event_type));
            assert_eq!(
                message["schemaVersion"],
                json!(event.get::<i32, _>("schema_version"))
            );
            assert_eq!(message["occurredAt"], json!(format_time(occurred_at)));
            assert_eq!(message["payload"], event.get::<Value, _>("payload"));
            assert_eq!(message["metadata"], event.get::<Value, _>("metadata"));
            assert_eq!(message["metadata"]["userId"], json!("user-456"));
            assert!(message.get("recordedAt").is_none());
            assert!(message.get("position").is_none());
            // The whole message is the envelope's wire form.
            assert_eq!(message, envelope.to_wire());
        }
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_unit_of_work_failing_half_way_leaves_neither_events_nor_outbox_rows(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let earlier = new_order_id();
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, order_id, version) \
         VALUES ('', 'key-1', 'fp-1', $1, 1)",
    )
    .bind(earlier.as_uuid())
    .execute(&pool)
    .await
    .unwrap();
    let before = written(&pool).await;

    let id = new_order_id();
    let events = paid_order_history(id);
    let mut uow = store.begin().await.unwrap();
    uow.append(id, 0, &events).await.unwrap();
    uow.enqueue(&events).await.unwrap();
    uow.remember(&IdempotencyRecord {
        scope: String::new(),
        key: "key-1".to_owned(),
        fingerprint: "fp-2".to_owned(),
        order_id: id,
        version: 3,
    })
    .await
    .unwrap();
    // The unit of work writes at commit, in one statement: the taken key refuses it all.
    let error = uow.commit().await.unwrap_err();
    assert!(
        matches!(error, StoreError::IdempotencyKeyTaken),
        "{error:?}"
    );

    assert_eq!(written(&pool).await, before);
    assert!(store.load(id).await.unwrap().is_empty());
    let kept = store.find_idempotency("", "key-1").await.unwrap().unwrap();
    assert_eq!(kept.order_id, earlier);
    assert_eq!(kept.fingerprint, "fp-1");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_unit_of_work_committed_after_a_failed_write_refuses_and_writes_nothing(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    append_and_commit(&store, id, 0, &paid_order_history(id)[..1])
        .await
        .unwrap();
    let before = written(&pool).await;

    // A unit of work appends to one stream: a second append (stale or ahead, on
    // another order) is refused, after a good append and its outbox rows.
    for (expected_version, range) in [(0, 0..1), (2, 2..3)] {
        let other = new_order_id();
        let other_events = paid_order_history(other);
        let mut uow = store.begin().await.unwrap();
        uow.append(other, 0, &other_events).await.unwrap();
        uow.enqueue(&other_events).await.unwrap();
        let error = uow
            .append(id, expected_version, &paid_order_history(id)[range])
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Other(_)), "{error:?}");
        let error = uow.commit().await.unwrap_err();
        assert!(matches!(error, StoreError::Other(_)), "{error:?}");
        assert_eq!(written(&pool).await, before);
    }
    // A version that does not follow the expected one is refused at once, too.
    let mut uow = store.begin().await.unwrap();
    let error = uow
        .append(id, 1, &paid_order_history(id)[2..3])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let error = uow.commit().await.unwrap_err();
    assert!(matches!(error, StoreError::Other(_)), "{error:?}");
    assert_eq!(written(&pool).await, before);
}
