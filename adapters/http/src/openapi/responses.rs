//! The responses of each route: the success with its headers, and the problems
//! (`application/problem+json`) it can answer, per API.md's "Errors" table.
//!
//! The schemas named here are registered in the document by `ApiDoc`'s `components`.

use std::collections::BTreeMap;

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

use super::schemas::{Health, History, Problem};
use crate::dto::{AckResponse, OrderResponse, SummaryPageResponse};

/// Responses by status code, as `IntoResponses` gives them.
type Responses = BTreeMap<String, RefOr<Response>>;

fn schema_ref<T: ToSchema>() -> Ref {
    Ref::from_schema_name(T::name())
}

fn header(response: ResponseBuilder, name: &str, description: &str) -> ResponseBuilder {
    response.header(
        name,
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build(),
    )
}

fn with_correlation(response: ResponseBuilder) -> ResponseBuilder {
    header(
        response,
        "X-Correlation-Id",
        "The request's correlation id, or the one generated for it.",
    )
}

fn with_etag(response: ResponseBuilder) -> ResponseBuilder {
    header(
        response,
        "ETag",
        "The order's version, quoted (`\"7\"`): what `If-Match` expects.",
    )
}

/// A JSON success answer of schema `body`.
fn json(description: &str, body: impl Into<RefOr<Schema>>) -> ResponseBuilder {
    with_correlation(ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new().schema(Some(body)).build(),
    ))
}

fn one(status: u16, response: ResponseBuilder) -> Responses {
    BTreeMap::from([(status.to_string(), response.build().into())])
}

/// The operations on one order (`operationId`s: the handlers' names), each linked from
/// every acknowledgment with the `orderId` it gives: a client (or a stateful fuzzer)
/// follows them from `POST /orders` to the order it made and from one command to the
/// next.
pub(crate) const ORDER_OPERATIONS: [(&str, &str); 8] = [
    ("GetOrder", "get_order"),
    ("GetHistory", "get_history"),
    ("AddItem", "add_item"),
    ("RemoveItem", "remove_item"),
    ("ChangeDeliveryAddress", "change_delivery_address"),
    ("Pay", "pay"),
    ("Ship", "ship"),
    ("Cancel", "cancel"),
];

/// Links from an acknowledgment to every operation on its order; `product` is where
/// `RemoveItem` finds a `productId` of the order (in the request that was acknowledged).
fn with_order_links(mut response: ResponseBuilder, product: Option<&str>) -> ResponseBuilder {
    for (name, operation_id) in ORDER_OPERATIONS {
        let mut link = LinkBuilder::new()
            .operation_id(operation_id)
            .parameter("id", "$response.body#/orderId")
            .description(format!("`{operation_id}` on the acknowledged order"));
        if operation_id == "remove_item" {
            let Some(product) = product else { continue };
            link = link.parameter("productId", product);
        }
        response = response.link(name, link.build());
    }
    response
}

/// An acknowledgment `{orderId, version}`.
fn acknowledgment(description: &str) -> ResponseBuilder {
    let response = with_etag(json(description, schema_ref::<AckResponse>()));
    header(
        response,
        "Idempotent-Replayed",
        "`true` when this is the replay of an earlier answer to the same `Idempotency-Key`.",
    )
}

/// 201: the order was created.
#[derive(Debug)]
pub(crate) struct Created;

impl IntoResponses for Created {
    fn responses() -> Responses {
        let response = acknowledgment("The order was created (`OrderCreated`).");
        let response = header(response, "Location", "The new order: `/orders/{id}`.");
        one(
            201,
            with_order_links(response, Some("$request.body#/items/0/productId")),
        )
    }
}

/// 200: the command was applied.
#[derive(Debug)]
pub(crate) struct Acknowledged;

impl IntoResponses for Acknowledged {
    fn responses() -> Responses {
        let response =
            acknowledgment("The command was applied; `version` is the order's new version.");
        one(200, with_order_links(response, None))
    }
}

/// 200: the order.
#[derive(Debug)]
pub(crate) struct OrderFound;

impl IntoResponses for OrderFound {
    fn responses() -> Responses {
        let response = json(
            "The order, strongly consistent (rebuilt from its events).",
            schema_ref::<OrderResponse<'static>>(),
        );
        one(200, with_etag(response))
    }
}

