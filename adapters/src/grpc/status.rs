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

/// A status travels in response headers, which clients bound (8 KiB is common, and
/// going past a client's limit resets the stream), unlike an HTTP problem body. So a
/// status names at most this many fields, and says how many more there are...
const MAX_VIOLATIONS: usize = 10;
/// ...and its message and each field's description are at most this many characters.
const MAX_MESSAGE_CHARS: usize = 500;
const MAX_DESCRIPTION_CHARS: usize = 200;

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
    let mut message = error.detail;
    if !error.errors.is_empty() {
        let named = &error.errors[..error.errors.len().min(MAX_VIOLATIONS)];
        details.set_bad_request(
            named
                .iter()
                .map(|e| FieldViolation::new(&e.field, truncate(&e.message, MAX_DESCRIPTION_CHARS)))
                .collect::<Vec<_>>(),
        );
        message = named
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        if error.errors.len() > named.len() {
            message.push_str(&format!(
                "; and {} more invalid fields",
                error.errors.len() - named.len()
            ));
        }
    }
    Status::with_error_details(
        code(error.status, error.kind),
        truncate(&message, MAX_MESSAGE_CHARS),
        details,
    )
}

/// `text`, cut to `max` characters (with `…` when cut).
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
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
    fn a_status_stays_small_whatever_the_number_of_invalid_fields() {
        let errors: Vec<FieldError> = (0..300)
            .map(|i| FieldError::new(format!("items[{i}].productId"), "x".repeat(1000)))
            .collect();
        let status = from_api(ApiError::validation(errors));
        assert!(status.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(status.message().contains("items[0].productId"));
        let details = status.get_error_details();
        let named = details
            .bad_request()
            .map_or(0, |b| b.field_violations.len());
        assert_eq!(named, MAX_VIOLATIONS);
        assert!(status.details().len() < 4096, "{}", status.details().len());
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("héllo", 5), "héllo");
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
