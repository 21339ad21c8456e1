//! Queries: the order as of an instant, and its history.

use application::{Actor, EventStore, QueryError};
use chrono::Utc;
use domain::{OrderStatus, PaymentId};
use sqlx::PgPool;

use crate::support::{
    amount, card, commands, ctx, line, new_order_id, pg_store, place_order, queries,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_order_as_of_an_instant_is_its_state_then_and_history_has_every_event(pool: PgPool) {
    let commands = commands(&pool);
    let queries = queries(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    commands
        .add_item(&ctx(), id, line("sku-2", 1, 30_000))
        .await
        .unwrap();
    commands
        .pay(
            &ctx(),
            id,
            PaymentId::parse("pay-1").unwrap(),
            amount(297_000),
            card(),
        )
        .await
        .unwrap();

    let history = queries
        .history(&Actor::unrestricted(None), id)
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        history.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        ["OrderCreated", "ItemAdded", "PaymentProcessed"]
    );
    assert!(history.iter().all(|e| e.recorded_at.is_some()));
    assert_eq!(history, pg_store(&pool).load(id).await.unwrap());

    let created = history[0].occurred_at;
    let item_added = history[1].occurred_at;
    let before_creation = created - chrono::Duration::microseconds(1);
    let error = queries
        .get(&Actor::unrestricted(None), id, Some(before_creation))
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::NotFound(o) if o == id),
        "{error:?}"
    );

    let at_creation = queries
        .get(&Actor::unrestricted(None), id, Some(created))
        .await
        .unwrap();
    assert_eq!(at_creation.version(), 1);
    assert_eq!(at_creation.lines().len(), 1);
    assert_eq!(at_creation.total(), amount(270_000));

    let after_item = queries
        .get(&Actor::unrestricted(None), id, Some(item_added))
        .await
        .unwrap();
    assert_eq!(after_item.version(), 2);
    assert_eq!(after_item.status(), OrderStatus::Created);
    assert_eq!(after_item.lines().len(), 2);
    assert_eq!(after_item.total(), amount(297_000));
    assert!(after_item.payment().is_none());

    let now = queries
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(now.version(), 3);
    assert_eq!(now.status(), OrderStatus::Paid);
    assert_eq!(
        now,
        queries
            .get(&Actor::unrestricted(None), id, Some(Utc::now()))
            .await
            .unwrap()
    );

    let unknown = new_order_id();
    let error = queries
        .history(&Actor::unrestricted(None), unknown)
        .await
        .unwrap_err();
    assert!(
        matches!(error, QueryError::NotFound(o) if o == unknown),
        "{error:?}"
    );
}
