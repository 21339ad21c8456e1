//! Examples of every behaviour and rule of the order aggregate, written as
//! given / when / then in the spirit of cqrs-es's `TestFramework`:
//!
//! ```text
//! given(vec![order_created(..), payment_processed(..)])
//!     .when(ship())
//!     .then_expect(vec![order_shipped()]);
//! ```
//!
//! `given` rebuilds the order with [`Order::from_history`]; `then_expect` checks the
//! recorded events (their versions and time too) and that replaying the whole stream
//! rebuilds the order; `then_expect_error` checks the error and that the rejected
//! command recorded nothing and left the order exactly as it was.
//!
//! The fixtures and command helpers are shared with the property tests.
//!
//! Layout: the harness is here; `fixtures` holds the shared data; then one file per
//! concern: `placing`, `items`, `delivery_address`, `paying`, `shipping`,
//! `cancelling`, `history` (recording events, rebuilding from them) and `wire` (the
//! events' JSON).

mod cancelling;
mod delivery_address;
mod fixtures;
mod history;
mod items;
mod paying;
mod placing;
mod shipping;
mod wire;

// What every file of the folder uses: each opens with `use super::*;`.
use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::events::{
    DeliveryAddressChanged, ItemAdded, ItemRemoved, OrderCancelled, OrderCreated, OrderShipped,
    PaymentProcessed,
};
use super::properties::{keys, payload_fields};
use super::*;
use crate::values::{
    AddressLine, City, CountryCode, CustomerId, CustomerName, PhoneNumber, PostalCode, Quantity,
    UnitPrice,
};
pub(super) use fixtures::*;

// ---------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------

/// When the given events happened.
pub(super) fn given_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 0, 0).unwrap()
}

/// When the command under test runs.
pub(super) fn when_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 10, 30, 0).unwrap()
}

/// A command against an existing order, as the tests write it.
pub(super) type Command = Box<dyn FnOnce(&mut Order, DateTime<Utc>) -> Result<(), OrderError>>;

/// An order rebuilt from past events, ready to receive a command.
#[derive(Debug)]
pub(super) struct Given {
    history: Vec<RecordedEvent>,
    order: Order,
}

/// No order yet: the command under test is placing one.
#[derive(Debug)]
pub(super) struct GivenNoOrder;

/// What a command did: the order before and after, and the command's answer.
#[derive(Debug)]
pub(super) struct Then {
    history: Vec<RecordedEvent>,
    before: Option<Order>,
    after: Option<Order>,
    result: Result<(), OrderError>,
}

/// An order whose past is `events`, recorded as versions 1, 2, ... at [`given_at`].
pub(super) fn given(events: Vec<OrderEvent>) -> Given {
    let history: Vec<RecordedEvent> = events
        .into_iter()
        .zip(1..)
        .map(|(event, version)| RecordedEvent {
            version,
            occurred_at: given_at(),
            event,
        })
        .collect();
    let order = Order::from_history(order_id(), history.clone())
        .expect("the given events are an order's history")
        .expect("the given events are not empty");
    Given { history, order }
}

/// No order exists yet.
pub(super) fn given_no_order() -> GivenNoOrder {
    GivenNoOrder
}

impl Given {
    /// Runs `command` on the order at [`when_at`].
    pub(super) fn when(
        self,
        command: impl FnOnce(&mut Order, DateTime<Utc>) -> Result<(), OrderError>,
    ) -> Then {
        let mut after = self.order.clone();
        let result = command(&mut after, when_at());
        Then {
            history: self.history,
            before: Some(self.order),
            after: Some(after),
            result,
        }
    }
}

impl GivenNoOrder {
    /// Places `command` at [`when_at`] with a factory pricing through `policy`.
    pub(super) fn when_placed(
        self,
        command: PlaceOrder,
        policy: impl DiscountPolicy + 'static,
    ) -> Then {
        let placed = OrderFactory::new(Arc::new(policy)).place(command, when_at());
        let (after, result) = match placed {
            Ok(order) => (Some(order), Ok(())),
            Err(error) => (None, Err(error)),
        };
        Then {
            history: Vec::new(),
            before: None,
            after,
            result,
        }
    }
}

impl Then {
    /// The command succeeded and recorded exactly `expected`, numbered right after the
    /// given events and stamped with the command's time; replaying the given events and
    /// these rebuilds the order. Returns the order (events drained) for state checks.
    #[track_caller]
    pub(super) fn then_expect(self, expected: Vec<OrderEvent>) -> Order {
        if let Err(error) = self.result {
            panic!("expected events {expected:#?}\nbut the command was refused: {error:?}");
        }
        let mut order = self.after.expect("a successful command leaves an order");
        let recorded = order.take_events();

        let first = self
            .before
            .as_ref()
            .map_or(1, |before| before.version() + 1);
        let count = u64::try_from(expected.len()).unwrap();
        let versions: Vec<u64> = recorded.iter().map(|r| r.version).collect();
        assert_eq!(
            versions,
            (first..first + count).collect::<Vec<_>>(),
            "versions go up by one per event"
        );
        assert!(
            recorded.iter().all(|r| r.occurred_at == when_at()),
            "events are stamped with the command's time"
        );
        let events: Vec<OrderEvent> = recorded.iter().map(|r| r.event.clone()).collect();
        assert_eq!(events, expected);
        assert_eq!(order.version(), first + count - 1);
        if count > 0 {
            assert_eq!(order.updated_at(), when_at());
        }

        let replayed = Order::from_history(order.id(), self.history.into_iter().chain(recorded))
            .expect("the recorded events are a valid history")
            .expect("the history is not empty");
        assert_eq!(
            replayed, order,
            "replaying the events rebuilds the same order"
        );
        order
    }

    /// The command was refused with `expected`, recorded nothing and changed nothing.
    #[track_caller]
    pub(super) fn then_expect_error(self, expected: OrderError) {
        match self.result {
            Ok(()) => panic!(
                "expected the error {expected:?}\nbut the command recorded {:#?}",
                self.after.as_ref().map(Order::pending_events)
            ),
            Err(error) => assert_eq!(error, expected),
        }
        assert_eq!(
            self.after, self.before,
            "a rejected command leaves the order as it was"
        );
        if let Some(after) = &self.after {
            assert!(after.pending_events().is_empty(), "and records no event");
        }
    }
}
