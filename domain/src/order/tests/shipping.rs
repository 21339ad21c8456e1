//! Shipping: only a paid order ships, once.

use super::*;

#[test]
fn an_order_cannot_be_shipped_before_it_is_paid() {
    given(a_created_order())
        .when(ship())
        .then_expect_error(invalid_state("ship", OrderStatus::Created));
}

#[test]
fn a_paid_order_is_shipped() {
    let order = given(a_paid_order())
        .when(ship())
        .then_expect(vec![order_shipped()]);

    assert_eq!(order.status(), OrderStatus::Shipped);
    assert_eq!(
        order.shipment(),
        Some(&Shipment {
            tracking_number: TrackingNumber::parse("TRK-1").unwrap(),
            carrier: Carrier::parse("VNPost").unwrap(),
        })
    );
    assert!(order.payment().is_some(), "the payment is kept");
}

#[test]
fn a_shipped_or_cancelled_order_cannot_be_shipped() {
    for (history, status) in [
        (a_shipped_order(), OrderStatus::Shipped),
        (a_cancelled_order(), OrderStatus::Cancelled),
    ] {
        given(history)
            .when(ship())
            .then_expect_error(invalid_state("ship", status));
    }
}
