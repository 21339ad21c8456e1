//! The relay's admin side: the HTTP endpoints (`/metrics`, `/healthz` alive, `/readyz`
//! its last cycle reached the database and the broker) and the `status` subcommand's
//! answer. The operator subcommands go through the application's administration, as
//! the service's `/admin` routes do (see `daemon.rs`).

use std::convert::Infallible;
use std::sync::Arc;

use application::admin::AdminError;
use application::{Actor, Administration};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::metrics::RelayMetrics;

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` (HTTP/1.1) until the
/// future is dropped. Each connection is served by a task of its own.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve(listener: TcpListener, metrics: Arc<RelayMetrics>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let metrics = metrics.clone();
                async move {
                    Ok::<_, Infallible>(answer(request.method(), request.uri().path(), &metrics))
                }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "admin connection ended with an error");
            }
        });
    }
}

/// The answer to one admin request.
fn answer(method: &Method, path: &str, metrics: &RelayMetrics) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET");
    }
    match path {
        "/metrics" => {
            let mut response = text(StatusCode::OK, metrics.render());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" if metrics.is_ready() => text(StatusCode::OK, "ready"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: cannot reach the database or the broker",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `outbox-relay status`: the outbox as `GET /admin/outbox` shows it (backlog per
/// partition with its owner, the live relays and their partitions), with the oldest
/// parked rows (`parkedRows`, at most 100) as `GET /admin/outbox/parked` shows them.
///
/// # Errors
/// When the database fails.
pub async fn status(administration: &Administration, actor: &Actor) -> Result<Value, AdminError> {
    let status = administration.outbox_status(actor).await?;
    let parked = administration.parked(actor, None, None, 100).await?;
    Ok(json!({
        "backlog": status.backlog,
        "parked": status.parked,
        "oldestAgeSeconds": status.oldest_age_seconds,
        "partitions": status.partitions.iter().map(|p| json!({
            "partition": p.partition, "waiting": p.waiting, "parked": p.parked,
            "oldestAgeSeconds": p.oldest_age_seconds, "owner": p.owner,
        })).collect::<Vec<_>>(),
        "relays": status.relays.iter().map(|r| json!({
            "relayId": r.relay_id, "host": r.host, "lastSeenAt": r.last_seen_at,
            "partitions": r.partitions,
        })).collect::<Vec<_>>(),
        "parkedRows": parked.items.iter().map(|p| json!({
            "outboxId": p.outbox_id, "eventId": p.event_id, "orderId": p.order_id,
            "version": p.version, "eventType": p.event_type, "attempts": p.attempts,
            "lastError": p.last_error, "parkedAt": p.parked_at,
        })).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_routes_answer_by_path_method_and_readiness() {
        let metrics = RelayMetrics::new().unwrap();
        assert_eq!(
            answer(&Method::GET, "/healthz", &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            answer(&Method::GET, "/readyz", &metrics).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        metrics.set_ready(true);
        assert_eq!(
            answer(&Method::GET, "/readyz", &metrics).status(),
            StatusCode::OK
        );
        let rendered = answer(&Method::GET, "/metrics", &metrics);
        assert_eq!(rendered.status(), StatusCode::OK);
        assert_eq!(
            rendered.headers()[CONTENT_TYPE],
            "text/plain; version=0.0.4"
        );
        assert_eq!(
            answer(&Method::GET, "/nope", &metrics).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            answer(&Method::POST, "/healthz", &metrics).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
