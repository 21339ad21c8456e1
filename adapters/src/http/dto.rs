//! Request and response bodies. Requests deserialize into these plain types (never into
//! domain types) and convert with `try_into_domain`, which reports every invalid field.

use chrono::{DateTime, Utc};
use domain::{
    Address, AddressLine, Amount, CancellationReason, Carrier, City, CountryCode, Currency,
    CustomerId, CustomerInfo, CustomerName, DiscountCode, Order, OrderId, OrderLine, PaymentId,
    PaymentMethod, PhoneNumber, PlaceOrder, PostalCode, ProductId, Quantity, TrackingNumber,
    UnitPrice, ValueError,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::problem::{ApiError, FieldError};
use application::envelope::format_time;

pub(crate) mod from_grpc;

/// Collects field errors while converting a request.
#[derive(Debug, Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.0.push(FieldError::new(field, "is required"));
        }
        value
    }

    fn check<T>(&mut self, field: &str, result: Result<T, ValueError>) -> Option<T> {
        result
            .map_err(|e| self.0.push(FieldError::new(field, e.to_string())))
            .ok()
    }

    /// A required value, parsed.
    fn parse<R, T>(
        &mut self,
        field: &str,
        value: Option<R>,
        parse: impl FnOnce(R) -> Result<T, ValueError>,
    ) -> Option<T> {
        let raw = self.required(field, value)?;
        self.check(field, parse(raw))
    }

    /// An optional value, parsed when present.
    fn parse_optional<R, T>(
        &mut self,
        field: &str,
        value: Option<R>,
        parse: impl FnOnce(R) -> Result<T, ValueError>,
    ) -> Option<Option<T>> {
        match value {
            None => Some(None),
            Some(raw) => self.check(field, parse(raw)).map(Some),
        }
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(ApiError::validation(self.0)),
        }
    }
}

// The schemas (`ToSchema`) say what the API requires: a field is `Option` here only so
// that `try_into_domain` can name every missing one, so required fields are documented
// with a non-`Option` `value_type`.

/// A postal address; requests and responses share it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Address)]
pub(super) struct AddressRequest {
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    line1: Option<String>,
    #[schema(min_length = 1, max_length = 200, nullable = false)]
    line2: Option<String>,
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    city: Option<String>,
    #[schema(min_length = 1, max_length = 200, nullable = false)]
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(value_type = String, pattern = "^[A-Z]{2}$", example = "VN")]
    country: Option<String>,
}

impl AddressRequest {
    fn convert(self, fields: &mut Fields, at: &str) -> Option<Address> {
        let line1 = fields.parse(&format!("{at}line1"), self.line1, AddressLine::parse);
        let line2 = fields.parse_optional(&format!("{at}line2"), self.line2, AddressLine::parse);
        let city = fields.parse(&format!("{at}city"), self.city, City::parse);
        let postal_code = fields.parse_optional(
            &format!("{at}postalCode"),
            self.postal_code,
            PostalCode::parse,
        );
        let country = fields.parse(&format!("{at}country"), self.country, |c| {
            CountryCode::parse(&c)
        });
        Some(Address::new(line1?, line2?, city?, postal_code?, country?))
    }

    /// `PUT /orders/{id}/delivery-address`.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub(super) fn try_into_domain(self) -> Result<Address, ApiError> {
        let mut fields = Fields::default();
        let address = self.convert(&mut fields, "");
        fields.finish(address)
    }
}

/// Who places the order; requests and responses share it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Customer)]
pub(super) struct CustomerRequest {
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    customer_id: Option<String>,
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    name: Option<String>,
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    phone: Option<String>,
    #[schema(value_type = AddressRequest)]
    address: Option<AddressRequest>,
}

/// A line as a client asks for it (amounts in the currency's minor unit).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = OrderLine)]
pub(super) struct ItemRequest {
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    product_id: Option<String>,
    #[schema(value_type = u64, minimum = 1, maximum = 1_000_000)]
    quantity: Option<u64>,
    #[schema(value_type = u64, maximum = 1_000_000_000_000_000_u64)]
    unit_price: Option<u64>,
}

impl ItemRequest {
    fn convert(self, fields: &mut Fields, at: &str) -> Option<OrderLine> {
        let product_id = fields.parse(&format!("{at}productId"), self.product_id, ProductId::parse);
        let quantity = fields.parse(&format!("{at}quantity"), self.quantity, Quantity::new);
        let unit_price = fields.parse(&format!("{at}unitPrice"), self.unit_price, UnitPrice::new);
        Some(OrderLine::new(product_id?, quantity?, unit_price?))
    }

    /// `POST /orders/{id}/items`.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub(super) fn try_into_domain(self) -> Result<OrderLine, ApiError> {
        let mut fields = Fields::default();
        let line = self.convert(&mut fields, "");
        fields.finish(line)
    }
}

