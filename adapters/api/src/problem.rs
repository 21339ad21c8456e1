//! What went wrong with a request, in the API's terms and no transport's: a
//! [`ProblemKind`], a human detail and, for validation, the fields at fault. HTTP
//! turns a [`Problem`] into a status and problem+json, gRPC into a code with details;
//! both decide from the same kind, so they refuse alike.

use application::{AdminError, CommandError, QueryError, StoreError};
use domain::OrderError;

use crate::auth::AuthError;

/// Every kind of problem the APIs answer. The slug ([`ProblemKind::slug`]) is the last
/// segment of the problem `type` URI over HTTP and the `ErrorInfo` reason over gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A path, query, header or metadata parameter is malformed, or the body is not JSON.
    BadRequest,
    /// Fields of the request are missing, malformed or break a rule of the order.
    Validation,
    /// No credential where one is required.
    Unauthenticated,
    /// A credential that is malformed, wrongly signed, expired or incomplete.
    InvalidToken,
    /// Authenticated, but the role does not allow it.
    Forbidden,
    /// No such order, line or route.
    NotFound,
    /// The method is not served on the path.
    MethodNotAllowed,
    /// An order with the id exists already.
    AlreadyExists,
    /// The command is not allowed in the order's state.
    InvalidState,
    /// A race on the order that retries did not resolve.
    ConcurrencyConflict,
    /// The expected version did not match.
    PreconditionFailed,
    /// The request is larger than the limit.
    PayloadTooLarge,
    /// The body is not of the accepted media type.
    UnsupportedMediaType,
    /// Every request permit is taken.
    Overloaded,
    /// The request took longer than the limit (and wrote nothing).
    Timeout,
    /// The database is unreachable; nothing was written.
    Unavailable,
    /// A bug; the detail says nothing internal.
    Internal,
}

impl ProblemKind {
    /// The kebab-case name, e.g. `invalid-state`.
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Validation => "validation",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidToken => "invalid-token",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::AlreadyExists => "already-exists",
            Self::InvalidState => "invalid-state",
            Self::ConcurrencyConflict => "concurrency-conflict",
            Self::PreconditionFailed => "precondition-failed",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// One invalid field of a request, named as the wire names it (`items[0].unitPrice`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answer: its kind, a human detail and, for validation, the fields at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A malformed parameter, or a body that is not JSON.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::BadRequest, detail)
    }

    /// The invalid fields; the detail lists them.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            kind: ProblemKind::Validation,
            detail,
            errors,
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::NotFound, detail)
    }

    /// Says nothing internal; the caller has logged the cause.
    pub fn internal() -> Self {
        Self::new(
            ProblemKind::Internal,
            "an internal error occurred; it has been logged",
        )
    }

    /// The database is unreachable and nothing was written.
    pub fn unavailable() -> Self {
        Self::new(
            ProblemKind::Unavailable,
            "the database is unavailable; nothing was written, retry later",
        )
    }

    /// A command's error. The two whose wording names a transport's own header or
    /// field (a version mismatch, a reused idempotency key) are worded by `wire`.
    pub fn from_command(error: CommandError, wire: &dyn CommandWire) -> Self {
        match error {
            CommandError::Rejected(rule) => rule.into(),
            CommandError::NotFound(id) => Self::not_found(format!("order {id} does not exist")),
            CommandError::Forbidden(why) => Self::forbidden(why.0),
            CommandError::AlreadyExists(id) => Self::new(
                ProblemKind::AlreadyExists,
                format!("order {id} already exists"),
            ),
            CommandError::VersionMismatch { expected, actual } => Self::new(
                ProblemKind::PreconditionFailed,
                wire.version_mismatch(expected, actual),
            ),
            e @ CommandError::Conflict { .. } => {
                Self::new(ProblemKind::ConcurrencyConflict, e.to_string())
            }
            CommandError::IdempotencyKeyReused => Self::validation(vec![wire.key_reused()]),
            CommandError::Unavailable(cause) => {
                tracing::warn!(error = %error_chain(&cause), "database unavailable");
                Self::unavailable()
            }
            CommandError::Internal(cause) => {
                tracing::error!(error = %error_chain(&cause), "command failed");
                Self::internal()
            }
        }
    }
}

