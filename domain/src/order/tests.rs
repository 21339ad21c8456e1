//! Examples of every behaviour and rule of the order aggregate, written as
//! given / when / then in the spirit of cqrs-es's `TestFramework`:
//!
//! ```text
//! given(vec![order_created(..), payment_processed(..)])
//!     .when(ship())
//!     .then_expect(vec![order_shipped()]);
//! ```
//!
//! `given` rebuilds the order with [`Order::from_history`]; `then_expect` checks the
//! recorded events (their versions and time too) and that replaying the whole stream
//! rebuilds the order; `then_expect_error` checks the error and that the rejected
//! command recorded nothing and left the order exactly as it was.
//!
//! The fixtures and command helpers are shared with the property tests.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::events::{
    DeliveryAddressChanged, ItemAdded, ItemRemoved, OrderCancelled, OrderCreated, OrderShipped,
    PaymentProcessed,
};
use super::properties::{keys, payload_fields};
use super::*;
use crate::values::{
    AddressLine, City, CountryCode, CustomerId, CustomerName, PhoneNumber, PostalCode, Quantity,
    UnitPrice,
};

// ---------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------

/// When the given events happened.
pub(super) fn given_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap()
}

/// When the command under test runs.
pub(super) fn when_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap()
}

/// A command against an existing order, as the tests write it.
pub(super) type Command = Box<dyn FnOnce(&mut Order, DateTime<Utc>) -> Result<(), OrderError>>;

/// An order rebuilt from past events, ready to receive a command.
#[derive(Debug)]
pub(super) struct Given {
    history: Vec<RecordedEvent>,
    order: Order,
}

/// No order yet: the command under test is placing one.
#[derive(Debug)]
pub(super) struct GivenNoOrder;

/// What a command did: the order before and after, and the command's answer.
#[derive(Debug)]
pub(super) struct Then {
    history: Vec<RecordedEvent>,
    before: Option<Order>,
    after: Option<Order>,
    result: Result<(), OrderError>,
}

/// An order whose past is `events`, recorded as versions 1, 2, ... at [`given_at`].
pub(super) fn given(events: Vec<OrderEvent>) -> Given {
    let history: Vec<RecordedEvent> = events
        .into_iter()
        .zip(1..)
        .map(|(event, version)| RecordedEvent {
            version,
            occurred_at: given_at(),
            event,
        })
        .collect();
    let order = Order::from_history(order_id(), history.clone())
        .expect("the given events are an order's history")
        .expect("the given events are not empty");
    Given { history, order }
}

/// No order exists yet.
pub(super) fn given_no_order() -> GivenNoOrder {
    GivenNoOrder
}

impl Given {
    /// Runs `command` on the order at [`when_at`].
    pub(super) fn when(
        self,
        command: impl FnOnce(&mut Order, DateTime<Utc>) -> Result<(), OrderError>,
    ) -> Then {
        let mut after = self.order.clone();
        let result = command(&mut after, when_at());
        Then {
            history: self.history,
            before: Some(self.order),
            after: Some(after),
            result,
        }
    }
}

impl GivenNoOrder {
    /// Places `command` at [`when_at`] with a factory pricing through `policy`.
    pub(super) fn when_placed(
        self,
        command: PlaceOrder,
        policy: impl DiscountPolicy + 'static,
    ) -> Then {
        let placed = OrderFactory::new(Arc::new(policy)).place(command, when_at());
        let (after, result) = match placed {
            Ok(order) => (Some(order), Ok(())),
            Err(error) => (None, Err(error)),
        };
        Then {
            history: Vec::new(),
            before: None,
            after,
            result,
        }
    }
}

