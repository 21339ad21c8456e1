//! Existing ids and If-Match: placing an id that exists, and a command whose expected
//! version is not the order's, write nothing.

use application::{Actor, CommandError};
use domain::{CancellationReason, OrderStatus};
use sqlx::PgPool;

use crate::support::{
    commands, ctx, ctx_expecting, ctx_with_key, line, new_order_id, place_order, queries, written,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn placing_an_order_with_an_id_that_exists_is_already_exists_and_writes_nothing(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    let before = written(&pool).await;

    let mut other_body = place_order(id);
    other_body.items = vec![line("sku-9", 1, 5)];
    other_body.discount_codes.clear();
    for context in [ctx(), ctx_with_key("", "key-1", "fp-1")] {
        let error = commands
            .place(&context, other_body.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommandError::AlreadyExists(existing) if existing == id),
            "{error:?}"
        );
    }

    assert_eq!(written(&pool).await, before);
    let order = queries(&pool)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap();
    assert_eq!(order.lines()[0].product_id().as_str(), "sku-1");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_command_whose_if_match_version_is_not_the_orders_is_a_mismatch_and_writes_nothing(
    pool: PgPool,
) {
    let commands = commands(&pool);
    let id = new_order_id();
    commands.place(&ctx(), place_order(id)).await.unwrap();
    let matched = commands
        .add_item(&ctx_expecting(1), id, line("sku-2", 1, 10_000))
        .await
        .unwrap();
    assert_eq!(matched.ack.version, 2);
    let before = written(&pool).await;

    for stale_or_ahead in [1, 5] {
        let error = commands
            .cancel(
                &ctx_expecting(stale_or_ahead),
                id,
                CancellationReason::parse("changed mind").unwrap(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                CommandError::VersionMismatch { expected, actual: 2 } if expected == stale_or_ahead
            ),
            "{error:?}"
        );
    }

    assert_eq!(written(&pool).await, before);
    assert_eq!(
        queries(&pool)
            .get(&Actor::unrestricted(None), id, None)
            .await
            .unwrap()
            .status(),
        OrderStatus::Created
    );
}
