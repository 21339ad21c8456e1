//! Request and response bodies. Requests deserialize into these plain types (never into
//! domain types), become the API core's inputs (`order_api::requests`) field for field,
//! and convert there with `try_into_domain`, which names every invalid field.

use chrono::{DateTime, Utc};
use domain::{
    Address, Amount, CancellationReason, Carrier, Currency, CustomerInfo, DiscountCode, Order,
    OrderId, PaymentId, ProductId, TrackingNumber,
};
use order_api::requests::{
    AddressInput, CancellationInput, CustomerInput, ItemInput, PaymentInput, PlaceOrderInput,
    ShipmentInput,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use application::envelope::format_time;

use super::openapi::{CountryCode, CurrencyCode, OrderIdText, ShortText, Text};

// The schemas (`ToSchema`) say what the API requires: a field is `Option` here only so
// that `try_into_domain` can name every missing one, so required fields are documented
// with a non-`Option` `value_type`.

/// A postal address; requests and responses share it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Address)]
pub(super) struct AddressRequest {
    #[schema(value_type = Text)]
    line1: Option<String>,
    /// Optional: absent or `null`.
    #[schema(value_type = Option<Text>)]
    line2: Option<String>,
    #[schema(value_type = Text)]
    city: Option<String>,
    /// Optional: absent or `null`.
    #[schema(value_type = Option<Text>)]
    postal_code: Option<String>,
    #[schema(value_type = CountryCode)]
    country: Option<String>,
}

/// Who places the order; requests and responses share it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Customer)]
pub(super) struct CustomerRequest {
    #[schema(value_type = Text)]
    customer_id: Option<String>,
    #[schema(value_type = Text)]
    name: Option<String>,
    #[schema(value_type = Text)]
    phone: Option<String>,
    #[schema(value_type = AddressRequest)]
    address: Option<AddressRequest>,
}

/// A line as a client asks for it (amounts in the currency's minor unit).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderLine)]
pub(super) struct ItemRequest {
    #[schema(value_type = ShortText)]
    product_id: Option<String>,
    #[schema(value_type = u64, minimum = 1, maximum = 1_000_000)]
    quantity: Option<u64>,
    /// 0 to 10^15 minor units.
    #[schema(value_type = u64, minimum = 0, maximum = 1_000_000_000_000_000_u64)]
    unit_price: Option<u64>,
}

/// `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateOrder)]
pub(super) struct CreateOrderRequest {
    /// The client's id for the order, so that a retry cannot create a second one;
    /// the server makes one (UUID v7) when absent or `null`.
    #[schema(value_type = Option<OrderIdText>)]
    order_id: Option<String>,
    #[schema(value_type = CustomerRequest)]
    customer: Option<CustomerRequest>,
    #[schema(value_type = CurrencyCode)]
    currency: Option<String>,
    /// One line per product (the same `productId` twice answers 422).
    #[schema(value_type = Vec<ItemRequest>, min_items = 1, max_items = 100)]
    items: Option<Vec<ItemRequest>>,
    /// Resolved by the service's discount policy (`DISCOUNT_CODES`; an unknown code
    /// answers 422), each at most once; percentages add up (capped at 100). Absent or
    /// `null`: none.
    #[schema(value_type = Option<std::collections::BTreeSet<ShortText>>, max_items = 3)]
    discount_codes: Option<Vec<String>>,
}

/// `POST /orders/{id}/payment`: must cover the total (more is accepted).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PaymentRequest {
    #[schema(value_type = ShortText)]
    payment_id: Option<String>,
    /// Minor units, 0 to 2^63 − 1.
    #[schema(value_type = u64, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    amount: Option<u64>,
    #[schema(value_type = super::openapi::PaymentMethod)]
    method: Option<String>,
}

/// `POST /orders/{id}/shipment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShipmentRequest {
    #[schema(value_type = ShortText)]
    tracking_number: Option<String>,
    #[schema(value_type = ShortText)]
    carrier: Option<String>,
}

/// `POST /orders/{id}/cancellation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CancellationRequest {
    #[schema(value_type = Text)]
    reason: Option<String>,
}

impl From<AddressRequest> for AddressInput {
    fn from(body: AddressRequest) -> Self {
        Self {
            line1: body.line1,
            line2: body.line2,
            city: body.city,
            postal_code: body.postal_code,
            country: body.country,
        }
    }
}

impl From<CustomerRequest> for CustomerInput {
    fn from(body: CustomerRequest) -> Self {
        Self {
            customer_id: body.customer_id,
            name: body.name,
            phone: body.phone,
            address: body.address.map(AddressInput::from),
        }
    }
}

impl From<ItemRequest> for ItemInput {
    fn from(body: ItemRequest) -> Self {
        Self {
            product_id: body.product_id,
            quantity: body.quantity,
            unit_price: body.unit_price,
        }
    }
}

impl From<CreateOrderRequest> for PlaceOrderInput {
    fn from(body: CreateOrderRequest) -> Self {
        Self {
            order_id: body.order_id,
            customer: body.customer.map(CustomerInput::from),
            currency: body.currency,
            items: body
                .items
                .map(|items| items.into_iter().map(ItemInput::from).collect()),
            discount_codes: body.discount_codes,
        }
    }
}

impl From<PaymentRequest> for PaymentInput {
    fn from(body: PaymentRequest) -> Self {
        Self {
            payment_id: body.payment_id,
            amount: body.amount,
            method: body.method,
        }
    }
}

