//! The tests' data: ids, addresses, lines and policies, the events and commands as
//! the tests spell them, and orders in each state. Those the property tests share
//! reach the whole `order` module.

use super::*;
pub(in crate::order) fn order_id() -> OrderId {
    OrderId::from_uuid(uuid::Uuid::from_u128(
        0x0190_b5e3_0000_7000_8000_0000_0000_0001,
    ))
}

pub(in crate::order) fn address(line1: &str) -> Address {
    Address::new(
        AddressLine::parse(line1).unwrap(),
        None,
        City::parse("Hanoi").unwrap(),
        Some(PostalCode::parse("100000").unwrap()),
        CountryCode::parse("VN").unwrap(),
    )
}

pub(in crate::order) fn customer() -> CustomerInfo {
    CustomerInfo::new(
        CustomerId::parse("cust-42").unwrap(),
        CustomerName::parse("Nguyễn Văn A").unwrap(),
        PhoneNumber::parse("+84 912 345 678").unwrap(),
        address("1 Trang Tien"),
    )
}

pub(in crate::order) fn vnd() -> Currency {
    Currency::parse("VND").unwrap()
}

pub(in crate::order) fn product(id: &str) -> ProductId {
    ProductId::parse(id).unwrap()
}

pub(in crate::order) fn line(id: &str, quantity: u64, unit_price: u64) -> OrderLine {
    OrderLine::new(
        product(id),
        Quantity::new(quantity).unwrap(),
        UnitPrice::new(unit_price).unwrap(),
    )
}

/// `count` lines `p0`, `p1`, ... of one unit at 1 each.
pub(in crate::order) fn lines(count: usize) -> Vec<OrderLine> {
    (0..count).map(|i| line(&format!("p{i}"), 1, 1)).collect()
}

pub(in crate::order) fn amount(minor_units: u64) -> Amount {
    Amount::new(minor_units).unwrap()
}

pub(in crate::order) fn code(text: &str) -> DiscountCode {
    DiscountCode::parse(text).unwrap()
}

pub(in crate::order) fn codes(texts: &[&str]) -> Vec<DiscountCode> {
    texts.iter().map(|t| code(t)).collect()
}

/// The service's default policy: `WELCOME10=10,VIP20=20`.
pub(in crate::order) fn default_policy() -> DiscountTable {
    DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap()
}

pub(in crate::order) fn policy(text: &str) -> DiscountTable {
    DiscountTable::parse(text).unwrap()
}

pub(in crate::order) fn place(items: Vec<OrderLine>, discount_codes: &[&str]) -> PlaceOrder {
    PlaceOrder {
        id: order_id(),
        customer: customer(),
        currency: vnd(),
        items,
        discount_codes: codes(discount_codes),
    }
}

// Events, as the tests spell them.

pub(in crate::order) fn order_created_with_totals(
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
pub(in crate::order) fn order_created(
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

pub(in crate::order) fn item_added(
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

pub(in crate::order) fn item_removed(
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

pub(in crate::order) fn delivery_address_changed(address: Address) -> OrderEvent {
    OrderEvent::DeliveryAddressChanged(DeliveryAddressChanged { address })
}

pub(in crate::order) fn payment_processed(paid: u64) -> OrderEvent {
    OrderEvent::PaymentProcessed(PaymentProcessed {
        payment_id: PaymentId::parse("pay-1").unwrap(),
        amount: amount(paid),
        method: PaymentMethod::BankTransfer,
    })
}

pub(in crate::order) fn order_shipped() -> OrderEvent {
    OrderEvent::OrderShipped(OrderShipped {
        tracking_number: TrackingNumber::parse("TRK-1").unwrap(),
        carrier: Carrier::parse("VNPost").unwrap(),
    })
}

pub(in crate::order) fn order_cancelled(refund: u64) -> OrderEvent {
    OrderEvent::OrderCancelled(OrderCancelled {
        reason: CancellationReason::parse("changed my mind").unwrap(),
        refund_amount: amount(refund),
    })
}

// Commands, as the tests spell them (the same values as the events above).

pub(in crate::order) fn add_item(id: &str, quantity: u64, unit_price: u64) -> Command {
    let new_line = line(id, quantity, unit_price);
    Box::new(move |order, now| order.add_item(new_line, now))
}

pub(in crate::order) fn remove_item(id: &str) -> Command {
    let id = product(id);
    Box::new(move |order, now| order.remove_item(&id, now))
}

pub(in crate::order) fn change_delivery_address(to: Address) -> Command {
    Box::new(move |order, now| order.change_delivery_address(to, now))
}

pub(in crate::order) fn pay(paid: u64) -> Command {
    Box::new(move |order, now| {
        order.pay(
            PaymentId::parse("pay-1").unwrap(),
            amount(paid),
            PaymentMethod::BankTransfer,
            now,
        )
    })
}

pub(in crate::order) fn ship() -> Command {
    Box::new(|order, now| {
        order.ship(
            TrackingNumber::parse("TRK-1").unwrap(),
            Carrier::parse("VNPost").unwrap(),
            now,
        )
    })
}

pub(in crate::order) fn cancel() -> Command {
    Box::new(|order, now| order.cancel(CancellationReason::parse("changed my mind").unwrap(), now))
}

// Orders in each state. The created order: 2 × 1000 + 1 × 500 = 2500, 30% off
// (WELCOME10 + VIP20) = 750, total 1750.

pub(super) const TOTAL: u64 = 1_750;

pub(super) fn a_created_order() -> Vec<OrderEvent> {
    vec![order_created(
        vec![line("sku-1", 2, 1_000), line("sku-2", 1, 500)],
        &["WELCOME10", "VIP20"],
        30,
    )]
}

pub(super) fn a_paid_order() -> Vec<OrderEvent> {
    let mut events = a_created_order();
    events.push(payment_processed(TOTAL));
    events
}

pub(super) fn a_shipped_order() -> Vec<OrderEvent> {
    let mut events = a_paid_order();
    events.push(order_shipped());
    events
}

pub(super) fn a_cancelled_order() -> Vec<OrderEvent> {
    let mut events = a_created_order();
    events.push(order_cancelled(0));
    events
}

pub(super) fn invalid_state(action: &'static str, status: OrderStatus) -> OrderError {
    OrderError::InvalidState { action, status }
}

pub(super) fn created() -> OrderEvent {
    a_created_order().remove(0)
}
