//! Every event the domain can record, as the relay publishes it, fits the contract of
//! `order-events`: orders placed and changed by random command sequences (random text
//! of every allowed character, quantities and prices up to their limits), each event's
//! envelope validated against its `(eventType, schemaVersion)` schema and decoded by
//! the consumer crate into the same payload.

use std::sync::Arc;

use application::{EventEnvelope, EventMetadata};
use chrono::Utc;
use domain::*;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;

/// Text the domain accepts: 1 to `max` characters, none of them control characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\\x00-\\x1f\\x7f]{{1,{max}}}"))
        .expect("a regex")
        .prop_filter("not blank", |t| !t.trim().is_empty())
}

fn address() -> impl Strategy<Value = Address> {
    (
        text(200),
        proptest::option::of(text(200)),
        text(200),
        proptest::option::of(text(200)),
        select(vec!["VN", "US", "DE", "JP"]),
    )
        .prop_map(|(line1, line2, city, postal, country)| {
            Address::new(
                AddressLine::parse(line1).unwrap(),
                line2.map(|l| AddressLine::parse(l).unwrap()),
                City::parse(city).unwrap(),
                postal.map(|p| PostalCode::parse(p).unwrap()),
                CountryCode::parse(country).unwrap(),
            )
        })
}

fn line() -> impl Strategy<Value = OrderLine> {
    (
        select(vec!["p-1", "p-2", "p-3"]),
        1..=Quantity::MAX,
        0..=UnitPrice::MAX / Quantity::MAX,
    )
        .prop_map(|(product, quantity, price)| {
            OrderLine::new(
                ProductId::parse(product).unwrap(),
                Quantity::new(quantity).unwrap(),
                UnitPrice::new(price).unwrap(),
            )
        })
}

#[derive(Debug, Clone)]
enum Step {
    Add(OrderLine),
    Remove(&'static str),
    Move(Address),
    Pay(String, PaymentMethod),
    Ship(String, String),
    Cancel(String),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        line().prop_map(Step::Add),
        select(vec!["p-1", "p-2", "p-3"]).prop_map(Step::Remove),
        address().prop_map(Step::Move),
        (
            text(64),
            select(vec![
                PaymentMethod::Card,
                PaymentMethod::BankTransfer,
                PaymentMethod::CashOnDelivery
            ])
        )
            .prop_map(|(id, method)| Step::Pay(id, method)),
        (text(64), text(64)).prop_map(|(tracking, carrier)| Step::Ship(tracking, carrier)),
        text(200).prop_map(Step::Cancel),
    ]
}

/// Every event of an order placed with `items` and `codes`, then changed by `steps`
/// (the steps the order refuses record nothing).
fn events(
    order: OrderId,
    customer: (String, String, String, Address),
    items: Vec<OrderLine>,
    codes: Vec<&str>,
    steps: Vec<Step>,
) -> Vec<RecordedEvent> {
    let factory = OrderFactory::new(Arc::new(
        DiscountTable::parse("WELCOME10=10,VIP20=20").unwrap(),
    ));
    let (id, name, phone, address) = customer;
    let command = PlaceOrder {
        id: order,
        customer: CustomerInfo::new(
            CustomerId::parse(id).unwrap(),
            CustomerName::parse(name).unwrap(),
            PhoneNumber::parse(phone).unwrap(),
            address,
        ),
        currency: Currency::parse("VND").unwrap(),
        items,
        discount_codes: codes
            .into_iter()
            .map(|c| DiscountCode::parse(c).unwrap())
            .collect(),
    };
    let Ok(mut order) = factory.place(command, Utc::now()) else {
        return Vec::new();
    };
    for step in steps {
        let now = Utc::now();
        let _refused_or_not = match step {
            Step::Add(line) => order.add_item(line, now),
            Step::Remove(product) => order.remove_item(&ProductId::parse(product).unwrap(), now),
            Step::Move(address) => order.change_delivery_address(address, now),
            Step::Pay(id, method) => {
                let total = order.total();
                order.pay(PaymentId::parse(id).unwrap(), total, method, now)
            }
            Step::Ship(tracking, carrier) => order.ship(
                TrackingNumber::parse(tracking).unwrap(),
                Carrier::parse(carrier).unwrap(),
                now,
            ),
            Step::Cancel(reason) => order.cancel(CancellationReason::parse(reason).unwrap(), now),
        };
    }
    order.take_events()
}

