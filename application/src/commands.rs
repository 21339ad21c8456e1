//! Command use cases: one method of [`OrderCommands`] per command of API.md.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{
    Address, Amount, CancellationReason, Carrier, Order, OrderError, OrderFactory, OrderId,
    OrderLine, PaymentId, PaymentMethod, PlaceOrder, ProductId, TrackingNumber,
};
use thiserror::Error;
use uuid::Uuid;

use crate::access::{Action, Actor, Forbidden};
use crate::envelope::{EventEnvelope, EventMetadata};
use crate::ports::{
    Clock, EventStore, IdempotencyRecord, SnapshotStore, StoreError, StoredSnapshot, UnitOfWork,
};
use crate::publication::PublicationPolicy;
use crate::queries::Loader;

/// Who sends a command and under which conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// Who sends it: recorded in `metadata.userId`, and what they may do.
    pub actor: Actor,
    pub correlation_id: String,
    /// This command's id, recorded as the events' `causationId`.
    pub command_id: Uuid,
    pub traceparent: Option<String>,
    /// `If-Match`: the version the client last saw; a mismatch writes nothing.
    pub expected_version: Option<u64>,
    pub idempotency: Option<IdempotencyRequest>,
}

impl CommandContext {
    /// A context with a fresh command id and correlation id, acting as `actor`.
    pub fn new(actor: Actor) -> Self {
        let command_id = Uuid::now_v7();
        Self {
            actor,
            correlation_id: command_id.to_string(),
            command_id,
            traceparent: None,
            expected_version: None,
            idempotency: None,
        }
    }

    /// A context for an unrestricted, unnamed actor (authentication off), with a fresh
    /// command id and correlation id.
    pub fn anonymous() -> Self {
        Self::new(Actor::unrestricted(None))
    }
}

/// An `Idempotency-Key` and what identifies the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRequest {
    pub scope: String,
    pub key: String,
    /// Digest of method, path and body: the same key with another request is refused.
    pub fingerprint: String,
}

/// The acknowledgment of a command: the order and its stream's version after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandAck {
    pub order_id: OrderId,
    pub version: u64,
}

/// A command's result: its acknowledgment, and whether it is the replay of an earlier
/// answer kept under the same idempotency key (then nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandOutcome {
    pub ack: CommandAck,
    pub replayed: bool,
}

/// Why a command wrote nothing.
#[derive(Debug, Error)]
pub enum CommandError {
    /// A business rule refused it (state or content).
    #[error(transparent)]
    Rejected(#[from] OrderError),
    /// No such order, or one the actor may not know of.
    #[error("order {0} does not exist")]
    NotFound(OrderId),
    /// The actor's role does not allow the command.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// `POST /orders` with an id that is taken.
    #[error("order {0} already exists")]
    AlreadyExists(OrderId),
    /// The order is not at the version the client expected (`If-Match`).
    #[error("the order is at version {actual}, not {expected}")]
    VersionMismatch { expected: u64, actual: u64 },
    /// Concurrent commands kept winning the race; every attempt wrote nothing.
    #[error("the order kept changing concurrently ({attempts} attempts)")]
    Conflict { attempts: u32 },
    /// The idempotency key was used before with another request.
    #[error("the idempotency key was already used with another request")]
    IdempotencyKeyReused,
    /// The database cannot be reached; nothing was written.
    #[error("the event store is unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug or a damaged store; nothing was written.
    #[error("internal failure")]
    Internal(#[source] StoreError),
}

impl From<StoreError> for CommandError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(error),
            _ => Self::Internal(error),
        }
    }
}

/// The command use cases.
#[derive(Clone)]
pub struct OrderCommands {
    store: Arc<dyn EventStore>,
    loader: Loader,
    /// A snapshot is stored when an order's version crosses a multiple of this; 0: never.
    snapshot_interval: u64,
    factory: OrderFactory,
    publication: Arc<dyn PublicationPolicy>,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
}

