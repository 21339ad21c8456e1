//! Answers as protobuf messages: the same fields as the HTTP API's JSON bodies.

use application::envelope::format_time;
use application::{CommandOutcome, EventEnvelope, OrderSummary};
use domain::{Address, Amount, CustomerInfo, Order, OrderStatus, PaymentMethod};

use super::proto;

pub(crate) fn ack(outcome: CommandOutcome) -> proto::CommandAck {
    proto::CommandAck {
        order_id: outcome.ack.order_id.to_string(),
        version: outcome.ack.version,
        replayed: outcome.replayed,
    }
}

pub(crate) fn status(status: OrderStatus) -> proto::OrderStatus {
    match status {
        OrderStatus::Created => proto::OrderStatus::Created,
        OrderStatus::Paid => proto::OrderStatus::Paid,
        OrderStatus::Shipped => proto::OrderStatus::Shipped,
        OrderStatus::Cancelled => proto::OrderStatus::Cancelled,
    }
}

/// The domain status a filter asks for: `None` for any; `Err` for a number that is no
/// status.
pub(crate) fn status_filter(value: i32) -> Result<Option<OrderStatus>, ()> {
    match proto::OrderStatus::try_from(value).map_err(drop)? {
        proto::OrderStatus::Unspecified => Ok(None),
        proto::OrderStatus::Created => Ok(Some(OrderStatus::Created)),
        proto::OrderStatus::Paid => Ok(Some(OrderStatus::Paid)),
        proto::OrderStatus::Shipped => Ok(Some(OrderStatus::Shipped)),
        proto::OrderStatus::Cancelled => Ok(Some(OrderStatus::Cancelled)),
    }
}

fn method(method: PaymentMethod) -> proto::PaymentMethod {
    match method {
        PaymentMethod::Card => proto::PaymentMethod::Card,
        PaymentMethod::BankTransfer => proto::PaymentMethod::BankTransfer,
        PaymentMethod::CashOnDelivery => proto::PaymentMethod::CashOnDelivery,
    }
}

fn address(address: &Address) -> proto::Address {
    proto::Address {
        line1: Some(address.line1().as_str().to_owned()),
        line2: address.line2().map(|l| l.as_str().to_owned()),
        city: Some(address.city().as_str().to_owned()),
        postal_code: address.postal_code().map(|p| p.as_str().to_owned()),
        country: Some(address.country().code().to_owned()),
    }
}

fn customer(customer: &CustomerInfo) -> proto::Customer {
    proto::Customer {
        customer_id: Some(customer.customer_id().as_str().to_owned()),
        name: Some(customer.name().as_str().to_owned()),
        phone: Some(customer.phone().as_str().to_owned()),
        address: Some(address(customer.address())),
    }
}

/// `GetOrder`: the order, as `GET /orders/{id}` shows it.
pub(crate) fn order(order: &Order) -> proto::Order {
    proto::Order {
        order_id: order.id().to_string(),
        customer: Some(customer(order.customer())),
        currency: order.currency().code().to_owned(),
        items: order
            .lines()
            .iter()
            .map(|line| proto::OrderLine {
                product_id: line.product_id().as_str().to_owned(),
                quantity: line.quantity().units(),
                unit_price: line.unit_price().into(),
                line_total: line.line_total().map_or(0, Amount::minor_units),
            })
            .collect(),
        discount_codes: order
            .discount_codes()
            .iter()
            .map(|code| String::from(code.clone()))
            .collect(),
        discount_percent: order.discount_percent().value().into(),
        subtotal: order.subtotal().minor_units(),
        discount: order.discount().minor_units(),
        total: order.total().minor_units(),
        status: status(order.status()).into(),
        delivery_address: Some(address(order.delivery_address())),
        payment: order.payment().map(|p| proto::Payment {
            payment_id: p.payment_id.as_str().to_owned(),
            amount: p.amount.minor_units(),
            method: method(p.method).into(),
        }),
        shipment: order.shipment().map(|s| proto::Shipment {
            tracking_number: s.tracking_number.as_str().to_owned(),
            carrier: s.carrier.as_str().to_owned(),
        }),
        cancellation: order.cancellation().map(|c| proto::Cancellation {
            reason: c.reason.as_str().to_owned(),
            refund_amount: c.refund_amount.minor_units(),
        }),
        version: order.version(),
        created_at: format_time(order.created_at()),
        updated_at: format_time(order.updated_at()),
    }
}

/// `GetHistory`: one event as its envelope, the payload as the JSON published on Kafka.
pub(crate) fn event(envelope: &EventEnvelope) -> proto::Event {
    proto::Event {
        event_id: envelope.event_id.to_string(),
        aggregate_type: application::envelope::AGGREGATE_TYPE.to_owned(),
        aggregate_id: envelope.aggregate_id.to_string(),
        event_type: envelope.event_type().to_owned(),
        version: envelope.version,
        schema_version: envelope.schema_version(),
        occurred_at: format_time(envelope.occurred_at),
        recorded_at: envelope.recorded_at.map(format_time).unwrap_or_default(),
        position: envelope.position.unwrap_or_default(),
        payload_json: envelope.payload().to_string(),
        metadata: Some(proto::EventMetadata {
            user_id: envelope.metadata.user_id.clone(),
            correlation_id: envelope.metadata.correlation_id.clone(),
            causation_id: envelope.metadata.causation_id.clone(),
        }),
    }
}

/// `ListOrders`: one order of the read model.
pub(crate) fn summary(summary: &OrderSummary) -> proto::OrderSummary {
    proto::OrderSummary {
        order_id: summary.order_id.to_string(),
        customer_id: summary.customer_id.clone(),
        status: status(summary.status).into(),
        total: summary.total,
        currency: summary.currency.clone(),
        item_count: u32::try_from(summary.item_count()).unwrap_or(u32::MAX),
        version: summary.version,
        created_at: format_time(summary.created_at),
        updated_at: format_time(summary.updated_at),
    }
}
