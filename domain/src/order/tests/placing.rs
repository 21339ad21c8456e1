//! Placing an order: its totals, its discount codes and the limits on its lines.

use super::*;

#[test]
fn placing_an_order_records_its_subtotal_and_a_discount_rounded_down() {
    // 3 × 333 + 2 × 1 = 1001; WELCOME10 + VIP20 = 30%; 300.3 rounds down to 300.
    let items = vec![line("sku-1", 3, 333), line("sku-2", 2, 1)];
    let order = given_no_order()
        .when_placed(
            place(items.clone(), &["WELCOME10", "VIP20"]),
            default_policy(),
        )
        .then_expect(vec![order_created_with_totals(
            items,
            &["WELCOME10", "VIP20"],
            30,
            (1_001, 300, 701),
        )]);

    assert_eq!(order.status(), OrderStatus::Created);
    assert_eq!(order.id(), order_id());
    assert_eq!(order.version(), 1);
    assert_eq!(order.discount_percent().value(), 30);
    assert_eq!(
        (order.subtotal(), order.discount(), order.total()),
        (amount(1_001), amount(300), amount(701))
    );
    assert_eq!(order.created_at(), when_at());
    assert_eq!(order.updated_at(), when_at());
    assert!(
        order.payment().is_none() && order.shipment().is_none() && order.cancellation().is_none()
    );
}

#[test]
fn placing_an_order_without_discount_codes_charges_the_subtotal() {
    let items = vec![line("sku-1", 2, 150_000)];
    given_no_order()
        .when_placed(place(items.clone(), &[]), default_policy())
        .then_expect(vec![order_created_with_totals(
            items,
            &[],
            0,
            (300_000, 0, 300_000),
        )]);
}

#[test]
fn the_delivery_address_starts_as_the_customers_address() {
    let order = given_no_order()
        .when_placed(place(vec![line("sku-1", 1, 10)], &[]), default_policy())
        .then_expect(vec![order_created(vec![line("sku-1", 1, 10)], &[], 0)]);

    assert_eq!(order.delivery_address(), customer().address());
}

#[test]
fn discount_percentages_add_up_and_are_capped_at_one_hundred() {
    let items = vec![line("sku-1", 1, 1_999)];
    let order = given_no_order()
        .when_placed(
            place(items.clone(), &["HALF", "MOST"]),
            policy("HALF=50,MOST=60"),
        )
        .then_expect(vec![order_created_with_totals(
            items,
            &["HALF", "MOST"],
            100,
            (1_999, 1_999, 0),
        )]);

    assert_eq!(order.total(), Amount::ZERO);
}

#[test]
fn three_discount_codes_are_accepted() {
    let items = vec![line("sku-1", 1, 1_000)];
    given_no_order()
        .when_placed(
            place(items.clone(), &["A", "B", "C"]),
            policy("A=10,B=20,C=30,D=5"),
        )
        .then_expect(vec![order_created_with_totals(
            items,
            &["A", "B", "C"],
            60,
            (1_000, 600, 400),
        )]);
}

#[test]
fn four_discount_codes_are_refused() {
    given_no_order()
        .when_placed(
            place(vec![line("sku-1", 1, 1_000)], &["A", "B", "C", "D"]),
            policy("A=1,B=2,C=3,D=4"),
        )
        .then_expect_error(OrderError::TooManyDiscountCodes { max: 3 });
}

#[test]
fn an_unknown_discount_code_is_refused() {
    given_no_order()
        .when_placed(
            place(vec![line("sku-1", 1, 1_000)], &["WELCOME10", "NOPE"]),
            default_policy(),
        )
        .then_expect_error(OrderError::UnknownDiscountCode(code("NOPE")));
}

#[test]
fn a_discount_code_given_twice_is_refused() {
    given_no_order()
        .when_placed(
            place(vec![line("sku-1", 1, 1_000)], &["VIP20", "VIP20"]),
            default_policy(),
        )
        .then_expect_error(OrderError::DuplicateDiscountCode(code("VIP20")));
}