/// How a transport words the two command errors that name its own header or field.
pub trait CommandWire {
    /// The expected version (`If-Match`, `expected_version`) did not match.
    fn version_mismatch(&self, expected: u64, actual: u64) -> String;
    /// The idempotency key was used before with another request.
    fn key_reused(&self) -> FieldError;
}

impl From<OrderError> for Problem {
    fn from(rule: OrderError) -> Self {
        match &rule {
            OrderError::InvalidState { .. } => {
                Self::new(ProblemKind::InvalidState, rule.to_string())
            }
            OrderError::LineNotFound(_) => Self::not_found(rule.to_string()),
            _ => Self::validation(vec![FieldError::new(
                rule_field(&rule).unwrap_or("body"),
                rule.to_string(),
            )]),
        }
    }
}

impl From<QueryError> for Problem {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::NotFound(id) => Self::not_found(format!("order {id} does not exist")),
            QueryError::Forbidden(why) => Self::forbidden(why.0),
            QueryError::Unavailable(cause) => {
                tracing::warn!(error = %error_chain(&cause), "database unavailable");
                Self::unavailable()
            }
            QueryError::Internal(cause) => {
                tracing::error!(error = %error_chain(&cause), "query failed");
                Self::internal()
            }
        }
    }
}

impl From<AdminError> for Problem {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Forbidden(why) => Self::forbidden(why.0),
            AdminError::NotFound(what) => Self::not_found(what),
            e @ AdminError::JobRunning(_) => Self::new(ProblemKind::InvalidState, e.to_string()),
            AdminError::Store(StoreError::Unavailable(cause)) => {
                tracing::warn!(error = %error_chain(&*cause), "database unavailable");
                Self::unavailable()
            }
            AdminError::Store(cause) => {
                tracing::error!(error = %error_chain(&cause), "administration failed");
                Self::internal()
            }
        }
    }
}

impl From<AuthError> for Problem {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => Self::new(ProblemKind::Unauthenticated, error.to_string()),
            AuthError::Invalid(_) => Self::new(ProblemKind::InvalidToken, error.to_string()),
            AuthError::BadUserHeader => Self::bad_request(error.to_string()),
            AuthError::KeysUnavailable => Self::new(ProblemKind::Unavailable, error.to_string()),
        }
    }
}

/// The error and all its sources, `: `-separated, for the log.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The request field (as both APIs name it) an order rule is about, for clients that
/// show errors per field. The names belong to the API, not to the domain.
fn rule_field(rule: &OrderError) -> Option<&'static str> {
    match rule {
        OrderError::InvalidState { .. } | OrderError::LineNotFound(_) => None,
        OrderError::NoLines | OrderError::TooManyLines { .. } | OrderError::DuplicateProduct(_) => {
            Some("items")
        }
        OrderError::PriceMismatch { .. } => Some("unitPrice"),
        OrderError::QuantityLimit(_) => Some("quantity"),
        OrderError::AmountOverflow => Some("items"),
        OrderError::LastLine => Some("productId"),
        OrderError::PaymentBelowTotal { .. } => Some("amount"),
        OrderError::UnknownDiscountCode(_)
        | OrderError::DuplicateDiscountCode(_)
        | OrderError::TooManyDiscountCodes { .. } => Some("discountCodes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_problem_lists_its_fields_in_the_detail() {
        let problem = Problem::validation(vec![
            FieldError::new("currency", "is required"),
            FieldError::new("items[0].quantity", "must be 1 to 1000000"),
        ]);
        assert_eq!(problem.kind, ProblemKind::Validation);
        assert_eq!(
            problem.detail,
            "currency: is required; items[0].quantity: must be 1 to 1000000"
        );
    }

    #[test]
    fn an_order_rule_names_the_field_it_is_about() {
        let problem = Problem::from(OrderError::NoLines);
        assert_eq!(problem.kind, ProblemKind::Validation);
        assert_eq!(problem.errors[0].field, "items");
    }
}
