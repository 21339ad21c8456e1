//! Property tests of the order aggregate.
//!
//! - Any sequence of commands on any valid order keeps the invariants after every step,
//!   answers as an independent model of API.md's rules says it should, records exactly
//!   one event per accepted command and nothing for a rejected one, and its events
//!   replay into the same order.
//! - Any event survives a JSON round trip and serializes as
//!   `{"eventType": ..., "payload": {...}}` with exactly API.md's payload fields.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use super::events::{
    DeliveryAddressChanged, ItemAdded, ItemRemoved, OrderCancelled, OrderCreated, OrderShipped,
    PaymentProcessed,
};
use super::tests::{address, customer, given_at, line, order_id, vnd};
use super::*;
use crate::values::{
    AddressLine, City, CountryCode, CustomerId, CustomerName, PhoneNumber, PostalCode, Quantity,
    UnitPrice, ValueError,
};

// ---------------------------------------------------------------------------------
// Commands and their generators
// ---------------------------------------------------------------------------------

const POLICY: &str = "WELCOME10=10,VIP20=20,HALF=50,FREE=100";
const CODES: [(&str, u64); 4] = [
    ("WELCOME10", 10),
    ("VIP20", 20),
    ("HALF", 50),
    ("FREE", 100),
];
/// The products commands pick from: `p0`..`p5` are usually in the order already (it is
/// placed with `p0`, `p1`, ...), `q0`..`q2` never are at first.
const PRODUCTS: [&str; 9] = ["p0", "p1", "p2", "p3", "p4", "p5", "q0", "q1", "q2"];
/// The products removals pick from: fewer, so that small orders lose their last lines.
const REMOVED: [&str; 4] = ["p0", "p1", "p2", "q0"];
/// A few prices, so that adding a product already in the order sometimes merges and
/// sometimes mismatches; the largest one overflows with a large quantity.
const PRICES: [u64; 5] = [0, 1, 1_999, 150_000, UnitPrice::MAX];
const PLACEMENT_PRICES: [u64; 4] = [0, 1, 1_999, 150_000];
const STREETS: [&str; 3] = ["1 Trang Tien", "2 Hang Bai", "3 Ly Thai To"];

#[derive(Debug, Clone)]
enum Command {
    AddItem {
        product: &'static str,
        quantity: u64,
        unit_price: u64,
    },
    RemoveItem {
        product: &'static str,
    },
    ChangeDeliveryAddress {
        street: &'static str,
    },
    /// Pays the order's total at that moment plus `delta` (at least 0).
    Pay {
        delta: i64,
    },
    Ship,
    Cancel,
}

/// Small quantities, quantities near the limit (so merges overflow it), and anything.
fn quantity() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=5, 999_990u64..=1_000_000, 1u64..=1_000_000]
}

/// A valid placement: mostly 1 to 3 lines, sometimes 97 to 100 (so added lines reach
/// the limit), and up to 3 distinct known codes.
fn placement() -> impl Strategy<Value = PlaceOrder> {
    let items = prop_oneof![2 => 1usize..=3, 1 => 97usize..=100]
        .prop_flat_map(|count| vec((quantity(), select(PLACEMENT_PRICES.to_vec())), count));
    let codes = subsequence(
        CODES.iter().map(|(code, _)| *code).collect::<Vec<_>>(),
        0..=3,
    );
    (items, codes).prop_map(|(items, codes)| PlaceOrder {
        id: order_id(),
        customer: customer(),
        currency: vnd(),
        items: items
            .into_iter()
            .enumerate()
            .map(|(i, (quantity, price))| line(&format!("p{i}"), quantity, price))
            .collect(),
        discount_codes: codes
            .into_iter()
            .map(|c| DiscountCode::parse(c).unwrap())
            .collect(),
    })
}

/// Commands that change items come more often than those that end the created phase,
/// so that the content rules get exercised before the lifecycle moves on.
fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        6 => (select(PRODUCTS.to_vec()), quantity(), select(PRICES.to_vec())).prop_map(
            |(product, quantity, unit_price)| Command::AddItem { product, quantity, unit_price }
        ),
        4 => select(REMOVED.to_vec()).prop_map(|product| Command::RemoveItem { product }),
        1 => select(STREETS.to_vec()).prop_map(|street| Command::ChangeDeliveryAddress { street }),
        1 => prop_oneof![-2i64..=2, Just(-1_000_000), Just(1_000_000)]
            .prop_map(|delta| Command::Pay { delta }),
        1 => Just(Command::Ship),
        1 => Just(Command::Cancel),
    ]
}