impl Then {
    /// The command succeeded and recorded exactly `expected`, numbered right after the
    /// given events and stamped with the command's time; replaying the given events and
    /// these rebuilds the order. Returns the order (events drained) for state checks.
    #[track_caller]
    pub(super) fn then_expect(self, expected: Vec<OrderEvent>) -> Order {
        if let Err(error) = self.result {
            panic!("expected events {expected:#?}\nbut the command was refused: {error:?}");
        }
        let mut order = self.after.expect("a successful command leaves an order");
        let recorded = order.take_events();

        let first = self
            .before
            .as_ref()
            .map_or(1, |before| before.version() + 1);
        let count = u64::try_from(expected.len()).unwrap();
        let versions: Vec<u64> = recorded.iter().map(|r| r.version).collect();
        assert_eq!(
            versions,
            (first..first + count).collect::<Vec<_>>(),
            "versions go up by one per event"
        );
        assert!(
            recorded.iter().all(|r| r.occurred_at == when_at()),
            "events are stamped with the command's time"
        );
        let events: Vec<OrderEvent> = recorded.iter().map(|r| r.event.clone()).collect();
        assert_eq!(events, expected);
        assert_eq!(order.version(), first + count - 1);
        if count > 0 {
            assert_eq!(order.updated_at(), when_at());
        }

        let replayed = Order::from_history(order.id(), self.history.into_iter().chain(recorded))
            .expect("the recorded events are a valid history")
            .expect("the history is not empty");
        assert_eq!(
            replayed, order,
            "replaying the events rebuilds the same order"
        );
        order
    }

    /// The command was refused with `expected`, recorded nothing and changed nothing.
    #[track_caller]
    pub(super) fn then_expect_error(self, expected: OrderError) {
        match self.result {
            Ok(()) => panic!(
                "expected the error {expected:?}\nbut the command recorded {:#?}",
                self.after.as_ref().map(Order::pending_events)
            ),
            Err(error) => assert_eq!(error, expected),
        }
        assert_eq!(
            self.after, self.before,
            "a rejected command leaves the order as it was"
        );
        if let Some(after) = &self.after {
            assert!(after.pending_events().is_empty(), "and records no event");
        }
    }
}

// ---------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------

pub(super) fn order_id() -> OrderId {
    OrderId::from_uuid(uuid::Uuid::from_u128(
        0x0190_b5e3_0000_7000_8000_0000_0000_0001,
    ))
}

pub(super) fn address(line1: &str) -> Address {
    Address::new(
        AddressLine::parse(line1).unwrap(),
        None,
        City::parse("Hanoi").unwrap(),
        Some(PostalCode::parse("100000").unwrap()),
        CountryCode::parse("VN").unwrap(),
    )
}

pub(super) fn customer() -> CustomerInfo {
    CustomerInfo::new(
        CustomerId::parse("cust-42").unwrap(),
        CustomerName::parse("Nguyễn Văn A").unwrap(),
        PhoneNumber::parse("+84 912 345 678").unwrap(),
        address("1 Trang Tien"),
    )
}

pub(super) fn vnd() -> Currency {
    Currency::parse("VND").unwrap()
}

pub(super) fn product(id: &str) -> ProductId {
    ProductId::parse(id).unwrap()
}

pub(super) fn line(id: &str, quantity: u64, unit_price: u64) -> OrderLine {
    OrderLine::new(
        product(id),
        Quantity::new(quantity).unwrap(),
        UnitPrice::new(unit_price).unwrap(),
    )
}

/// `count` lines `p0`, `p1`, ... of one unit at 1 each.
pub(super) fn lines(count: usize) -> Vec<OrderLine> {
    (0..count).map(|i| line(&format!("p{i}"), 1, 1)).collect()
}

pub(super) fn amount(minor_units: u64) -> Amount {
    Amount::new(minor_units).unwrap()
}

pub(super) fn code(text: &str) -> DiscountCode {
    DiscountCode::parse(text).unwrap()
}

pub(super) fn codes(texts: &[&str]) -> Vec<DiscountCode> {
    texts.iter().map(|t| code(t)).collect()
}

/// The service's default policy: `WELCOME10=10,VIP20=20`.
pub(super) fn default_policy() -> DiscountTable {
    DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap()
}

pub(super) fn policy(text: &str) -> DiscountTable {
    DiscountTable::parse(text).unwrap()
}

