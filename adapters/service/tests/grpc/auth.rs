//! Authentication and authorization.

use std::time::Duration;

use order_api::auth::{expiry_in, now_seconds, Authenticator, Claims};
use order_grpc::proto;
use sqlx::PgPool;
use tonic::Code;
use uuid::Uuid;

use crate::support::{
    add_item, cancel, change_address, commands_on, get, history, jwt_settings, list, order,
    order_for, pay, remove_item, ship, token, token_for, Answer, Call, Rpc, Server, TOTAL,
};

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn missing_garbage_expired_or_wrongly_signed_tokens_are_unauthenticated(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let expired = token_for("user-1", &["operator"], None, now_seconds() - 3600);
    let wrong_key = Authenticator::jwt(b"another-secret-that-is-also-long-enough")
        .unwrap()
        .mint(&Claims {
            sub: "user-1".to_owned(),
            exp: expiry_in(Duration::from_secs(600)),
            iat: None,
            roles: vec!["operator".to_owned()],
            customer_id: None,
        })
        .unwrap();
    let id = Uuid::now_v7().to_string();
    let calls = |rpc: Rpc| {
        vec![
            Call::from(rpc.clone()),
            Call::from(rpc.clone()).meta("x-user-id", "mallory"),
            Call::from(rpc.clone()).bearer("not.a.jwt"),
            Call::from(rpc.clone()).meta("authorization", "Basic dXNlcjpwYXNz"),
            Call::from(rpc.clone()).bearer(&expired),
            Call::from(rpc.clone()).bearer(&wrong_key),
            Call::from(rpc).bearer(&token(&["customer"], None)),
        ]
    };
    for rpc in [Rpc::Create(order()), pay(&id, 1), get(&id), list(None)] {
        for call in calls(rpc) {
            server
                .assert_rejected_without_writes(call, Code::Unauthenticated)
                .await;
        }
    }
    // Authentication comes before validation, as 401 comes before 400 and 422.
    server
        .assert_rejected_without_writes(
            Rpc::Create(proto::CreateOrderRequest::default()),
            Code::Unauthenticated,
        )
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn customers_act_only_on_their_own_orders_and_may_not_ship(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let alice = token(&["customer"], Some("cust-1"));
    let bob = token(&["customer"], Some("cust-2"));
    let operator = token(&["operator"], None);

    let id = server
        .ack(Call::from(Rpc::Create(order())).bearer(&alice))
        .await
        .order_id;
    // Another customer's order is not found, whatever the command or query.
    for rpc in commands_on(&id).into_iter().chain([get(&id), history(&id)]) {
        server
            .assert_rejected_without_writes(Call::from(rpc).bearer(&bob), Code::NotFound)
            .await;
    }
    // Creating for another customer, listing another's, shipping: permission denied.
    server
        .assert_rejected_without_writes(
            Call::from(Rpc::Create(order_for("cust-2"))).bearer(&alice),
            Code::PermissionDenied,
        )
        .await;
    server
        .assert_rejected_without_writes(
            Call::from(list(Some("cust-2"))).bearer(&alice),
            Code::PermissionDenied,
        )
        .await;
    server.ack(Call::from(pay(&id, TOTAL)).bearer(&alice)).await;
    server
        .assert_rejected_without_writes(
            Call::from(ship(&id)).bearer(&alice),
            Code::PermissionDenied,
        )
        .await;
    server.ok(Call::from(list(None)).bearer(&alice)).await;
    server.ok(Call::from(get(&id)).bearer(&alice)).await;

    // An operator may do everything to every order.
    server.ack(Call::from(ship(&id)).bearer(&operator)).await;
    let other = server
        .ack(Call::from(Rpc::Create(order_for("cust-9"))).bearer(&operator))
        .await
        .order_id;
    for rpc in [
        add_item(&other, "sku-9", 1, 10),
        remove_item(&other, "sku-9"),
        change_address(&other),
        cancel(&other),
    ] {
        server.ack(Call::from(rpc).bearer(&operator)).await;
    }
    server
        .ok(Call::from(list(Some("cust-1"))).bearer(&operator))
        .await;
    server.ok(Call::from(history(&id)).bearer(&operator)).await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_token_subject_is_the_recorded_user_whatever_x_user_id_says(pool: PgPool) {
    let server = Server::with_settings(pool, &jwt_settings()).await;
    let token = token_for(
        "alice-login",
        &["customer"],
        Some("cust-1"),
        expiry_in(Duration::from_secs(600)),
    );
    let id = server
        .ack(
            Call::from(Rpc::Create(order()))
                .bearer(&token)
                .meta("x-user-id", "mallory"),
        )
        .await
        .order_id;
    let answer = server.ok(Call::from(history(&id)).bearer(&token)).await;
    let Answer::History(history) = answer else {
        panic!("not a history")
    };
    let metadata = history.events[0].metadata.clone().expect("metadata");
    assert_eq!(metadata.user_id.as_deref(), Some("alice-login"));
}
