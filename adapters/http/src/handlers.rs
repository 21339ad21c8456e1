//! One handler per route: parse the request, call one use case, answer.

use application::SummaryFilter;
use application::{Actor, CommandOutcome};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{CustomerId, OrderId, OrderStatus, ProductId};
use serde::Deserialize;

use super::dto::{
    AckResponse, AddressRequest, CancellationRequest, CreateOrderRequest, ItemRequest,
    OrderResponse, PaymentRequest, ShipmentRequest, SummaryPageResponse, SummaryResponse,
};
use super::extract::{with_correlation, CommandRequest, JsonBody};
use super::openapi::{
    Acknowledged, CommandHeaders, CommandProblems, CorrelationHeader, CreateHeaders,
    CreateProblems, Created, Healthy, HistoryFound, LinePath, ListProblems, MetricsText,
    OpenProblems, OrderFound, OrderPath, OrderQueryProblems, PageFound, RemoveItemProblems,
};
use super::problem::ApiError;
use super::AppState;
use order_api::paging::{decode_cursor, encode_cursor, MAX_PAGE};
use order_api::requests::{
    AddressInput, CancellationInput, ItemInput, PaymentInput, PlaceOrderInput, ShipmentInput,
};
use order_api::{CorrelationId, Guard, ProblemKind, Refusal};

type Answer = Result<Response, ApiError>;

/// Middleware: bounds concurrent requests and their duration; when saturated it answers
/// 503 with `Retry-After` at once instead of queueing without bound.
pub(super) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    guard
        .run(next.run(request))
        .await
        .unwrap_or_else(|refusal| match refusal {
            Refusal::Overloaded => ApiError::new(
                ProblemKind::Overloaded,
                "too many requests in flight; retry later",
            )
            .into_response(),
            Refusal::TimedOut => ApiError::new(
                ProblemKind::Timeout,
                "the request took too long; retry later",
            )
            .into_response(),
        })
}

/// Middleware: reads or makes the correlation id and echoes it on the response.
pub(super) async fn correlate(request: Request, next: Next) -> Response {
    match CorrelationId::from_headers(request.headers()) {
        Some(correlation) => with_correlation(correlation, request, next).await,
        None => ApiError::bad_request(format!("X-Correlation-Id {}", CorrelationId::RULE))
            .into_response(),
    }
}

/// The order id of the path; 400 when it is not a UUID.
pub(super) fn order_id(path: Result<Path<String>, PathRejection>) -> Result<OrderId, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    OrderId::parse(&id).map_err(|_| ApiError::bad_request(format!("order id {id:?} is not a UUID")))
}

fn ack(status: StatusCode, outcome: CommandOutcome) -> Response {
    let CommandOutcome { ack, replayed } = outcome;
    let mut response = (
        status,
        Json(AckResponse {
            order_id: ack.order_id,
            version: ack.version,
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", ack.version)) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED {
        if let Ok(location) = HeaderValue::from_str(&format!("/orders/{}", ack.order_id)) {
            headers.insert(header::LOCATION, location);
        }
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Place an order (`OrderCreated`).
#[utoipa::path(
    post,
    path = "/orders",
    tag = "commands",
    params(CreateHeaders),
    request_body = CreateOrderRequest,
    responses(Created, CreateProblems)
)]
pub(super) async fn create_order(
    State(state): State<AppState>,
    request: CommandRequest,
    body: JsonBody<CreateOrderRequest>,
) -> Answer {
    let ctx = request.context(&body.raw)?;
    let command = PlaceOrderInput::from(body.value()?).try_into_domain()?;
    let outcome = state.commands.place(&ctx, command).await?;
    Ok(ack(StatusCode::CREATED, outcome))
}

/// Add an item (`ItemAdded`): a product already ordered at the same price adds to its line.
#[utoipa::path(
    post,
    path = "/orders/{id}/items",
    tag = "commands",
    params(OrderPath, CommandHeaders),
    request_body = ItemRequest,
    responses(Acknowledged, CommandProblems)
)]
pub(super) async fn add_item(
    State(state): State<AppState>,
    request: CommandRequest,
    path: Result<Path<String>, PathRejection>,
    body: JsonBody<ItemRequest>,
) -> Answer {
    let id = order_id(path)?;
    let ctx = request.context(&body.raw)?;
    let line = ItemInput::from(body.value()?).try_into_domain()?;
    Ok(ack(
        StatusCode::OK,
        state.commands.add_item(&ctx, id, line).await?,
    ))
}