fn payment_amount(total: Amount, delta: i64) -> Amount {
    Amount::new(
        total
            .minor_units()
            .saturating_add_signed(delta)
            .min(Amount::MAX),
    )
    .unwrap()
}

fn run(order: &mut Order, command: &Command, now: DateTime<Utc>) -> Result<(), OrderError> {
    match command {
        Command::AddItem {
            product,
            quantity,
            unit_price,
        } => order.add_item(line(product, *quantity, *unit_price), now),
        Command::RemoveItem { product } => {
            order.remove_item(&ProductId::parse(*product).unwrap(), now)
        }
        Command::ChangeDeliveryAddress { street } => {
            order.change_delivery_address(address(street), now)
        }
        Command::Pay { delta } => {
            let paid = payment_amount(order.total(), *delta);
            order.pay(
                PaymentId::parse("pay-1").unwrap(),
                paid,
                PaymentMethod::Card,
                now,
            )
        }
        Command::Ship => order.ship(
            TrackingNumber::parse("TRK-1").unwrap(),
            Carrier::parse("GHN").unwrap(),
            now,
        ),
        Command::Cancel => {
            order.cancel(CancellationReason::parse("no longer needed").unwrap(), now)
        }
    }
}

fn event_type_of(command: &Command) -> &'static str {
    match command {
        Command::AddItem { .. } => "ItemAdded",
        Command::RemoveItem { .. } => "ItemRemoved",
        Command::ChangeDeliveryAddress { .. } => "DeliveryAddressChanged",
        Command::Pay { .. } => "PaymentProcessed",
        Command::Ship => "OrderShipped",
        Command::Cancel => "OrderCancelled",
    }
}

// ---------------------------------------------------------------------------------
// An independent model of the rules (API.md), in wide arithmetic
// ---------------------------------------------------------------------------------

fn subtotal_of(lines: impl IntoIterator<Item = (u64, u64)>) -> u128 {
    lines
        .into_iter()
        .map(|(quantity, price)| u128::from(quantity) * u128::from(price))
        .sum()
}

/// What the order should answer to `command`: state first (409), then content (422).
fn expected_answer(order: &Order, command: &Command) -> Result<(), OrderError> {
    let status = order.status();
    let only_when = |allowed: &[OrderStatus], action: &'static str| {
        if allowed.contains(&status) {
            Ok(())
        } else {
            Err(OrderError::InvalidState { action, status })
        }
    };
    let created = [OrderStatus::Created];
    let created_or_paid = [OrderStatus::Created, OrderStatus::Paid];
    let mut lines: Vec<(ProductId, u64, u64)> = order
        .lines()
        .iter()
        .map(|l| {
            (
                l.product_id().clone(),
                l.quantity().units(),
                u64::from(l.unit_price()),
            )
        })
        .collect();
    match command {
        Command::AddItem {
            product,
            quantity,
            unit_price,
        } => {
            only_when(&created, "add an item to")?;
            let product = ProductId::parse(*product).unwrap();
            let full = lines.len() >= MAX_LINES;
            match lines.iter_mut().find(|(id, _, _)| *id == product) {
                Some((_, _, existing)) if existing != unit_price => {
                    return Err(OrderError::PriceMismatch {
                        product,
                        existing: *existing,
                        requested: *unit_price,
                    })
                }
                Some((_, held, _)) if *held + quantity > Quantity::MAX => {
                    return Err(OrderError::QuantityLimit(product))
                }
                Some((_, held, _)) => *held += quantity,
                None if full => return Err(OrderError::TooManyLines { max: 100 }),
                None => lines.push((product, *quantity, *unit_price)),
            }
            if subtotal_of(lines.iter().map(|(_, q, p)| (*q, *p))) > u128::from(Amount::MAX) {
                return Err(OrderError::AmountOverflow);
            }
            Ok(())
        }
        Command::RemoveItem { product } => {
            only_when(&created, "remove an item from")?;
            let product = ProductId::parse(*product).unwrap();
            if !lines.iter().any(|(id, _, _)| *id == product) {
                return Err(OrderError::LineNotFound(product));
            }
            if lines.len() == 1 {
                return Err(OrderError::LastLine);
            }
            Ok(())
        }
        Command::ChangeDeliveryAddress { .. } => {
            only_when(&created_or_paid, "change the delivery address of")
        }
        Command::Pay { delta } => {
            only_when(&created, "pay")?;
            let paid = payment_amount(order.total(), *delta);
            if paid < order.total() {
                return Err(OrderError::PaymentBelowTotal {
                    amount: paid,
                    total: order.total(),
                });
            }
            Ok(())
        }
        Command::Ship => only_when(&[OrderStatus::Paid], "ship"),
        Command::Cancel => only_when(&created_or_paid, "cancel"),
    }
}

