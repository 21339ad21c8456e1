//! Section 4: the relay killed (SIGKILL) while the system runs, one order written, a
//! new relay spawned: time to its `/readyz` answering 200 and to the order's event
//! reaching an independent consumer.

use std::time::Duration;

use crate::figures::{ms, report, section, Rng};
use crate::load::create_order;
use crate::stack::{Listener, Stack};

pub(crate) async fn run(rounds: usize) {
    section(&format!(
        "4. restart: relay killed (SIGKILL), one order written, new relay spawned; {rounds} times"
    ));
    let mut stack = Stack::create().await;
    stack.start_service(true).await;
    stack.start_relay();
    stack.wait_relay_ready(Duration::from_secs(60)).await;
    let mut listener = Listener::start(&stack.topic).await;
    let mut rng = Rng::new(0x4E57_4A27);

    // The system running: one order through to the consumer.
    let order = create_order(&stack.client, &stack.http, &mut rng)
        .await
        .expect("an order");
    wait_for(&mut listener, &order, Duration::from_secs(60)).await;

    for round in 1..=rounds {
        stack.kill_relay();
        let order = match create_order(&stack.client, &stack.http, &mut rng).await {
            Ok(order) => order,
            Err(why) => {
                // Say what happened (the service's log when it died), then try again once.
                stack.assert_service_running();
                report(&format!("restart {round}: writing the order failed"), &why);
                match create_order(&stack.client, &stack.http, &mut rng).await {
                    Ok(order) => order,
                    Err(why) => {
                        report(
                            &format!("restart {round}: writing the order failed again"),
                            &why,
                        );
                        break;
                    }
                }
            }
        };
        let spawned = stack.start_relay();
        let ready = stack.wait_relay_ready(Duration::from_secs(120));
        let arrived = wait_for(&mut listener, &order, Duration::from_secs(120));
        let (ready, arrived) = tokio::join!(ready, arrived);
        let figure = |at: Option<std::time::Instant>| match at {
            Some(at) => format!("{:.0} ms", ms(at.saturating_duration_since(spawned))),
            None => "never (120 s)".to_owned(),
        };
        report(
            &format!("restart {round}: spawn -> /readyz 200, -> event at consumer"),
            &format!("{}, {}", figure(Some(ready)), figure(arrived)),
        );
    }
    listener.stop().await;
    stack.stop().await;
}

/// Waits until the consumer receives an event of `order`; when it did.
async fn wait_for(
    listener: &mut Listener,
    order: &str,
    timeout: Duration,
) -> Option<std::time::Instant> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let arrival = listener.next(left).await?;
        if arrival.key == order {
            return Some(arrival.at);
        }
    }
}