/// Remove a product's whole line (`ItemRemoved`); the last line cannot be removed.
#[utoipa::path(
    delete,
    path = "/orders/{id}/items/{productId}",
    tag = "commands",
    params(LinePath, CommandHeaders),
    responses(Acknowledged, RemoveItemProblems)
)]
pub(super) async fn remove_item(
    State(state): State<AppState>,
    request: CommandRequest,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let Path((id, product)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = OrderId::parse(&id)
        .map_err(|_| ApiError::bad_request(format!("order id {id:?} is not a UUID")))?;
    let product = ProductId::parse(product)
        .map_err(|e| ApiError::bad_request(format!("the product id in the path {e}")))?;
    let ctx = request.context(b"")?;
    Ok(ack(
        StatusCode::OK,
        state.commands.remove_item(&ctx, id, product).await?,
    ))
}

/// Replace the delivery address (`DeliveryAddressChanged`), while created or paid.
#[utoipa::path(
    put,
    path = "/orders/{id}/delivery-address",
    tag = "commands",
    params(OrderPath, CommandHeaders),
    request_body = AddressRequest,
    responses(Acknowledged, CommandProblems)
)]
pub(super) async fn change_delivery_address(
    State(state): State<AppState>,
    request: CommandRequest,
    path: Result<Path<String>, PathRejection>,
    body: JsonBody<AddressRequest>,
) -> Answer {
    let id = order_id(path)?;
    let ctx = request.context(&body.raw)?;
    let address = AddressInput::from(body.value()?).try_into_domain()?;
    Ok(ack(
        StatusCode::OK,
        state
            .commands
            .change_delivery_address(&ctx, id, address)
            .await?,
    ))
}

/// Record a payment covering the total (`PaymentProcessed`).
#[utoipa::path(
    post,
    path = "/orders/{id}/payment",
    tag = "commands",
    params(OrderPath, CommandHeaders),
    request_body = PaymentRequest,
    responses(Acknowledged, CommandProblems)
)]
pub(super) async fn pay(
    State(state): State<AppState>,
    request: CommandRequest,
    path: Result<Path<String>, PathRejection>,
    body: JsonBody<PaymentRequest>,
) -> Answer {
    let id = order_id(path)?;
    let ctx = request.context(&body.raw)?;
    let (payment_id, amount, payment_method) =
        PaymentInput::from(body.value()?).try_into_domain()?;
    Ok(ack(
        StatusCode::OK,
        state
            .commands
            .pay(&ctx, id, payment_id, amount, payment_method)
            .await?,
    ))
}

/// Ship a paid order (`OrderShipped`).
#[utoipa::path(
    post,
    path = "/orders/{id}/shipment",
    tag = "commands",
    params(OrderPath, CommandHeaders),
    request_body = ShipmentRequest,
    responses(Acknowledged, CommandProblems)
)]
pub(super) async fn ship(
    State(state): State<AppState>,
    request: CommandRequest,
    path: Result<Path<String>, PathRejection>,
    body: JsonBody<ShipmentRequest>,
) -> Answer {
    let id = order_id(path)?;
    let ctx = request.context(&body.raw)?;
    let (tracking, carrier) = ShipmentInput::from(body.value()?).try_into_domain()?;
    Ok(ack(
        StatusCode::OK,
        state.commands.ship(&ctx, id, tracking, carrier).await?,
    ))
}

/// Cancel a created or paid order (`OrderCancelled`, with the refund amount).
#[utoipa::path(
    post,
    path = "/orders/{id}/cancellation",
    tag = "commands",
    params(OrderPath, CommandHeaders),
    request_body = CancellationRequest,
    responses(Acknowledged, CommandProblems)
)]
pub(super) async fn cancel(
    State(state): State<AppState>,
    request: CommandRequest,
    path: Result<Path<String>, PathRejection>,
    body: JsonBody<CancellationRequest>,
) -> Answer {
    let id = order_id(path)?;
    let ctx = request.context(&body.raw)?;
    let reason = CancellationInput::from(body.value()?).try_into_domain()?;
    Ok(ack(
        StatusCode::OK,
        state.commands.cancel(&ctx, id, reason).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct GetOrderParams {
    /// The order as it was at this instant (RFC 3339; `T`, `t` or a space between date
    /// and time); 404 if it did not exist yet; a malformed or impossible instant: 400.
    #[param(schema_with = super::openapi::rules::as_of_schema)]
    as_of: Option<String>,
}

/// Read an order, strongly consistent (from its event stream), or as it was at `asOf`.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "queries",
    params(OrderPath, GetOrderParams, CorrelationHeader),
    responses(OrderFound, OrderQueryProblems)
)]
pub(super) async fn get_order(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<GetOrderParams>, QueryRejection>,
) -> Answer {
    let id = order_id(path)?;
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let as_of = params
        .as_of
        .map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(format!("asOf {text:?} is not an RFC 3339 date-time"))
                })
        })
        .transpose()?;
    let order = state.queries.get(&actor, id, as_of).await?;
    let mut response = Json(OrderResponse::from_order(&order)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", order.version())) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Only this customer's orders (the `customerId` text rule; anything else: 400).
    #[param(schema_with = super::openapi::rules::customer_id_schema)]
    customer_id: Option<String>,
    /// Only orders in this state.
    #[param(value_type = Option<super::openapi::OrderStatus>, nullable = false)]
    status: Option<String>,
    /// The page size.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20, nullable = false)]
    limit: Option<String>,
    /// `nextCursor` of the previous page (opaque; a malformed one answers 400).
    #[param(schema_with = super::openapi::rules::cursor_schema)]
    cursor: Option<String>,
}

