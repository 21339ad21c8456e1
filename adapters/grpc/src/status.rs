//! Errors as gRPC statuses, per API.md's table: every error is first the API core's
//! [`Problem`] (so both APIs decide alike, and a 5xx is logged once, there), then the
//! code of its [`ProblemKind`]. The message is the problem's `detail`; details carry a
//! `google.rpc.ErrorInfo` whose reason is the problem kind (`INVALID_STATE`,
//! `CONCURRENCY_CONFLICT`, ...) and, for validation, a `google.rpc.BadRequest` naming
//! each field.

use std::collections::HashMap;

use application::{CommandError, QueryError};
use order_api::{AuthError, CommandWire, FieldError, Problem, ProblemKind};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `domain` of every `google.rpc.ErrorInfo` of this service.
const ERROR_DOMAIN: &str = "orders.v1";

/// A status travels in response headers, which clients bound (8 KiB is common, and
/// going past a client's limit resets the stream), unlike an HTTP problem body. So a
/// status names at most this many fields, and says how many more there are...
const MAX_VIOLATIONS: usize = 10;
/// ...and its message and each field's description are at most this many characters.
const MAX_MESSAGE_CHARS: usize = 500;
const MAX_DESCRIPTION_CHARS: usize = 200;

/// The gRPC code of each kind of problem.
pub(crate) fn code(kind: ProblemKind) -> Code {
    match kind {
        ProblemKind::BadRequest | ProblemKind::Validation => Code::InvalidArgument,
        ProblemKind::Unauthenticated | ProblemKind::InvalidToken => Code::Unauthenticated,
        ProblemKind::Forbidden => Code::PermissionDenied,
        ProblemKind::NotFound => Code::NotFound,
        ProblemKind::AlreadyExists => Code::AlreadyExists,
        ProblemKind::ConcurrencyConflict | ProblemKind::PreconditionFailed => Code::Aborted,
        ProblemKind::InvalidState => Code::FailedPrecondition,
        ProblemKind::PayloadTooLarge => Code::OutOfRange,
        ProblemKind::Overloaded | ProblemKind::Timeout | ProblemKind::Unavailable => {
            Code::Unavailable
        }
        ProblemKind::MethodNotAllowed
        | ProblemKind::UnsupportedMediaType
        | ProblemKind::Internal => Code::Internal,
    }
}

/// The status of a problem.
pub(crate) fn from_problem(problem: Problem) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        problem.kind.slug().to_uppercase().replace('-', "_"),
        ERROR_DOMAIN,
        HashMap::new(),
    );
    let mut message = problem.detail;
    if !problem.errors.is_empty() {
        let named = &problem.errors[..problem.errors.len().min(MAX_VIOLATIONS)];
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
        if problem.errors.len() > named.len() {
            message.push_str(&format!(
                "; and {} more invalid fields",
                problem.errors.len() - named.len()
            ));
        }
    }
    Status::with_error_details(
        code(problem.kind),
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
    let mut problem = Problem::validation(vec![FieldError::new(field, message)]);
    problem.kind = ProblemKind::BadRequest;
    from_problem(problem)
}

/// The two command errors in gRPC's words: its `expected_version` field and
/// `idempotency-key` metadata.
struct GrpcWire;

impl CommandWire for GrpcWire {
    fn version_mismatch(&self, expected: u64, actual: u64) -> String {
        format!("expected_version is {expected}, the order is at version {actual}")
    }

    fn key_reused(&self) -> FieldError {
        FieldError::new(
            "idempotency-key",
            "was already used with another method or message",
        )
    }
}

/// A command's error.
pub(crate) fn from_command(error: CommandError) -> Status {
    from_problem(Problem::from_command(error, &GrpcWire))
}

pub(crate) fn from_query(error: QueryError) -> Status {
    from_problem(error.into())
}

pub(crate) fn from_auth(error: AuthError) -> Status {
    from_problem(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_problem_has_its_code() {
        let cases = [
            (ProblemKind::BadRequest, Code::InvalidArgument),
            (ProblemKind::Validation, Code::InvalidArgument),
            (ProblemKind::Unauthenticated, Code::Unauthenticated),
            (ProblemKind::InvalidToken, Code::Unauthenticated),
            (ProblemKind::Forbidden, Code::PermissionDenied),
            (ProblemKind::NotFound, Code::NotFound),
            (ProblemKind::InvalidState, Code::FailedPrecondition),
            (ProblemKind::ConcurrencyConflict, Code::Aborted),
            (ProblemKind::AlreadyExists, Code::AlreadyExists),
            (ProblemKind::PreconditionFailed, Code::Aborted),
            (ProblemKind::PayloadTooLarge, Code::OutOfRange),
            (ProblemKind::Internal, Code::Internal),
            (ProblemKind::Unavailable, Code::Unavailable),
        ];
        for (kind, expected) in cases {
            assert_eq!(code(kind), expected, "{kind:?}");
        }
    }

    #[test]
    fn a_status_stays_small_whatever_the_number_of_invalid_fields() {
        let errors: Vec<FieldError> = (0..300)
            .map(|i| FieldError::new(format!("items[{i}].productId"), "x".repeat(1000)))
            .collect();
        let status = from_problem(Problem::validation(errors));
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
        let status = from_problem(Problem::validation(vec![
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
