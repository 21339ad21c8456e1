//! Idempotency keys: a retry replays the first acknowledgment.

use sqlx::PgPool;

use crate::support::{add_item, cancel, counts, order, order_for, Call, Rpc, Server};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_retry_with_the_same_key_replays_the_first_ack_and_writes_nothing(pool: PgPool) {
    let server = Server::start(pool).await;
    let create = Call::from(Rpc::Create(order())).key("create-1");
    let first = server.ack(create.clone()).await;
    assert!(!first.replayed);
    let before = counts(&server.pool).await;
    let again = server.ack(create).await;
    assert_eq!(
        (again.order_id.as_str(), again.version),
        (first.order_id.as_str(), 1)
    );
    assert!(again.replayed);
    assert_eq!(
        counts(&server.pool).await,
        before,
        "a replay writes nothing"
    );

    let id = first.order_id;
    let add = Call::from(add_item(&id, "sku-9", 1, 10)).key("add-1");
    assert_eq!(server.ack(add.clone()).await.version, 2);
    let before = counts(&server.pool).await;
    let replayed = server.ack(add).await;
    assert!(replayed.replayed && replayed.version == 2);
    assert_eq!(counts(&server.pool).await, before);

    // The same key with another message, or on another rpc: refused.
    for call in [
        Call::from(add_item(&id, "sku-9", 2, 10)).key("add-1"),
        Call::from(cancel(&id)).key("add-1"),
        Call::from(Rpc::Create(order_for("cust-2"))).key("create-1"),
    ] {
        let status = server.assert_invalid(call, "idempotency-key").await;
        assert!(status.message().contains("idempotency-key"), "{status:?}");
    }
    // Malformed keys.
    for bad in ["", "has space", &"k".repeat(256), "tab\there"] {
        server
            .assert_invalid(Call::from(cancel(&id)).key(bad), "idempotency-key")
            .await;
    }
}
