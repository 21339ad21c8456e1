//! Path and header parameters shared by several routes (the query parameters are
//! documented on the handlers' own query types).

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use super::rules;

fn parameter(
    name: &str,
    location: ParameterIn,
    required: bool,
    description: &str,
    schema: ObjectBuilder,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn order_id() -> Parameter {
    parameter(
        "id",
        ParameterIn::Path,
        true,
        "The order id, a UUID (hyphenated, 32 hex digits, braced or a URN); anything else \
         answers 400.",
        string().pattern(Some(rules::uuid_pattern())),
    )
}

fn header(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    parameter(name, ParameterIn::Header, false, description, schema)
}

fn correlation_id() -> Parameter {
    header(
        "X-Correlation-Id",
        "Copied into the events' `metadata.correlationId` and echoed on the response \
         (generated when absent). Malformed: 400.",
        string()
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some("^[!-~]+$")),
    )
}

fn idempotency_key() -> Parameter {
    header(
        "Idempotency-Key",
        "A retry with the same key, method, path and body gets the first answer again and \
         writes nothing; the same key with another method, path or body answers 422. Kept at \
         least 24 hours (per acting user when authentication is on). Malformed: 400.",
        string()
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some("^[!-~]+$")),
    )
}

/// The name of the header that names the acting user when authentication is off.
pub(super) const USER_HEADER: &str = "X-User-Id";

fn user_id() -> Parameter {
    header(
        USER_HEADER,
        "The acting user, recorded in the events' `metadata.userId` (authentication is \
         off: it is trusted). Malformed (not 1 to 200 characters of UTF-8 text without \
         control characters, or only white space): 400.",
        rules::text(200),
    )
}

/// `X-User-Id` as the service reads it with bearer authentication on: not at all.
pub(super) fn ignored_user_id() -> Parameter {
    header(
        USER_HEADER,
        "Ignored: with bearer authentication the acting user is the token's `sub`.",
        string(),
    )
}

fn traceparent() -> Parameter {
    header(
        "traceparent",
        "W3C trace context (`00-<32 hex>-<16 hex>-<2 hex>`), carried into the events and \
         onto the Kafka message; any other value is ignored, as W3C asks (never an error).",
        string(),
    )
}

fn if_match() -> Parameter {
    header(
        "If-Match",
        "The expected version, as the `ETag` gave it (`\"7\"`; `W/\"7\"`, `W/7`, `7` and `*` \
         are accepted too; the version must fit 64 bits): a mismatch answers 412 and writes \
         nothing. Malformed: 400.",
        string()
            .pattern(Some(rules::if_match_pattern()))
            .examples(["\"7\""]),
    )
}

/// `{id}`.
#[derive(Debug)]
pub(crate) struct OrderPath;

impl IntoParams for OrderPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![order_id()]
    }
}

/// `{id}` and `{productId}` of `DELETE /orders/{id}/items/{productId}`.
#[derive(Debug)]
pub(crate) struct LinePath;

impl IntoParams for LinePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            order_id(),
            parameter(
                "productId",
                ParameterIn::Path,
                true,
                "The product whose whole line is removed (the `productId` rule: 1 to 64 \
                 characters of text; anything else answers 400).",
                rules::text(64),
            ),
        ]
    }
}

/// The headers of `POST /orders` (`If-Match` means nothing on a new order).
#[derive(Debug)]
pub(crate) struct CreateHeaders;

impl IntoParams for CreateHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            idempotency_key(),
            correlation_id(),
            user_id(),
            traceparent(),
        ]
    }
}

/// The headers of a command on an existing order.
#[derive(Debug)]
pub(crate) struct CommandHeaders;

impl IntoParams for CommandHeaders {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            if_match(),
            idempotency_key(),
            correlation_id(),
            user_id(),
            traceparent(),
        ]
    }
}

/// `X-Correlation-Id`, which every route reads (a malformed one answers 400).
#[derive(Debug)]
pub(crate) struct CorrelationHeader;

impl IntoParams for CorrelationHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![correlation_id()]
    }
}