/// The invariants every order keeps, whatever was done to it.
fn check_invariants(order: &Order, delivery_address: &Address) -> Result<(), TestCaseError> {
    let lines = order.lines();
    prop_assert!(
        (1..=MAX_LINES).contains(&lines.len()),
        "{} lines",
        lines.len()
    );
    let ids: BTreeSet<&ProductId> = lines.iter().map(OrderLine::product_id).collect();
    prop_assert_eq!(ids.len(), lines.len(), "one line per product");
    for l in lines {
        prop_assert!((1..=Quantity::MAX).contains(&l.quantity().units()));
        prop_assert!(u64::from(l.unit_price()) <= UnitPrice::MAX);
    }

    let subtotal = subtotal_of(
        lines
            .iter()
            .map(|l| (l.quantity().units(), u64::from(l.unit_price()))),
    );
    let percent = order.discount_percent().value();
    prop_assert!(percent <= 100);
    let discount = subtotal * u128::from(percent) / 100;
    prop_assert_eq!(
        u128::from(order.subtotal().minor_units()),
        subtotal,
        "subtotal = Σ quantity × price"
    );
    prop_assert_eq!(
        u128::from(order.discount().minor_units()),
        discount,
        "discount = ⌊subtotal × percent / 100⌋"
    );
    prop_assert_eq!(
        u128::from(order.total().minor_units()),
        subtotal - discount,
        "total = subtotal − discount"
    );
    prop_assert!(order.discount_codes().len() <= MAX_DISCOUNT_CODES);
    prop_assert_eq!(order.delivery_address(), delivery_address);

    let covers_total = |payment: &Payment| payment.amount >= order.total();
    match order.status() {
        OrderStatus::Created => {
            prop_assert!(order.payment().is_none());
            prop_assert!(order.shipment().is_none());
            prop_assert!(order.cancellation().is_none());
        }
        OrderStatus::Paid => {
            prop_assert!(order.payment().is_some_and(covers_total));
            prop_assert!(order.shipment().is_none());
            prop_assert!(order.cancellation().is_none());
        }
        OrderStatus::Shipped => {
            prop_assert!(order.payment().is_some_and(covers_total));
            prop_assert!(order.shipment().is_some());
            prop_assert!(order.cancellation().is_none());
        }
        OrderStatus::Cancelled => {
            prop_assert!(order.payment().is_none_or(covers_total));
            prop_assert!(order.shipment().is_none());
            let refund = order.cancellation().map(|c| c.refund_amount);
            let paid = order.payment().map_or(Amount::ZERO, |p| p.amount);
            prop_assert_eq!(refund, Some(paid), "the refund is what was paid, or 0");
        }
    }
    prop_assert!(order.created_at() <= order.updated_at());
    Ok(())
}

proptest! {
    #[test]
    fn any_command_sequence_keeps_the_invariants_and_replays_to_the_same_order(
        placement in placement(),
        commands in vec(command(), 0..40),
    ) {
        let percent = placement
            .discount_codes
            .iter()
            .map(|c| CODES.iter().find(|(code, _)| *code == c.as_str()).unwrap().1)
            .sum::<u64>()
            .min(100);
        let mut order = OrderFactory::new(Arc::new(DiscountTable::parse(POLICY).unwrap()))
            .place(placement.clone(), given_at())
            .unwrap();
        prop_assert_eq!(u64::from(order.discount_percent().value()), percent);
        prop_assert_eq!(order.lines(), &placement.items[..]);
        let mut delivery_address = customer().address().clone();
        check_invariants(&order, &delivery_address)?;
        let mut total_when_paid = None;

        for (step, command) in (1..).zip(&commands) {
            let now = given_at() + Duration::seconds(step);
            let before = order.clone();
            let expected = expected_answer(&order, command);

            let answer = run(&mut order, command, now);

            prop_assert_eq!(&answer, &expected, "{:?} on {:?}", command, before.status());
            if answer.is_err() {
                prop_assert_eq!(&order, &before, "a rejected command changes nothing and records nothing");
            } else {
                let new = &order.pending_events()[before.pending_events().len()..];
                prop_assert_eq!(new.len(), 1, "one event per accepted command");
                prop_assert_eq!(new[0].version, before.version() + 1);
                prop_assert_eq!(new[0].occurred_at, now);
                prop_assert_eq!(new[0].event.event_type(), event_type_of(command));
                prop_assert_eq!(order.version(), before.version() + 1);
                prop_assert_eq!(order.updated_at(), now);
                match command {
                    Command::ChangeDeliveryAddress { street } => delivery_address = address(street),
                    Command::Pay { .. } => total_when_paid = Some(order.total()),
                    _ => {}
                }
            }
            check_invariants(&order, &delivery_address)?;
            if let Some(total) = total_when_paid {
                prop_assert_eq!(order.total(), total, "the total does not change once paid");
                prop_assert!(order.payment().is_some_and(|p| p.amount >= total));
            }

            // Every prefix replays to the order as it stands.
            let mut drained = order.clone();
            let events = drained.take_events();
            prop_assert_eq!(Order::from_history(order.id(), events), Ok(Some(drained)));
        }

        let events = order.take_events();
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        prop_assert_eq!(versions, (1..=order.version()).collect::<Vec<_>>(), "versions 1..=n, no gap");
        prop_assert_eq!(order.loaded_version(), order.version());
        prop_assert_eq!(Order::from_history(order.id(), events), Ok(Some(order)));
    }
}

