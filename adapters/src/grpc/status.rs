//! Errors as gRPC statuses, per API.md's table: every error is first the HTTP API's
//! [`ApiError`] (so both APIs decide alike, and a 5xx is logged once, there), then the
//! status code of its HTTP status. The message is the problem's `detail`; details
//! carry a `google.rpc.ErrorInfo` whose reason is the problem type (`INVALID_STATE`,
//! `CONCURRENCY_CONFLICT`, ...) and, for validation, a `google.rpc.BadRequest` naming
//! each field.

use std::collections::HashMap;

use application::{CommandError, QueryError};
use axum::http::StatusCode;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::auth::AuthError;
use crate::http::{ApiError, FieldError};

/// The `domain` of every `google.rpc.ErrorInfo` of this service.
const ERROR_DOMAIN: &str = "orders.v1";

/// The gRPC code of an HTTP error status.
pub(crate) fn code(status: StatusCode, kind: &str) -> Code {
    match status.as_u16() {
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 if kind == "already-exists" => Code::AlreadyExists,
        409 if kind == "concurrency-conflict" => Code::Aborted,
        409 => Code::FailedPrecondition,
        412 => Code::Aborted,
        413 => Code::OutOfRange,
        503 => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// The status of an HTTP API error.
pub(crate) fn from_api(error: ApiError) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        error.kind.to_uppercase().replace('-', "_"),
        ERROR_DOMAIN,
        HashMap::new(),
    );
    if !error.errors.is_empty() {
        details.set_bad_request(
            error
                .errors
                .iter()
                .map(|e| FieldViolation::new(&e.field, &e.message))
                .collect::<Vec<_>>(),
        );
    }
    Status::with_error_details(code(error.status, error.kind), error.detail, details)
}

/// INVALID_ARGUMENT naming one field or metadata key: HTTP's 400 for a malformed path,
/// query or header parameter.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Status {
    let mut error = ApiError::validation(vec![FieldError::new(field, message)]);
    error.kind = "bad-request";
    from_api(error)
}

/// A command's error. The two that name HTTP headers are told in gRPC's terms.
pub(crate) fn from_command(error: CommandError) -> Status {
    match error {
        CommandError::VersionMismatch { expected, actual } => from_api(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            format!("expected_version is {expected}, the order is at version {actual}"),
        )),
        CommandError::IdempotencyKeyReused => {
            from_api(ApiError::validation(vec![FieldError::new(
                "idempotency-key",
                "was already used with another method or message",
            )]))
        }
        other => from_api(other.into()),
    }
}

pub(crate) fn from_query(error: QueryError) -> Status {
    from_api(error.into())
}

pub(crate) fn from_auth(error: AuthError) -> Status {
    from_api(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_of_the_http_api_has_its_code() {
        let cases = [
            (400, "bad-request", Code::InvalidArgument),
            (422, "validation", Code::InvalidArgument),
            (401, "invalid-token", Code::Unauthenticated),
            (403, "forbidden", Code::PermissionDenied),
            (404, "not-found", Code::NotFound),
            (409, "invalid-state", Code::FailedPrecondition),
            (409, "concurrency-conflict", Code::Aborted),
            (409, "already-exists", Code::AlreadyExists),
            (412, "precondition-failed", Code::Aborted),
            (413, "payload-too-large", Code::OutOfRange),
            (500, "internal", Code::Internal),
            (503, "unavailable", Code::Unavailable),
        ];
        for (status, kind, expected) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(code(status, kind), expected, "{status} {kind}");
        }
    }

    #[test]
    fn a_validation_error_names_its_fields_in_a_bad_request_detail() {
        let status = from_api(ApiError::validation(vec![
            FieldError::new("currency", "is required"),
            FieldError::new("items[0].quantity", "must be 1 to 1000000"),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("currency"),
            "{}",
            status.message()
        );
        let details = status.get_error_details();
        let fields: Vec<&str> = details
            .bad_request()
            .map(|b| {
                b.field_violations
                    .iter()
                    .map(|v| v.field.as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(fields, ["currency", "items[0].quantity"]);
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("VALIDATION")
        );
    }
}
