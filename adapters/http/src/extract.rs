//! Request parsing: JSON bodies (framing errors 413/415/400, data errors 422 naming the
//! field) and the command headers (`If-Match`, `Idempotency-Key`, `traceparent`,
//! `X-Correlation-Id`; `X-User-Id` is read by the authentication middleware).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::problem::ApiError;
use super::AppState;
use application::{Actor, CommandContext};
use order_api::{
    command_context, fingerprint, CorrelationId, FieldError, MalformedIdempotencyKey, ProblemKind,
};

/// A JSON request body: framing checked (413, 415, 400), its raw bytes kept for the
/// idempotency fingerprint. Its shape is checked by [`JsonBody::value`], which handlers
/// call after the path and headers, so that a malformed parameter (400) answers before
/// an invalid field (422), as API.md orders the checks.
#[derive(Debug)]
pub(super) struct JsonBody<T> {
    pub raw: Bytes,
    shape: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// The body as `T`.
    ///
    /// # Errors
    /// 422 naming the field whose value has the wrong shape.
    pub(super) fn value(&self) -> Result<T, ApiError> {
        // The syntax was checked when the body was extracted.
        parse_shape(&self.raw)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.body_limit;
        let too_large = || {
            ApiError::new(
                ProblemKind::PayloadTooLarge,
                format!("the body is larger than {limit} bytes"),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(too_large());
        }
        // Read (at most `limit` bytes) before looking at the type, so that a body
        // without Content-Length that is both too large and not JSON answers 413.
        let json = is_json(request.headers());
        let raw = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| too_large())?;
        if !json {
            return Err(ApiError::new(
                ProblemKind::UnsupportedMediaType,
                "the body must be application/json",
            ));
        }
        check_syntax(&raw)?;
        Ok(Self {
            raw,
            shape: std::marker::PhantomData,
        })
    }
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// 400 unless `raw` is one well-formed JSON value (whatever its shape).
fn check_syntax(raw: &[u8]) -> Result<(), ApiError> {
    serde_json::from_slice::<serde::de::IgnoredAny>(raw)
        .map(drop)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

/// Deserializes JSON whose syntax is known to be good: a value of the wrong shape is
/// 422 naming its path.
fn parse_shape<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_data() {
            let field = if path == "." { "body".to_owned() } else { path };
            let message = inner.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            ApiError::validation(vec![FieldError::new(field, message)])
        } else {
            ApiError::bad_request(format!("the body is not valid JSON: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Runs the rest of the request with its correlation id among its extensions, and
/// echoes the id on the response.
pub(super) async fn with_correlation(
    correlation: CorrelationId,
    mut request: Request,
    next: Next,
) -> Response {
    let echo = HeaderValue::from_str(&correlation.0).ok();
    request.extensions_mut().insert(correlation);
    let mut response = next.run(request).await;
    if let Some(echo) = echo {
        response.headers_mut().insert("x-correlation-id", echo);
    }
    response
}

/// What every command needs from a request besides its body: the actor (set by the
/// authentication middleware), the correlation id, the request line and the headers.
#[derive(Debug)]
pub(super) struct CommandRequest {
    actor: Actor,
    correlation: CorrelationId,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let (Some(actor), Some(correlation)) = (
            parts.extensions.get::<Actor>().cloned(),
            parts.extensions.get::<CorrelationId>().cloned(),
        ) else {
            tracing::error!(
                "a command route is not behind the authentication and correlation middleware"
            );
            return Err(ApiError::internal());
        };
        Ok(Self {
            actor,
            correlation,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

impl CommandRequest {
    /// The command's context, with `body` (raw bytes) in its idempotency fingerprint.
    ///
    /// # Errors
    /// 400 when `If-Match` or `Idempotency-Key` is malformed.
    pub(super) fn context(self, body: &[u8]) -> Result<CommandContext, ApiError> {
        let expected_version = match self.headers.get(header::IF_MATCH) {
            None => None,
            Some(value) => parse_if_match(value.to_str().unwrap_or_default()).ok_or_else(|| {
                ApiError::bad_request("If-Match must be a quoted version, such as \"3\"")
            })?,
        };
        let target = self
            .uri
            .path_and_query()
            .map_or(self.uri.path(), |p| p.as_str());
        command_context(
            self.actor,
            &self.headers,
            &self.correlation,
            expected_version,
            || fingerprint(self.method.as_str(), target, body),
        )
        .map_err(|MalformedIdempotencyKey| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })
    }
}

/// `"7"`, `W/"7"` or `7` → `Some(Some(7))`; `*` → `Some(None)` (any version);
/// anything else → `None`.
fn parse_if_match(value: &str) -> Option<Option<u64>> {
    let value = value.trim();
    if value == "*" {
        return Some(None);
    }
    let value = value.strip_prefix("W/").unwrap_or(value);
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a handler sees: the syntax checked at extraction, then the shape.
    fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
        check_syntax(raw)?;
        parse_shape(raw)
    }

    #[test]
    fn if_match_accepts_quoted_weak_and_bare_versions() {
        assert_eq!(parse_if_match("\"7\""), Some(Some(7)));
        assert_eq!(parse_if_match("W/\"7\""), Some(Some(7)));
        assert_eq!(parse_if_match("7"), Some(Some(7)));
        assert_eq!(parse_if_match("*"), Some(None));
        assert_eq!(parse_if_match("\"x\""), None);
        assert_eq!(parse_if_match("\"\""), None);
        assert_eq!(parse_if_match("\"99999999999999999999999\""), None);
    }

    #[test]
    fn the_documented_if_match_pattern_accepts_what_the_parser_accepts() {
        let pattern = serde_json::json!({
            "type": "string",
            "pattern": crate::openapi::rules::if_match_pattern(),
        });
        let documented = jsonschema::draft202012::new(&pattern).expect("the pattern compiles");
        for value in [
            "\"7\"",
            "W/\"7\"",
            "W/7",
            "7",
            "007",
            "*",
            "\"\"",
            "\"7",
            "7\"",
            "W/*",
            "w/\"7\"",
            "\"x\"",
            "-1",
            "+1",
            "1.0",
            "W/",
            "",
            "**",
            "\"1\"\"2\"",
        ] {
            assert_eq!(
                documented.is_valid(&serde_json::Value::String(value.to_owned())),
                parse_if_match(value).is_some(),
                "{value}"
            );
        }
    }

    #[test]
    fn a_syntax_error_is_400_and_a_shape_error_is_422_with_its_path() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Item {
            quantity: u64,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            items: Vec<Item>,
        }
        assert_eq!(parse_json::<Body>(b"{").unwrap_err().status(), 400);
        assert_eq!(
            parse_json::<Body>(b"{} trailing").unwrap_err().status(),
            400
        );
        let shape_then_syntax = parse_json::<Body>(br#"{"items":[{"quantity":-1}]} x"#);
        assert_eq!(shape_then_syntax.unwrap_err().status(), 400);
        let shape = parse_json::<Body>(br#"{"items":[{"quantity":-1}]}"#).unwrap_err();
        assert_eq!(shape.status(), 422);
        assert_eq!(shape.0.errors[0].field, "items[0].quantity");
        let overflow = parse_json::<Body>(br#"{"items":[{"quantity":100000000000000000000000}]}"#)
            .unwrap_err();
        assert_eq!(overflow.status(), 422);
    }
}