/// 200: the order's events.
#[derive(Debug)]
pub(crate) struct HistoryFound;

impl IntoResponses for HistoryFound {
    fn responses() -> Responses {
        one(
            200,
            json(
                "Every event of the order, in version order.",
                schema_ref::<History>(),
            ),
        )
    }
}

/// 200: a page of the read model.
#[derive(Debug)]
pub(crate) struct PageFound;

impl IntoResponses for PageFound {
    fn responses() -> Responses {
        let response = json(
            "A page of orders, newest first (eventually consistent).",
            schema_ref::<SummaryPageResponse<'static>>(),
        );
        one(
            200,
            header(
                response,
                "X-Read-Model-Lag-Ms",
                "Milliseconds between the newest committed event and the newest event \
                 applied to the read model (0 when caught up).",
            ),
        )
    }
}

/// 200 from `/healthz` and `/readyz`.
#[derive(Debug)]
pub(crate) struct Healthy;

impl IntoResponses for Healthy {
    fn responses() -> Responses {
        one(
            200,
            json(
                "Alive (`/healthz`: `ok`) or ready (`/readyz`: `ready`).",
                schema_ref::<Health>(),
            ),
        )
    }
}

/// 200 from `/metrics`.
#[derive(Debug)]
pub(crate) struct MetricsText;

impl IntoResponses for MetricsText {
    fn responses() -> Responses {
        let text = ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        let response = ResponseBuilder::new()
            .description("Prometheus text exposition format 0.0.4.")
            .content("text/plain", text);
        one(200, with_correlation(response))
    }
}

/// 200 from `/openapi.json`.
#[derive(Debug)]
pub(crate) struct Document;

impl IntoResponses for Document {
    fn responses() -> Responses {
        one(
            200,
            json(
                "This document (OpenAPI 3.1).",
                ObjectBuilder::new().schema_type(Type::Object),
            ),
        )
    }
}

/// 200 from `/asyncapi.json`.
#[derive(Debug)]
pub(crate) struct AsyncApiDocument;

impl IntoResponses for AsyncApiDocument {
    fn responses() -> Responses {
        one(
            200,
            json(
                "The AsyncAPI 3.0 document of the events on Kafka: the topic, the key, the \
                 CloudEvents headers and one message per eventType with its JSON Schema.",
                ObjectBuilder::new().schema_type(Type::Object),
            ),
        )
    }
}

/// 200 from `/console`.
#[derive(Debug)]
pub(crate) struct ConsoleHtml;

impl IntoResponses for ConsoleHtml {
    fn responses() -> Responses {
        let html = ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        let response = ResponseBuilder::new()
            .description(
                "The operator console: one self-contained HTML page (inline style and \
                 script) that asks for an admin token, keeps it in the tab's \
                 sessionStorage, and calls the administration routes with it.",
            )
            .content("text/html", html);
        let response = header(
            response,
            "Content-Security-Policy",
            "Only the page's own inline style and script (by SHA-256) and fetches to \
             this service.",
        );
        one(200, with_correlation(response))
    }
}

/// Declares a JSON success answer of an administration route.
macro_rules! admin_success {
    ($(#[$doc:meta])* $name:ident: $status:literal, $body:ty, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> Responses {
                one($status, json($description, schema_ref::<$body>()))
            }
        }
    };
}

admin_success!(
    /// `GET /admin/outbox`.
    OutboxFound: 200, crate::admin::OutboxResponse,
    "The outbox: totals, every partition with its owner, the live relays."
);
admin_success!(
    /// `GET /admin/outbox/parked`.
    ParkedFound: 200, crate::admin::ParkedPageResponse,
    "A page of parked rows, oldest first."
);
admin_success!(
    /// A retry.
    RetriedFound: 200, crate::admin::RetriedResponse,
    "The parked rows are due again (recorded as an action)."
);
admin_success!(
    /// A skip.
    SkippedFound: 200, crate::admin::SkippedResponse,
    "The rows moved to the dead letters (recorded as an action)."
);
admin_success!(
    /// `GET /admin/jobs/{jobId}`.
    JobFound: 200, crate::admin::JobResponse,
    "The job's progress, and how it ended."
);
admin_success!(
    /// `GET /admin/actions`.
    ActionsFound: 200, crate::admin::ActionPageResponse,
    "A page of recorded actions, newest first."
);