pub(super) fn place(items: Vec<OrderLine>, discount_codes: &[&str]) -> PlaceOrder {
    PlaceOrder {
        id: order_id(),
        customer: customer(),
        currency: vnd(),
        items,
        discount_codes: codes(discount_codes),
    }
}

// Events, as the tests spell them.

pub(super) fn order_created_with_totals(
    items: Vec<OrderLine>,
    discount_codes: &[&str],
    percent: u64,
    (subtotal, discount, total): (u64, u64, u64),
) -> OrderEvent {
    OrderEvent::OrderCreated(OrderCreated {
        customer: customer(),
        currency: vnd(),
        items,
        discount_codes: codes(discount_codes),
        discount_percent: DiscountPercent::new(percent).unwrap(),
        subtotal: amount(subtotal),
        discount: amount(discount),
        total: amount(total),
    })
}

/// `OrderCreated` with its totals worked out here, in 128-bit arithmetic.
pub(super) fn order_created(
    items: Vec<OrderLine>,
    discount_codes: &[&str],
    percent: u64,
) -> OrderEvent {
    let subtotal: u128 = items
        .iter()
        .map(|l| u128::from(l.quantity().units()) * u128::from(u64::from(l.unit_price())))
        .sum();
    let discount = subtotal * u128::from(percent) / 100;
    let narrow = |x: u128| u64::try_from(x).unwrap();
    order_created_with_totals(
        items,
        discount_codes,
        percent,
        (
            narrow(subtotal),
            narrow(discount),
            narrow(subtotal - discount),
        ),
    )
}

pub(super) fn item_added(
    id: &str,
    quantity: u64,
    unit_price: u64,
    (subtotal, discount, total): (u64, u64, u64),
) -> OrderEvent {
    OrderEvent::ItemAdded(ItemAdded {
        product_id: product(id),
        quantity: Quantity::new(quantity).unwrap(),
        unit_price: UnitPrice::new(unit_price).unwrap(),
        subtotal: amount(subtotal),
        discount: amount(discount),
        total: amount(total),
    })
}

pub(super) fn item_removed(
    id: &str,
    quantity: u64,
    (subtotal, discount, total): (u64, u64, u64),
) -> OrderEvent {
    OrderEvent::ItemRemoved(ItemRemoved {
        product_id: product(id),
        quantity: Quantity::new(quantity).unwrap(),
        subtotal: amount(subtotal),
        discount: amount(discount),
        total: amount(total),
    })
}

pub(super) fn delivery_address_changed(address: Address) -> OrderEvent {
    OrderEvent::DeliveryAddressChanged(DeliveryAddressChanged { address })
}

pub(super) fn payment_processed(paid: u64) -> OrderEvent {
    OrderEvent::PaymentProcessed(PaymentProcessed {
        payment_id: PaymentId::parse("pay-1").unwrap(),
        amount: amount(paid),
        method: PaymentMethod::BankTransfer,
    })
}

pub(super) fn order_shipped() -> OrderEvent {
    OrderEvent::OrderShipped(OrderShipped {
        tracking_number: TrackingNumber::parse("TRK-1").unwrap(),
        carrier: Carrier::parse("VNPost").unwrap(),
    })
}

pub(super) fn order_cancelled(refund: u64) -> OrderEvent {
    OrderEvent::OrderCancelled(OrderCancelled {
        reason: CancellationReason::parse("changed my mind").unwrap(),
        refund_amount: amount(refund),
    })
}

// Commands, as the tests spell them (the same values as the events above).

pub(super) fn add_item(id: &str, quantity: u64, unit_price: u64) -> Command {
    let new_line = line(id, quantity, unit_price);
    Box::new(move |order, now| order.add_item(new_line, now))
}

pub(super) fn remove_item(id: &str) -> Command {
    let id = product(id);
    Box::new(move |order, now| order.remove_item(&id, now))
}

pub(super) fn change_delivery_address(to: Address) -> Command {
    Box::new(move |order, now| order.change_delivery_address(to, now))
}

