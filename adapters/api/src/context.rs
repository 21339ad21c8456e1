//! What every command carries besides its body, read alike from HTTP headers and gRPC
//! metadata (which arrives as the same [`HeaderMap`]): the correlation id, the
//! idempotency key with the request's fingerprint, and the W3C trace context.

use application::{Actor, CommandContext, IdempotencyRequest};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The correlation id of a request: `X-Correlation-Id` when given, else generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

impl CorrelationId {
    /// What a malformed `X-Correlation-Id` is told.
    pub const RULE: &'static str = "must be 1 to 200 visible ASCII characters";

    /// `X-Correlation-Id` when given (1 to 200 visible ASCII characters), else a new
    /// id; `None` when it is present and malformed.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        match headers.get("x-correlation-id") {
            None => Some(Self(Uuid::now_v7().to_string())),
            Some(value) => visible_ascii(value.as_bytes(), 200).map(Self),
        }
    }
}

/// An `Idempotency-Key` (header or gRPC metadata) that is not 1 to 255 visible ASCII
/// characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedIdempotencyKey;

/// Builds the command context of `actor`: the `Idempotency-Key` (scoped to the actor;
/// `fingerprint` makes what identifies the request, and is called only when there is
/// a key) and the trace context the events carry: the current (server) span's when
/// traces are exported, else `traceparent` (ignored when invalid, as W3C asks).
///
/// # Errors
/// When `Idempotency-Key` is malformed.
pub fn command_context(
    actor: Actor,
    headers: &HeaderMap,
    correlation: &CorrelationId,
    expected_version: Option<u64>,
    fingerprint: impl FnOnce() -> String,
) -> Result<CommandContext, MalformedIdempotencyKey> {
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(IdempotencyRequest {
            scope: actor.idempotency_scope().to_owned(),
            key: visible_ascii(value.as_bytes(), 255).ok_or(MalformedIdempotencyKey)?,
            fingerprint: fingerprint(),
        }),
    };
    // Exported traces: the request's server span (the current one), which continues the
    // caller's; the relay's producer span is then its child. Otherwise the caller's own.
    let traceparent = order_runtime::telemetry::current_traceparent().or_else(|| {
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_traceparent(v))
            .map(str::to_owned)
    });
    Ok(CommandContext {
        actor,
        correlation_id: correlation.0.clone(),
        command_id: Uuid::now_v7(),
        traceparent,
        expected_version,
        idempotency,
    })
}

/// SHA-256 of method, target (path with query, or the rpc's path) and body: what
/// makes two requests "the same" for an idempotency key.
pub fn fingerprint(method: &str, target: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b"\n");
    hash.update(target.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn visible_ascii(bytes: &[u8], max: usize) -> Option<String> {
    let ok =
        !bytes.is_empty() && bytes.len() <= max && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
    ok.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// W3C trace context: `00-<32 hex>-<16 hex>-<2 hex>` (lower case, ids not all zero).
/// An invalid header is ignored, as the specification asks.
fn is_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_must_follow_the_w3c_format() {
        assert!(is_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        assert!(!is_traceparent(
            "00-00000000000000000000000000000000-b7ad6b7169203331-01"
        ));
        assert!(!is_traceparent("garbage"));
    }

    #[test]
    fn a_malformed_correlation_id_is_refused_and_a_missing_one_is_made() {
        let mut headers = HeaderMap::new();
        assert!(CorrelationId::from_headers(&headers).is_some());
        headers.insert("x-correlation-id", "has space".parse().unwrap());
        assert_eq!(CorrelationId::from_headers(&headers), None);
    }
}
