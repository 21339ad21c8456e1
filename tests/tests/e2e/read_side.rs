//! The read side end to end: the service's projector consumes the real topic (fed by
//! the real relay) and `GET /orders` eventually shows every order as the event store
//! has it, with `X-Read-Model-Lag-Ms` back to 0.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use e2e::System;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_list_eventually_shows_every_order_with_its_status_and_version_and_no_lag() {
    let system = System::start_with_projector(1).await;

    // id -> (status, version) as the write side answered.
    let mut expected: HashMap<String, (&str, u64)> = HashMap::new();
    for n in 0..12 {
        let (status, body) = system
            .send(
                Method::POST,
                "/orders",
                Some(e2e::order_body(&format!("c-{}", n % 3))),
                &[("X-User-Id", "e2e")],
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["orderId"].as_str().expect("orderId").to_owned();
        let order = format!("/orders/{id}");
        let (state, version) = match n % 4 {
            0 => ("created", 1),
            1 => {
                let (s, b) = system
                    .send(
                        Method::POST,
                        &format!("{order}/items"),
                        Some(json!({"productId": "sku-2", "quantity": 1, "unitPrice": 1000})),
                        &[],
                    )
                    .await;
                assert_eq!(s, 200, "{b}");
                ("created", 2)
            }
            2 => {
                let (s, b) = system
                    .send(
                        Method::POST,
                        &format!("{order}/payment"),
                        Some(json!({"paymentId": "p", "amount": 300000, "method": "card"})),
                        &[],
                    )
                    .await;
                assert_eq!(s, 200, "{b}");
                ("paid", 2)
            }
            _ => {
                let (s, b) = system
                    .send(
                        Method::POST,
                        &format!("{order}/cancellation"),
                        Some(json!({"reason": "no"})),
                        &[],
                    )
                    .await;
                assert_eq!(s, 200, "{b}");
                ("cancelled", 2)
            }
        };
        expected.insert(id, (state, version));
    }

    // Consumer-group start-up and rebalance take a few seconds on the broker.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (listed, lag) = loop {
        let response = system
            .client
            .get(format!("{}/orders?limit=100", system.http))
            .send()
            .await
            .expect("list");
        assert_eq!(response.status(), 200);
        let lag: u64 = response.headers()["x-read-model-lag-ms"]
            .to_str()
            .expect("header")
            .parse()
            .expect("integer");
        let body: Value = response.json().await.expect("JSON");
        let listed: HashMap<String, (String, u64)> = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["orderId"].as_str().unwrap_or_default().to_owned(),
                    (
                        i["status"].as_str().unwrap_or_default().to_owned(),
                        i["version"].as_u64().unwrap_or_default(),
                    ),
                )
            })
            .collect();
        let complete = expected
            .iter()
            .all(|(id, (s, v))| listed.get(id).is_some_and(|(ls, lv)| ls == s && lv == v));
        if (complete && lag == 0) || Instant::now() > deadline {
            break (listed, lag);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    for (id, (status, version)) in &expected {
        assert_eq!(
            listed.get(id),
            Some(&(status.to_string(), *version)),
            "order {id}"
        );
    }
    assert_eq!(lag, 0);

    // Filters read the same model.
    let (status, body) = system
        .send(Method::GET, "/orders?status=paid", None, &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().expect("items").len(), 3);
    system.stop().await;
}