impl From<ShipmentRequest> for ShipmentInput {
    fn from(body: ShipmentRequest) -> Self {
        Self {
            tracking_number: body.tracking_number,
            carrier: body.carrier,
        }
    }
}

impl From<CancellationRequest> for CancellationInput {
    fn from(body: CancellationRequest) -> Self {
        Self {
            reason: body.reason,
        }
    }
}

/// The acknowledgment of a command.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Ack)]
pub(super) struct AckResponse {
    #[schema(value_type = String, format = Uuid)]
    pub order_id: OrderId,
    /// The order's stream version after the command (what `If-Match` expects).
    #[schema(minimum = 1)]
    pub version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderLine)]
struct LineResponse<'a> {
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    product_id: &'a ProductId,
    #[schema(minimum = 1, maximum = 1_000_000)]
    quantity: u64,
    unit_price: u64,
    line_total: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Payment)]
struct PaymentResponse<'a> {
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    payment_id: &'a PaymentId,
    #[schema(value_type = u64)]
    amount: Amount,
    #[schema(value_type = super::openapi::PaymentMethod)]
    method: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Shipment)]
struct ShipmentResponse<'a> {
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    tracking_number: &'a TrackingNumber,
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    carrier: &'a Carrier,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Cancellation)]
struct CancellationResponse<'a> {
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    reason: &'a CancellationReason,
    /// What had been paid; 0 when the order was not paid.
    #[schema(value_type = u64)]
    refund_amount: Amount,
}

/// `GET /orders/{id}`: the order, rebuilt from its events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Order)]
pub(super) struct OrderResponse<'a> {
    #[schema(value_type = String, format = Uuid)]
    order_id: OrderId,
    #[schema(value_type = CustomerRequest)]
    customer: &'a CustomerInfo,
    #[schema(value_type = String, pattern = "^[A-Z]{3}$")]
    currency: Currency,
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<LineResponse<'a>>,
    #[schema(value_type = Vec<String>, max_items = 3)]
    discount_codes: &'a [DiscountCode],
    #[schema(maximum = 100)]
    discount_percent: u8,
    #[schema(value_type = u64)]
    subtotal: Amount,
    /// `floor(subtotal × discountPercent / 100)`.
    #[schema(value_type = u64)]
    discount: Amount,
    /// `subtotal − discount`.
    #[schema(value_type = u64)]
    total: Amount,
    #[schema(value_type = super::openapi::OrderStatus)]
    status: &'static str,
    #[schema(value_type = AddressRequest)]
    delivery_address: &'a Address,
    /// Once paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    payment: Option<PaymentResponse<'a>>,
    /// Once shipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    shipment: Option<ShipmentResponse<'a>>,
    /// Once cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    cancellation: Option<CancellationResponse<'a>>,
    /// The stream's version, also sent as `ETag`.
    #[schema(minimum = 1)]
    version: u64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl<'a> OrderResponse<'a> {
    pub(super) fn from_order(order: &'a Order) -> Self {
        let time = |at: DateTime<Utc>| format_time(at);
        Self {
            order_id: order.id(),
            customer: order.customer(),
            currency: order.currency(),
            items: order
                .lines()
                .iter()
                .map(|line| LineResponse {
                    product_id: line.product_id(),
                    quantity: line.quantity().units(),
                    unit_price: line.unit_price().into(),
                    line_total: line.line_total().map_or(0, Amount::minor_units),
                })
                .collect(),
            discount_codes: order.discount_codes(),
            discount_percent: order.discount_percent().value(),
            subtotal: order.subtotal(),
            discount: order.discount(),
            total: order.total(),
            status: order.status().as_str(),
            delivery_address: order.delivery_address(),
            payment: order.payment().map(|p| PaymentResponse {
                payment_id: &p.payment_id,
                amount: p.amount,
                method: p.method.as_str(),
            }),
            shipment: order.shipment().map(|s| ShipmentResponse {
                tracking_number: &s.tracking_number,
                carrier: &s.carrier,
            }),
            cancellation: order.cancellation().map(|c| CancellationResponse {
                reason: &c.reason,
                refund_amount: c.refund_amount,
            }),
            version: order.version(),
            created_at: time(order.created_at()),
            updated_at: time(order.updated_at()),
        }
    }
}

/// `GET /orders`: one order of the read model.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderSummary)]
pub(super) struct SummaryResponse<'a> {
    #[schema(value_type = String, format = Uuid)]
    order_id: OrderId,
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    customer_id: &'a str,
    #[schema(value_type = super::openapi::OrderStatus)]
    status: &'static str,
    total: u64,
    #[schema(value_type = String, pattern = "^[A-Z]{3}$")]
    currency: &'a str,
    /// The number of lines.
    #[schema(value_type = u64, minimum = 1, maximum = 100)]
    item_count: usize,
    #[schema(minimum = 1)]
    version: u64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl<'a> SummaryResponse<'a> {
    pub(super) fn from_summary(summary: &'a application::OrderSummary) -> Self {
        Self {
            order_id: summary.order_id,
            customer_id: &summary.customer_id,
            status: summary.status.as_str(),
            total: summary.total,
            currency: &summary.currency,
            item_count: summary.item_count(),
            version: summary.version,
            created_at: format_time(summary.created_at),
            updated_at: format_time(summary.updated_at),
        }
    }
}

/// `GET /orders`: a page of the read model, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderPage)]
pub(super) struct SummaryPageResponse<'a> {
    #[schema(max_items = 100)]
    pub(super) items: Vec<SummaryResponse<'a>>,
    /// `null` on the last page.
    #[schema(required = true)]
    pub(super) next_cursor: Option<String>,
}
