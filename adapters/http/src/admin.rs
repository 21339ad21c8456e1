//! The administration routes (`/admin/...`, API.md's "Administration"): one handler
//! per route over [`application::Administration`], and their bodies. The `admin` role
//! is checked twice: by the authentication middleware right after authenticating (so
//! a non-admin gets 403 whatever the path or body) and by each use case.
//!
//! Replays and rebuilds are started here and run in the background, in a task of
//! their own: the answer (202 and the job's `Location`) does not wait for them.

use application::admin::{
    ActionPage, Job, OutboxStatus, ParkedPage, ParkedTarget, RecordedAction, ReplayFilter,
};
use application::Actor;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::OrderId;
use order_api::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use application::envelope::format_time;

use super::extract::JsonBody;
use super::openapi::{
    ActionsFound, AdminProblems, AdminQueryProblems, AdminReadProblems, CorrelationHeader,
    JobAccepted, JobFound, OrderIdText, OrderPath, OutboxFound, ParkedFound, RebuildProblems,
    RetriedFound, SkippedFound, Text,
};
use super::problem::ApiError;
use super::AppState;

type Answer = Result<Response, ApiError>;

/// The outbox: totals, every partition with its owner, the live relays.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct OutboxResponse {
    /// Rows not yet published, parked ones included.
    backlog: i64,
    parked: i64,
    /// Age in seconds of the oldest row not yet published (parked ones included); 0
    /// when there is none.
    oldest_age_seconds: f64,
    /// Every partition of the outbox (64), in order.
    partitions: Vec<PartitionResponse>,
    relays: Vec<RelayResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PartitionResponse {
    #[schema(minimum = 0, maximum = 63)]
    partition: i32,
    /// Rows not yet published, parked ones included.
    waiting: i64,
    parked: i64,
    oldest_age_seconds: f64,
    /// The relay that publishes it, or `null` when no relay is alive.
    owner: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RelayResponse {
    relay_id: Uuid,
    host: String,
    /// Its latest heartbeat (RFC 3339).
    last_seen_at: String,
    /// The partitions it publishes.
    partitions: Vec<i32>,
}

impl From<OutboxStatus> for OutboxResponse {
    fn from(status: OutboxStatus) -> Self {
        Self {
            backlog: status.backlog,
            parked: status.parked,
            oldest_age_seconds: status.oldest_age_seconds,
            partitions: status
                .partitions
                .into_iter()
                .map(|p| PartitionResponse {
                    partition: p.partition,
                    waiting: p.waiting,
                    parked: p.parked,
                    oldest_age_seconds: p.oldest_age_seconds,
                    owner: p.owner,
                })
                .collect(),
            relays: status
                .relays
                .into_iter()
                .map(|r| RelayResponse {
                    relay_id: r.relay_id,
                    host: r.host,
                    last_seen_at: format_time(r.last_seen_at),
                    partitions: r.partitions,
                })
                .collect(),
        }
    }
}

/// A page of parked rows, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ParkedPageResponse {
    items: Vec<ParkedResponse>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A parked outbox row: one the broker refused `RELAY_MAX_ATTEMPTS` times; the later
/// rows of its order wait behind it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ParkedResponse {
    outbox_id: i64,
    event_id: Uuid,
    order_id: Uuid,
    version: i64,
    event_type: String,
    attempts: i32,
    /// The broker's (or the producer's) last refusal.
    last_error: Option<String>,
    /// RFC 3339.
    parked_at: String,
}

