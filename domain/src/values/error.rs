use thiserror::Error;

/// Why a value was refused by a value object's constructor.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must be between {min} and {max}")]
    OutOfRange { min: u64, max: u64 },
    #[error("is not a known ISO 4217 currency code")]
    UnknownCurrency,
    #[error("is not a known ISO 3166-1 alpha-2 country code")]
    UnknownCountry,
    #[error("must be one of {expected}")]
    NotOneOf { expected: &'static str },
    #[error("is not a valid UUID")]
    InvalidUuid,
}
