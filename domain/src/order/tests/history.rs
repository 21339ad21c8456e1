//! Recording events (versions, draining) and rebuilding an order from its history,
//! including the histories that are refused.

use super::*;

#[test]
fn each_event_takes_the_next_version() {
    let mut order = OrderFactory::new(Arc::new(default_policy()))
        .place(place(vec![line("sku-1", 1, 1_000)], &[]), given_at())
        .unwrap();
    assert_eq!((order.loaded_version(), order.version()), (0, 1));

    add_item("sku-2", 1, 500)(&mut order, when_at()).unwrap();
    change_delivery_address(address("2 Hang Bai"))(&mut order, when_at()).unwrap();
    pay(1_500)(&mut order, when_at()).unwrap();
    ship()(&mut order, when_at()).unwrap();
    assert_eq!((order.loaded_version(), order.version()), (0, 5));

    let versions: Vec<u64> = order.take_events().iter().map(|r| r.version).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5]);
    assert_eq!((order.loaded_version(), order.version()), (5, 5));
}

#[test]
fn taking_the_events_drains_them() {
    let mut order = given(a_created_order()).order;
    pay(TOTAL)(&mut order, when_at()).unwrap();

    assert_eq!(order.take_events().len(), 1);
    assert!(order.take_events().is_empty());
    assert_eq!(order.version(), 2);
}

#[test]
fn a_rejected_command_keeps_the_events_already_pending_and_records_nothing() {
    let mut order = OrderFactory::new(Arc::new(default_policy()))
        .place(place(vec![line("sku-1", 1, 1_000)], &[]), given_at())
        .unwrap();
    add_item("sku-2", 1, 500)(&mut order, given_at()).unwrap();
    let before = order.clone();

    let refused = [
        pay(1_499)(&mut order, when_at()),
        ship()(&mut order, when_at()),
        remove_item("sku-9")(&mut order, when_at()),
        add_item("sku-1", 1, 1)(&mut order, when_at()),
    ];

    assert!(refused.iter().all(Result::is_err));
    assert_eq!(order, before);
    assert_eq!(order.pending_events().len(), 2);
}

// ---------------------------------------------------------------------------------
// Rebuilding from history
// ---------------------------------------------------------------------------------

fn recorded(version: u64, event: OrderEvent) -> RecordedEvent {
    RecordedEvent {
        version,
        occurred_at: given_at(),
        event,
    }
}

#[test]
fn an_empty_history_is_no_order() {
    assert_eq!(Order::from_history(order_id(), vec![]), Ok(None));
}

#[test]
fn a_history_rebuilds_the_order_with_nothing_pending() {
    let order = Order::from_history(
        order_id(),
        vec![
            recorded(1, created()),
            recorded(2, payment_processed(TOTAL)),
        ],
    )
    .unwrap()
    .unwrap();

    assert_eq!(order.status(), OrderStatus::Paid);
    assert_eq!((order.loaded_version(), order.version()), (2, 2));
    assert!(order.pending_events().is_empty());
    assert_eq!(order.delivery_address(), customer().address());
    assert_eq!(order.created_at(), given_at());
}

#[test]
fn a_placed_order_equals_the_order_rebuilt_from_its_events() {
    let mut placed = OrderFactory::new(Arc::new(default_policy()))
        .place(place(vec![line("sku-1", 3, 333)], &["VIP20"]), when_at())
        .unwrap();
    let events = placed.take_events();

    assert_eq!(Order::from_history(order_id(), events), Ok(Some(placed)));
}

#[test]
fn a_history_that_does_not_start_with_order_created_is_refused() {
    assert_eq!(
        Order::from_history(order_id(), vec![recorded(1, payment_processed(TOTAL))]),
        Err(HistoryError::NotStartedByCreation)
    );
}

#[test]
fn a_history_whose_creation_is_not_version_one_is_refused() {
    assert_eq!(
        Order::from_history(order_id(), vec![recorded(2, created())]),
        Err(HistoryError::VersionGap {
            expected: 1,
            found: 2
        })
    );
}

#[test]
fn a_history_with_a_version_gap_is_refused() {
    assert_eq!(
        Order::from_history(
            order_id(),
            vec![
                recorded(1, created()),
                recorded(2, payment_processed(TOTAL)),
                recorded(4, order_shipped()),
            ]
        ),
        Err(HistoryError::VersionGap {
            expected: 3,
            found: 4
        })
    );
}

#[test]
fn a_history_with_a_repeated_version_is_refused() {
    assert_eq!(
        Order::from_history(
            order_id(),
            vec![
                recorded(1, created()),
                recorded(1, payment_processed(TOTAL))
            ]
        ),
        Err(HistoryError::VersionGap {
            expected: 2,
            found: 1
        })
    );
}

#[test]
fn a_history_with_order_created_twice_is_refused() {
    assert_eq!(
        Order::from_history(
            order_id(),
            vec![recorded(1, created()), recorded(2, created())]
        ),
        Err(HistoryError::CreatedTwice(2))
    );
}

#[test]
fn a_history_removing_a_line_the_order_does_not_have_is_refused() {
    let result = Order::from_history(
        order_id(),
        vec![
            recorded(1, created()),
            recorded(2, item_removed("sku-9", 1, (2_500, 750, 1_750))),
        ],
    );
    assert_eq!(
        result,
        Err(HistoryError::Inapplicable {
            version: 2,
            reason: ApplyError::NoLine(product("sku-9")),
        })
    );
}