impl From<ParkedPage> for ParkedPageResponse {
    fn from(page: ParkedPage) -> Self {
        Self {
            items: page
                .items
                .into_iter()
                .map(|row| ParkedResponse {
                    outbox_id: row.outbox_id,
                    event_id: row.event_id,
                    order_id: row.order_id,
                    version: row.version,
                    event_type: row.event_type,
                    attempts: row.attempts,
                    last_error: row.last_error,
                    parked_at: format_time(row.parked_at),
                })
                .collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RetriedResponse {
    /// How many parked rows are due again.
    retried: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SkippedResponse {
    /// How many rows (parked, and held back behind them) moved to the dead letters.
    skipped: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobAcceptedResponse {
    job_id: Uuid,
}

/// A replay or a rebuild.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobResponse {
    job_id: Uuid,
    #[schema(value_type = String, example = "replay")]
    /// `replay` or `rebuild`.
    kind: &'static str,
    /// `running`, `succeeded` or `failed`.
    #[schema(value_type = String, example = "running")]
    state: &'static str,
    /// Events done so far.
    processed: u64,
    /// Events to do (for a rebuild: the event store's count when it started, raised
    /// when more arrive meanwhile).
    total: u64,
    /// RFC 3339.
    started_at: String,
    /// RFC 3339; `null` while running.
    finished_at: Option<String>,
    /// Why it failed; `null` otherwise.
    error: Option<String>,
}

impl From<Job> for JobResponse {
    fn from(job: Job) -> Self {
        Self {
            job_id: job.job_id,
            kind: job.kind.as_str(),
            state: job.state.as_str(),
            processed: job.processed,
            total: job.total,
            started_at: format_time(job.started_at),
            finished_at: job.finished_at.map(format_time),
            error: job.error,
        }
    }
}

/// A page of recorded actions, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ActionPageResponse {
    items: Vec<ActionResponse>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A recorded administrative action.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ActionResponse {
    /// RFC 3339.
    at: String,
    /// The acting user (`sub`; `cli:<user>` for a subcommand); `null` when
    /// authentication is off and no `X-User-Id` was sent.
    user_id: Option<String>,
    /// `outbox.retry`, `outbox.skip`, `replay` or `projections.rebuild`.
    action: String,
    target: String,
    outcome: String,
}

impl From<ActionPage> for ActionPageResponse {
    fn from(page: ActionPage) -> Self {
        Self {
            items: page
                .items
                .into_iter()
                .map(|action: RecordedAction| ActionResponse {
                    at: format_time(action.at),
                    user_id: action.user_id,
                    action: action.action,
                    target: action.target,
                    outcome: action.outcome,
                })
                .collect(),
            next_cursor: page.next.map(|id| id.to_string()),
        }
    }
}

/// Why the order's rows are given up.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct SkipRequest {
    /// Recorded with the rows in the dead letters and in the action.
    #[schema(value_type = Text)]
    reason: Option<String>,
}

/// Exactly one of the three: which events to re-enqueue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReplayRequest {
    /// Every event of this order.
    #[schema(value_type = Option<OrderIdText>)]
    order_id: Option<String>,
    /// Every event at or after this `position` (see the order history).
    #[schema(value_type = Option<i64>, minimum = 1)]
    from_position: Option<i64>,
    /// Every event recorded at or after this instant (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
}

impl ReplayRequest {
    /// The filter asked for.
    ///
    /// # Errors
    /// 422 naming the fields when not exactly one is given, or one is malformed.
    fn into_filter(self) -> Result<ReplayFilter, ApiError> {
        let given = [
            ("orderId", self.order_id.is_some()),
            ("fromPosition", self.from_position.is_some()),
            ("since", self.since.is_some()),
        ];
        let named: Vec<&str> = given.iter().filter(|(_, g)| *g).map(|(n, _)| *n).collect();
        if named.len() != 1 {
            let message = "exactly one of orderId, fromPosition and since is required";
            let fields = if named.is_empty() {
                vec!["body"]
            } else {
                named
            };
            return Err(ApiError::validation(
                fields
                    .into_iter()
                    .map(|field| FieldError::new(field, message))
                    .collect(),
            ));
        }
        let order = self
            .order_id
            .map(|text| {
                OrderId::parse(&text)
                    .map_err(|_| invalid("orderId", format!("{text:?} is not a UUID")))
            })
            .transpose()?;
        let from_position = self
            .from_position
            .map(|position| {
                u64::try_from(position)
                    .ok()
                    .filter(|p| *p >= 1)
                    .ok_or_else(|| invalid("fromPosition", "must be an integer of at least 1"))
            })
            .transpose()?;
        let since = self
            .since
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|_| invalid("since", format!("{text:?} is not an RFC 3339 instant")))
            })
            .transpose()?;
        Ok(ReplayFilter {
            order,
            from_position,
            since,
        })
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub(super) struct ParkedParams {
    /// Only this order's parked rows.
    #[param(value_type = Option<OrderIdText>, nullable = false)]
    order_id: Option<String>,
    /// The page size.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20, nullable = false)]
    limit: Option<String>,
    /// `nextCursor` of the previous page (opaque; a malformed one answers 400).
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,19}$", nullable = false)]
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageParams {
    /// The page size.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20, nullable = false)]
    limit: Option<String>,
    /// `nextCursor` of the previous page (opaque; a malformed one answers 400).
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,19}$", nullable = false)]
    cursor: Option<String>,
}

