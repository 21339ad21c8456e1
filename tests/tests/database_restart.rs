//! The relay and the service survive a PostgreSQL restart: the relay reconnects and
//! carries on, nothing committed is lost.
//!
//! This restarts the machine's PostgreSQL server, so it is a test binary of its own:
//! cargo runs test binaries one after another, so no other test is using the database
//! while it restarts. (Every other end-to-end test is in the `e2e` binary.)

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::processes::RelayProcess;
use e2e::System;
use reqwest::Method;
use serde_json::json;

fn restart_postgres() {
    let versions = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql: PostgreSQL runs on this machine");
    let version = versions
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .max()
        .expect("a PostgreSQL cluster");
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart"])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster restart failed");
}

async fn place_order(system: &System, n: usize) {
    let body = json!({
        "customer": {"customerId": format!("c-{n}"), "name": "A", "phone": "1",
                     "address": {"line1": "1 Street", "city": "Hanoi", "country": "VN"}},
        "currency": "VND",
        "items": [{"productId": "sku-1", "quantity": 1, "unitPrice": 1000}]
    });
    // Right after the restart the service may answer 503 (nothing written) until its
    // pool has fresh connections; a client retries.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, answer) = system
            .send(Method::POST, "/orders", Some(body.clone()), &[])
            .await;
        if status == 201 {
            let id = answer["orderId"].as_str().expect("orderId").to_owned();
            let (status, _) = system
                .send(
                    Method::POST,
                    &format!("/orders/{id}/items"),
                    Some(json!({"productId": "sku-2", "quantity": 1, "unitPrice": 5})),
                    &[],
                )
                .await;
            assert_eq!(status, 200);
            return;
        }
        assert_eq!(status, 503, "{answer}");
        assert!(
            Instant::now() < deadline,
            "the service never recovered from the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_relay_reconnects_after_a_database_restart_and_loses_nothing() {
    let system = System::start(0).await;
    let relay = RelayProcess::spawn(&system.database_url, &e2e::brokers(), &system.topic, &[]);
    for n in 0..3 {
        place_order(&system, n).await;
    }
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    let published_before = relay.metric("relay_published_total").await;
    assert!(published_before >= 6.0);

    restart_postgres();
    for n in 3..8 {
        place_order(&system, n).await;
    }
    system.wait_for_empty_outbox(Duration::from_secs(60)).await;
    assert!(
        relay.metric("relay_published_total").await >= published_before + 10.0,
        "the same relay process carried on"
    );

    let committed = system.committed_events().await;
    assert_eq!(committed.len(), 16);
    let received = system
        .consume(Duration::from_secs(30), |r| {
            let seen: std::collections::HashSet<_> = r
                .iter()
                .filter_map(|m| m.value["eventId"].as_str())
                .collect();
            committed
                .iter()
                .all(|(_, _, id)| seen.contains(id.to_string().as_str()))
        })
        .await;
    let mut next = std::collections::HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for message in &received {
        let id = message.value["eventId"]
            .as_str()
            .expect("eventId")
            .to_owned();
        if !seen.insert(id) {
            continue;
        }
        let expected = next.entry(message.key.clone()).or_insert(1);
        assert_eq!(
            message.value["version"].as_i64(),
            Some(*expected),
            "order {} out of order",
            message.key
        );
        *expected += 1;
    }
    assert_eq!(
        seen.len(),
        committed.len(),
        "every committed event was published"
    );
    system.stop().await;
}