pub(super) fn pay(paid: u64) -> Command {
    Box::new(move |order, now| {
        order.pay(
            PaymentId::parse("pay-1").unwrap(),
            amount(paid),
            PaymentMethod::BankTransfer,
            now,
        )
    })
}

pub(super) fn ship() -> Command {
    Box::new(|order, now| {
        order.ship(
            TrackingNumber::parse("TRK-1").unwrap(),
            Carrier::parse("VNPost").unwrap(),
            now,
        )
    })
}

pub(super) fn cancel() -> Command {
    Box::new(|order, now| order.cancel(CancellationReason::parse("changed my mind").unwrap(), now))
}

// Orders in each state. The created order: 2 × 1000 + 1 × 500 = 2500, 30% off
// (WELCOME10 + VIP20) = 750, total 1750.

const TOTAL: u64 = 1_750;

fn a_created_order() -> Vec<OrderEvent> {
    vec![order_created(
        vec![line("sku-1", 2, 1_000), line("sku-2", 1, 500)],
        &["WELCOME10", "VIP20"],
        30,
    )]
}

fn a_paid_order() -> Vec<OrderEvent> {
    let mut events = a_created_order();
    events.push(payment_processed(TOTAL));
    events
}

fn a_shipped_order() -> Vec<OrderEvent> {
    let mut events = a_paid_order();
    events.push(order_shipped());
    events
}

fn a_cancelled_order() -> Vec<OrderEvent> {
    let mut events = a_created_order();
    events.push(order_cancelled(0));
    events
}

fn invalid_state(action: &'static str, status: OrderStatus) -> OrderError {
    OrderError::InvalidState { action, status }
}

// ---------------------------------------------------------------------------------
// Placing an order
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Adding items
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Changing the delivery address
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Paying
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Shipping
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Cancelling
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Recording events
// ---------------------------------------------------------------------------------

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