/// Checks one published event against the contract: its envelope fits the schema of
/// its `(eventType, schemaVersion)`, and the consumer crate decodes it.
fn check(event: RecordedEvent, order: OrderId, user: Option<String>) -> Result<(), TestCaseError> {
    let envelope = EventEnvelope::new(
        order,
        event,
        EventMetadata {
            user_id: user,
            correlation_id: "corr-1".to_owned(),
            causation_id: uuid::Uuid::now_v7().to_string(),
        },
        None,
    );
    let wire = envelope.to_wire();
    let schema =
        order_events::schema::message_schema(envelope.event_type(), envelope.schema_version())
            .expect("a released (eventType, schemaVersion)");
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&wire)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    prop_assert!(
        errors.is_empty(),
        "{wire} does not fit its schema: {errors:?}"
    );
    let bytes = serde_json::to_vec(&wire).unwrap();
    let decoded = order_events::decode(&bytes, []).expect("the consumer crate decodes it");
    prop_assert_eq!(decoded.event.event_type(), envelope.event_type());
    prop_assert_eq!(decoded.version, envelope.version);
    prop_assert_eq!(decoded.event_id, envelope.event_id);
    Ok(())
}

#[test]
fn an_order_that_records_every_event_type_fits_the_contract() {
    let runner = &mut proptest::test_runner::TestRunner::deterministic();
    let sample = |runner: &mut proptest::test_runner::TestRunner| {
        (text(200), address(), line(), line(), text(64))
            .new_tree(runner)
            .unwrap()
            .current()
    };
    let (name, home, first, second, word) = sample(runner);
    let order = OrderId::from_uuid(uuid::Uuid::now_v7());
    let mut events = events(
        order,
        (name.clone(), name.clone(), name, home.clone()),
        vec![OrderLine::new(
            ProductId::parse("p-9").unwrap(),
            first.quantity(),
            first.unit_price(),
        )],
        vec!["WELCOME10"],
        vec![
            Step::Add(second),
            Step::Remove("p-9"),
            Step::Move(home),
            Step::Pay(word.clone(), PaymentMethod::Card),
            Step::Ship(word.clone(), word.clone()),
        ],
    );
    let cancelled = events_cancelled(order, word);
    events.extend(cancelled);
    let mut types: Vec<&str> = events.iter().map(|e| e.event.event_type()).collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types.len(), OrderEvent::TYPES.len(), "{types:?}");
    for event in events {
        check(event, order, Some("user-1".to_owned())).unwrap();
    }
}

/// `OrderCreated` then `OrderCancelled` of a paid order.
fn events_cancelled(order: OrderId, word: String) -> Vec<RecordedEvent> {
    let customer = (word.clone(), word.clone(), word.clone(), home());
    events(
        order,
        customer,
        vec![OrderLine::new(
            ProductId::parse("p-1").unwrap(),
            Quantity::new(1).unwrap(),
            UnitPrice::new(100).unwrap(),
        )],
        Vec::new(),
        vec![
            Step::Pay(word.clone(), PaymentMethod::BankTransfer),
            Step::Cancel(word),
        ],
    )
}

fn home() -> Address {
    Address::new(
        AddressLine::parse("1 Lê Lợi").unwrap(),
        None,
        City::parse("Huế").unwrap(),
        None,
        CountryCode::parse("VN").unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_event_published_fits_its_schema_and_decodes_to_the_same_payload(
        customer in (text(200), text(200), text(200), address()),
        items in proptest::collection::vec(line(), 1..4),
        codes in proptest::sample::subsequence(vec!["WELCOME10", "VIP20", "UNKNOWN"], 0..=2),
        steps in proptest::collection::vec(step(), 0..12),
        user in proptest::option::of(text(200)),
    ) {
        let order_id = OrderId::from_uuid(uuid::Uuid::now_v7());
        let recorded = events(order_id, customer, items, codes, steps);
        for event in recorded {
            check(event, order_id, user.clone())?;
        }
    }
}
