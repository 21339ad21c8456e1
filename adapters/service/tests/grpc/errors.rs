//! Every error code, provoked for real.

use std::time::Duration;

use order_api::RequestLimits;
use order_grpc::proto;
use order_service::ServiceSettings;
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    add_item, address, cancel, change_address, commands_on, counts, customer, expecting, get,
    history, line, list, new_address, order, pay, remove_item, send, ship, some, violations, Call,
    Rpc, Server, TOTAL,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn invalid_input_is_invalid_argument_naming_each_field_as_http_does(pool: PgPool) {
    let server = Server::start(pool).await;
    let id = server.place().await;

    // Missing fields, each named with HTTP's JSON path.
    let status = server
        .assert_rejected_without_writes(
            Rpc::Create(proto::CreateOrderRequest::default()),
            Code::InvalidArgument,
        )
        .await;
    assert_eq!(violations(&status), ["customer", "currency", "items"]);
    let mut create = order();
    create.customer = Some(proto::Customer {
        name: None,
        address: Some(proto::Address {
            city: None,
            ..address()
        }),
        ..customer("cust-1")
    });
    create.items[1].quantity = Some(0);
    let status = server
        .assert_rejected_without_writes(Rpc::Create(create), Code::InvalidArgument)
        .await;
    assert_eq!(
        violations(&status),
        [
            "customer.name",
            "customer.address.city",
            "items[1].quantity"
        ]
    );
    assert!(
        status.message().contains("customer.address.city"),
        "{}",
        status.message()
    );

    // Out of range, malformed, control characters, unknown codes.
    let mut create = order();
    create.currency = some("XYZ");
    server.assert_invalid(Rpc::Create(create), "currency").await;
    let mut create = order();
    create.items[0].unit_price = Some(1_000_000_000_000_001);
    server
        .assert_invalid(Rpc::Create(create), "items[0].unitPrice")
        .await;
    let mut create = order();
    create.customer.as_mut().unwrap().name = some("bad\u{7}name");
    server
        .assert_invalid(Rpc::Create(create), "customer.name")
        .await;
    let mut create = order();
    create.discount_codes = vec!["NOPE".to_owned()];
    server
        .assert_invalid(Rpc::Create(create), "discountCodes")
        .await;
    let mut create = order();
    create.items.push(line("sku-1", 1, 100_000));
    server.assert_invalid(Rpc::Create(create), "items").await;
    let mut create = order();
    create.order_id = some("not-a-uuid");
    server.assert_invalid(Rpc::Create(create), "orderId").await;

    // Commands: a malformed order id, missing fields, an unknown payment method.
    server
        .assert_invalid(add_item("not-a-uuid", "sku-9", 1, 1), "order_id")
        .await;
    server
        .assert_invalid(remove_item(&id, ""), "product_id")
        .await;
    let Rpc::Pay(mut payment) = pay(&id, TOTAL) else {
        unreachable!()
    };
    payment.method = 0;
    server
        .assert_invalid(Rpc::Pay(payment.clone()), "method")
        .await;
    payment.method = 42;
    server.assert_invalid(Rpc::Pay(payment), "method").await;
    let mut address = proto::ChangeDeliveryAddressRequest {
        order_id: id.clone(),
        expected_version: None,
        address: None,
    };
    let status = server
        .assert_rejected_without_writes(Rpc::ChangeAddress(address.clone()), Code::InvalidArgument)
        .await;
    assert_eq!(violations(&status), ["line1", "city", "country"]);
    address.address = Some(proto::Address {
        country: some("Vietnam"),
        ..new_address()
    });
    server
        .assert_invalid(Rpc::ChangeAddress(address), "country")
        .await;
    let Rpc::Ship(mut shipment) = ship(&id) else {
        unreachable!()
    };
    shipment.tracking_number = Some("x".repeat(65));
    server
        .assert_invalid(Rpc::Ship(shipment), "trackingNumber")
        .await;
    let Rpc::Cancel(mut cancellation) = cancel(&id) else {
        unreachable!()
    };
    cancellation.reason = None;
    server
        .assert_invalid(Rpc::Cancel(cancellation), "reason")
        .await;

    // Rules on the order's content (HTTP's 422 after the state).
    server.assert_invalid(pay(&id, TOTAL - 1), "amount").await;
    let status = server
        .assert_rejected_without_writes(add_item(&id, "sku-1", 1, 99), Code::InvalidArgument)
        .await;
    assert!(!violations(&status).is_empty());
    server.ack(remove_item(&id, "sku-2")).await;
    server
        .assert_rejected_without_writes(remove_item(&id, "sku-1"), Code::InvalidArgument)
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_unknown_order_or_line_is_not_found(pool: PgPool) {
    let server = Server::start(pool).await;
    let unknown = Uuid::now_v7().to_string();
    for rpc in commands_on(&unknown)
        .into_iter()
        .chain([get(&unknown), history(&unknown)])
    {
        server
            .assert_rejected_without_writes(rpc, Code::NotFound)
            .await;
    }
    let id = server.place().await;
    server
        .assert_rejected_without_writes(remove_item(&id, "sku-404"), Code::NotFound)
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_command_the_state_does_not_allow_is_failed_precondition(pool: PgPool) {
    let server = Server::start(pool).await;
    let id = server.place().await;
    server
        .assert_rejected_without_writes(ship(&id), Code::FailedPrecondition)
        .await;
    server.ack(pay(&id, TOTAL)).await;
    for rpc in [
        add_item(&id, "sku-9", 1, 1),
        remove_item(&id, "sku-1"),
        pay(&id, TOTAL),
    ] {
        server
            .assert_rejected_without_writes(rpc, Code::FailedPrecondition)
            .await;
    }
    server.ack(ship(&id)).await;
    for rpc in [cancel(&id), change_address(&id)] {
        server
            .assert_rejected_without_writes(rpc, Code::FailedPrecondition)
            .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_expected_version_mismatch_is_aborted_and_writes_nothing_while_a_match_succeeds(
    pool: PgPool,
) {
    let server = Server::start(pool).await;
    let id = server.place().await;
    for rpc in commands_on(&id) {
        for stale in [0, 2, 99] {
            let status = server
                .assert_rejected_without_writes(expecting(rpc.clone(), stale), Code::Aborted)
                .await;
            assert!(
                status.message().contains("expected_version"),
                "{}",
                status.message()
            );
        }
    }
    let ack = server
        .ack(expecting(add_item(&id, "sku-9", 1, 10), 1))
        .await;
    assert_eq!(ack.version, 2);
    assert_eq!(
        server.ack(expecting(pay(&id, TOTAL + 10), 2)).await.version,
        3
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_concurrency_conflict_that_retries_do_not_resolve_is_aborted(pool: PgPool) {
    const N: usize = 12;
    let settings = ServiceSettings {
        max_attempts: 1,
        ..ServiceSettings::default()
    };
    let server = Server::with_settings(pool, &settings).await;
    let id = server.place().await;
    let racers = (0..N).map(|i| {
        let client = server.client.clone();
        let call = Call::from(add_item(&id, &format!("sku-r{i}"), 1, 10));
        tokio::spawn(async move { send(&client, &call).await.map(|(answer, _)| answer) })
    });
    let mut won = 0;
    let mut aborted = 0;
    for racer in futures::future::join_all(racers).await {
        match racer.expect("the racer ran") {
            Ok(_) => won += 1,
            Err(status) if status.code() == Code::Aborted => aborted += 1,
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    assert!(won >= 1 && aborted >= 1, "won {won}, aborted {aborted}");
    assert_eq!(server.order(&id).await.version, 1 + won);
    assert_eq!(
        counts(&server.pool).await.0,
        1 + i64::try_from(won).unwrap()
    );
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    let pool = order_postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_millis(200),
    )
    .expect("a valid URL");
    let server = Server::start(pool).await;
    let id = Uuid::now_v7().to_string();
    for call in [
        Call::from(Rpc::Create(order())),
        Call::from(Rpc::Create(order())).key("k"),
        Call::from(add_item(&id, "sku-1", 1, 1)),
        Call::from(get(&id)),
        Call::from(history(&id)),
        Call::from(list(None)),
    ] {
        let description = call.describe();
        let status = server.send(call).await.expect_err(&description);
        assert_eq!(
            status.code(),
            Code::Unavailable,
            "{description}: {status:?}"
        );
        assert!(
            !status.message().contains("127.0.0.1"),
            "nothing internal: {status:?}"
        );
    }
}

#[tokio::test]
async fn overload_is_resource_exhausted_at_once_and_a_slow_request_unavailable() {
    // Every request waits for the unreachable database for up to 2 s; the guard allows
    // one request in flight and 500 ms each.
    let pool = order_postgres::connect_lazy(
        "postgres://postgres@127.0.0.1:1/x",
        1,
        Duration::from_secs(2),
    )
    .expect("a valid URL");
    let settings = ServiceSettings {
        limits: RequestLimits {
            request_timeout: Duration::from_millis(500),
            max_concurrent_requests: 1,
        },
        ..ServiceSettings::default()
    };
    let server = Server::with_settings(pool, &settings).await;
    let id = Uuid::now_v7().to_string();
    let slow = {
        let client = server.client.clone();
        let call = Call::from(get(&id));
        tokio::spawn(async move { send(&client, &call).await.map(|(answer, _)| answer) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let status = server.send(get(&id)).await.expect_err("overloaded");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "answered at once"
    );
    let status = slow.await.unwrap().expect_err("timed out");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_bug_is_internal_and_says_nothing_internal(pool: PgPool) {
    // A damaged store: an event of a type this code does not know.
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (event_id, stream_id, aggregate_type, version, event_type, \
                             schema_version, payload, metadata, occurred_at) \
         VALUES ($1, $2, 'Order', 1, 'OrderTeleported', 1, '{}', '{}', now())",
    )
    .bind(Uuid::now_v7())
    .bind(id)
    .execute(&pool)
    .await
    .expect("inserted");
    let server = Server::start(pool).await;
    for rpc in [
        get(&id.to_string()),
        add_item(&id.to_string(), "sku-1", 1, 1),
    ] {
        let status = server
            .assert_rejected_without_writes(rpc, Code::Internal)
            .await;
        assert!(!status.message().contains("Teleported"), "{status:?}");
        assert!(status.message().contains("logged"), "{status:?}");
    }
}