/// The `limit` query parameter of a page: 1 to 100, 20 when absent.
///
/// # Errors
/// 400 when it is not an integer in range.
pub(super) fn limit_param(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(order_api::paging::DEFAULT_PAGE),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .and_then(|n| order_api::paging::page_limit(Some(n)))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit {text:?} is not an integer from 1 to {MAX_PAGE}"
                ))
            }),
    }
}

impl ListParams {
    /// The read model's filter these parameters ask for.
    ///
    /// # Errors
    /// 400 naming the first malformed parameter.
    fn into_filter(self) -> Result<SummaryFilter, ApiError> {
        let limit = limit_param(self.limit.as_deref())?;
        let status = self
            .status
            .as_deref()
            .map(|text| {
                OrderStatus::parse(text).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "status {text:?} is not one of created, paid, shipped, cancelled"
                    ))
                })
            })
            .transpose()?;
        let customer_id = self
            .customer_id
            .map(|text| {
                CustomerId::parse(text)
                    .map_err(|e| ApiError::bad_request(format!("customerId {e}")))
            })
            .transpose()?;
        let after = self
            .cursor
            .as_deref()
            .map(|text| {
                decode_cursor(text).ok_or_else(|| ApiError::bad_request("cursor is malformed"))
            })
            .transpose()?;
        Ok(SummaryFilter {
            customer_id,
            status,
            limit,
            after,
        })
    }
}

/// List orders from the read model (eventually consistent), newest first.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "queries",
    params(ListParams, CorrelationHeader),
    responses(PageFound, ListProblems)
)]
pub(super) async fn list_orders(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<ListParams>, QueryRejection>,
) -> Answer {
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let page = state.summaries.list(&actor, &params.into_filter()?).await?;
    state.metrics.set_read_model_lag(page.lag);
    let body = SummaryPageResponse {
        items: page
            .items
            .iter()
            .map(SummaryResponse::from_summary)
            .collect(),
        next_cursor: page.next.map(|(at, id)| encode_cursor(at, id)),
    };
    let mut response = Json(body).into_response();
    if let Ok(lag) = HeaderValue::from_str(&page.lag.as_millis().to_string()) {
        response.headers_mut().insert("x-read-model-lag-ms", lag);
    }
    Ok(response)
}

/// The order's audit trail: every event in version order, each as its envelope.
#[utoipa::path(
    get,
    path = "/orders/{id}/history",
    tag = "queries",
    params(OrderPath, CorrelationHeader),
    responses(HistoryFound, OrderQueryProblems)
)]
pub(super) async fn get_history(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = order_id(path)?;
    let events = state.queries.history(&actor, id).await?;
    let events: Vec<serde_json::Value> = events.iter().map(|e| e.to_history_wire()).collect();
    Ok(Json(serde_json::json!({ "orderId": id, "events": events })).into_response())
}

/// Alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    params(CorrelationHeader),
    responses(Healthy, OpenProblems)
)]
pub(super) async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// Ready: the database is reachable (503 when it is not).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    params(CorrelationHeader),
    responses(Healthy, OpenProblems)
)]
pub(super) async fn readyz(State(state): State<AppState>) -> Answer {
    let ready = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.readiness.is_ready(),
    )
    .await;
    match ready {
        Ok(true) => Ok(Json(serde_json::json!({ "status": "ready" })).into_response()),
        _ => Err(ApiError::unavailable()),
    }
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    params(CorrelationHeader),
    responses(MetricsText, OpenProblems)
)]
pub(super) async fn metrics_text(State(state): State<AppState>) -> Response {
    match state.summaries.lag().await {
        Ok(lag) => state.metrics.set_read_model_lag(lag),
        Err(error) => tracing::debug!(%error, "read model lag unknown"),
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub(super) async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ProblemKind::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
