//! Commands and queries: acknowledgments, client order ids, the queries, correlation ids.

use std::sync::Arc;

use application::{EventStore, Projector};
use domain::OrderId;
use order_grpc::proto;
use order_postgres::{PgEventStore, PgReadModel};
use serde_json::{json, Value};
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    add_item, address, cancel, change_address, get, list, new_address, order, pay, remove_item,
    send, ship, some, stored_positions, violations, Answer, Call, Rpc, Server, TOTAL,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_command_answers_its_acknowledgment_with_the_new_version(pool: PgPool) {
    let server = Server::start(pool).await;
    let created = server.ack(Rpc::Create(order())).await;
    assert_eq!(created.version, 1);
    assert!(!created.replayed);
    let id = created.order_id;
    OrderId::parse(&id).expect("the server made a UUID");

    let steps = [
        add_item(&id, "sku-3", 1, 10_000),
        remove_item(&id, "sku-3"),
        change_address(&id),
        pay(&id, TOTAL),
        ship(&id),
    ];
    for (step, version) in steps.into_iter().zip(2..) {
        let name = step.name();
        let ack = server.ack(step).await;
        assert_eq!(
            (ack.order_id.as_str(), ack.version),
            (id.as_str(), version),
            "{name}"
        );
    }
    let other = server.place().await;
    assert_eq!(server.ack(cancel(&other)).await.version, 2);

    let shipped = server.order(&id).await;
    assert_eq!(shipped.version, 6);
    assert_eq!(shipped.status(), proto::OrderStatus::Shipped);
    assert_eq!(
        (shipped.subtotal, shipped.discount, shipped.total),
        (250_000, 25_000, TOTAL)
    );
    assert_eq!(shipped.delivery_address, Some(new_address()));
    assert_eq!(shipped.customer.and_then(|c| c.address), Some(address()));
    let payment = shipped.payment.expect("paid");
    assert_eq!(
        (payment.amount, payment.method()),
        (TOTAL, proto::PaymentMethod::BankTransfer)
    );
    assert_eq!(shipped.shipment.map(|s| s.carrier), some("VNPost"));
    let cancelled = server.order(&other).await;
    assert_eq!(cancelled.status(), proto::OrderStatus::Cancelled);
    assert_eq!(cancelled.cancellation.map(|c| c.refund_amount), Some(0));
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_client_order_id_is_kept_and_a_second_create_with_it_already_exists(pool: PgPool) {
    let server = Server::start(pool).await;
    let id = Uuid::now_v7().to_string();
    let mut create = order();
    create.order_id = Some(id.clone());
    let ack = server.ack(Rpc::Create(create.clone())).await;
    assert_eq!((ack.order_id.as_str(), ack.version), (id.as_str(), 1));
    server
        .assert_rejected_without_writes(Rpc::Create(create.clone()), Code::AlreadyExists)
        .await;
    // Whatever its message.
    create.currency = some("USD");
    server
        .assert_rejected_without_writes(Rpc::Create(create), Code::AlreadyExists)
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_queries_answer_the_order_its_history_as_of_an_instant_and_the_list(pool: PgPool) {
    let server = Server::start(pool.clone()).await;
    let id = server.place().await;
    server.ack(pay(&id, TOTAL)).await;

    let order = server.order(&id).await;
    assert_eq!(order.items.len(), 2);
    assert_eq!(order.items[0].line_total, 200_000);
    assert_eq!(order.discount_codes, ["WELCOME10"]);
    assert_eq!(order.discount_percent, 10);

    let events = server.history(&id).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["OrderCreated", "PaymentProcessed"]);
    let paid = &events[1];
    assert_eq!((paid.version, paid.schema_version), (2, 1));
    assert_eq!(paid.aggregate_type, "Order");
    assert!(!paid.recorded_at.is_empty());
    let payload: Value = serde_json::from_str(&paid.payload_json).expect("JSON text");
    assert_eq!(
        payload,
        json!({"paymentId": "pay-1", "amount": TOTAL, "method": "bank_transfer"})
    );

    // As of the creation: created, not yet paid; before it: not found.
    let created_at = events[0].occurred_at.clone();
    let mut as_of = proto::GetOrderRequest {
        order_id: id.clone(),
        as_of: Some(created_at),
    };
    match server.ok(Rpc::Get(as_of.clone())).await {
        Answer::Order(then) => assert_eq!(then.status(), proto::OrderStatus::Created),
        other => panic!("{other:?}"),
    }
    as_of.as_of = some("2000-01-01T00:00:00Z");
    server
        .assert_rejected_without_writes(Rpc::Get(as_of.clone()), Code::NotFound)
        .await;
    as_of.as_of = some("yesterday");
    server.assert_invalid(Rpc::Get(as_of), "as_of").await;

    // The read model, fed as the projector would be.
    let store = Arc::new(PgEventStore::new(pool.clone()));
    let projector = Projector::new(Arc::new(PgReadModel::new(pool.clone())), store.clone());
    let stream = store.load(OrderId::parse(&id).unwrap()).await.unwrap();
    projector.apply(&stream).await.expect("projected");
    let Answer::List(page) = server.ok(list(Some("cust-1"))).await else {
        panic!("not a list")
    };
    assert_eq!(page.items.len(), 1);
    let summary = &page.items[0];
    assert_eq!(summary.order_id, id);
    assert_eq!(summary.status(), proto::OrderStatus::Paid);
    assert_eq!(
        (summary.total, summary.item_count, summary.version),
        (TOTAL, 2, 2)
    );
    assert_eq!(page.next_cursor, None);
    let mut malformed = proto::ListOrdersRequest {
        limit: Some(0),
        ..Default::default()
    };
    server
        .assert_invalid(Rpc::List(malformed.clone()), "limit")
        .await;
    malformed.limit = None;
    malformed.status = 99;
    server
        .assert_invalid(Rpc::List(malformed.clone()), "status")
        .await;
    malformed.status = 0;
    malformed.cursor = some("zz");
    server.assert_invalid(Rpc::List(malformed), "cursor").await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_history_shows_each_events_global_position_growing_across_orders(pool: PgPool) {
    let server = Server::start(pool.clone()).await;
    let a = server.place().await;
    server.ack(add_item(&a, "sku-3", 1, 1)).await;
    let b = server.place().await;
    server.ack(add_item(&a, "sku-4", 1, 1)).await;

    let positions = |history: Vec<proto::Event>| -> Vec<i64> {
        history
            .iter()
            .map(|e| i64::try_from(e.position).expect("a BIGINT position"))
            .collect()
    };
    let a_positions = positions(server.history(&a).await);
    let b_positions = positions(server.history(&b).await);
    assert_eq!((a_positions.len(), b_positions.len()), (3, 1));
    assert!(
        a_positions[0] >= 1,
        "set (0 is proto3's unset): {a_positions:?}"
    );
    assert!(
        a_positions.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing in version order: {a_positions:?}"
    );
    // A's creation and first item were stored before B's creation, its second item after.
    assert!(
        a_positions[1] < b_positions[0],
        "{a_positions:?} {b_positions:?}"
    );
    assert!(
        a_positions[2] > b_positions[0],
        "{a_positions:?} {b_positions:?}"
    );
    assert_eq!(a_positions, stored_positions(&pool, &a).await);
    assert_eq!(b_positions, stored_positions(&pool, &b).await);
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_correlation_id_is_echoed_and_recorded_and_a_malformed_one_is_invalid(pool: PgPool) {
    let server = Server::start(pool).await;
    let call = Call::from(Rpc::Create(order()))
        .meta("x-correlation-id", "txn-42")
        .meta(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .meta("x-user-id", "dev-user");
    let (answer, metadata) = send(&server.client, &call).await.expect("created");
    assert_eq!(
        metadata
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok()),
        Some("txn-42")
    );
    let id = answer.ack().order_id;
    let events = server.history(&id).await;
    let metadata = events[0].metadata.clone().expect("metadata");
    assert_eq!(metadata.correlation_id, "txn-42");
    assert_eq!(metadata.user_id.as_deref(), Some("dev-user"));

    let (_, generated) = send(&server.client, &Call::from(get(&id)))
        .await
        .expect("read");
    assert!(generated.get("x-correlation-id").is_some());

    let status = server
        .assert_rejected_without_writes(
            Call::from(Rpc::Create(order())).meta("x-correlation-id", "has space"),
            Code::InvalidArgument,
        )
        .await;
    assert_eq!(violations(&status), ["x-correlation-id"]);
}
