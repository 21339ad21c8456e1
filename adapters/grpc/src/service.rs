//! `orders.v1.OrderService`: each rpc checks its request in the HTTP API's order
//! (order id, metadata, then the message), calls one use case, answers.

use application::{
    Actor, CommandContext, OrderCommands, OrderQueries, SummaryFilter, SummaryQueries,
};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use domain::{CustomerId, OrderId, ProductId};
use order_api::paging::{decode_cursor, encode_cursor, page_limit, MAX_PAGE};
use order_api::{command_context, fingerprint, CorrelationId, MalformedIdempotencyKey};
use prost::Message;
use tonic::{Request, Response, Status};

use super::proto::order_service_server::{self, OrderService};
use super::{convert, proto, requests, status};

/// The use cases behind the rpcs.
#[derive(Debug, Clone)]
pub(crate) struct OrderRpcs {
    pub(crate) commands: OrderCommands,
    pub(crate) queries: OrderQueries,
    pub(crate) summaries: SummaryQueries,
}

/// One request taken apart: who sends it, under which correlation id, its metadata
/// (as the headers they travel in) and message, and which rpc it is (for the
/// idempotency fingerprint).
struct Call<M> {
    rpc: &'static str,
    actor: Actor,
    correlation: CorrelationId,
    headers: HeaderMap,
    message: M,
}

impl<M: Message> Call<M> {
    /// # Errors
    /// INTERNAL when the rpc is not behind the authentication and correlation layers.
    fn new(rpc: &'static str, request: Request<M>) -> Result<Self, Status> {
        let (metadata, extensions, message) = request.into_parts();
        let (Some(actor), Some(correlation)) = (
            extensions.get::<Actor>().cloned(),
            extensions.get::<CorrelationId>().cloned(),
        ) else {
            tracing::error!(
                rpc,
                "an rpc is not behind the authentication and correlation layers"
            );
            return Err(Status::internal(
                "an internal error occurred; it has been logged",
            ));
        };
        Ok(Self {
            rpc,
            actor,
            correlation,
            headers: metadata.into_headers(),
            message,
        })
    }

    /// The command's context, read as HTTP reads it: `expected_version` from the
    /// message, the idempotency key and trace context from the metadata. Two requests
    /// are the same for an idempotency key when their rpc and message (encoded) are.
    ///
    /// # Errors
    /// INVALID_ARGUMENT when `idempotency-key` is malformed.
    fn context(&self, expected_version: Option<u64>) -> Result<CommandContext, Status> {
        command_context(
            self.actor.clone(),
            &self.headers,
            &self.correlation,
            expected_version,
            || {
                let path = format!("/{}/{}", order_service_server::SERVICE_NAME, self.rpc);
                fingerprint("POST", &path, &self.message.encode_to_vec())
            },
        )
        .map_err(|MalformedIdempotencyKey| {
            status::invalid(
                "idempotency-key",
                "must be 1 to 255 visible ASCII characters",
            )
        })
    }
}

/// An order id field.
///
/// # Errors
/// INVALID_ARGUMENT naming `field` when it is not a UUID.
fn order_id(field: &str, text: &str) -> Result<OrderId, Status> {
    OrderId::parse(text)
        .map_err(|_| status::invalid(field, format!("{} is not a UUID", quote(text))))
}

/// A client's value quoted in a message, cut short: messages travel in headers.
fn quote(text: &str) -> String {
    format!("{:?}", status::truncate(text, 40))
}

type Ack = Result<Response<proto::CommandAck>, Status>;

fn ack(outcome: application::CommandOutcome) -> Ack {
    Ok(Response::new(convert::ack(outcome)))
}

#[tonic::async_trait]
impl OrderService for OrderRpcs {
    async fn create_order(&self, request: Request<proto::CreateOrderRequest>) -> Ack {
        let call = Call::new("CreateOrder", request)?;
        let ctx = call.context(None)?;
        let command = requests::place_order(call.message).map_err(status::from_problem)?;
        let outcome = self.commands.place(&ctx, command).await;
        ack(outcome.map_err(status::from_command)?)
    }