impl std::fmt::Debug for OrderCommands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderCommands")
            .field("max_attempts", &self.max_attempts)
            .field("snapshot_interval", &self.snapshot_interval)
            .finish_non_exhaustive()
    }
}

/// How often a command that lost a race is re-run on the fresh state.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Every how many events an order's state is snapshotted, unless configured.
pub const DEFAULT_SNAPSHOT_INTERVAL: u64 = 100;

impl OrderCommands {
    pub fn new(
        store: Arc<dyn EventStore>,
        factory: OrderFactory,
        publication: Arc<dyn PublicationPolicy>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            loader: Loader::new(store.clone()),
            store,
            snapshot_interval: 0,
            factory,
            publication,
            clock,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// Sets how many times a command is tried before answering `Conflict`.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Loads orders from their latest snapshot in `snapshots` (and the later events),
    /// and stores a snapshot, in the command's unit of work, whenever an order's version
    /// crosses a multiple of `interval` (0: loads use snapshots, none are written).
    pub fn with_snapshots(mut self, snapshots: Arc<dyn SnapshotStore>, interval: u64) -> Self {
        self.loader.snapshots = Some(snapshots);
        self.snapshot_interval = interval;
        self
    }

    /// Places a new order (`OrderCreated`).
    ///
    /// # Errors
    /// `Rejected` by the factory's rules, `Forbidden`, `AlreadyExists`, `IdempotencyKeyReused`,
    /// `Unavailable`, `Internal`.
    #[tracing::instrument(skip_all, fields(order_id = %command.id), err(level = "debug"))]
    pub async fn place(
        &self,
        ctx: &CommandContext,
        command: PlaceOrder,
    ) -> Result<CommandOutcome, CommandError> {
        if let Some(replayed) = self.replay(ctx).await? {
            return Ok(replayed);
        }
        let id = command.id;
        // The request's own rules (422) are checked before the actor's right (403).
        let mut order = self.factory.place(command, self.clock.now())?;
        ctx.actor.check_place(order.customer().customer_id())?;
        match self.save(ctx, &mut order).await {
            // The id is taken; when a concurrent retry with the same idempotency key
            // took it, that retry's answer is replayed rather than refused.
            Err(SaveError::VersionConflict) => self
                .replay(ctx)
                .await?
                .ok_or(CommandError::AlreadyExists(id)),
            Err(SaveError::KeyTaken) => self
                .replay(ctx)
                .await?
                .ok_or(CommandError::IdempotencyKeyReused),
            Err(SaveError::Store(e)) => Err(e.into()),
            Ok(ack) => Ok(CommandOutcome {
                ack,
                replayed: false,
            }),
        }
    }

    /// Adds units of a product (`ItemAdded`).
    ///
    /// # Errors
    /// As [`OrderCommands::change`].
    pub async fn add_item(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        line: OrderLine,
    ) -> Result<CommandOutcome, CommandError> {
        self.change(ctx, id, Action::AddItem, |order, now| {
            order.add_item(line.clone(), now)
        })
        .await
    }

    /// Removes a product's line (`ItemRemoved`).
    ///
    /// # Errors
    /// As [`OrderCommands::change`].
    pub async fn remove_item(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        product: ProductId,
    ) -> Result<CommandOutcome, CommandError> {
        self.change(ctx, id, Action::RemoveItem, |order, now| {
            order.remove_item(&product, now)
        })
        .await
    }

    /// Replaces the delivery address (`DeliveryAddressChanged`).
    ///
    /// # Errors
    /// As [`OrderCommands::change`].
    pub async fn change_delivery_address(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        address: Address,
    ) -> Result<CommandOutcome, CommandError> {
        self.change(ctx, id, Action::ChangeDeliveryAddress, |order, now| {
            order.change_delivery_address(address.clone(), now)
        })
        .await
    }

    /// Records a payment (`PaymentProcessed`).
    ///
    /// # Errors
    /// As [`OrderCommands::change`].
    pub async fn pay(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        payment_id: PaymentId,
        amount: Amount,
        method: PaymentMethod,
    ) -> Result<CommandOutcome, CommandError> {
        self.change(ctx, id, Action::Pay, |order, now| {
            order.pay(payment_id.clone(), amount, method, now)
        })
        .await
    }

    /// Records a shipment (`OrderShipped`).
    ///
    /// # Errors
    /// As [`OrderCommands::change`].
    pub async fn ship(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        tracking_number: TrackingNumber,
        carrier: Carrier,
    ) -> Result<CommandOutcome, CommandError> {
        self.change(ctx, id, Action::Ship, |order, now| {
            order.ship(tracking_number.clone(), carrier.clone(), now)
        })
        .await
    }

    /// Cancels the order (`OrderCancelled`).
    ///
    /// # Errors
    /// As [`OrderCommands::change`].
    pub async fn cancel(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        reason: CancellationReason,
    ) -> Result<CommandOutcome, CommandError> {
        self.change(ctx, id, Action::Cancel, |order, now| {
            order.cancel(reason.clone(), now)
        })
        .await
    }

    /// Runs a behaviour on an existing order: load, check that the actor may see it and
    /// take `action` on it, check `If-Match`, run, save; a lost race is re-run on the
    /// fresh state up to `max_attempts` times.
    ///
    /// # Errors
    /// `NotFound` (also for an order the actor may not see), `Forbidden`, `VersionMismatch`, `Rejected`, `Conflict`, `IdempotencyKeyReused`,
    /// `Unavailable`, `Internal`; in every case nothing was written.
    #[tracing::instrument(skip_all, fields(order_id = %id), err(level = "debug"))]
    async fn change<F>(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        action: Action,
        behaviour: F,
    ) -> Result<CommandOutcome, CommandError>
    where
        F: Fn(&mut Order, DateTime<Utc>) -> Result<(), OrderError> + Send + Sync,
    {
        if let Some(replayed) = self.replay(ctx).await? {
            return Ok(replayed);
        }
        match self.load_run_save(ctx, id, action, behaviour).await {
            // The refusal was decided on a state that a concurrent request with the same
            // idempotency key may have made since the check above: its answer wins.
            Err(
                refused @ (CommandError::Rejected(_)
                | CommandError::VersionMismatch { .. }
                | CommandError::Conflict { .. }),
            ) => self.replay(ctx).await?.ok_or(refused),
            outcome => outcome,
        }
    }

    /// The body of [`OrderCommands::change`], after the idempotency check.
    async fn load_run_save<F>(
        &self,
        ctx: &CommandContext,
        id: OrderId,
        action: Action,
        behaviour: F,
    ) -> Result<CommandOutcome, CommandError>
    where
        F: Fn(&mut Order, DateTime<Utc>) -> Result<(), OrderError> + Send + Sync,
    {
        for attempt in 1..=self.max_attempts {
            let mut order = self
                .loader
                .load(id, None)
                .await?
                .filter(|order| ctx.actor.may_see(order.customer().customer_id()))
                .ok_or(CommandError::NotFound(id))?;
            ctx.actor.check(action)?;
            if let Some(expected) = ctx.expected_version {
                if order.version() != expected {
                    return Err(CommandError::VersionMismatch {
                        expected,
                        actual: order.version(),
                    });
                }
            }
            behaviour(&mut order, self.clock.now())?;
            match self.save(ctx, &mut order).await {
                Ok(ack) => {
                    return Ok(CommandOutcome {
                        ack,
                        replayed: false,
                    })
                }
                Err(SaveError::VersionConflict) if ctx.expected_version.is_some() => {
                    let actual = self.loader.load(id, None).await?.map_or(0, |o| o.version());
                    let expected = ctx.expected_version.unwrap_or_default();
                    return Err(CommandError::VersionMismatch { expected, actual });
                }
                Err(SaveError::VersionConflict) => {
                    tracing::debug!(
                        attempt,
                        "lost a race for the order; re-running on the new state"
                    );
                }
                Err(SaveError::KeyTaken) => {
                    return self
                        .replay(ctx)
                        .await?
                        .ok_or(CommandError::IdempotencyKeyReused);
                }
                Err(SaveError::Store(e)) => return Err(e.into()),
            }
        }
        Err(CommandError::Conflict {
            attempts: self.max_attempts,
        })
    }

    /// The kept answer for the context's idempotency key, if there is one.
    async fn replay(&self, ctx: &CommandContext) -> Result<Option<CommandOutcome>, CommandError> {
        let Some(request) = &ctx.idempotency else {
            return Ok(None);
        };
        match self
            .store
            .find_idempotency(&request.scope, &request.key)
            .await?
        {
            None => Ok(None),
            Some(kept) if kept.fingerprint == request.fingerprint => Ok(Some(CommandOutcome {
                ack: CommandAck {
                    order_id: kept.order_id,
                    version: kept.version,
                },
                replayed: true,
            })),
            Some(_) => Err(CommandError::IdempotencyKeyReused),
        }
    }

    /// The unit of work: append the new events with the expected version, write the
    /// published ones to the outbox, keep the idempotency record, commit. Its span is
    /// at debug level: the logs at `info` skip it, exported traces keep it.
    #[tracing::instrument(skip_all, level = "debug", name = "transaction", fields(order_id = %order.id()))]
    async fn save(&self, ctx: &CommandContext, order: &mut Order) -> Result<CommandAck, SaveError> {
        let id = order.id();
        let expected_version = order.loaded_version();
        let interval = self.snapshot_interval;
        let snapshot = (interval > 0 && order.version() / interval > expected_version / interval)
            .then(|| serde_json::to_value(order.snapshot()))
            .and_then(|state| {
                state
                    .inspect_err(
                        |error| tracing::warn!(%error, "snapshot not serializable; skipped"),
                    )
                    .ok()
            })
            .map(|state| StoredSnapshot {
                order_id: id,
                version: order.version(),
                state_schema: domain::OrderSnapshot::STATE_SCHEMA_VERSION,
                state,
                last_occurred_at: order.updated_at(),
            });
        let metadata = EventMetadata {
            user_id: ctx.actor.user_id().map(str::to_owned),
            correlation_id: ctx.correlation_id.clone(),
            causation_id: ctx.command_id.to_string(),
        };
        let events: Vec<EventEnvelope> = order
            .take_events()
            .into_iter()
            .map(|recorded| {
                EventEnvelope::new(id, recorded, metadata.clone(), ctx.traceparent.clone())
            })
            .collect();
        let published: Vec<EventEnvelope> = events
            .iter()
            .filter(|e| self.publication.publishes(&e.event))
            .cloned()
            .collect();
        let ack = CommandAck {
            order_id: id,
            version: order.version(),
        };

        let mut uow: Box<dyn UnitOfWork> = self.store.begin().await?;
        uow.append(id, expected_version, &events).await?;
        if !published.is_empty() {
            uow.enqueue(&published).await?;
        }
        if let Some(snapshot) = &snapshot {
            uow.save_snapshot(snapshot).await?;
        }
        if let Some(request) = &ctx.idempotency {
            uow.remember(&IdempotencyRecord {
                scope: request.scope.clone(),
                key: request.key.clone(),
                fingerprint: request.fingerprint.clone(),
                order_id: id,
                version: ack.version,
            })
            .await?;
        }
        uow.commit().await?;
        Ok(ack)
    }
}

/// How saving can fail, before it is turned into a [`CommandError`].
enum SaveError {
    VersionConflict,
    KeyTaken,
    Store(StoreError),
}

impl From<StoreError> for SaveError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::VersionConflict => Self::VersionConflict,
            StoreError::IdempotencyKeyTaken => Self::KeyTaken,
            other => Self::Store(other),
        }
    }
}
