//! Request messages as the API core's inputs (`order_api::requests`), converted there
//! with the same `try_into_domain` as HTTP's bodies: both APIs accept and refuse
//! exactly the same inputs, and name the same fields (the core's camelCase paths)
//! when they refuse.

use domain::{
    Address, Amount, CancellationReason, Carrier, OrderLine, PaymentId, PaymentMethod, PlaceOrder,
    TrackingNumber,
};
use order_api::requests::{
    AddressInput, CancellationInput, CustomerInput, ItemInput, PaymentInput, PlaceOrderInput,
    ShipmentInput,
};
use order_api::Problem;

use crate::proto;

fn address(address: proto::Address) -> AddressInput {
    AddressInput {
        line1: address.line1,
        line2: address.line2,
        city: address.city,
        postal_code: address.postal_code,
        country: address.country,
    }
}

fn customer(customer: proto::Customer) -> CustomerInput {
    CustomerInput {
        customer_id: customer.customer_id,
        name: customer.name,
        phone: customer.phone,
        address: customer.address.map(address),
    }
}

fn item(item: proto::Item) -> ItemInput {
    ItemInput {
        product_id: item.product_id,
        quantity: item.quantity,
        unit_price: item.unit_price,
    }
}

/// `CreateOrder` as `POST /orders`: no line is a missing `items`, no code an absent
/// `discountCodes` (protobuf cannot tell an empty list from a missing one).
///
/// # Errors
/// Validation (INVALID_ARGUMENT) naming every invalid field.
pub(crate) fn place_order(request: proto::CreateOrderRequest) -> Result<PlaceOrder, Problem> {
    PlaceOrderInput {
        order_id: request.order_id,
        customer: request.customer.map(customer),
        currency: request.currency,
        items: (!request.items.is_empty()).then(|| request.items.into_iter().map(item).collect()),
        discount_codes: (!request.discount_codes.is_empty()).then_some(request.discount_codes),
    }
    .try_into_domain()
}

/// `AddItem` as the body of `POST /orders/{id}/items`.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn new_line(request: &proto::AddItemRequest) -> Result<OrderLine, Problem> {
    ItemInput {
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
) -> Result<Address, Problem> {
    address(request.address.clone().unwrap_or_default()).try_into_domain()
}

/// `Pay` as the body of `POST /orders/{id}/payment`. An unspecified method is a
/// missing `method`; a number that is no method is refused as an unknown name is.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn payment(
    request: &proto::PayRequest,
) -> Result<(PaymentId, Amount, PaymentMethod), Problem> {
    use proto::PaymentMethod as Method;
    let method = match Method::try_from(request.method) {
        Ok(Method::Unspecified) => None,
        Ok(Method::Card) => Some(PaymentMethod::Card.as_str().to_owned()),
        Ok(Method::BankTransfer) => Some(PaymentMethod::BankTransfer.as_str().to_owned()),
        Ok(Method::CashOnDelivery) => Some(PaymentMethod::CashOnDelivery.as_str().to_owned()),
        Err(_) => Some(request.method.to_string()),
    };
    PaymentInput {
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
pub(crate) fn shipment(request: &proto::ShipRequest) -> Result<(TrackingNumber, Carrier), Problem> {
    ShipmentInput {
        tracking_number: request.tracking_number.clone(),
        carrier: request.carrier.clone(),
    }
    .try_into_domain()
}

/// `Cancel` as the body of `POST /orders/{id}/cancellation`.
///
/// # Errors
/// As [`place_order`].
pub(crate) fn cancellation(request: &proto::CancelRequest) -> Result<CancellationReason, Problem> {
    CancellationInput {
        reason: request.reason.clone(),
    }
    .try_into_domain()
}