fn created() -> OrderEvent {
    a_created_order().remove(0)
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

// ---------------------------------------------------------------------------------
// The events on the wire (API.md, "Events on Kafka")
// ---------------------------------------------------------------------------------

/// One sample of every event type, in the order of [`OrderEvent::TYPES`].
fn one_of_each_event() -> Vec<OrderEvent> {
    vec![
        created(),
        item_added("sku-3", 3, 333, (3_499, 1_049, 2_450)),
        item_removed("sku-3", 3, (2_500, 750, 1_750)),
        delivery_address_changed(address("2 Hang Bai")),
        payment_processed(TOTAL),
        order_shipped(),
        order_cancelled(TOTAL),
    ]
}

#[test]
fn every_event_type_serializes_as_its_type_and_exactly_its_camel_case_payload_fields() {
    let events = one_of_each_event();
    let types: Vec<&str> = events.iter().map(OrderEvent::event_type).collect();
    assert_eq!(types, OrderEvent::TYPES);

    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(keys(&json), BTreeSet::from(["eventType", "payload"]));
        assert_eq!(json["eventType"], event.event_type());
        assert_eq!(
            keys(&json["payload"]),
            payload_fields(event.event_type()),
            "{}",
            event.event_type()
        );
        // OrderCancelled is at schema 2 (`refund` became `refundAmount`); the rest at 1.
        let schema = if event.event_type() == "OrderCancelled" {
            2
        } else {
            1
        };
        assert_eq!(event.schema_version(), schema);
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}

#[test]
fn order_created_nests_the_customer_address_and_lines_in_camel_case() {
    let json = serde_json::to_value(created()).unwrap();
    let payload = &json["payload"];

    assert_eq!(
        keys(&payload["customer"]),
        BTreeSet::from(["customerId", "name", "phone", "address"])
    );
    assert_eq!(
        keys(&payload["customer"]["address"]),
        BTreeSet::from(["line1", "city", "postalCode", "country"]),
        "an absent line2 is left out"
    );
    assert_eq!(
        keys(&payload["items"][0]),
        BTreeSet::from(["productId", "quantity", "unitPrice"])
    );
}

#[test]
fn events_serialize_to_the_exact_json_of_the_contract() {
    let created = serde_json::json!({
        "eventType": "OrderCreated",
        "payload": {
            "customer": {
                "customerId": "cust-42",
                "name": "Nguyễn Văn A",
                "phone": "+84 912 345 678",
                "address": {"line1": "1 Trang Tien", "city": "Hanoi", "postalCode": "100000", "country": "VN"}
            },
            "currency": "VND",
            "items": [
                {"productId": "sku-1", "quantity": 2, "unitPrice": 1000},
                {"productId": "sku-2", "quantity": 1, "unitPrice": 500}
            ],
            "discountCodes": ["WELCOME10", "VIP20"],
            "discountPercent": 30,
            "subtotal": 2500,
            "discount": 750,
            "total": 1750
        }
    });
    let full_address = Address::new(
        AddressLine::parse("2 Hang Bai").unwrap(),
        Some(AddressLine::parse("Floor 3").unwrap()),
        City::parse("Hanoi").unwrap(),
        None,
        CountryCode::parse("VN").unwrap(),
    );
    let expected = [
        (self::created(), created),
        (
            item_added("sku-3", 3, 333, (3_499, 1_049, 2_450)),
            serde_json::json!({"eventType": "ItemAdded", "payload": {
                "productId": "sku-3", "quantity": 3, "unitPrice": 333,
                "subtotal": 3499, "discount": 1049, "total": 2450}}),
        ),
        (
            item_removed("sku-3", 3, (2_500, 750, 1_750)),
            serde_json::json!({"eventType": "ItemRemoved", "payload": {
                "productId": "sku-3", "quantity": 3, "subtotal": 2500, "discount": 750, "total": 1750}}),
        ),
        (
            delivery_address_changed(full_address),
            serde_json::json!({"eventType": "DeliveryAddressChanged", "payload": {"address": {
                "line1": "2 Hang Bai", "line2": "Floor 3", "city": "Hanoi", "country": "VN"}}}),
        ),
        (
            payment_processed(200_000),
            serde_json::json!({"eventType": "PaymentProcessed", "payload": {
                "paymentId": "pay-1", "amount": 200000, "method": "bank_transfer"}}),
        ),
        (
            order_shipped(),
            serde_json::json!({"eventType": "OrderShipped", "payload": {
                "trackingNumber": "TRK-1", "carrier": "VNPost"}}),
        ),
        (
            order_cancelled(0),
            serde_json::json!({"eventType": "OrderCancelled", "payload": {
                "reason": "changed my mind", "refundAmount": 0}}),
        ),
    ];
    for (event, json) in expected {
        assert_eq!(serde_json::to_value(&event).unwrap(), json);
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}

#[test]
fn a_stored_event_holding_a_value_the_constructors_refuse_does_not_deserialize() {
    let refused = [
        r#"{"eventType": "ItemRemoved", "payload": {"productId": "sku-1", "quantity": 0, "subtotal": 0, "discount": 0, "total": 0}}"#,
        r#"{"eventType": "ItemAdded", "payload": {"productId": "sku-1", "quantity": 1, "unitPrice": 1000000000000001, "subtotal": 0, "discount": 0, "total": 0}}"#,
        r#"{"eventType": "OrderCancelled", "payload": {"reason": "x", "refundAmount": 9223372036854775808}}"#,
        r#"{"eventType": "OrderCancelled", "payload": {"reason": "x", "refundAmount": -1}}"#,
        r#"{"eventType": "OrderCancelled", "payload": {"reason": "", "refundAmount": 0}}"#,
        r#"{"eventType": "PaymentProcessed", "payload": {"paymentId": "p", "amount": 1, "method": "cheque"}}"#,
        r#"{"eventType": "OrderShipped", "payload": {"trackingNumber": "a\u0000b", "carrier": "GHN"}}"#,
        r#"{"eventType": "DeliveryAddressChanged", "payload": {"address": {"line1": "x", "city": "y", "country": "XX"}}}"#,
        r#"{"eventType": "OrderRenamed", "payload": {}}"#,
    ];
    for json in refused {
        assert!(serde_json::from_str::<OrderEvent>(json).is_err(), "{json}");
    }
}
