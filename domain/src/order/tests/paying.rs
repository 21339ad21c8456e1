//! Paying: the payment must cover the total, once, before shipping or cancelling.

use super::*;

#[test]
fn paying_the_total_makes_the_order_paid() {
    let order = given(a_created_order())
        .when(pay(TOTAL))
        .then_expect(vec![payment_processed(TOTAL)]);

    assert_eq!(order.status(), OrderStatus::Paid);
    assert_eq!(
        order.payment(),
        Some(&Payment {
            payment_id: PaymentId::parse("pay-1").unwrap(),
            amount: amount(TOTAL),
            method: PaymentMethod::BankTransfer,
        })
    );
}

#[test]
fn paying_more_than_the_total_is_accepted_and_recorded_as_paid() {
    let order = given(a_created_order())
        .when(pay(TOTAL + 250))
        .then_expect(vec![payment_processed(TOTAL + 250)]);

    assert_eq!(order.payment().map(|p| p.amount), Some(amount(TOTAL + 250)));
}

#[test]
fn paying_less_than_the_total_is_refused() {
    given(a_created_order())
        .when(pay(TOTAL - 1))
        .then_expect_error(OrderError::PaymentBelowTotal {
            amount: amount(TOTAL - 1),
            total: amount(TOTAL),
        });
}

#[test]
fn the_payment_must_cover_the_total_after_items_changed() {
    let mut history = a_created_order();
    history.push(item_added("sku-1", 1, 1_000, (3_500, 1_050, 2_450)));
    given(history)
        .when(pay(TOTAL))
        .then_expect_error(OrderError::PaymentBelowTotal {
            amount: amount(TOTAL),
            total: amount(2_450),
        });
}

#[test]
fn an_order_discounted_to_nothing_is_paid_with_zero() {
    given(vec![order_created(
        vec![line("sku-1", 1, 1_999)],
        &["FREE"],
        100,
    )])
    .when(pay(0))
    .then_expect(vec![payment_processed(0)]);
}

#[test]
fn an_order_cannot_be_paid_twice() {
    given(a_paid_order())
        .when(pay(TOTAL))
        .then_expect_error(invalid_state("pay", OrderStatus::Paid));
}

#[test]
fn a_shipped_or_cancelled_order_cannot_be_paid() {
    for (history, status) in [
        (a_shipped_order(), OrderStatus::Shipped),
        (a_cancelled_order(), OrderStatus::Cancelled),
    ] {
        given(history)
            .when(pay(TOTAL))
            .then_expect_error(invalid_state("pay", status));
    }
}