proptest! {
    #[test]
    fn a_snapshot_at_any_version_plus_the_later_events_rebuilds_the_same_order(
        placement in placement(),
        commands in vec(command(), 0..30),
    ) {
        let mut order = OrderFactory::new(Arc::new(DiscountTable::parse(POLICY).unwrap()))
            .place(placement, given_at())
            .unwrap();
        for (step, command) in (1..).zip(&commands) {
            let _ = run(&mut order, command, given_at() + Duration::seconds(step));
        }
        let events = order.take_events();
        for cut in 1..=events.len() {
            let prefix = Order::from_history(order.id(), events[..cut].to_vec()).unwrap().unwrap();
            // Through JSON, as the store keeps it.
            let stored = serde_json::to_value(prefix.snapshot()).unwrap();
            let snapshot: OrderSnapshot = serde_json::from_value(stored).unwrap();
            prop_assert_eq!(snapshot.version, cut as u64);
            let rebuilt = Order::from_snapshot(snapshot, events[cut..].to_vec());
            prop_assert_eq!(rebuilt, Ok(order.clone()));
        }
    }
}

#[test]
fn events_that_do_not_follow_a_snapshot_are_refused() {
    let mut order = OrderFactory::new(Arc::new(DiscountTable::parse(POLICY).unwrap()))
        .place(
            PlaceOrder {
                id: order_id(),
                customer: customer(),
                currency: vnd(),
                items: vec![line("sku-1", 1, 100)],
                discount_codes: vec![],
            },
            given_at(),
        )
        .unwrap();
    order
        .change_delivery_address(address("2 Street"), given_at())
        .unwrap();
    order
        .change_delivery_address(address("3 Street"), given_at())
        .unwrap();
    let events = order.take_events();
    let first = Order::from_history(order.id(), events[..1].to_vec())
        .unwrap()
        .unwrap();
    assert_eq!(
        Order::from_snapshot(first.snapshot(), events[2..].to_vec()),
        Err(HistoryError::VersionGap {
            expected: 2,
            found: 3
        })
    );
}

// ---------------------------------------------------------------------------------
// Events on the wire
// ---------------------------------------------------------------------------------

/// Any text a constructor accepts, from printable Unicode.
fn valid<T: std::fmt::Debug>(
    parse: fn(String) -> Result<T, ValueError>,
) -> impl Strategy<Value = T> {
    "\\PC{1,24}".prop_filter_map("accepted by the constructor", move |text| parse(text).ok())
}

fn any_amount() -> impl Strategy<Value = Amount> {
    (0..=Amount::MAX).prop_map(|a| Amount::new(a).unwrap())
}

fn any_address() -> impl Strategy<Value = Address> {
    (
        valid(AddressLine::parse),
        option::of(valid(AddressLine::parse)),
        valid(City::parse),
        option::of(valid(PostalCode::parse)),
        select(vec!["VN", "US", "DE", "JP"]),
    )
        .prop_map(|(line1, line2, city, postal_code, country)| {
            Address::new(
                line1,
                line2,
                city,
                postal_code,
                CountryCode::parse(country).unwrap(),
            )
        })
}

fn any_line() -> impl Strategy<Value = OrderLine> {
    (
        valid(ProductId::parse),
        1..=Quantity::MAX,
        0..=UnitPrice::MAX,
    )
        .prop_map(|(id, quantity, price)| {
            OrderLine::new(
                id,
                Quantity::new(quantity).unwrap(),
                UnitPrice::new(price).unwrap(),
            )
        })
}

