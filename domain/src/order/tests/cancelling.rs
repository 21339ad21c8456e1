//! Cancelling: what is refunded, and which orders can no longer be cancelled.

use super::*;

#[test]
fn cancelling_an_unpaid_order_refunds_nothing() {
    let order = given(a_created_order())
        .when(cancel())
        .then_expect(vec![order_cancelled(0)]);

    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(
        order.cancellation().map(|c| c.refund_amount),
        Some(Amount::ZERO)
    );
}

#[test]
fn cancelling_a_paid_order_refunds_the_amount_paid() {
    let mut history = a_created_order();
    history.push(payment_processed(TOTAL + 250));
    let order = given(history)
        .when(cancel())
        .then_expect(vec![order_cancelled(TOTAL + 250)]);

    assert_eq!(
        order.cancellation(),
        Some(&Cancellation {
            reason: CancellationReason::parse("changed my mind").unwrap(),
            refund_amount: amount(TOTAL + 250),
        })
    );
}

#[test]
fn an_order_cannot_be_cancelled_twice() {
    given(a_cancelled_order())
        .when(cancel())
        .then_expect_error(invalid_state("cancel", OrderStatus::Cancelled));
}

#[test]
fn a_shipped_order_cannot_be_cancelled() {
    given(a_shipped_order())
        .when(cancel())
        .then_expect_error(invalid_state("cancel", OrderStatus::Shipped));
}
