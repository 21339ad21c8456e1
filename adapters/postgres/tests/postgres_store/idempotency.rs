//! Idempotency keys: a retried command replays its first answer, concurrent commands
//! with one key write once, and old keys are purged.

use std::sync::Arc;

use application::{CommandAck, CommandContext, CommandError, CommandOutcome};
use domain::PaymentId;
use order_postgres::{purge_idempotency_keys, PgEventStore};
use sqlx::PgPool;

use crate::support::{
    amount, card, commands, commands_on, ctx, ctx_with_key, line, new_order_id, outbox_versions,
    place_order, stream_versions, written, Gate, RendezvousStore, Written,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_command_retried_with_its_idempotency_key_replays_the_first_answer_and_writes_nothing(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let id = new_order_id();

    let first = commands
        .place(&ctx_with_key("", "place-1", "fp-place"), place_order(id))
        .await
        .unwrap();
    assert_eq!(
        first,
        CommandOutcome {
            ack: CommandAck {
                order_id: id,
                version: 1
            },
            replayed: false
        }
    );
    let after_first = written(&pool).await;
    assert_eq!(
        after_first,
        Written {
            events: 1,
            outbox: 1,
            idempotency_keys: 1
        }
    );

    // The retry of a request without `orderId`: the server made a new id for it.
    let retry = commands
        .place(
            &ctx_with_key("", "place-1", "fp-place"),
            place_order(new_order_id()),
        )
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.ack, first.ack);
    assert_eq!(written(&pool).await, after_first);

    let reused = commands
        .place(
            &ctx_with_key("", "place-1", "another-body"),
            place_order(new_order_id()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(reused, CommandError::IdempotencyKeyReused),
        "{reused:?}"
    );
    assert_eq!(written(&pool).await, after_first);

    // A change command, then its retry.
    let added = commands
        .add_item(
            &ctx_with_key("", "add-1", "fp-add"),
            id,
            line("sku-2", 1, 10_000),
        )
        .await
        .unwrap();
    assert_eq!(added.ack.version, 2);
    assert!(!added.replayed);
    let after_add = written(&pool).await;
    let added_again = commands
        .add_item(
            &ctx_with_key("", "add-1", "fp-add"),
            id,
            line("sku-2", 1, 10_000),
        )
        .await
        .unwrap();
    assert!(added_again.replayed);
    assert_eq!(added_again.ack, added.ack);
    let reused_on_change = commands
        .add_item(
            &ctx_with_key("", "place-1", "fp-add"),
            id,
            line("sku-2", 1, 10_000),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(reused_on_change, CommandError::IdempotencyKeyReused),
        "{reused_on_change:?}"
    );
    assert_eq!(written(&pool).await, after_add);
    assert_eq!(stream_versions(&pool, id).await, [1, 2]);

    // Keys are per scope (per acting user): another user's equal key is a new request.
    let other_user = commands
        .place(
            &ctx_with_key("user-b", "place-1", "fp-place"),
            place_order(new_order_id()),
        )
        .await
        .unwrap();
    assert!(!other_user.replayed);
    assert_ne!(other_user.ack.order_id, id);
}

/// Two places with one key and body racing: both read "no such key" before either
/// writes. `same_order_id` says whether the body carries the `orderId` (else the
/// server makes a new id for each).
async fn race_two_places_with_one_key(pool: &PgPool, same_order_id: bool) {
    let store = Arc::new(RendezvousStore {
        inner: PgEventStore::new(pool.clone()),
        load: None,
        find_idempotency: Some(Gate::new(2)),
    });
    let commands = commands_on(store);
    let first_id = new_order_id();
    let second_id = if same_order_id {
        first_id
    } else {
        new_order_id()
    };

    let (first_ctx, second_ctx) = (
        ctx_with_key("", "key-1", "fp-1"),
        ctx_with_key("", "key-1", "fp-1"),
    );
    let (first, second) = tokio::join!(
        commands.place(&first_ctx, place_order(first_id)),
        commands.place(&second_ctx, place_order(second_id)),
    );
    let first = first.unwrap();
    let second = second.unwrap();

    assert_eq!(first.ack, second.ack);
    assert_eq!(first.ack.version, 1);
    assert!(
        first.replayed != second.replayed,
        "exactly one of them is a replay: {first:?} {second:?}"
    );
    assert_eq!(
        written(pool).await,
        Written {
            events: 1,
            outbox: 1,
            idempotency_keys: 1
        }
    );
    let streams: i64 = sqlx::query_scalar("SELECT count(DISTINCT stream_id) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(streams, 1);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_places_with_one_key_make_one_order_and_answer_the_same_ack(pool: PgPool) {
    race_two_places_with_one_key(&pool, false).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_places_with_one_key_and_one_order_id_answer_the_same_ack(pool: PgPool) {
    race_two_places_with_one_key(&pool, true).await;
}

/// A change command sent twice at once with one idempotency key.
#[derive(Debug, Clone, Copy)]
enum Retried {
    AddItem,
    /// Allowed once only: the second run of the behaviour is refused by the state.
    Pay,
}

/// Two equal change commands with one key racing: both read "no such key" before
/// either writes; `if_match` sends them with `If-Match: "1"`. However the race goes,
/// one writes and the other answers the same ack, replayed.
async fn race_two_changes_with_one_key(pool: &PgPool, command: Retried, if_match: bool) {
    let id = new_order_id();
    commands(pool).place(&ctx(), place_order(id)).await.unwrap();
    let store = Arc::new(RendezvousStore {
        inner: PgEventStore::new(pool.clone()),
        load: None,
        find_idempotency: Some(Gate::new(2)),
    });
    let commands = commands_on(store);
    let request = || CommandContext {
        expected_version: if_match.then_some(1),
        ..ctx_with_key("", "key-1", "fp-1")
    };
    let send = |ctx: CommandContext| {
        let commands = commands.clone();
        async move {
            match command {
                Retried::AddItem => commands.add_item(&ctx, id, line("sku-2", 1, 10_000)).await,
                Retried::Pay => {
                    commands
                        .pay(
                            &ctx,
                            id,
                            PaymentId::parse("pay-1").unwrap(),
                            amount(270_000),
                            card(),
                        )
                        .await
                }
            }
        }
    };

    let (first, second) = tokio::join!(send(request()), send(request()));
    let first = first.unwrap();
    let second = second.unwrap();

    assert_eq!(first.ack, second.ack);
    assert_eq!(first.ack.version, 2);
    assert!(
        first.replayed != second.replayed,
        "exactly one of them is a replay: {first:?} {second:?}"
    );
    assert_eq!(stream_versions(pool, id).await, [1, 2]);
    assert_eq!(outbox_versions(pool, id).await, [1, 2]);
    assert_eq!(written(pool).await.idempotency_keys, 1);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_changes_with_one_key_write_once_and_answer_the_same_ack(pool: PgPool) {
    race_two_changes_with_one_key(&pool, Retried::AddItem, false).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_changes_with_one_key_and_if_match_write_once_and_answer_the_same_ack(
    pool: PgPool,
) {
    race_two_changes_with_one_key(&pool, Retried::AddItem, true).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn two_concurrent_payments_with_one_key_pay_once_and_answer_the_same_ack(pool: PgPool) {
    race_two_changes_with_one_key(&pool, Retried::Pay, false).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn purging_idempotency_keys_deletes_only_those_older_than_the_age(pool: PgPool) {
    let commands = commands(&pool);
    for key in ["old", "recent", "fresh"] {
        commands
            .place(&ctx_with_key("", key, "fp"), place_order(new_order_id()))
            .await
            .unwrap();
    }
    for (key, age) in [("old", "25 hours"), ("recent", "23 hours")] {
        sqlx::query("UPDATE idempotency_keys SET created_at = now() - $2::interval WHERE key = $1")
            .bind(key)
            .bind(age)
            .execute(&pool)
            .await
            .unwrap();
    }

    assert_eq!(purge_idempotency_keys(&pool, 24).await.unwrap(), 1);

    let mut kept: Vec<String> = sqlx::query_scalar("SELECT key FROM idempotency_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    kept.sort();
    assert_eq!(kept, ["fresh", "recent"]);
    assert_eq!(written(&pool).await.events, 3);
    assert_eq!(purge_idempotency_keys(&pool, 24).await.unwrap(), 0);
}
