//! Value objects: immutable, compared by value, valid by construction.
//!
//! Each has a constructor (`parse` or `new`) that returns a [`ValueError`] saying
//! what is wrong; the caller knows which field it was reading and names it.

mod address;
mod amount;
mod country;
mod currency;
mod customer;
mod discount;
mod error;
mod order_id;
mod order_line;
mod payment;
mod quantity;
mod text;

pub use address::Address;
pub use amount::{Amount, UnitPrice};
pub use country::CountryCode;
pub use currency::Currency;
pub use customer::CustomerInfo;
pub use discount::{DiscountCode, DiscountPercent};
pub use error::ValueError;
pub use order_id::OrderId;
pub use order_line::OrderLine;
pub use payment::{Cancellation, Payment, PaymentMethod, Shipment};
pub use quantity::Quantity;
pub use text::{
    AddressLine, CancellationReason, Carrier, City, CustomerId, CustomerName, PaymentId,
    PhoneNumber, PostalCode, ProductId, TrackingNumber,
};
