//! Exported traces (API.md, Tracing), received by an OTLP/HTTP receiver the test starts:
//! one command's trace holds the service's server span, the use case and its
//! transaction, the relay's producer span and the projector's consumer span, each the
//! child of the one before, under one trace id, which the Kafka message's
//! `traceparent` header carries too.
//!
//! A binary of its own: the service runs in this process (the library `App`, as the
//! other end-to-end tests run it), and a process has one global subscriber, installed
//! here with trace export to the receiver under `service.name` `order-service`. The
//! relay is the real `outbox-relay` binary with `OTEL_EXPORTER_OTLP_ENDPOINT` set, so
//! its `service.name` is its default and its export is the production path.

use std::sync::OnceLock;
use std::time::Duration;

use e2e::otlp::{kind, OtlpReceiver, ReceivedSpan};
use e2e::processes::RelayProcess;
use e2e::{brokers, Received, System};
use order_grpc::proto::{self, order_service_client::OrderServiceClient};
use reqwest::Method;

/// The receiver and the export of this process, set up once for all its tests.
fn exported() -> &'static (OtlpReceiver, order_runtime::Telemetry) {
    static EXPORT: OnceLock<(OtlpReceiver, order_runtime::Telemetry)> = OnceLock::new();
    EXPORT.get_or_init(|| {
        let receiver = OtlpReceiver::start();
        let telemetry = order_runtime::init(
            false,
            &order_runtime::TraceExport {
                endpoint: Some(receiver.endpoint.clone()),
                service_name: "order-service".to_owned(),
            },
        );
        (receiver, telemetry)
    })
}

/// The real relay binary on the system, exporting to `endpoint` every 100 ms.
fn traced_relay(system: &System, endpoint: &str) -> RelayProcess {
    RelayProcess::spawn(
        &system.database_url,
        &brokers(),
        &system.topic,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
}

/// The trace's spans once it holds a producer and a consumer span.
async fn trace_of(trace_id: &str) -> Vec<ReceivedSpan> {
    let (receiver, telemetry) = exported();
    let spans = receiver
        .wait_for(
            Duration::from_secs(30),
            || telemetry.flush(),
            |spans| {
                let of_trace = |k| spans.iter().any(|s| s.trace_id == trace_id && s.kind == k);
                of_trace(kind::PRODUCER) && of_trace(kind::CONSUMER)
            },
        )
        .await;
    spans
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect()
}

fn the<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    test: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|s| test(s)).collect();
    assert_eq!(found.len(), 1, "one {what} span expected in {spans:#?}");
    found[0]
}

/// The message of the order's one event, read back from the topic.
async fn message_of(system: &System, order_id: &str) -> Received {
    let received = system
        .consume(Duration::from_secs(30), |messages| {
            messages.iter().any(|m| m.key == order_id)
        })
        .await;
    received
        .into_iter()
        .find(|m| m.key == order_id)
        .expect("the event reached the topic")
}

