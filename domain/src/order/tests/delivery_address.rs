//! Changing the delivery address: allowed until the order is shipped or cancelled.

use super::*;

#[test]
fn the_delivery_address_changes_while_the_order_is_created() {
    let order = given(a_created_order())
        .when(change_delivery_address(address("2 Hang Bai")))
        .then_expect(vec![delivery_address_changed(address("2 Hang Bai"))]);

    assert_eq!(order.delivery_address(), &address("2 Hang Bai"));
    assert_eq!(
        order.customer().address(),
        &address("1 Trang Tien"),
        "the customer's own address stays"
    );
}

#[test]
fn the_delivery_address_changes_while_the_order_is_paid() {
    let order = given(a_paid_order())
        .when(change_delivery_address(address("2 Hang Bai")))
        .then_expect(vec![delivery_address_changed(address("2 Hang Bai"))]);

    assert_eq!(order.delivery_address(), &address("2 Hang Bai"));
    assert_eq!(order.status(), OrderStatus::Paid);
}

#[test]
fn the_delivery_address_cannot_change_once_the_order_is_shipped_or_cancelled() {
    for (history, status) in [
        (a_shipped_order(), OrderStatus::Shipped),
        (a_cancelled_order(), OrderStatus::Cancelled),
    ] {
        given(history)
            .when(change_delivery_address(address("2 Hang Bai")))
            .then_expect_error(invalid_state("change the delivery address of", status));
    }
}