/// `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateOrder)]
pub(super) struct CreateOrderRequest {
    /// The client's id for the order, so that a retry cannot create a second one;
    /// the server makes one (UUID v7) when absent.
    #[schema(value_type = Option<String>, format = Uuid, nullable = false)]
    order_id: Option<String>,
    #[schema(value_type = CustomerRequest)]
    customer: Option<CustomerRequest>,
    /// ISO 4217.
    #[schema(value_type = String, pattern = "^[A-Z]{3}$", example = "VND")]
    currency: Option<String>,
    /// One line per product.
    #[schema(value_type = Vec<ItemRequest>, min_items = 1, max_items = 100)]
    items: Option<Vec<ItemRequest>>,
    /// Resolved by the service's discount policy; percentages add up (capped at 100).
    #[schema(max_items = 3, nullable = false)]
    discount_codes: Option<Vec<String>>,
}

impl CreateOrderRequest {
    /// `POST /orders`; a missing `orderId` gets a fresh UUID v7.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub(super) fn try_into_domain(self) -> Result<PlaceOrder, ApiError> {
        let mut fields = Fields::default();
        let id = fields
            .parse_optional("orderId", self.order_id, |id| OrderId::parse(&id))
            .map(|id| id.unwrap_or_else(|| OrderId::from_uuid(Uuid::now_v7())));
        let customer = fields.required("customer", self.customer).and_then(|c| {
            let customer_id = fields.parse("customer.customerId", c.customer_id, CustomerId::parse);
            let name = fields.parse("customer.name", c.name, CustomerName::parse);
            let phone = fields.parse("customer.phone", c.phone, PhoneNumber::parse);
            let address = fields
                .required("customer.address", c.address)
                .and_then(|a| a.convert(&mut fields, "customer.address."));
            Some(CustomerInfo::new(customer_id?, name?, phone?, address?))
        });
        let currency = fields.parse("currency", self.currency, |c| Currency::parse(&c));
        let items = fields.required("items", self.items).and_then(|items| {
            let lines: Vec<Option<OrderLine>> = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| item.convert(&mut fields, &format!("items[{i}].")))
                .collect();
            lines.into_iter().collect::<Option<Vec<_>>>()
        });
        let discount_codes = self
            .discount_codes
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, code)| {
                fields.check(&format!("discountCodes[{i}]"), DiscountCode::parse(code))
            })
            .collect::<Option<Vec<_>>>();
        let command = (|| {
            Some(PlaceOrder {
                id: id?,
                customer: customer?,
                currency: currency?,
                items: items?,
                discount_codes: discount_codes?,
            })
        })();
        fields.finish(command)
    }
}

/// `POST /orders/{id}/payment`: must cover the total (more is accepted).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PaymentRequest {
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    payment_id: Option<String>,
    #[schema(value_type = u64)]
    amount: Option<u64>,
    #[schema(value_type = super::openapi::PaymentMethod)]
    method: Option<String>,
}

impl PaymentRequest {
    /// `POST /orders/{id}/payment`.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub(super) fn try_into_domain(self) -> Result<(PaymentId, Amount, PaymentMethod), ApiError> {
        let mut fields = Fields::default();
        let payment_id = fields.parse("paymentId", self.payment_id, PaymentId::parse);
        let amount = fields.parse("amount", self.amount, Amount::new);
        let method = fields.parse("method", self.method, |m| PaymentMethod::parse(&m));
        let payment = (|| Some((payment_id?, amount?, method?)))();
        fields.finish(payment)
    }
}

/// `POST /orders/{id}/shipment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShipmentRequest {
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    tracking_number: Option<String>,
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    carrier: Option<String>,
}

impl ShipmentRequest {
    /// `POST /orders/{id}/shipment`.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub(super) fn try_into_domain(self) -> Result<(TrackingNumber, Carrier), ApiError> {
        let mut fields = Fields::default();
        let tracking = fields.parse(
            "trackingNumber",
            self.tracking_number,
            TrackingNumber::parse,
        );
        let carrier = fields.parse("carrier", self.carrier, Carrier::parse);
        let shipment = (|| Some((tracking?, carrier?)))();
        fields.finish(shipment)
    }
}

/// `POST /orders/{id}/cancellation`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CancellationRequest {
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    reason: Option<String>,
}

impl CancellationRequest {
    /// `POST /orders/{id}/cancellation`.
    ///
    /// # Errors
    /// 422 when the reason is missing or invalid.
    pub(super) fn try_into_domain(self) -> Result<CancellationReason, ApiError> {
        let mut fields = Fields::default();
        let reason = fields.parse("reason", self.reason, CancellationReason::parse);
        fields.finish(reason)
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
