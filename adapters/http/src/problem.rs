//! Errors as RFC 9457 problem details (`application/problem+json`). Every 4xx and 5xx
//! of the API goes through [`ApiError`]: the core's [`Problem`], given its HTTP status
//! and headers here.

use application::{CommandError, QueryError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::OrderError;
use order_api::{AuthError, CommandWire, FieldError, Problem, ProblemKind};
use serde::Serialize;

/// An error answer over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub Problem);

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

/// The HTTP status of each kind of problem (API.md, Errors).
pub fn status(kind: ProblemKind) -> StatusCode {
    match kind {
        ProblemKind::BadRequest => StatusCode::BAD_REQUEST,
        ProblemKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
        ProblemKind::Unauthenticated | ProblemKind::InvalidToken => StatusCode::UNAUTHORIZED,
        ProblemKind::Forbidden => StatusCode::FORBIDDEN,
        ProblemKind::NotFound => StatusCode::NOT_FOUND,
        ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ProblemKind::AlreadyExists
        | ProblemKind::InvalidState
        | ProblemKind::ConcurrencyConflict => StatusCode::CONFLICT,
        ProblemKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ProblemKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ProblemKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ProblemKind::Overloaded | ProblemKind::Timeout | ProblemKind::Unavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self(Problem::new(kind, detail))
    }

    /// 400: the body is not JSON, or a path, query or header parameter is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self(Problem::bad_request(detail))
    }

    /// 422 with the invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self(Problem::validation(errors))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self(Problem::not_found(detail))
    }

    /// 500: says nothing internal; the caller has logged the cause.
    pub fn internal() -> Self {
        Self(Problem::internal())
    }

    /// 503: the database is unreachable and nothing was written.
    pub fn unavailable() -> Self {
        Self(Problem::unavailable())
    }

    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        status(self.0.kind)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let Problem {
            kind,
            detail,
            errors,
        } = self.0;
        let body = ProblemBody {
            kind: format!("/problems/{}", kind.slug()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: &detail,
            errors: &errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            let challenge = if kind == ProblemKind::InvalidToken {
                "Bearer error=\"invalid_token\""
            } else {
                "Bearer"
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The two command errors in HTTP's words: its `If-Match` and `Idempotency-Key` headers.
struct HttpWire;

impl CommandWire for HttpWire {
    fn version_mismatch(&self, expected: u64, actual: u64) -> String {
        format!("If-Match expected version {expected}, the order is at version {actual}")
    }

    fn key_reused(&self) -> FieldError {
        FieldError::new(
            "Idempotency-Key",
            "was already used with another method, path or body",
        )
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self(problem)
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        Self(Problem::from_command(error, &HttpWire))
    }
}

impl From<OrderError> for ApiError {
    fn from(rule: OrderError) -> Self {
        Self(rule.into())
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        Self(error.into())
    }
}

impl From<application::AdminError> for ApiError {
    fn from(error: application::AdminError) -> Self {
        Self(error.into())
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self(error.into())
    }
}
