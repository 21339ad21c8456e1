//! Errors as RFC 9457 problem details (`application/problem+json`). Every 4xx and 5xx
//! of the API goes through [`ApiError`].

use application::{CommandError, QueryError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::OrderError;

use crate::auth::AuthError;
use serde::Serialize;

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// An error answer: status, a problem type, a human detail and, for validation, the
/// fields at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The last segment of the problem `type` URI, e.g. `invalid-state`.
    pub kind: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 400: the body is not JSON, or a path, query or header parameter is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422 with the invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            kind: "validation",
            detail,
            errors,
        }
    }

    /// 403: authenticated, but the role does not allow it.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 500: says nothing internal; the caller has logged the cause.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    /// 503: the database is unreachable and nothing was written.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; nothing was written, retry later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = ProblemBody {
            kind: format!("/problems/{}", self.kind),
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.kind == "invalid-token" {
                "Bearer error=\"invalid_token\""
            } else {
                "Bearer"
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(rule) => rule.into(),
            CommandError::NotFound(id) => Self::not_found(format!("order {id} does not exist")),
            CommandError::Forbidden(why) => Self::forbidden(why.0),
            CommandError::AlreadyExists(id) => Self::new(
                StatusCode::CONFLICT,
                "already-exists",
                format!("order {id} already exists"),
            ),
            CommandError::VersionMismatch { expected, actual } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                format!("If-Match expected version {expected}, the order is at version {actual}"),
            ),
            e @ CommandError::Conflict { .. } => {
                Self::new(StatusCode::CONFLICT, "concurrency-conflict", e.to_string())
            }
            CommandError::IdempotencyKeyReused => Self::validation(vec![FieldError::new(
                "Idempotency-Key",
                "was already used with another method, path or body",
            )]),
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

impl From<OrderError> for ApiError {
    fn from(rule: OrderError) -> Self {
        match &rule {
            OrderError::InvalidState { .. } => {
                Self::new(StatusCode::CONFLICT, "invalid-state", rule.to_string())
            }
            OrderError::LineNotFound(_) => Self::not_found(rule.to_string()),
            _ => Self::validation(vec![FieldError::new(
                rule_field(&rule).unwrap_or("body"),
                rule.to_string(),
            )]),
        }
    }
}

impl From<QueryError> for ApiError {
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

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                error.to_string(),
            ),
            AuthError::Invalid(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid-token", error.to_string())
            }
            AuthError::BadUserHeader => Self::bad_request(error.to_string()),
        }
    }
}

/// The error and all its sources, `: `-separated, for the log.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The request field (as the wire names it) an order rule is about, for clients that
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