/// Checks the relay's and the projector's halves of the trace: the producer span a
/// child of `written_under`, the message's header its context, the consumer span its child.
fn check_messaging(
    spans: &[ReceivedSpan],
    written_under: &ReceivedSpan,
    message: &Received,
    topic: &str,
) {
    let producer = the(spans, "producer", |s| s.kind == kind::PRODUCER);
    assert_eq!(producer.service, "outbox-relay");
    assert_eq!(
        producer.parent_span_id, written_under.span_id,
        "the producer span continues the trace the event was written under"
    );
    assert_eq!(producer.attribute("messaging.system"), "kafka");
    assert_eq!(producer.attribute("messaging.destination.name"), topic);
    assert_eq!(producer.attribute("messaging.operation.type"), "send");
    assert_eq!(
        producer.attribute("messaging.message.id"),
        message.value["eventId"].as_str().expect("eventId")
    );
    assert_eq!(producer.name, format!("send {topic}"));

    assert_eq!(
        message.headers["traceparent"],
        format!("00-{}-{}-01", producer.trace_id, producer.span_id),
        "the message carries the producer span's context"
    );

    let consumer = the(spans, "consumer", |s| s.kind == kind::CONSUMER);
    assert_eq!(consumer.service, "order-service");
    assert_eq!(
        consumer.parent_span_id, producer.span_id,
        "the consumer span is the producer span's child"
    );
    assert_eq!(consumer.attribute("messaging.system"), "kafka");
    assert_eq!(consumer.attribute("messaging.destination.name"), topic);
    assert_eq!(consumer.attribute("messaging.operation.type"), "process");
    assert_eq!(
        consumer.attribute("messaging.message.id"),
        producer.attribute("messaging.message.id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_http_command_continues_the_callers_trace_through_relay_and_projector() {
    let (receiver, _) = exported();
    let system = System::start_with_projector(0).await;
    let _relay = traced_relay(&system, &receiver.endpoint);
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let (status, body) = system
        .send(
            Method::POST,
            "/orders",
            Some(e2e::order_body("c-traced")),
            &[(
                "traceparent",
                &format!("00-{caller_trace}-{caller_span}-01"),
            )],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let order_id = body["orderId"].as_str().expect("orderId").to_owned();
    let message = message_of(&system, &order_id).await;

    let spans = trace_of(caller_trace).await;
    let server = the(&spans, "server", |s| s.kind == kind::SERVER);
    assert_eq!(server.service, "order-service");
    assert_eq!(
        server.parent_span_id, caller_span,
        "the server span continues the caller's traceparent"
    );
    assert_eq!(server.name, "POST /orders");
    assert_eq!(server.attribute("http.request.method"), "POST");
    assert_eq!(server.attribute("http.route"), "/orders");
    assert_eq!(server.attribute("http.response.status_code"), "201");
    let use_case = the(&spans, "use case", |s| s.name == "place");
    assert_eq!(use_case.parent_span_id, server.span_id);
    let transaction = the(&spans, "transaction", |s| s.name == "transaction");
    assert_eq!(transaction.parent_span_id, use_case.span_id);
    assert_eq!(transaction.attribute("order_id"), order_id);

    check_messaging(&spans, server, &message, &system.topic);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grpc_command_without_traceparent_starts_a_trace_that_the_event_carries() {
    let (receiver, _) = exported();
    let system = System::start_with_projector(0).await;
    let _relay = traced_relay(&system, &receiver.endpoint);
    let mut client = OrderServiceClient::connect(system.grpc.clone())
        .await
        .expect("the App serves gRPC");
    let some = |text: &str| Some(text.to_owned());
    let created = client
        .create_order(proto::CreateOrderRequest {
            order_id: None,
            customer: Some(proto::Customer {
                customer_id: some("c-grpc-traced"),
                name: some("Nguyễn Văn A"),
                phone: some("+84 90 123 4567"),
                address: Some(proto::Address {
                    line1: some("1 Lê Lợi"),
                    line2: None,
                    city: some("Hồ Chí Minh"),
                    postal_code: None,
                    country: some("VN"),
                }),
            }),
            currency: some("VND"),
            items: vec![proto::Item {
                product_id: some("sku-1"),
                quantity: Some(1),
                unit_price: Some(100_000),
            }],
            discount_codes: Vec::new(),
        })
        .await
        .expect("CreateOrder is accepted")
        .into_inner();
    let message = message_of(&system, &created.order_id).await;
    let header = message
        .headers
        .get("traceparent")
        .expect("with tracing on, every message carries a traceparent");
    let trace_id = header
        .split('-')
        .nth(1)
        .expect("a W3C traceparent")
        .to_owned();

    let spans = trace_of(&trace_id).await;
    let server = the(&spans, "server", |s| s.kind == kind::SERVER);
    assert_eq!(server.service, "order-service");
    assert_eq!(
        server.parent_span_id, "",
        "without a caller's traceparent the server span starts the trace"
    );
    assert_eq!(server.name, "orders.v1.OrderService/CreateOrder");
    assert_eq!(server.attribute("rpc.system"), "grpc");
    assert_eq!(server.attribute("rpc.method"), "CreateOrder");
    check_messaging(&spans, server, &message, &system.topic);
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_whose_collector_is_down_publishes_as_usual_and_counts_what_it_lost() {
    let system = System::start(0).await;
    let dead = format!("http://127.0.0.1:{}", e2e::processes::free_port());
    let mut relay = traced_relay(&system, &dead);
    for n in 0..5 {
        let (status, body) = system
            .send(
                Method::POST,
                "/orders",
                Some(e2e::order_body(&format!("c-dead-{n}"))),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    system.wait_for_empty_outbox(Duration::from_secs(30)).await;
    relay
        .wait_for_log("span export failed", Duration::from_secs(10))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while relay.metric("trace_spans_lost_total").await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the lost spans never showed on the relay's /metrics"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    relay
        .terminate(Duration::from_secs(10))
        .expect("the relay stops on SIGTERM");
    let log = relay.log_text();
    let stopped = log
        .lines()
        .find(|line| line.contains("span export stopped"))
        .unwrap_or_else(|| panic!("the relay logs its span totals at exit:\n{log}"));
    assert!(stopped.contains("lost_export_failed=5"), "{stopped}");
    system.stop().await;
}
