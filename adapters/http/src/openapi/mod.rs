//! The OpenAPI 3.1 document of the HTTP API, generated from the code (`utoipa`) and
//! served at `GET /openapi.json`.
//!
//! Every route is registered here, through `utoipa-axum`'s [`OpenApiRouter`] and its
//! `routes!` macro, which takes only handlers annotated with `#[utoipa::path]`: a route
//! cannot be served without being in the document, and the document describes exactly
//! the routes served. `adapters/service/tests/openapi/` checks the document against API.md's
//! list of routes and real answers against its schemas.
//!
//! # Layout
//! - this file: the route table ([`routes`]), the document ([`document`]) and its route.
//! - `params`: path and header parameters shared by several routes.
//! - `responses`: each route's success and problem answers.
//! - `rules`: the code's input rules as JSON Schema (text, ids, ISO codes, `If-Match`,
//!   `asOf`, `cursor`), each tested against the parser it describes.
//! - `schemas`: the bodies no request or response type describes (problem, enums,
//!   event envelope, health).

mod params;
mod responses;
pub(super) mod rules;
mod schemas;

use axum::body::Bytes;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::{console, handlers};

pub(super) use params::{CommandHeaders, CorrelationHeader, CreateHeaders, LinePath, OrderPath};
pub(super) use responses::{
    Acknowledged, ActionsFound, AdminProblems, AdminQueryProblems, AdminReadProblems,
    CommandProblems, ConsoleHtml, CreateProblems, Created, Healthy, HistoryFound, JobAccepted,
    JobFound, ListProblems, MetricsText, OpenProblems, OrderFound, OrderQueryProblems, OutboxFound,
    PageFound, ParkedFound, RebuildProblems, RemoveItemProblems, RetriedFound, SkippedFound,
};
pub(super) use rules::{CountryCode, CurrencyCode, OrderIdText, ShortText, Text};
pub(super) use schemas::{OrderStatus, PaymentMethod};

/// The routes that need no authentication (API.md, "Authentication and authorization").
/// The console page is one: it holds nothing, and asks the operator for a token.
pub(super) const OPEN_PATHS: [&str; 6] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/asyncapi.json",
    "/console",
];

/// The name of the bearer security scheme.
pub(super) const BEARER: &str = "bearer";

/// What the document holds besides the routes: its title, tags and the schemas that the
/// routes name only through `responses` (which does not collect schemas by itself).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "order-service",
        description = "Orders as event streams: commands append events (published to Kafka \
                       through an outbox), queries read the stream or the read model. \
                       The contract is `shared/API.md`."
    ),
    tags(
        (name = "commands", description = "Append events to an order's stream; answer an acknowledgment."),
        (name = "queries", description = "Read an order, its history or a page of the read model."),
        (name = "operations", description = "Health, readiness, metrics, this document, the events' AsyncAPI document and the operator console page; no authentication."),
        (name = "administration", description = "The outbox, its parked rows, replays and the read model's rebuild, for the `admin` role; every state-changing call is recorded.")
    ),
    components(schemas(
        crate::dto::AckResponse,
        crate::dto::OrderResponse<'static>,
        crate::dto::SummaryPageResponse<'static>,
        schemas::History,
        schemas::Health,
        schemas::Problem,
        crate::admin::OutboxResponse,
        crate::admin::ParkedPageResponse,
        crate::admin::RetriedResponse,
        crate::admin::SkippedResponse,
        crate::admin::JobAcceptedResponse,
        crate::admin::JobResponse,
        crate::admin::ActionPageResponse,
    ))
)]
struct ApiDoc;

