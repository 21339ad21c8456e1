//! Requests as both APIs receive them, before any rule is checked: every field
//! optional, so that converting with `try_into_domain` names every missing or invalid
//! one at once (as `items[0].unitPrice`, the name both APIs report). HTTP fills these
//! from its JSON bodies, gRPC from its messages; neither parses a domain type itself,
//! so both accept and refuse exactly the same inputs.

use domain::{
    Address, AddressLine, Amount, CancellationReason, Carrier, City, CountryCode, Currency,
    CustomerId, CustomerInfo, CustomerName, DiscountCode, OrderId, OrderLine, PaymentId,
    PaymentMethod, PhoneNumber, PlaceOrder, PostalCode, ProductId, Quantity, TrackingNumber,
    UnitPrice, ValueError,
};
use uuid::Uuid;

use crate::problem::{FieldError, Problem};

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

    fn finish<T>(self, value: Option<T>) -> Result<T, Problem> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(Problem::validation(self.0)),
        }
    }
}

/// A postal address.
#[derive(Debug, Clone, Default)]
pub struct AddressInput {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

impl AddressInput {
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

    /// A new delivery address.
    ///
    /// # Errors
    /// Validation naming every invalid field.
    pub fn try_into_domain(self) -> Result<Address, Problem> {
        let mut fields = Fields::default();
        let address = self.convert(&mut fields, "");
        fields.finish(address)
    }
}

/// Who places the order.
#[derive(Debug, Clone, Default)]
pub struct CustomerInput {
    pub customer_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<AddressInput>,
}

impl CustomerInput {
    fn convert(self, fields: &mut Fields) -> Option<CustomerInfo> {
        let customer_id = fields.parse("customer.customerId", self.customer_id, CustomerId::parse);
        let name = fields.parse("customer.name", self.name, CustomerName::parse);
        let phone = fields.parse("customer.phone", self.phone, PhoneNumber::parse);
        let address = fields
            .required("customer.address", self.address)
            .and_then(|a| a.convert(fields, "customer.address."));
        Some(CustomerInfo::new(customer_id?, name?, phone?, address?))
    }
}

/// A line as a client asks for it (amounts in the currency's minor unit).
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    pub product_id: Option<String>,
    pub quantity: Option<u64>,
    pub unit_price: Option<u64>,
}

impl ItemInput {
    fn convert(self, fields: &mut Fields, at: &str) -> Option<OrderLine> {
        let product_id = fields.parse(&format!("{at}productId"), self.product_id, ProductId::parse);
        let quantity = fields.parse(&format!("{at}quantity"), self.quantity, Quantity::new);
        let unit_price = fields.parse(&format!("{at}unitPrice"), self.unit_price, UnitPrice::new);
        Some(OrderLine::new(product_id?, quantity?, unit_price?))
    }

    /// A line to add.
    ///
    /// # Errors
    /// Validation naming every invalid field.
    pub fn try_into_domain(self) -> Result<OrderLine, Problem> {
        let mut fields = Fields::default();
        let line = self.convert(&mut fields, "");
        fields.finish(line)
    }
}

/// A new order.
#[derive(Debug, Clone, Default)]
pub struct PlaceOrderInput {
    /// The client's id for the order; a fresh UUID v7 when absent.
    pub order_id: Option<String>,
    pub customer: Option<CustomerInput>,
    pub currency: Option<String>,
    pub items: Option<Vec<ItemInput>>,
    pub discount_codes: Option<Vec<String>>,
}

impl PlaceOrderInput {
    /// The command; a missing `orderId` gets a fresh UUID v7.
    ///
    /// # Errors
    /// Validation naming every invalid field.
    pub fn try_into_domain(self) -> Result<PlaceOrder, Problem> {
        let mut fields = Fields::default();
        let id = fields
            .parse_optional("orderId", self.order_id, |id| OrderId::parse(&id))
            .map(|id| id.unwrap_or_else(|| OrderId::from_uuid(Uuid::now_v7())));
        let customer = fields
            .required("customer", self.customer)
            .and_then(|c| c.convert(&mut fields));
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

/// A payment: must cover the total (more is accepted).
#[derive(Debug, Clone, Default)]
pub struct PaymentInput {
    pub payment_id: Option<String>,
    pub amount: Option<u64>,
    /// `card`, `bank_transfer` or `cash_on_delivery`.
    pub method: Option<String>,
}

impl PaymentInput {
    /// The payment's id, amount and method.
    ///
    /// # Errors
    /// Validation naming every invalid field.
    pub fn try_into_domain(self) -> Result<(PaymentId, Amount, PaymentMethod), Problem> {
        let mut fields = Fields::default();
        let payment_id = fields.parse("paymentId", self.payment_id, PaymentId::parse);
        let amount = fields.parse("amount", self.amount, Amount::new);
        let method = fields.parse("method", self.method, |m| PaymentMethod::parse(&m));
        let payment = (|| Some((payment_id?, amount?, method?)))();
        fields.finish(payment)
    }
}

/// A shipment.
#[derive(Debug, Clone, Default)]
pub struct ShipmentInput {
    pub tracking_number: Option<String>,
    pub carrier: Option<String>,
}

impl ShipmentInput {
    /// The tracking number and the carrier.
    ///
    /// # Errors
    /// Validation naming every invalid field.
    pub fn try_into_domain(self) -> Result<(TrackingNumber, Carrier), Problem> {
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

/// A cancellation.
#[derive(Debug, Clone, Default)]
pub struct CancellationInput {
    pub reason: Option<String>,
}

impl CancellationInput {
    /// The reason.
    ///
    /// # Errors
    /// Validation when the reason is missing or invalid.
    pub fn try_into_domain(self) -> Result<CancellationReason, Problem> {
        let mut fields = Fields::default();
        let reason = fields.parse("reason", self.reason, CancellationReason::parse);
        fields.finish(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_field_of_a_new_order_is_named_at_once() {
        let refused = PlaceOrderInput {
            customer: Some(CustomerInput::default()),
            items: Some(vec![ItemInput::default()]),
            ..PlaceOrderInput::default()
        }
        .try_into_domain()
        .unwrap_err();
        let fields: Vec<&str> = refused.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "customer.customerId",
                "customer.name",
                "customer.phone",
                "customer.address",
                "currency",
                "items[0].productId",
                "items[0].quantity",
                "items[0].unitPrice",
            ]
        );
    }

    #[test]
    fn an_absent_order_id_gets_a_fresh_one_and_a_malformed_one_is_named() {
        let refused = PlaceOrderInput {
            order_id: Some("nope".to_owned()),
            ..PlaceOrderInput::default()
        }
        .try_into_domain()
        .unwrap_err();
        assert_eq!(refused.errors[0].field, "orderId");
    }
}