/// 202: a replay or a rebuild was started (recorded as an action).
#[derive(Debug)]
pub(crate) struct JobAccepted;

impl IntoResponses for JobAccepted {
    fn responses() -> Responses {
        let response = json(
            "The job was started; it runs in the background (follow `Location`).",
            schema_ref::<crate::admin::JobAcceptedResponse>(),
        );
        one(
            202,
            header(
                response,
                "Location",
                "`/admin/jobs/{jobId}`: the job's progress.",
            ),
        )
    }
}

/// A problem answer for `status`, described for the routes that can give it.
fn problem(status: u16) -> (String, RefOr<Response>) {
    let description = match status {
        400 => "The body is not valid JSON, or a path, query or header parameter is malformed.",
        401 => {
            "Authentication is on and the bearer token is missing, malformed, wrongly \
             signed or expired."
        }
        403 => {
            "Authenticated, but the role or the customer may not do this (the \
             administration routes: only the `admin` role)."
        }
        404 => {
            "No such order (for `DELETE .../items/{productId}`: no such line; on the \
             administration routes: no such parked row, order or job)."
        }
        409 => {
            "The order's state does not allow the command (`invalid-state`), a concurrent \
             change won and retries did not resolve it (`concurrency-conflict`), or \
             `POST /orders` with an `orderId` that exists (`already-exists`); \
             `POST /admin/projections/rebuild` while a rebuild runs (`invalid-state`)."
        }
        412 => "`If-Match` did not match the order's version; nothing was written.",
        413 => "The body is larger than the limit (64 KiB by default).",
        415 => "The body is not `application/json`.",
        422 => {
            "A field is missing, malformed or out of range (the problem's `errors` name \
             them), a rule on the order's content refused the command, or the \
             `Idempotency-Key` was used with another method, path or body."
        }
        500 => "A bug; the detail says nothing internal (the log says everything).",
        503 => {
            "The database is unreachable, or the service is overloaded or timed out; \
             nothing was written. `Retry-After` says when to retry."
        }
        _ => "An error.",
    };
    let body = ContentBuilder::new()
        .schema(Some(schema_ref::<Problem>()))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", body);
    if status == 401 {
        response = header(response, "WWW-Authenticate", "`Bearer`.");
    }
    if status == 503 {
        response = header(response, "Retry-After", "Seconds to wait before retrying.");
    }
    (status.to_string(), response.build().into())
}

fn problems(statuses: &[u16]) -> Responses {
    statuses.iter().map(|&status| problem(status)).collect()
}

/// Declares a set of problem answers.
macro_rules! problem_set {
    ($(#[$doc:meta])* $name:ident: $($status:literal),+) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name;

        impl IntoResponses for $name {
            fn responses() -> Responses {
                problems(&[$($status),+])
            }
        }
    };
}

problem_set!(
    /// `POST /orders`.
    CreateProblems: 400, 401, 403, 409, 413, 415, 422, 500, 503
);
problem_set!(
    /// A command with a JSON body on an existing order.
    CommandProblems: 400, 401, 403, 404, 409, 412, 413, 415, 422, 500, 503
);
problem_set!(
    /// `DELETE /orders/{id}/items/{productId}` (no body).
    RemoveItemProblems: 400, 401, 403, 404, 409, 412, 422, 500, 503
);
problem_set!(
    /// `GET /orders/{id}` and its history.
    OrderQueryProblems: 400, 401, 403, 404, 500, 503
);
problem_set!(
    /// `GET /orders`.
    ListProblems: 400, 401, 403, 500, 503
);
problem_set!(
    /// The open routes: a malformed `X-Correlation-Id` (400), overload or, for
    /// `/readyz`, an unreachable database (503).
    OpenProblems: 400, 503
);
problem_set!(
    /// An administration route with a JSON body.
    AdminProblems: 400, 401, 403, 404, 413, 415, 422, 500, 503
);
problem_set!(
    /// An administration route without a body on a row, an order or a job.
    AdminQueryProblems: 400, 401, 403, 404, 500, 503
);
problem_set!(
    /// An administration route that reads a list.
    AdminReadProblems: 400, 401, 403, 500, 503
);
problem_set!(
    /// `POST /admin/projections/rebuild`.
    RebuildProblems: 400, 401, 403, 409, 500, 503
);
