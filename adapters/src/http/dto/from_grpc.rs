//! gRPC request messages as the HTTP request bodies they stand for, converted with the
//! same `try_into_domain`: both APIs accept and refuse exactly the same inputs, and
//! name the same fields (HTTP's camelCase JSON paths) when they refuse.
//!
//! A child of `dto` so that it can fill the bodies' private fields; the gRPC service
//! calls these functions and never sees the bodies.

use domain::{
    Address, Amount, CancellationReason, Carrier, OrderLine, PaymentId, PaymentMethod, PlaceOrder,
    TrackingNumber,
};

use super::{
    AddressRequest, CancellationRequest, CreateOrderRequest, CustomerRequest, ItemRequest,
    PaymentRequest, ShipmentRequest,
};
use crate::grpc::proto;
use crate::http::ApiError;

impl From<proto::Address> for AddressRequest {
    fn from(address: proto::Address) -> Self {
        Self {
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            postal_code: address.postal_code,
            country: address.country,
        }
    }
}

impl From<proto::Customer> for CustomerRequest {
    fn from(customer: proto::Customer) -> Self {
        Self {
            customer_id: customer.customer_id,
            name: customer.name,
            phone: customer.phone,
            address: customer.address.map(AddressRequest::from),
        }
    }
}

impl From<proto::Item> for ItemRequest {
    fn from(item: proto::Item) -> Self {
        Self {
            product_id: item.product_id,
            quantity: item.quantity,
            unit_price: item.unit_price,
        }
    }
}

/// `CreateOrder` as `POST /orders`: no line is a missing `items`, no code an absent
/// `discountCodes` (protobuf cannot tell an empty list from a missing one).
///
/// # Errors
/// INVALID_ARGUMENT (422) naming every invalid field.
pub(crate) fn place_order(request: proto::CreateOrderRequest) -> Result<PlaceOrder, ApiError> {
    CreateOrderRequest {
        order_id: request.order_id,
        customer: request.customer.map(CustomerRequest::from),
        currency: request.currency,
        items: (!request.items.is_empty())
            .then(|| request.items.into_iter().map(ItemRequest::from).collect()),
        discount_codes: (!request.discount_codes.is_empty()).then_some(request.discount_codes),
    }
    .try_into_domain()
}

/// `AddItem` as the body of `POST /orders/{id}/items`.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn new_line(request: &proto::AddItemRequest) -> Result<OrderLine, ApiError> {
    ItemRequest {
        product_id: request.product_id.clone(),
        quantity: request.quantity,
        unit_price: request.unit_price,
    }
    .try_into_domain()
}

/// `ChangeDeliveryAddress` as the body of `PUT /orders/{id}/delivery-address`; no
/// address is the empty body `{}`.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn delivery_address(
    request: &proto::ChangeDeliveryAddressRequest,
) -> Result<Address, ApiError> {
    AddressRequest::from(request.address.clone().unwrap_or_default()).try_into_domain()
}

/// `Pay` as the body of `POST /orders/{id}/payment`. An unspecified method is a
/// missing `method`; a number that is no method is refused as an unknown name is.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn payment(
    request: &proto::PayRequest,
) -> Result<(PaymentId, Amount, PaymentMethod), ApiError> {
    use proto::PaymentMethod as Method;
    let method = match Method::try_from(request.method) {
        Ok(Method::Unspecified) => None,
        Ok(Method::Card) => Some(PaymentMethod::Card.as_str().to_owned()),
        Ok(Method::BankTransfer) => Some(PaymentMethod::BankTransfer.as_str().to_owned()),
        Ok(Method::CashOnDelivery) => Some(PaymentMethod::CashOnDelivery.as_str().to_owned()),
        Err(_) => Some(request.method.to_string()),
    };
    PaymentRequest {
        payment_id: request.payment_id.clone(),
        amount: request.amount,
        method,
    }
    .try_into_domain()
}

/// `Ship` as the body of `POST /orders/{id}/shipment`.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn shipment(
    request: &proto::ShipRequest,
) -> Result<(TrackingNumber, Carrier), ApiError> {
    ShipmentRequest {
        tracking_number: request.tracking_number.clone(),
        carrier: request.carrier.clone(),
    }
    .try_into_domain()
}

/// `Cancel` as the body of `POST /orders/{id}/cancellation`.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn cancellation(request: &proto::CancelRequest) -> Result<CancellationReason, ApiError> {
    CancellationRequest {
        reason: request.reason.clone(),
    }
    .try_into_domain()
}