/// Every route of the API with its documentation. Register routes only here, only with
/// `.routes(routes!(...))`: `OpenApiRouter::route` would serve an undocumented route.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    use handlers::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(get_history))
        .routes(routes!(add_item))
        .routes(routes!(remove_item))
        .routes(routes!(change_delivery_address))
        .routes(routes!(pay))
        .routes(routes!(ship))
        .routes(routes!(cancel))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
        .routes(routes!(openapi_json))
        .routes(routes!(asyncapi_json))
        .routes(routes!(crate::admin::outbox_status))
        .routes(routes!(crate::admin::parked_rows))
        .routes(routes!(crate::admin::retry_row))
        .routes(routes!(crate::admin::retry_order))
        .routes(routes!(crate::admin::skip_order))
        .routes(routes!(crate::admin::replay))
        .routes(routes!(crate::admin::rebuild))
        .routes(routes!(crate::admin::job))
        .routes(routes!(crate::admin::actions))
        .routes(routes!(console::console))
}

/// The OpenAPI document of every route, as served (JSON); with `bearer_auth`, every
/// route but [`OPEN_PATHS`] requires an HTTP bearer (JWT) token.
pub fn document(bearer_auth: bool) -> serde_json::Value {
    to_json(&with_security(routes().into_openapi(), bearer_auth))
}

/// `document` as JSON, with its links' field names as OpenAPI spells them: utoipa 5's
/// `Link` serializes them in snake case (`operation_id`), which no client reads.
pub(super) fn to_json(document: &Document) -> serde_json::Value {
    // Serializing plain data into memory cannot fail; `null` would show it.
    let mut json = serde_json::to_value(document).unwrap_or_default();
    let operations = json["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    let links = operations
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(serde_json::Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
    json
}

/// Declares the bearer scheme and requires it on every route but [`OPEN_PATHS`]; the
/// service then ignores `X-User-Id`, and the document says so.
pub(super) fn with_security(mut document: Document, bearer_auth: bool) -> Document {
    if !bearer_auth {
        return document;
    }
    document
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 with the service's secret; claims `sub`, `exp`, `roles` \
                         (`customer`, `operator`, `admin`) and, for customers, `customerId`.",
                    ))
                    .build(),
            ),
        );
    for (path, item) in &mut document.paths.paths {
        if OPEN_PATHS.contains(&path.as_str()) {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.name == params::USER_HEADER {
                    *parameter = params::ignored_user_id();
                }
            }
        }
    }
    document
}

/// The document as served: serialized once, when the router is built.
#[derive(Debug, Clone)]
pub(super) struct DocumentJson(Bytes);

impl DocumentJson {
    pub(super) fn new(document: &Document) -> Self {
        // Serializing plain data into memory cannot fail; an empty body would show it.
        Self(
            serde_json::to_vec(&to_json(document))
                .unwrap_or_default()
                .into(),
        )
    }
}

/// The OpenAPI 3.1 document of every route, body and error.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    params(CorrelationHeader),
    responses(responses::Document, OpenProblems)
)]
pub(super) async fn openapi_json(Extension(document): Extension<DocumentJson>) -> Response {
    json_document(document.0)
}

/// A document serialized beforehand, as `application/json`.
fn json_document(bytes: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// The AsyncAPI document, serialized once when the router is built.
#[derive(Debug, Clone)]
pub(super) struct AsyncApiJson(Bytes);

impl AsyncApiJson {
    /// The document of the events published on `topic`.
    pub(super) fn new(topic: &str) -> Self {
        let document = order_events::asyncapi::document(topic, env!("CARGO_PKG_VERSION"));
        Self(serde_json::to_vec(&document).unwrap_or_default().into())
    }
}

/// The AsyncAPI 3.0 document of the order events on Kafka (`ORDERS_TOPIC`), generated
/// from the consumer crate's types.
#[utoipa::path(
    get,
    path = "/asyncapi.json",
    tag = "operations",
    params(CorrelationHeader),
    responses(responses::AsyncApiDocument, OpenProblems)
)]
pub(super) async fn asyncapi_json(Extension(document): Extension<AsyncApiJson>) -> Response {
    json_document(document.0)
}
