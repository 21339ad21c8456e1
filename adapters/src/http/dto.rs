//! Request and response bodies. Requests deserialize into these plain types (never into
//! domain types) and convert with `try_into_domain`, which reports every invalid field.

use chrono::{DateTime, Utc};
use domain::{
    Address, AddressLine, Amount, CancellationReason, Carrier, City, CountryCode, Currency,
    CustomerId, CustomerInfo, CustomerName, DiscountCode, NewLine, Order, OrderId, OrderLine,
    PaymentId, PaymentMethod, PhoneNumber, PlaceOrder, PostalCode, ProductId, Quantity,
    TrackingNumber, UnitPrice, ValueError,
};
use serde::{Deserialize, Serialize};
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AddressRequest {
    line1: Option<String>,
    line2: Option<String>,
    city: Option<String>,
    postal_code: Option<String>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CustomerRequest {
    customer_id: Option<String>,
    name: Option<String>,
    phone: Option<String>,
    address: Option<AddressRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ItemRequest {
    product_id: Option<String>,
    quantity: Option<u64>,
    unit_price: Option<u64>,
}

impl ItemRequest {
    fn convert(self, fields: &mut Fields, at: &str) -> Option<NewLine> {
        let product_id = fields.parse(&format!("{at}productId"), self.product_id, ProductId::parse);
        let quantity = fields.parse(&format!("{at}quantity"), self.quantity, Quantity::new);
        let unit_price = fields.parse(&format!("{at}unitPrice"), self.unit_price, UnitPrice::new);
        Some(OrderLine::new(product_id?, quantity?, unit_price?))
    }

    /// `POST /orders/{id}/items`.
    ///
    /// # Errors
    /// 422 naming every invalid field.
    pub(super) fn try_into_domain(self) -> Result<NewLine, ApiError> {
        let mut fields = Fields::default();
        let line = self.convert(&mut fields, "");
        fields.finish(line)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateOrderRequest {
    order_id: Option<String>,
    customer: Option<CustomerRequest>,
    currency: Option<String>,
    items: Option<Vec<ItemRequest>>,
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
            let lines: Vec<Option<NewLine>> = items
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PaymentRequest {
    payment_id: Option<String>,
    amount: Option<u64>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ShipmentRequest {
    tracking_number: Option<String>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CancellationRequest {
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
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AckResponse {
    pub order_id: OrderId,
    pub version: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LineResponse<'a> {
    product_id: &'a ProductId,
    quantity: u64,
    unit_price: u64,
    line_total: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentResponse<'a> {
    payment_id: &'a PaymentId,
    amount: Amount,
    method: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentResponse<'a> {
    tracking_number: &'a TrackingNumber,
    carrier: &'a Carrier,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CancellationResponse<'a> {
    reason: &'a CancellationReason,
    refund_amount: Amount,
}

/// `GET /orders/{id}`: the order, rebuilt from its events.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderResponse<'a> {
    order_id: OrderId,
    customer: &'a CustomerInfo,
    currency: Currency,
    items: Vec<LineResponse<'a>>,
    discount_codes: &'a [DiscountCode],
    discount_percent: u8,
    subtotal: Amount,
    discount: Amount,
    total: Amount,
    status: &'static str,
    delivery_address: &'a Address,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<PaymentResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipment: Option<ShipmentResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation: Option<CancellationResponse<'a>>,
    version: u64,
    created_at: String,
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
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SummaryResponse<'a> {
    order_id: OrderId,
    customer_id: &'a str,
    status: &'static str,
    total: u64,
    currency: &'a str,
    item_count: usize,
    version: u64,
    created_at: String,
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
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SummaryPageResponse<'a> {
    pub(super) items: Vec<SummaryResponse<'a>>,
    /// `null` on the last page.
    pub(super) next_cursor: Option<String>,
}