/// `limit` and `cursor` of a page.
///
/// # Errors
/// 400 naming the malformed one.
fn page(limit: Option<&str>, cursor: Option<&str>) -> Result<(u32, Option<i64>), ApiError> {
    let limit = super::handlers::limit_param(limit)?;
    let cursor = cursor
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|id| *id > 0 && text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| ApiError::bad_request("cursor is malformed"))
        })
        .transpose()?;
    Ok((limit, cursor))
}

/// The outbox: backlog per partition with its owner, and the live relays.
#[utoipa::path(
    get,
    path = "/admin/outbox",
    tag = "administration",
    params(CorrelationHeader),
    responses(OutboxFound, AdminReadProblems)
)]
pub(super) async fn outbox_status(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Answer {
    let status = state.administration.outbox_status(&actor).await?;
    Ok(Json(OutboxResponse::from(status)).into_response())
}

/// Parked rows, oldest first, with their errors.
#[utoipa::path(
    get,
    path = "/admin/outbox/parked",
    tag = "administration",
    params(ParkedParams, CorrelationHeader),
    responses(ParkedFound, AdminReadProblems)
)]
pub(super) async fn parked_rows(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<ParkedParams>, QueryRejection>,
) -> Answer {
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let order = params
        .order_id
        .map(|text| {
            OrderId::parse(&text)
                .map_err(|_| ApiError::bad_request(format!("orderId {text:?} is not a UUID")))
        })
        .transpose()?;
    let (limit, after) = page(params.limit.as_deref(), params.cursor.as_deref())?;
    let page = state
        .administration
        .parked(&actor, order, after, limit)
        .await?;
    Ok(Json(ParkedPageResponse::from(page)).into_response())
}

/// Make one parked row due again, with a fresh count of attempts.
#[utoipa::path(
    post,
    path = "/admin/outbox/parked/{outboxId}/retry",
    tag = "administration",
    params(("outboxId" = i64, Path, description = "The parked row's `outboxId`.", minimum = 1), CorrelationHeader),
    responses(RetriedFound, AdminQueryProblems)
)]
pub(super) async fn retry_row(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = text
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_request(format!("outboxId {text:?} is not a positive integer"))
        })?;
    let retried = state
        .administration
        .retry(&actor, ParkedTarget::Row(id))
        .await?;
    Ok(Json(RetriedResponse { retried }).into_response())
}

/// Make every parked row of the order due again; its held-back rows follow in order.
#[utoipa::path(
    post,
    path = "/admin/orders/{id}/outbox/retry",
    tag = "administration",
    params(OrderPath, CorrelationHeader),
    responses(RetriedFound, AdminQueryProblems)
)]
pub(super) async fn retry_order(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let order = super::handlers::order_id(path)?;
    let retried = state
        .administration
        .retry(&actor, ParkedTarget::Order(order))
        .await?;
    Ok(Json(RetriedResponse { retried }).into_response())
}