    async fn add_item(&self, request: Request<proto::AddItemRequest>) -> Ack {
        let call = Call::new("AddItem", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let ctx = call.context(call.message.expected_version)?;
        let line = requests::new_line(&call.message).map_err(status::from_problem)?;
        let outcome = self.commands.add_item(&ctx, id, line).await;
        ack(outcome.map_err(status::from_command)?)
    }

    async fn remove_item(&self, request: Request<proto::RemoveItemRequest>) -> Ack {
        let call = Call::new("RemoveItem", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let product = ProductId::parse(call.message.product_id.clone())
            .map_err(|e| status::invalid("product_id", e.to_string()))?;
        let ctx = call.context(call.message.expected_version)?;
        let outcome = self.commands.remove_item(&ctx, id, product).await;
        ack(outcome.map_err(status::from_command)?)
    }

    async fn change_delivery_address(
        &self,
        request: Request<proto::ChangeDeliveryAddressRequest>,
    ) -> Ack {
        let call = Call::new("ChangeDeliveryAddress", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let ctx = call.context(call.message.expected_version)?;
        let address = requests::delivery_address(&call.message).map_err(status::from_problem)?;
        let outcome = self
            .commands
            .change_delivery_address(&ctx, id, address)
            .await;
        ack(outcome.map_err(status::from_command)?)
    }

    async fn pay(&self, request: Request<proto::PayRequest>) -> Ack {
        let call = Call::new("Pay", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let ctx = call.context(call.message.expected_version)?;
        let (payment_id, amount, method) =
            requests::payment(&call.message).map_err(status::from_problem)?;
        let outcome = self
            .commands
            .pay(&ctx, id, payment_id, amount, method)
            .await;
        ack(outcome.map_err(status::from_command)?)
    }

    async fn ship(&self, request: Request<proto::ShipRequest>) -> Ack {
        let call = Call::new("Ship", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let ctx = call.context(call.message.expected_version)?;
        let (tracking, carrier) =
            requests::shipment(&call.message).map_err(status::from_problem)?;
        let outcome = self.commands.ship(&ctx, id, tracking, carrier).await;
        ack(outcome.map_err(status::from_command)?)
    }

    async fn cancel(&self, request: Request<proto::CancelRequest>) -> Ack {
        let call = Call::new("Cancel", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let ctx = call.context(call.message.expected_version)?;
        let reason = requests::cancellation(&call.message).map_err(status::from_problem)?;
        let outcome = self.commands.cancel(&ctx, id, reason).await;
        ack(outcome.map_err(status::from_command)?)
    }

    async fn get_order(
        &self,
        request: Request<proto::GetOrderRequest>,
    ) -> Result<Response<proto::Order>, Status> {
        let call = Call::new("GetOrder", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let as_of = call
            .message
            .as_of
            .as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|_| {
                        let text = quote(text);
                        status::invalid("as_of", format!("{text} is not an RFC 3339 date-time"))
                    })
            })
            .transpose()?;
        let order = self.queries.get(&call.actor, id, as_of).await;
        let order = order.map_err(status::from_query)?;
        Ok(Response::new(convert::order(&order)))
    }

    async fn get_history(
        &self,
        request: Request<proto::GetHistoryRequest>,
    ) -> Result<Response<proto::History>, Status> {
        let call = Call::new("GetHistory", request)?;
        let id = order_id("order_id", &call.message.order_id)?;
        let events = self.queries.history(&call.actor, id).await;
        let events = events.map_err(status::from_query)?;
        Ok(Response::new(proto::History {
            order_id: id.to_string(),
            events: events.iter().map(convert::event).collect(),
        }))
    }

    async fn list_orders(
        &self,
        request: Request<proto::ListOrdersRequest>,
    ) -> Result<Response<proto::ListOrdersResponse>, Status> {
        let call = Call::new("ListOrders", request)?;
        let message = &call.message;
        let limit = page_limit(message.limit).ok_or_else(|| {
            status::invalid(
                "limit",
                format!(
                    "{} is not an integer from 1 to {MAX_PAGE}",
                    message.limit.unwrap_or_default()
                ),
            )
        })?;
        let status = convert::status_filter(message.status).map_err(|()| {
            status::invalid(
                "status",
                format!("{} is not an OrderStatus", message.status),
            )
        })?;
        let customer_id = message
            .customer_id
            .clone()
            .map(|text| {
                CustomerId::parse(text).map_err(|e| status::invalid("customer_id", e.to_string()))
            })
            .transpose()?;
        let after = message
            .cursor
            .as_deref()
            .map(|text| {
                decode_cursor(text).ok_or_else(|| status::invalid("cursor", "is malformed"))
            })
            .transpose()?;
        let filter = SummaryFilter {
            customer_id,
            status,
            limit,
            after,
        };
        let page = self.summaries.list(&call.actor, &filter).await;
        let page = page.map_err(status::from_query)?;
        Ok(Response::new(proto::ListOrdersResponse {
            items: page.items.iter().map(convert::summary).collect(),
            next_cursor: page.next.map(|(at, id)| encode_cursor(at, id)),
            read_model_lag_ms: u64::try_from(page.lag.as_millis()).unwrap_or(u64::MAX),
        }))
    }
}
