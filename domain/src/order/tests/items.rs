//! Adding and removing items: merged lines, the order's limits and repricing at the
//! order's percent.

use super::*;

#[test]
fn adding_a_new_product_appends_a_line_priced_with_the_orders_percent() {
    // 2500 + 3 × 333 = 3499; 30% = 1049.7, rounded down to 1049.
    let order = given(a_created_order())
        .when(add_item("sku-3", 3, 333))
        .then_expect(vec![item_added("sku-3", 3, 333, (3_499, 1_049, 2_450))]);

    assert_eq!(
        order.lines(),
        [
            line("sku-1", 2, 1_000),
            line("sku-2", 1, 500),
            line("sku-3", 3, 333)
        ]
    );
    assert_eq!(
        (order.subtotal(), order.discount(), order.total()),
        (amount(3_499), amount(1_049), amount(2_450))
    );
}

#[test]
fn adding_a_product_already_in_the_order_at_the_same_price_adds_to_its_quantity() {
    // The event carries the quantity added (1), the line now holds 3.
    let order = given(a_created_order())
        .when(add_item("sku-1", 1, 1_000))
        .then_expect(vec![item_added("sku-1", 1, 1_000, (3_500, 1_050, 2_450))]);

    assert_eq!(
        order.lines(),
        [line("sku-1", 3, 1_000), line("sku-2", 1, 500)]
    );
}

#[test]
fn adding_a_product_already_in_the_order_at_another_price_is_refused() {
    given(a_created_order())
        .when(add_item("sku-1", 1, 999))
        .then_expect_error(OrderError::PriceMismatch {
            product: product("sku-1"),
            existing: 1_000,
            requested: 999,
        });
}

#[test]
fn a_merged_quantity_of_exactly_one_million_is_accepted() {
    let order = given(vec![order_created(
        vec![line("sku-1", 999_999, 1_000)],
        &[],
        0,
    )])
    .when(add_item("sku-1", 1, 1_000))
    .then_expect(vec![item_added(
        "sku-1",
        1,
        1_000,
        (1_000_000_000, 0, 1_000_000_000),
    )]);

    assert_eq!(order.lines(), [line("sku-1", 1_000_000, 1_000)]);
}

#[test]
fn a_merged_quantity_over_one_million_is_refused() {
    given(vec![order_created(
        vec![line("sku-1", 999_999, 1_000)],
        &[],
        0,
    )])
    .when(add_item("sku-1", 2, 1_000))
    .then_expect_error(OrderError::QuantityLimit(product("sku-1")));
}

#[test]
fn a_hundred_and_first_line_is_refused() {
    given(vec![order_created(lines(100), &[], 0)])
        .when(add_item("p100", 1, 1))
        .then_expect_error(OrderError::TooManyLines { max: 100 });
}

#[test]
fn adding_to_an_existing_line_of_a_full_order_is_accepted() {
    given(vec![order_created(lines(100), &[], 0)])
        .when(add_item("p7", 1, 1))
        .then_expect(vec![item_added("p7", 1, 1, (101, 0, 101))]);
}

#[test]
fn an_added_item_that_makes_the_subtotal_overflow_is_refused() {
    let at_the_limit = vec![
        line("sku-1", 9_223, UnitPrice::MAX),
        line("sku-2", 1, 372_036_854_775_807),
    ];
    given(vec![order_created(at_the_limit, &[], 0)])
        .when(add_item("sku-3", 1, 1))
        .then_expect_error(OrderError::AmountOverflow);
}

#[test]
fn an_added_item_whose_line_total_overflows_is_refused() {
    given(a_created_order())
        .when(add_item("sku-3", 1_000_000, UnitPrice::MAX))
        .then_expect_error(OrderError::AmountOverflow);
}

#[test]
fn items_cannot_be_added_once_the_order_is_paid_shipped_or_cancelled() {
    for (history, status) in [
        (a_paid_order(), OrderStatus::Paid),
        (a_shipped_order(), OrderStatus::Shipped),
        (a_cancelled_order(), OrderStatus::Cancelled),
    ] {
        given(history)
            .when(add_item("sku-3", 1, 10))
            .then_expect_error(invalid_state("add an item to", status));
    }
}

#[test]
fn the_state_is_checked_before_the_content_of_an_added_item() {
    // A price mismatch on a paid order is a state error (409), not a content error (422).
    given(a_paid_order())
        .when(add_item("sku-1", 1, 999))
        .then_expect_error(invalid_state("add an item to", OrderStatus::Paid));
}

// ---------------------------------------------------------------------------------
// Removing items
// ---------------------------------------------------------------------------------

#[test]
fn removing_a_line_records_its_quantity_and_the_totals_at_the_orders_percent() {
    // 2500 − 2 × 1000 = 500 at 30%: discount 150, total 350.
    let order = given(a_created_order())
        .when(remove_item("sku-1"))
        .then_expect(vec![item_removed("sku-1", 2, (500, 150, 350))]);

    assert_eq!(order.lines(), [line("sku-2", 1, 500)]);
    assert_eq!(order.total(), amount(350));
}

#[test]
fn removing_an_added_line_uses_the_merged_quantity() {
    let mut history = a_created_order();
    history.push(item_added("sku-1", 5, 1_000, (7_500, 2_250, 5_250)));
    given(history)
        .when(remove_item("sku-1"))
        .then_expect(vec![item_removed("sku-1", 7, (500, 150, 350))]);
}

#[test]
fn removing_a_product_that_is_not_in_the_order_is_refused() {
    given(a_created_order())
        .when(remove_item("sku-9"))
        .then_expect_error(OrderError::LineNotFound(product("sku-9")));
}

#[test]
fn the_last_line_cannot_be_removed() {
    given(vec![order_created(vec![line("sku-1", 1, 10)], &[], 0)])
        .when(remove_item("sku-1"))
        .then_expect_error(OrderError::LastLine);
}

#[test]
fn removing_a_missing_product_from_a_one_line_order_says_the_line_is_missing() {
    given(vec![order_created(vec![line("sku-1", 1, 10)], &[], 0)])
        .when(remove_item("sku-9"))
        .then_expect_error(OrderError::LineNotFound(product("sku-9")));
}

#[test]
fn items_cannot_be_removed_once_the_order_is_paid_shipped_or_cancelled() {
    for (history, status) in [
        (a_paid_order(), OrderStatus::Paid),
        (a_shipped_order(), OrderStatus::Shipped),
        (a_cancelled_order(), OrderStatus::Cancelled),
    ] {
        given(history)
            .when(remove_item("sku-1"))
            .then_expect_error(invalid_state("remove an item from", status));
    }
}
