//! An unreachable database: the store and the use cases answer `Unavailable`.

use std::time::Duration;

use application::{Actor, CommandError, EventStore, OrderQueries, QueryError, StoreError};
use order_postgres::connect_lazy;

use crate::support::{
    append_and_commit, commands_on, ctx, ctx_with_key, line, new_order_id, paid_order_history,
    pg_store, place_order,
};

#[tokio::test]
async fn a_store_on_an_unreachable_database_is_unavailable_and_so_are_the_use_cases() {
    let pool = connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_millis(200),
    )
    .unwrap();
    let store = pg_store(&pool);
    let id = new_order_id();

    let error = store.load(id).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let error = store.find_idempotency("", "key-1").await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    // A unit of work writes at commit: that is where the database is missed.
    let error = append_and_commit(&store, id, 0, &paid_order_history(id))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    let commands = commands_on(store.clone());
    let error = commands.place(&ctx(), place_order(id)).await.unwrap_err();
    assert!(matches!(error, CommandError::Unavailable(_)), "{error:?}");
    let error = commands
        .add_item(&ctx(), id, line("sku-2", 1, 1))
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::Unavailable(_)), "{error:?}");
    let error = commands
        .place(&ctx_with_key("", "key-1", "fp-1"), place_order(id))
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::Unavailable(_)), "{error:?}");

    let error = OrderQueries::new(store)
        .get(&Actor::unrestricted(None), id, None)
        .await
        .unwrap_err();
    assert!(matches!(error, QueryError::Unavailable(_)), "{error:?}");
}
