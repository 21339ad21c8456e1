use thiserror::Error;

use super::OrderStatus;
use crate::values::{Amount, DiscountCode, ProductId};

/// A business rule of the order refused a command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    /// The order's lifecycle does not allow this command now.
    #[error("cannot {action} an order that is {status}")]
    InvalidState {
        action: &'static str,
        status: OrderStatus,
    },
    #[error("an order needs at least one line")]
    NoLines,
    #[error("an order holds at most {max} lines")]
    TooManyLines { max: usize },
    #[error("product {0} appears on more than one line")]
    DuplicateProduct(ProductId),
    #[error("product {product} is already in the order at unit price {existing}, not {requested}")]
    PriceMismatch {
        product: ProductId,
        existing: u64,
        requested: u64,
    },
    #[error("the quantity of product {0} would exceed 1000000")]
    QuantityLimit(ProductId),
    #[error("the order's amounts would overflow")]
    AmountOverflow,
    #[error("product {0} is not in the order")]
    LineNotFound(ProductId),
    #[error("the last line of an order cannot be removed; cancel the order instead")]
    LastLine,
    #[error("the payment of {amount} does not cover the total of {total}")]
    PaymentBelowTotal { amount: Amount, total: Amount },
    #[error("discount code {0} is not known")]
    UnknownDiscountCode(DiscountCode),
    #[error("discount code {0} is given more than once")]
    DuplicateDiscountCode(DiscountCode),
    #[error("at most {max} discount codes may be given")]
    TooManyDiscountCodes { max: usize },
}

/// A stored stream that cannot be an order's history (a bug or a damaged store).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HistoryError {
    #[error("the stream does not start with OrderCreated")]
    NotStartedByCreation,
    #[error("OrderCreated appears again at version {0}")]
    CreatedTwice(u64),
    #[error("expected version {expected}, found {found}")]
    VersionGap { expected: u64, found: u64 },
    #[error("event at version {version} does not apply to the state: {reason}")]
    Inapplicable { version: u64, reason: ApplyError },
}

/// Why an event does not apply to the state it follows. The behaviours check every
/// rule before they record an event, so only a damaged history (or a bug) gets here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    #[error("an order is created only once")]
    CreatedAgain,
    #[error("the merged quantity of product {0} is over the limit")]
    QuantityOverLimit(ProductId),
    #[error("no line for product {0}")]
    NoLine(ProductId),
}
