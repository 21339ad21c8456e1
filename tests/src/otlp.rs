//! An OTLP/HTTP receiver for the tests and benchmarks: a small `axum` server on a free
//! port that takes `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`, as a
//! collector does, and keeps every span with its resource's `service.name`.
//!
//! It runs on a thread and runtime of its own, so it outlives any one test's runtime
//! (the process's tracer provider, set once, keeps exporting to it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// OpenTelemetry's span kinds, as OTLP numbers them.
pub mod kind {
    pub const SERVER: i32 = 2;
    pub const PRODUCER: i32 = 4;
    pub const CONSUMER: i32 = 5;
}

/// One received span, with its ids in lower-case hex as `traceparent` writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The `service.name` of the resource it came under.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: i32,
    /// Attribute values as text.
    pub attributes: HashMap<String, String>,
}

impl ReceivedSpan {
    /// The attribute `key`, or "" when absent.
    pub fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// A running receiver; it stops with the process.
#[derive(Debug, Clone)]
pub struct OtlpReceiver {
    /// `http://127.0.0.1:PORT`: what `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpReceiver {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub fn start() -> OtlpReceiver {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let (bound, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the receiver's runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the OTLP receiver");
                bound
                    .send(listener.local_addr().expect("its address"))
                    .expect("the starter waits");
                let app = Router::new()
                    .route("/v1/traces", post(receive))
                    .with_state(kept);
                axum::serve(listener, app).await.expect("the OTLP receiver");
            });
        });
        let address = address.recv().expect("the receiver started");
        OtlpReceiver {
            endpoint: format!("http://{address}"),
            spans,
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().expect("not poisoned").clone()
    }

    /// How many spans were received so far.
    pub fn count(&self) -> usize {
        self.spans.lock().expect("not poisoned").len()
    }

    /// Waits until the spans received satisfy `until` (calling `flush` before each
    /// look), or the time is up; returns them either way.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        flush: impl Fn(),
        until: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            flush();
            let spans = self.spans();
            if until(&spans) || Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(
    State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>,
    body: Bytes,
) -> Result<Vec<u8>, StatusCode> {
    let request = ExportTraceServiceRequest::decode(body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    spans.lock().expect("not poisoned").extend(received);
    Ok(ExportTraceServiceResponse::default().encode_to_vec())
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| {
            let value = match pair.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(text)) => text.clone(),
                Some(AnyValue::IntValue(number)) => number.to_string(),
                Some(AnyValue::BoolValue(flag)) => flag.to_string(),
                Some(AnyValue::DoubleValue(number)) => number.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (pair.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
