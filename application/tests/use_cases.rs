//! The command use cases on the in-memory store ([`MemoryEventStore`]): retries after a
//! lost race, idempotency, authorization, the publication policy, refused commands and
//! snapshots, without a database (the same use cases run on PostgreSQL in
//! `adapters/postgres/tests/`).
//!
//! A race is made to happen every time by [`RacingStore`] (in `support/`): the first
//! units of work it opens lose it, because another command on the same order commits
//! between the command's load and its commit.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use application::{
    Actor, CommandContext, CommandError, EventEnvelope, MemoryEventStore, OrderCommands,
    OrderQueries, PublicationPolicy, QueryError,
};
use domain::{DiscountCode, OrderError, OrderEvent, OrderId, OrderStatus, ProductId};

use support::{
    address, address_changer, amount, anonymous, card, commands_on, commands_with, customer_actor,
    ids, line, new_order_id, operator, payment_id, place_order, placed, reason, rival, tracking,
    types, with_key, written, RacingStore, TOTAL,
};
#[tokio::test]
async fn a_command_that_loses_a_race_is_rerun_on_the_new_state_and_succeeds() {
    let (store, _, id) = placed("alice").await;
    let racing = Arc::new(RacingStore::new(&store, 1, address_changer(&store)));
    let commands = commands_on(racing.clone());

    let outcome = commands
        .add_item(&anonymous(), id, line("sku-2", 1, 50_000))
        .await
        .expect("the re-run succeeds");

    assert_eq!(outcome.ack.version, 3);
    assert!(!outcome.replayed);
    assert_eq!(racing.begun.load(Ordering::SeqCst), 2);
    let stream = store.events(id);
    assert_eq!(
        types(&stream),
        ["OrderCreated", "DeliveryAddressChanged", "ItemAdded"]
    );
    // The re-run started from the rival's state: both changes are in the order.
    let order = OrderQueries::new(Arc::new(store.clone()))
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(order.delivery_address(), &address("2 Hàng Bài"));
    assert_eq!(order.lines().len(), 2);
    // The lost attempt left no outbox row: one per stored event.
    assert_eq!(ids(&store.outbox()), ids(&stream));
}

#[tokio::test]
async fn a_command_that_keeps_losing_gives_a_conflict_after_the_configured_attempts() {
    let (store, _, id) = placed("alice").await;
    let racing = Arc::new(RacingStore::new(&store, u32::MAX, address_changer(&store)));
    let commands = commands_on(racing.clone()).with_max_attempts(3);

    let refused = commands
        .add_item(&anonymous(), id, line("sku-2", 1, 50_000))
        .await;

    assert!(
        matches!(refused, Err(CommandError::Conflict { attempts: 3 })),
        "{refused:?}"
    );
    assert_eq!(racing.begun.load(Ordering::SeqCst), 3);
    let stream = store.events(id);
    assert_eq!(
        types(&stream),
        [
            "OrderCreated",
            "DeliveryAddressChanged",
            "DeliveryAddressChanged",
            "DeliveryAddressChanged"
        ]
    );
    assert_eq!(ids(&store.outbox()), ids(&stream));
}