/// Give up on the order's parked and held-back rows: they move to the dead letters
/// with the reason, and the order's next events flow (its consumers see a gap).
#[utoipa::path(
    post,
    path = "/admin/orders/{id}/outbox/skip",
    tag = "administration",
    params(OrderPath, CorrelationHeader),
    request_body = SkipRequest,
    responses(SkippedFound, AdminProblems)
)]
pub(super) async fn skip_order(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    path: Result<Path<String>, PathRejection>,
    body: JsonBody<SkipRequest>,
) -> Answer {
    let order = super::handlers::order_id(path)?;
    let reason = body
        .value()?
        .reason
        .ok_or_else(|| invalid("reason", "is required"))?;
    // The text rule of every field (API.md): 1 to 200 characters, no control characters.
    let reason = domain::CancellationReason::parse(reason)
        .map_err(|rule| invalid("reason", rule.to_string()))?;
    let skipped = state
        .administration
        .skip(&actor, ParkedTarget::Order(order), reason.as_str())
        .await?;
    Ok(Json(SkippedResponse { skipped }).into_response())
}

/// 202 with the job's id and `Location`, the job running in the background.
fn accepted(job: Box<dyn application::RunningJob>) -> Response {
    let id = job.id();
    let span = tracing::info_span!("job", job_id = %id);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            match job.run(&|_, _| {}).await {
                Ok(done) => tracing::info!(
                    state = done.state.as_str(),
                    processed = done.processed,
                    "job ended"
                ),
                Err(error) => tracing::error!(%error, "job ended, but its end was not recorded"),
            }
        },
        span,
    ));
    let mut response = (
        StatusCode::ACCEPTED,
        Json(JobAcceptedResponse { job_id: id }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/admin/jobs/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Re-enqueue events from the event store with their original `eventId` (one order's,
/// from a position, or since an instant), behind anything of their orders still in the
/// outbox: a job.
#[utoipa::path(
    post,
    path = "/admin/replay",
    tag = "administration",
    params(CorrelationHeader),
    request_body = ReplayRequest,
    responses(JobAccepted, AdminProblems)
)]
pub(super) async fn replay(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    body: JsonBody<ReplayRequest>,
) -> Answer {
    let filter = body.value()?.into_filter()?;
    let job = state.administration.start_replay(&actor, filter).await?;
    Ok(accepted(job))
}

/// Rebuild the read model from the event store (reads keep working meanwhile): a job;
/// one at a time.
#[utoipa::path(
    post,
    path = "/admin/projections/rebuild",
    tag = "administration",
    params(CorrelationHeader),
    responses(JobAccepted, RebuildProblems)
)]
pub(super) async fn rebuild(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Answer {
    let job = state.administration.start_rebuild(&actor).await?;
    Ok(accepted(job))
}

/// A job's progress and end.
#[utoipa::path(
    get,
    path = "/admin/jobs/{jobId}",
    tag = "administration",
    params(("jobId" = Uuid, Path, description = "The id `POST /admin/replay` or `POST /admin/projections/rebuild` answered."), CorrelationHeader),
    responses(JobFound, AdminQueryProblems)
)]
pub(super) async fn job(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    path: Result<Path<String>, PathRejection>,
) -> Answer {
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = Uuid::parse_str(&text)
        .map_err(|_| ApiError::bad_request(format!("job id {text:?} is not a UUID")))?;
    let job = state.administration.job(&actor, id).await?;
    Ok(Json(JobResponse::from(job)).into_response())
}

/// The recorded actions, newest first.
#[utoipa::path(
    get,
    path = "/admin/actions",
    tag = "administration",
    params(PageParams, CorrelationHeader),
    responses(ActionsFound, AdminReadProblems)
)]
pub(super) async fn actions(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    query: Result<Query<PageParams>, QueryRejection>,
) -> Answer {
    let Query(params) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (limit, before) = page(params.limit.as_deref(), params.cursor.as_deref())?;
    let page = state.administration.actions(&actor, before, limit).await?;
    Ok(Json(ActionPageResponse::from(page)).into_response())
}
