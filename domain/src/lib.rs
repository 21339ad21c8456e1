//! The order domain: the `Order` aggregate, its value objects, its domain events and
//! the discount policy it is priced by.
//!
//! Everything here is pure: no I/O, no async, no clock. Time comes in as an argument
//! (`now`) so that a behaviour is a function of the state and the command, and
//! replaying recorded events rebuilds an aggregate exactly.
//!
//! # Layout
//! - [`values`]: immutable value objects (`OrderId`, `CustomerInfo`, `Address`,
//!   `Currency`, `OrderLine`, ...), each with a validating constructor.
//! - [`order`]: the aggregate root, its factory, behaviours, events and errors.
//!
//! Domain events derive `Deserialize` only through the validating constructors of the
//! value objects they hold (`#[serde(try_from = ...)]`), so a stored event can never
//! rebuild a value the constructors would have refused. Request bodies never
//! deserialize into domain types: adapters parse them and convert with the constructors.

pub mod order;
pub mod values;

pub use order::{
    DiscountPolicy, DiscountTable, DiscountTableError, HistoryError, Order, OrderError, OrderEvent,
    OrderFactory, OrderSnapshot, OrderStatus, PlaceOrder, RecordedEvent,
};
pub use values::*;
