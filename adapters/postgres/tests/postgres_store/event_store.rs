//! The event store: appended envelopes load back; expected versions, conflicts and
//! concurrent appends (with and without retries) keep the stream gapless.

use std::collections::HashSet;
use std::sync::Arc;

use application::{Actor, CommandError, EventStore, StoreError};
use chrono::Utc;
use order_postgres::PgEventStore;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{
    append_and_commit, append_enqueue_commit, at, commands, commands_on, ctx, line, new_order_id,
    outbox_versions, paid_order_history, place_order, queries, stream_versions, written, Gate,
    RendezvousStore, TRACEPARENT,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn appended_envelopes_load_back_equal_in_version_order_with_recorded_at(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let other = new_order_id();
    let events = paid_order_history(id);
    let before = Utc::now();

    let mut uow = store.begin().await.unwrap();
    uow.append(id, 0, &events).await.unwrap();
    uow.commit().await.unwrap();
    append_and_commit(&store, other, 0, &paid_order_history(other)[..1])
        .await
        .unwrap();

    let loaded = store.load(id).await.unwrap();
    assert_eq!(loaded.len(), 3);
    assert_eq!(
        loaded.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for (stored, original) in loaded.iter().zip(&events) {
        let recorded_at = stored.recorded_at.expect("recorded_at is set on load");
        assert!(recorded_at >= before - chrono::Duration::seconds(5));
        assert!(recorded_at <= Utc::now());
        assert!(stored.position.is_some(), "position is set on load");
        // event_id, aggregate_id, version, occurred_at (to the microsecond), event,
        // metadata and traceparent all come back as they went in.
        assert_eq!(&stored.unstored(), original);
    }
    assert_eq!(loaded[0].occurred_at, at(0, 123_456));
    assert_eq!(loaded[2].metadata.user_id.as_deref(), Some("user-456"));
    assert_eq!(loaded[2].traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(store.load(other).await.unwrap().len(), 1);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn loading_an_order_that_does_not_exist_returns_no_events(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    assert!(store.load(new_order_id()).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------
// Event store: expected versions
// ---------------------------------------------------------------------------------

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn appending_at_a_stale_expected_version_is_a_conflict_and_writes_nothing(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let first = paid_order_history(id);
    append_and_commit(&store, id, 0, &first[..1]).await.unwrap();
    let before = written(&pool).await;

    // Another writer's versions 1 and 2, appended as if the stream were still empty.
    let rival = paid_order_history(id);
    let error = append_and_commit(&store, id, 0, &rival[..2])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::VersionConflict), "{error:?}");

    assert_eq!(written(&pool).await, before);
    let loaded = store.load(id).await.unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].event_id, first[0].event_id);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn appending_ahead_of_the_stream_is_a_conflict_and_leaves_no_gap(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let events = paid_order_history(id);
    append_and_commit(&store, id, 0, &events[..1])
        .await
        .unwrap();
    let before = written(&pool).await;

    // Version 3 after version 1: the stream is not at the expected version 2.
    let error = append_and_commit(&store, id, 2, &events[2..])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::VersionConflict), "{error:?}");
    // An order that does not exist is at version 0.
    let unknown = new_order_id();
    let error = append_and_commit(&store, unknown, 1, &paid_order_history(unknown)[1..2])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::VersionConflict), "{error:?}");

    assert_eq!(written(&pool).await, before);
    assert_eq!(stream_versions(&pool, id).await, [1]);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_units_of_work_appending_the_same_next_version_let_exactly_one_commit(pool: PgPool) {
    let store = PgEventStore::new(pool.clone());
    let id = new_order_id();
    let a = paid_order_history(id);
    let b = paid_order_history(id);
    append_and_commit(&store, id, 0, &a[..1]).await.unwrap();

    let uow_a = store.begin().await.unwrap();
    let uow_b = store.begin().await.unwrap();
    let (result_a, result_b) = tokio::join!(
        append_enqueue_commit(uow_a, id, 1, &a[1..2]),
        append_enqueue_commit(uow_b, id, 1, &b[1..2]),
    );

    let (winner, loser) = match (&result_a, &result_b) {
        (Ok(()), Err(StoreError::VersionConflict)) => (&a[1], &b[1]),
        (Err(StoreError::VersionConflict), Ok(())) => (&b[1], &a[1]),
        other => panic!("expected exactly one commit and one conflict, got {other:?}"),
    };
    let loaded = store.load(id).await.unwrap();
    assert_eq!(loaded.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(loaded[1].event_id, winner.event_id);
    let outboxed: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(outboxed, [a[0].event_id, winner.event_id]);
    assert!(!outboxed.contains(&loser.event_id));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn twenty_concurrent_add_items_all_succeed_through_retries_with_no_gap(pool: PgPool) {
    let id = new_order_id();
    // A command loses a race only to another command's commit, so with as many
    // attempts as racers every one of them gets through.
    let commands = commands(&pool).with_max_attempts(20);
    commands.place(&ctx(), place_order(id)).await.unwrap();

    let results = futures::future::join_all((0..20).map(|_| {
        let commands = commands.clone();
        async move {
            commands
                .add_item(&ctx(), id, line("sku-1", 1, 150_000))
                .await
        }
    }))
    .await;

    let mut acked: Vec<u64> = results
        .into_iter()
        .map(|result| {
            let outcome = result.unwrap();
            assert!(!outcome.replayed);
            assert_eq!(outcome.ack.order_id, id);
            outcome.ack.version
        })
        .collect();
    acked.sort_unstable();
    assert_eq!(acked, (2..=21).collect::<Vec<u64>>());
    assert_eq!(
        stream_versions(&pool, id).await,
        (1..=21).collect::<Vec<i64>>()
    );
    assert_eq!(
        outbox_versions(&pool, id).await,
        (1..=21).collect::<Vec<i64>>()
    );
    // No lost update: every unit added is in the line.
    let order = queries(&pool)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(order.lines()[0].quantity().units(), 22);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn twenty_add_items_racing_on_one_version_with_one_attempt_let_one_win_and_answer_conflict_to_the_rest(
    pool: PgPool,
) {
    let id = new_order_id();
    commands(&pool)
        .place(&ctx(), place_order(id))
        .await
        .unwrap();
    let store = Arc::new(RendezvousStore {
        inner: PgEventStore::new(pool.clone()),
        load: Some(Gate::new(20)),
        find_idempotency: None,
    });
    let commands = commands_on(store).with_max_attempts(1);

    let results = futures::future::join_all((0..20).map(|_| {
        let commands = commands.clone();
        async move {
            commands
                .add_item(&ctx(), id, line("sku-1", 1, 150_000))
                .await
        }
    }))
    .await;

    let mut wins = Vec::new();
    for result in results {
        match result {
            Ok(outcome) => wins.push(outcome.ack.version),
            Err(CommandError::Conflict { attempts: 1 }) => {}
            Err(other) => panic!("expected success or Conflict, got {other:?}"),
        }
    }
    assert_eq!(wins, [2]);
    assert_eq!(stream_versions(&pool, id).await, [1, 2]);
    assert_eq!(outbox_versions(&pool, id).await, [1, 2]);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn concurrent_add_items_without_retries_keep_the_stream_gapless_and_acks_unique(
    pool: PgPool,
) {
    let id = new_order_id();
    let commands = commands(&pool).with_max_attempts(1);
    commands.place(&ctx(), place_order(id)).await.unwrap();

    let results = futures::future::join_all((0..20).map(|_| {
        let commands = commands.clone();
        async move {
            commands
                .add_item(&ctx(), id, line("sku-1", 1, 150_000))
                .await
        }
    }))
    .await;

    let mut acked = Vec::new();
    for result in results {
        match result {
            Ok(outcome) => acked.push(outcome.ack.version),
            Err(CommandError::Conflict { attempts: 1 }) => {}
            Err(other) => panic!("expected success or Conflict, got {other:?}"),
        }
    }
    let unique: HashSet<u64> = acked.iter().copied().collect();
    assert_eq!(unique.len(), acked.len(), "two successes acked one version");
    acked.sort_unstable();
    let n = 1 + acked.len() as u64;
    assert_eq!(acked, (2..=n).collect::<Vec<u64>>());
    let expected: Vec<i64> = (1..=n as i64).collect();
    assert_eq!(stream_versions(&pool, id).await, expected);
    assert_eq!(outbox_versions(&pool, id).await, expected);
}
