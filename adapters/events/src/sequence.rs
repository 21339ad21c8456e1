//! Per-order ordering and dedupe, in memory: what a consumer applies, skips or holds.
//!
//! Within one order the events come in `version` order (1, 2, 3, ...), at least once.
//! An event at or below the last applied version is a repeat (a redelivery or a
//! replay) and is skipped; the next version is applied; one further ahead is a gap
//! (an event an operator skipped, or one not received yet) and is never applied out
//! of order. [`crate::inbox`] keeps the same state in the consumer's database, in the
//! transaction of its effect.

use std::collections::HashMap;

use uuid::Uuid;

use crate::Envelope;

/// What to do with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next event of its order: apply it.
    Apply,
    /// Seen before (its version is at or below the last applied one): skip it.
    Duplicate,
    /// Ahead of the next expected version: hold it or report it; never apply it now.
    Gap { expected: u64, got: u64 },
}

/// The last applied version of each order seen.
#[derive(Debug, Default, Clone)]
pub struct Sequencer {
    applied: HashMap<Uuid, (u64, Uuid)>,
}

impl Sequencer {
    pub fn new() -> Self {
        Self::default()
    }

    /// What to do with `event`, given what was applied before.
    pub fn check(&self, event: &Envelope) -> Verdict {
        let last = self.applied.get(&event.aggregate_id).map_or(0, |(v, _)| *v);
        verdict(last, event.version)
    }

    /// Records `event` as applied: the order's next expected version is its successor.
    pub fn applied(&mut self, event: &Envelope) {
        self.applied
            .insert(event.aggregate_id, (event.version, event.event_id));
    }

    /// Accepts a gap on purpose (an operator skipped those events): the order goes on
    /// from `event`, which the caller then applies.
    pub fn skip_to(&mut self, event: &Envelope) {
        self.applied
            .insert(event.aggregate_id, (event.version - 1, event.event_id));
    }

    /// The last applied version of `order` (0: none).
    pub fn last_applied(&self, order: Uuid) -> u64 {
        self.applied.get(&order).map_or(0, |(v, _)| *v)
    }
}

/// The verdict on `version` after `last` was applied.
pub(crate) fn verdict(last: u64, version: u64) -> Verdict {
    if version <= last {
        Verdict::Duplicate
    } else if version == last + 1 {
        Verdict::Apply
    } else {
        Verdict::Gap {
            expected: last + 1,
            got: version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{payloads, Event, Metadata};

    fn event(order: Uuid, version: u64) -> Envelope {
        Envelope {
            event_id: Uuid::now_v7(),
            aggregate_id: order,
            version,
            schema_version: 1,
            occurred_at: chrono::Utc::now(),
            event: Event::OrderShipped(payloads::OrderShipped {
                tracking_number: "T".into(),
                carrier: "C".into(),
            }),
            metadata: Metadata {
                user_id: None,
                correlation_id: "c".into(),
                causation_id: "k".into(),
            },
            traceparent: None,
        }
    }

    #[test]
    fn each_order_advances_by_one_repeats_are_skipped_and_gaps_held() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut sequencer = Sequencer::new();
        let mut log = Vec::new();
        for (order, version) in [(a, 1), (b, 1), (a, 2), (a, 2), (a, 1), (b, 3), (a, 3)] {
            let event = event(order, version);
            let verdict = sequencer.check(&event);
            if verdict == Verdict::Apply {
                sequencer.applied(&event);
            }
            log.push(verdict);
        }
        use Verdict::*;
        assert_eq!(
            log,
            [
                Apply,
                Apply,
                Apply,
                Duplicate,
                Duplicate,
                Gap {
                    expected: 2,
                    got: 3
                },
                Apply
            ]
        );
        assert_eq!(
            (sequencer.last_applied(a), sequencer.last_applied(b)),
            (3, 1)
        );
        let skipped = event(b, 3);
        sequencer.skip_to(&skipped);
        assert_eq!(sequencer.check(&skipped), Apply);
    }
}