fn any_event() -> impl Strategy<Value = OrderEvent> {
    let customer = (
        valid(CustomerId::parse),
        valid(CustomerName::parse),
        valid(PhoneNumber::parse),
        any_address(),
    )
        .prop_map(|(id, name, phone, address)| CustomerInfo::new(id, name, phone, address));
    let created = (
        customer,
        select(vec!["VND", "USD", "EUR", "JPY"]),
        vec(any_line(), 1..4),
        vec(valid(DiscountCode::parse), 0..=3),
        0u64..=100,
        (any_amount(), any_amount(), any_amount()),
    )
        .prop_map(
            |(customer, currency, items, discount_codes, percent, (subtotal, discount, total))| {
                OrderEvent::OrderCreated(OrderCreated {
                    customer,
                    currency: Currency::parse(currency).unwrap(),
                    items,
                    discount_codes,
                    discount_percent: DiscountPercent::new(percent).unwrap(),
                    subtotal,
                    discount,
                    total,
                })
            },
        );
    let added = (any_line(), any_amount(), any_amount(), any_amount()).prop_map(
        |(l, subtotal, discount, total)| {
            OrderEvent::ItemAdded(ItemAdded {
                product_id: l.product_id().clone(),
                quantity: l.quantity(),
                unit_price: l.unit_price(),
                subtotal,
                discount,
                total,
            })
        },
    );
    let removed = (any_line(), any_amount(), any_amount(), any_amount()).prop_map(
        |(l, subtotal, discount, total)| {
            OrderEvent::ItemRemoved(ItemRemoved {
                product_id: l.product_id().clone(),
                quantity: l.quantity(),
                subtotal,
                discount,
                total,
            })
        },
    );
    let address_changed = any_address()
        .prop_map(|address| OrderEvent::DeliveryAddressChanged(DeliveryAddressChanged { address }));
    let paid = (
        valid(PaymentId::parse),
        any_amount(),
        select(vec![
            PaymentMethod::Card,
            PaymentMethod::BankTransfer,
            PaymentMethod::CashOnDelivery,
        ]),
    )
        .prop_map(|(payment_id, amount, method)| {
            OrderEvent::PaymentProcessed(PaymentProcessed {
                payment_id,
                amount,
                method,
            })
        });
    let shipped = (valid(TrackingNumber::parse), valid(Carrier::parse)).prop_map(
        |(tracking_number, carrier)| {
            OrderEvent::OrderShipped(OrderShipped {
                tracking_number,
                carrier,
            })
        },
    );
    let cancelled =
        (valid(CancellationReason::parse), any_amount()).prop_map(|(reason, refund_amount)| {
            OrderEvent::OrderCancelled(OrderCancelled {
                reason,
                refund_amount,
            })
        });
    prop_oneof![
        created,
        added,
        removed,
        address_changed,
        paid,
        shipped,
        cancelled
    ]
}

/// The payload fields of each event type, from API.md's table.
pub(super) fn payload_fields(event_type: &str) -> BTreeSet<&'static str> {
    let fields: &[&'static str] = match event_type {
        "OrderCreated" => &[
            "customer",
            "currency",
            "items",
            "discountCodes",
            "discountPercent",
            "subtotal",
            "discount",
            "total",
        ],
        "ItemAdded" => &[
            "productId",
            "quantity",
            "unitPrice",
            "subtotal",
            "discount",
            "total",
        ],
        "ItemRemoved" => &["productId", "quantity", "subtotal", "discount", "total"],
        "DeliveryAddressChanged" => &["address"],
        "PaymentProcessed" => &["paymentId", "amount", "method"],
        "OrderShipped" => &["trackingNumber", "carrier"],
        "OrderCancelled" => &["reason", "refundAmount"],
        other => panic!("unknown event type {other}"),
    };
    fields.iter().copied().collect()
}

/// The keys of a JSON object.
pub(super) fn keys(value: &serde_json::Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect()
}

proptest! {
    #[test]
    fn any_event_survives_a_json_round_trip_in_the_wire_shape(event in any_event()) {
        let text = serde_json::to_string(&event).unwrap();
        prop_assert_eq!(&serde_json::from_str::<OrderEvent>(&text).unwrap(), &event);

        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(keys(&json), BTreeSet::from(["eventType", "payload"]));
        prop_assert_eq!(&json["eventType"], event.event_type());
        prop_assert!(OrderEvent::TYPES.contains(&event.event_type()));
        prop_assert_eq!(keys(&json["payload"]), payload_fields(event.event_type()));
    }
}
