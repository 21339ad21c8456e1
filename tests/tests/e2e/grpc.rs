//! The gRPC API of the running `App`: an order placed and changed over gRPC reaches
//! Kafka as HTTP's would, and both APIs share the one set of use cases.

use std::time::Duration;

use order_grpc::proto::{self, order_service_client::OrderServiceClient};
use reqwest::Method;
use tonic::Request;

use super::{all_seen, check_delivery};
use e2e::System;

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn acting_as<T>(message: T, user: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-user-id", user.parse().expect("ASCII metadata"));
    request
}

fn create_order() -> proto::CreateOrderRequest {
    proto::CreateOrderRequest {
        order_id: None,
        customer: Some(proto::Customer {
            customer_id: some("c-grpc"),
            name: some("Nguyễn Văn A"),
            phone: some("+84 90 123 4567"),
            address: Some(proto::Address {
                line1: some("1 Lê Lợi"),
                line2: None,
                city: some("Hồ Chí Minh"),
                postal_code: some("700000"),
                country: some("VN"),
            }),
        }),
        currency: some("VND"),
        items: vec![proto::Item {
            product_id: some("sku-1"),
            quantity: Some(2),
            unit_price: Some(100_000),
        }],
        discount_codes: vec!["WELCOME10".to_owned()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_placed_over_grpc_reaches_kafka_in_order_and_http_reads_it() {
    let system = System::start(1).await;
    let mut client = OrderServiceClient::connect(system.grpc.clone())
        .await
        .expect("the App serves gRPC");

    let created = client
        .create_order(acting_as(create_order(), "grpc-user"))
        .await
        .expect("CreateOrder is accepted")
        .into_inner();
    assert_eq!(created.version, 1);
    let added = client
        .add_item(acting_as(
            proto::AddItemRequest {
                order_id: created.order_id.clone(),
                expected_version: Some(1),
                product_id: some("sku-2"),
                quantity: Some(1),
                unit_price: Some(50_000),
            },
            "grpc-user",
        ))
        .await
        .expect("AddItem is accepted")
        .into_inner();
    assert_eq!(added.version, 2);
    let refused = client
        .add_item(acting_as(
            proto::AddItemRequest {
                order_id: created.order_id.clone(),
                expected_version: Some(1),
                product_id: some("sku-3"),
                quantity: Some(1),
                unit_price: Some(1_000),
            },
            "grpc-user",
        ))
        .await
        .expect_err("a stale expected_version is refused");
    assert_eq!(refused.code(), tonic::Code::Aborted, "{refused:?}");

    // The HTTP API of the same App reads what gRPC wrote, at once (the same store).
    let (status, order) = system
        .send(
            Method::GET,
            &format!("/orders/{}", created.order_id),
            None,
            &[("X-User-Id", "grpc-user")],
        )
        .await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["version"], 2);
    assert_eq!(order["items"].as_array().map(Vec::len), Some(2), "{order}");

    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let committed = system.committed_events().await;
    assert_eq!(committed.len(), 2, "the refused command wrote nothing");
    let received = system
        .consume(Duration::from_secs(30), all_seen(&committed))
        .await;
    check_delivery(&committed, &received);
    // One per event: a redelivery repeats an eventId.
    let mut seen = std::collections::HashSet::new();
    let types: Vec<&str> = received
        .iter()
        .filter(|m| seen.insert(m.value["eventId"].as_str()))
        .filter_map(|m| m.value["eventType"].as_str())
        .collect();
    assert_eq!(types, ["OrderCreated", "ItemAdded"]);
    let user = received[0].value["metadata"]["userId"].as_str();
    assert_eq!(
        user,
        Some("grpc-user"),
        "the gRPC caller is the events' user"
    );
    system.stop().await;
}