#[tokio::test]
async fn a_rerun_decides_on_the_new_state_so_a_cancellation_that_won_refuses_the_item() {
    let (store, _, id) = placed("alice").await;
    let canceller = commands_on(Arc::new(store.clone()));
    let racing = Arc::new(RacingStore::new(
        &store,
        1,
        rival(move |id| {
            let canceller = canceller.clone();
            async move {
                canceller.cancel(&anonymous(), id, reason()).await.unwrap();
            }
        }),
    ));

    let refused = commands_on(racing)
        .add_item(&anonymous(), id, line("sku-2", 1, 50_000))
        .await;

    assert!(
        matches!(
            refused,
            Err(CommandError::Rejected(OrderError::InvalidState {
                status: OrderStatus::Cancelled,
                ..
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(types(&store.events(id)), ["OrderCreated", "OrderCancelled"]);
}

#[tokio::test]
async fn a_lost_race_with_if_match_is_a_version_mismatch_and_is_not_rerun() {
    let (store, _, id) = placed("alice").await;
    let racing = Arc::new(RacingStore::new(&store, 1, address_changer(&store)));
    let mut ctx = anonymous();
    ctx.expected_version = Some(1);

    let refused = commands_on(racing.clone())
        .add_item(&ctx, id, line("sku-2", 1, 50_000))
        .await;

    assert!(
        matches!(
            refused,
            Err(CommandError::VersionMismatch {
                expected: 1,
                actual: 2
            })
        ),
        "{refused:?}"
    );
    assert_eq!(racing.begun.load(Ordering::SeqCst), 1);
    assert_eq!(
        types(&store.events(id)),
        ["OrderCreated", "DeliveryAddressChanged"]
    );
}

#[tokio::test]
async fn placing_an_order_whose_id_is_taken_answers_already_exists_and_writes_nothing() {
    let (store, commands, id) = placed("alice").await;
    let before = written(&store);

    let refused = commands.place(&anonymous(), place_order(id, "bob")).await;

    assert!(
        matches!(refused, Err(CommandError::AlreadyExists(taken)) if taken == id),
        "{refused:?}"
    );
    assert_eq!(written(&store), before);
}

// ---------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_key_and_request_replays_the_first_answer_and_writes_nothing() {
    let store = MemoryEventStore::new();
    let commands = commands_on(Arc::new(store.clone()));
    let id = new_order_id();
    let placing = with_key(anonymous(), "place-1", "POST /orders body-1");
    let first = commands
        .place(&placing, place_order(id, "alice"))
        .await
        .unwrap();
    let paying = with_key(anonymous(), "pay-1", "POST /pay body-1");
    let paid = commands
        .pay(&paying, id, payment_id("p-1"), amount(TOTAL), card())
        .await
        .unwrap();
    let after_first = written(&store);

    // A retry is a new request (a new command id) with the same key and body.
    let again = commands
        .place(
            &with_key(anonymous(), "place-1", "POST /orders body-1"),
            place_order(id, "alice"),
        )
        .await
        .unwrap();
    // Run again, the payment would be refused (already paid): it replays instead.
    let paid_again = commands
        .pay(
            &with_key(anonymous(), "pay-1", "POST /pay body-1"),
            id,
            payment_id("p-1"),
            amount(TOTAL),
            card(),
        )
        .await
        .unwrap();

    assert!(!first.replayed && !paid.replayed);
    assert!(again.replayed && paid_again.replayed);
    assert_eq!(again.ack, first.ack);
    assert_eq!(paid_again.ack, paid.ack);
    assert_eq!(paid.ack.version, 2);
    assert_eq!(written(&store), after_first);
    assert_eq!(
        types(&store.events(id)),
        ["OrderCreated", "PaymentProcessed"]
    );
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused_and_writes_nothing() {
    let (store, commands, id) = placed("alice").await;
    commands
        .add_item(
            &with_key(anonymous(), "k", "body-1"),
            id,
            line("sku-2", 1, 50_000),
        )
        .await
        .unwrap();
    let before = written(&store);

    let on_the_same_order = commands
        .add_item(
            &with_key(anonymous(), "k", "body-2"),
            id,
            line("sku-3", 1, 50_000),
        )
        .await;
    let placing_another = commands
        .place(
            &with_key(anonymous(), "k", "body-3"),
            place_order(new_order_id(), "alice"),
        )
        .await;

    assert!(
        matches!(on_the_same_order, Err(CommandError::IdempotencyKeyReused)),
        "{on_the_same_order:?}"
    );
    assert!(
        matches!(placing_another, Err(CommandError::IdempotencyKeyReused)),
        "{placing_another:?}"
    );
    assert_eq!(written(&store), before);
}

#[tokio::test]
async fn idempotency_keys_are_kept_per_user() {
    let store = MemoryEventStore::new();
    let commands = commands_on(Arc::new(store.clone()));
    let (for_alice, for_bob) = (new_order_id(), new_order_id());

    let alice = commands
        .place(
            &with_key(customer_actor("alice"), "k", "f"),
            place_order(for_alice, "alice"),
        )
        .await
        .unwrap();
    let bob = commands
        .place(
            &with_key(customer_actor("bob"), "k", "f"),
            place_order(for_bob, "bob"),
        )
        .await
        .unwrap();

    assert!(!alice.replayed && !bob.replayed);
    assert_eq!(store.events(for_bob).len(), 1);
    let mut scopes: Vec<String> = store
        .idempotency_records()
        .into_iter()
        .map(|r| r.scope)
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["user-alice", "user-bob"]);
}

#[tokio::test]
async fn a_concurrent_retry_with_the_same_key_that_wins_the_race_has_its_answer_replayed() {
    let (store, _, id) = placed("alice").await;
    let retry = commands_on(Arc::new(store.clone()));
    let racing = Arc::new(RacingStore::new(
        &store,
        1,
        rival(move |id| {
            let retry = retry.clone();
            async move {
                retry
                    .add_item(
                        &with_key(anonymous(), "k", "f"),
                        id,
                        line("sku-2", 1, 50_000),
                    )
                    .await
                    .unwrap();
            }
        }),
    ));

    // Lost the race (the retry appended version 2), re-run on version 2, and then
    // found the key taken at commit: the retry's answer is the answer.
    let outcome = commands_on(racing.clone())
        .add_item(
            &with_key(anonymous(), "k", "f"),
            id,
            line("sku-2", 1, 50_000),
        )
        .await
        .unwrap();

    assert!(outcome.replayed);
    assert_eq!(outcome.ack.version, 2);
    assert_eq!(racing.begun.load(Ordering::SeqCst), 2);
    assert_eq!(types(&store.events(id)), ["OrderCreated", "ItemAdded"]);
    assert_eq!(store.idempotency_records().len(), 1);
}

// ---------------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------------

/// Every command on an existing order, as `ctx`, with its result shown as text.
async fn every_change(commands: &OrderCommands, ctx: &CommandContext, id: OrderId) -> Vec<String> {
    let (tracking_number, carrier) = tracking();
    let results = [
        commands.add_item(ctx, id, line("sku-2", 1, 1)).await,
        commands
            .remove_item(ctx, id, ProductId::parse("sku-1").unwrap())
            .await,
        commands
            .change_delivery_address(ctx, id, address("3 Lý Thái Tổ"))
            .await,
        commands
            .pay(ctx, id, payment_id("p-9"), amount(TOTAL), card())
            .await,
        commands.ship(ctx, id, tracking_number, carrier).await,
        commands.cancel(ctx, id, reason()).await,
    ];
    results
        .into_iter()
        .map(|result| match result {
            Err(CommandError::NotFound(missing)) => format!("not found: {missing}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_customer_acting_on_another_customers_order_is_answered_as_if_it_did_not_exist() {
    let (store, commands, alices) = placed("alice").await;
    let missing = new_order_id();
    let bob = customer_actor("bob");
    let before = written(&store);

    let on_alices = every_change(&commands, &bob, alices).await;
    let on_missing = every_change(&commands, &bob, missing).await;

    assert_eq!(on_alices, vec![format!("not found: {alices}"); 6]);
    assert_eq!(on_missing, vec![format!("not found: {missing}"); 6]);
    let queries = OrderQueries::new(Arc::new(store.clone()));
    for id in [alices, missing] {
        let got = queries.get(&bob.actor, id, None).await;
        assert!(matches!(got, Err(QueryError::NotFound(n)) if n == id));
        let history = queries.history(&bob.actor, id).await;
        assert!(matches!(history, Err(QueryError::NotFound(n)) if n == id));
    }
    assert_eq!(written(&store), before);
}

#[tokio::test]
async fn a_customer_may_pay_its_own_order_but_not_ship_it_and_an_operator_may() {
    let (store, commands, id) = placed("alice").await;
    let alice = customer_actor("alice");
    commands
        .pay(&alice, id, payment_id("p-1"), amount(TOTAL), card())
        .await
        .unwrap();
    let before = written(&store);
    let (tracking_number, carrier) = tracking();

    let refused = commands
        .ship(&alice, id, tracking_number.clone(), carrier.clone())
        .await;

    assert!(
        matches!(refused, Err(CommandError::Forbidden(_))),
        "{refused:?}"
    );
    assert_eq!(written(&store), before);
    let shipped = commands
        .ship(&operator(), id, tracking_number, carrier)
        .await
        .unwrap();
    assert_eq!(shipped.ack.version, 3);
    assert_eq!(
        store.events(id)[2].metadata.user_id.as_deref(),
        Some("op-1")
    );
}

#[tokio::test]
async fn a_customer_may_place_orders_only_for_itself() {
    let store = MemoryEventStore::new();
    let commands = commands_on(Arc::new(store.clone()));
    let bob = customer_actor("bob");

    let for_alice = commands
        .place(&bob, place_order(new_order_id(), "alice"))
        .await;
    // The request's own rules are checked before the actor's right.
    let mut empty = place_order(new_order_id(), "alice");
    empty.items.clear();
    let empty_for_alice = commands.place(&bob, empty).await;

    assert!(
        matches!(for_alice, Err(CommandError::Forbidden(_))),
        "{for_alice:?}"
    );
    assert!(
        matches!(
            empty_for_alice,
            Err(CommandError::Rejected(OrderError::NoLines))
        ),
        "{empty_for_alice:?}"
    );
    assert_eq!(written(&store), written(&MemoryEventStore::new()));
    let own = commands
        .place(&bob, place_order(new_order_id(), "bob"))
        .await
        .unwrap();
    assert_eq!(own.ack.version, 1);
}

#[tokio::test]
async fn a_user_without_roles_may_place_nothing_and_sees_no_order() {
    let (store, commands, id) = placed("alice").await;
    let nobody = CommandContext::new(Actor::authenticated("u-0".to_owned(), &[], None).unwrap());
    let before = written(&store);

    let placing = commands
        .place(&nobody, place_order(new_order_id(), "alice"))
        .await;
    let changes = every_change(&commands, &nobody, id).await;

    assert!(
        matches!(placing, Err(CommandError::Forbidden(_))),
        "{placing:?}"
    );
    assert_eq!(changes, vec![format!("not found: {id}"); 6]);
    assert_eq!(written(&store), before);
}

// ---------------------------------------------------------------------------------
// Publication policy
// ---------------------------------------------------------------------------------

/// Publishes every event but `ItemAdded`.
#[derive(Debug)]
struct AllButItemAdded;

impl PublicationPolicy for AllButItemAdded {
    fn publishes(&self, event: &OrderEvent) -> bool {
        !matches!(event, OrderEvent::ItemAdded(_))
    }
}

#[tokio::test]
async fn every_event_is_stored_and_only_those_the_policy_chooses_get_outbox_rows() {
    let store = MemoryEventStore::new();
    let commands = commands_with(Arc::new(store.clone()), Arc::new(AllButItemAdded));
    let id = new_order_id();
    commands
        .place(&anonymous(), place_order(id, "alice"))
        .await
        .unwrap();
    let commits_before = store.commits();

    commands
        .add_item(&anonymous(), id, line("sku-2", 1, 30_000))
        .await
        .unwrap();
    let outbox_after_item = store.outbox().len();
    commands
        .pay(&anonymous(), id, payment_id("p-1"), amount(297_000), card())
        .await
        .unwrap();

    let stream = store.events(id);
    assert_eq!(
        types(&stream),
        ["OrderCreated", "ItemAdded", "PaymentProcessed"]
    );
    assert_eq!(store.commits(), commits_before + 2);
    assert_eq!(outbox_after_item, 1);
    assert_eq!(
        ids(&store.outbox()),
        [stream[0].event_id, stream[2].event_id]
    );
}

#[tokio::test]
async fn with_publish_all_every_committed_event_has_one_outbox_row_in_version_order() {
    let (store, commands, id) = placed("alice").await;
    let (tracking_number, carrier) = tracking();
    commands
        .add_item(&anonymous(), id, line("sku-2", 1, 30_000))
        .await
        .unwrap();
    commands
        .pay(&anonymous(), id, payment_id("p-1"), amount(297_000), card())
        .await
        .unwrap();
    commands
        .ship(&anonymous(), id, tracking_number, carrier)
        .await
        .unwrap();

    let stream = store.events(id);
    let outbox = store.outbox();
    assert_eq!(outbox.len(), 4);
    for (row, stored) in outbox.iter().zip(&stream) {
        // An outbox row is the event as appended (its commit time and position are the
        // stream's).
        assert_eq!((row.recorded_at, row.position), (None, None));
        assert_eq!(row, &stored.unstored());
    }
}

// ---------------------------------------------------------------------------------
// Refused by the rules
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_command_the_rules_refuse_writes_nothing_not_even_its_idempotency_key() {
    let (store, commands, id) = placed("alice").await;
    let before = written(&store);

    let below_total = commands
        .pay(
            &with_key(anonymous(), "pay", "too little"),
            id,
            payment_id("p-1"),
            amount(TOTAL - 1),
            card(),
        )
        .await;
    let last_line = commands
        .remove_item(&anonymous(), id, ProductId::parse("sku-1").unwrap())
        .await;
    let (tracking_number, carrier) = tracking();
    let unpaid = commands
        .ship(&anonymous(), id, tracking_number, carrier)
        .await;
    let mut unknown_code = place_order(new_order_id(), "alice");
    unknown_code.discount_codes = vec![DiscountCode::parse("NOPE").unwrap()];
    let placing = commands.place(&anonymous(), unknown_code).await;

    assert!(
        matches!(
            below_total,
            Err(CommandError::Rejected(OrderError::PaymentBelowTotal { .. }))
        ),
        "{below_total:?}"
    );
    assert!(
        matches!(last_line, Err(CommandError::Rejected(OrderError::LastLine))),
        "{last_line:?}"
    );
    assert!(
        matches!(
            unpaid,
            Err(CommandError::Rejected(OrderError::InvalidState {
                status: OrderStatus::Created,
                ..
            }))
        ),
        "{unpaid:?}"
    );
    assert!(
        matches!(
            placing,
            Err(CommandError::Rejected(OrderError::UnknownDiscountCode(_)))
        ),
        "{placing:?}"
    );
    assert_eq!(written(&store), before);
    // Nothing was kept under the key, so the corrected request may use it.
    let paid = commands
        .pay(
            &with_key(anonymous(), "pay", "enough"),
            id,
            payment_id("p-1"),
            amount(TOTAL),
            card(),
        )
        .await
        .unwrap();
    assert!(!paid.replayed);
}

// ---------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn snapshots_are_stored_every_interval_and_loads_from_them_equal_replays() {
    let store = MemoryEventStore::new();
    let shared = Arc::new(store.clone());
    let commands = commands_on(shared.clone()).with_snapshots(shared.clone(), 2);
    let id = new_order_id();
    let (tracking_number, carrier) = tracking();
    commands
        .place(&anonymous(), place_order(id, "alice"))
        .await
        .unwrap();
    commands
        .add_item(&anonymous(), id, line("sku-2", 1, 30_000))
        .await
        .unwrap();
    commands
        .pay(&anonymous(), id, payment_id("p-1"), amount(297_000), card())
        .await
        .unwrap();
    commands
        .ship(&anonymous(), id, tracking_number, carrier)
        .await
        .unwrap();

    let snapshots = store.snapshots(id);
    let stream = store.events(id);
    assert_eq!(
        snapshots.iter().map(|s| s.version).collect::<Vec<_>>(),
        [2, 4]
    );
    assert_eq!(snapshots[1].last_occurred_at, stream[3].occurred_at);
    let anyone = Actor::unrestricted(None);
    let replayed = OrderQueries::new(shared.clone())
        .get(&anyone, id, None)
        .await
        .unwrap();
    let from_snapshot = OrderQueries::new(shared.clone())
        .with_snapshots(shared)
        .get(&anyone, id, None)
        .await
        .unwrap();
    assert_eq!(from_snapshot, replayed);
    assert_eq!(replayed.status(), OrderStatus::Shipped);
}

// ---------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------

/// The positions of `events`, each of which must have one.
fn positions(events: &[EventEnvelope]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.position.expect("a stored event has a position"))
        .collect()
}

#[tokio::test]
async fn the_history_shows_global_positions_that_grow_in_version_order_and_across_orders() {
    let (store, commands, a) = placed("alice").await;
    commands
        .add_item(&anonymous(), a, line("sku-2", 1, 30_000))
        .await
        .unwrap();
    let b = new_order_id();
    commands
        .place(&anonymous(), place_order(b, "bob"))
        .await
        .unwrap();
    commands
        .add_item(&anonymous(), a, line("sku-3", 1, 10_000))
        .await
        .unwrap();

    let queries = OrderQueries::new(Arc::new(store.clone()));
    let anyone = Actor::unrestricted(None);
    let a_history = queries.history(&anyone, a).await.unwrap();
    let b_history = queries.history(&anyone, b).await.unwrap();
    let (a_positions, b_positions) = (positions(&a_history), positions(&b_history));
    assert!(
        a_positions.windows(2).all(|w| w[0] < w[1]),
        "{a_positions:?}"
    );
    // A's creation and first item came before B's creation, its second item after it.
    assert!(
        a_positions[1] < b_positions[0],
        "{a_positions:?} {b_positions:?}"
    );
    assert!(
        a_positions[2] > b_positions[0],
        "{a_positions:?} {b_positions:?}"
    );
    assert_eq!(a_positions, positions(&store.events(a)));
    // The outbox rows carry none: a position is the store's, never published.
    assert!(store.outbox().iter().all(|row| row.position.is_none()));
}