#[test]
fn an_order_without_lines_is_refused() {
    given_no_order()
        .when_placed(place(vec![], &[]), default_policy())
        .then_expect_error(OrderError::NoLines);
}

#[test]
fn an_order_with_one_hundred_lines_is_accepted() {
    given_no_order()
        .when_placed(place(lines(100), &[]), default_policy())
        .then_expect(vec![order_created_with_totals(
            lines(100),
            &[],
            0,
            (100, 0, 100),
        )]);
}

#[test]
fn an_order_with_one_hundred_and_one_lines_is_refused() {
    given_no_order()
        .when_placed(place(lines(101), &[]), default_policy())
        .then_expect_error(OrderError::TooManyLines { max: 100 });
}

#[test]
fn the_same_product_on_two_lines_is_refused() {
    given_no_order()
        .when_placed(
            place(
                vec![
                    line("sku-1", 1, 10),
                    line("sku-2", 1, 10),
                    line("sku-1", 2, 10),
                ],
                &[],
            ),
            default_policy(),
        )
        .then_expect_error(OrderError::DuplicateProduct(product("sku-1")));
}

#[test]
fn a_line_total_above_i64_max_is_refused() {
    // 10^15 × 1,000,000 = 10^21 > i64::MAX.
    given_no_order()
        .when_placed(
            place(vec![line("sku-1", 1_000_000, UnitPrice::MAX)], &[]),
            default_policy(),
        )
        .then_expect_error(OrderError::AmountOverflow);
}

#[test]
fn a_subtotal_above_i64_max_is_refused() {
    // Each line is 5 × 10^18 (fits), together 10^19 (does not).
    given_no_order()
        .when_placed(
            place(
                vec![
                    line("sku-1", 5_000, UnitPrice::MAX),
                    line("sku-2", 5_000, UnitPrice::MAX),
                ],
                &[],
            ),
            default_policy(),
        )
        .then_expect_error(OrderError::AmountOverflow);
}

#[test]
fn a_subtotal_of_exactly_i64_max_is_accepted() {
    // 9,223 × 10^15 + 372,036,854,775,807 = 9,223,372,036,854,775,807 = i64::MAX.
    let items = vec![
        line("sku-1", 9_223, UnitPrice::MAX),
        line("sku-2", 1, 372_036_854_775_807),
    ];
    given_no_order()
        .when_placed(place(items.clone(), &[]), default_policy())
        .then_expect(vec![order_created_with_totals(
            items,
            &[],
            0,
            (Amount::MAX, 0, Amount::MAX),
        )]);
}

#[test]
fn the_discount_of_a_huge_subtotal_is_computed_without_overflow() {
    // 9 × 10^18 × 30 overflows 64 bits; the discount must still be exact.
    let items = vec![line("sku-1", 9_000, UnitPrice::MAX)];
    given_no_order()
        .when_placed(
            place(items.clone(), &["WELCOME10", "VIP20"]),
            default_policy(),
        )
        .then_expect(vec![order_created_with_totals(
            items,
            &["WELCOME10", "VIP20"],
            30,
            (
                9_000_000_000_000_000_000,
                2_700_000_000_000_000_000,
                6_300_000_000_000_000_000,
            ),
        )]);
}

#[test]
fn a_later_change_of_the_discount_policy_does_not_reprice_an_existing_order() {
    let mut placed = OrderFactory::new(Arc::new(policy("WELCOME10=10")))
        .place(
            place(vec![line("sku-1", 1, 1_000)], &["WELCOME10"]),
            given_at(),
        )
        .unwrap();
    let history: Vec<OrderEvent> = placed.take_events().into_iter().map(|r| r.event).collect();

    // Whatever the policy says now, replay takes none: the percent is the recorded 10%.
    given(history)
        .when(add_item("sku-2", 1, 1_000))
        .then_expect(vec![item_added("sku-2", 1, 1_000, (2_000, 200, 1_800))]);
}
