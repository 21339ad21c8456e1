//! The events on the wire (API.md, "Events on Kafka"): their JSON, and the stored
//! JSON that does not deserialize.

use super::*;

/// One sample of every event type, in the order of [`OrderEvent::TYPES`].
fn one_of_each_event() -> Vec<OrderEvent> {
    vec![
        created(),
        item_added("sku-3", 3, 333, (3_499, 1_049, 2_450)),
        item_removed("sku-3", 3, (2_500, 750, 1_750)),
        delivery_address_changed(address("2 Hang Bai")),
        payment_processed(TOTAL),
        order_shipped(),
        order_cancelled(TOTAL),
    ]
}

#[test]
fn every_event_type_serializes_as_its_type_and_exactly_its_camel_case_payload_fields() {
    let events = one_of_each_event();
    let types: Vec<&str> = events.iter().map(OrderEvent::event_type).collect();
    assert_eq!(types, OrderEvent::TYPES);

    for event in events {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(keys(&json), BTreeSet::from(["eventType", "payload"]));
        assert_eq!(json["eventType"], event.event_type());
        assert_eq!(
            keys(&json["payload"]),
            payload_fields(event.event_type()),
            "{}",
            event.event_type()
        );
        // OrderCancelled is at schema 2 (`refund` became `refundAmount`); the rest at 1.
        let schema = if event.event_type() == "OrderCancelled" {
            2
        } else {
            1
        };
        assert_eq!(event.schema_version(), schema);
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}

#[test]
fn order_created_nests_the_customer_address_and_lines_in_camel_case() {
    let json = serde_json::to_value(created()).unwrap();
    let payload = &json["payload"];

    assert_eq!(
        keys(&payload["customer"]),
        BTreeSet::from(["customerId", "name", "phone", "address"])
    );
    assert_eq!(
        keys(&payload["customer"]["address"]),
        BTreeSet::from(["line1", "city", "postalCode", "country"]),
        "an absent line2 is left out"
    );
    assert_eq!(
        keys(&payload["items"][0]),
        BTreeSet::from(["productId", "quantity", "unitPrice"])
    );
}

#[test]
fn events_serialize_to_the_exact_json_of_the_contract() {
    let created = serde_json::json!({
        "eventType": "OrderCreated",
        "payload": {
            "customer": {
                "customerId": "cust-42",
                "name": "Nguyễn Văn A",
                "phone": "+84 912 345 678",
                "address": {"line1": "1 Trang Tien", "city": "Hanoi", "postalCode": "100000", "country": "VN"}
            },
            "currency": "VND",
            "items": [
                {"productId": "sku-1", "quantity": 2, "unitPrice": 1000},
                {"productId": "sku-2", "quantity": 1, "unitPrice": 500}
            ],
            "discountCodes": ["WELCOME10", "VIP20"],
            "discountPercent": 30,
            "subtotal": 2500,
            "discount": 750,
            "total": 1750
        }
    });
    let full_address = Address::new(
        AddressLine::parse("2 Hang Bai").unwrap(),
        Some(AddressLine::parse("Floor 3").unwrap()),
        City::parse("Hanoi").unwrap(),
        None,
        CountryCode::parse("VN").unwrap(),
    );
    let expected = [
        (self::created(), created),
        (
            item_added("sku-3", 3, 333, (3_499, 1_049, 2_450)),
            serde_json::json!({"eventType": "ItemAdded", "payload": {
                "productId": "sku-3", "quantity": 3, "unitPrice": 333,
                "subtotal": 3499, "discount": 1049, "total": 2450}}),
        ),
        (
            item_removed("sku-3", 3, (2_500, 750, 1_750)),
            serde_json::json!({"eventType": "ItemRemoved", "payload": {
                "productId": "sku-3", "quantity": 3, "subtotal": 2500, "discount": 750, "total": 1750}}),
        ),
        (
            delivery_address_changed(full_address),
            serde_json::json!({"eventType": "DeliveryAddressChanged", "payload": {"address": {
                "line1": "2 Hang Bai", "line2": "Floor 3", "city": "Hanoi", "country": "VN"}}}),
        ),
        (
            payment_processed(200_000),
            serde_json::json!({"eventType": "PaymentProcessed", "payload": {
                "paymentId": "pay-1", "amount": 200000, "method": "bank_transfer"}}),
        ),
        (
            order_shipped(),
            serde_json::json!({"eventType": "OrderShipped", "payload": {
                "trackingNumber": "TRK-1", "carrier": "VNPost"}}),
        ),
        (
            order_cancelled(0),
            serde_json::json!({"eventType": "OrderCancelled", "payload": {
                "reason": "changed my mind", "refundAmount": 0}}),
        ),
    ];
    for (event, json) in expected {
        assert_eq!(serde_json::to_value(&event).unwrap(), json);
        assert_eq!(serde_json::from_value::<OrderEvent>(json).unwrap(), event);
    }
}

#[test]
fn a_stored_event_holding_a_value_the_constructors_refuse_does_not_deserialize() {
    let refused = [
        r#"{"eventType": "ItemRemoved", "payload": {"productId": "sku-1", "quantity": 0, "subtotal": 0, "discount": 0, "total": 0}}"#,
        r#"{"eventType": "ItemAdded", "payload": {"productId": "sku-1", "quantity": 1, "unitPrice": 1000000000000001, "subtotal": 0, "discount": 0, "total": 0}}"#,
        r#"{"eventType": "OrderCancelled", "payload": {"reason": "x", "refundAmount": 9223372036854775808}}"#,
        r#"{"eventType": "OrderCancelled", "payload": {"reason": "x", "refundAmount": -1}}"#,
        r#"{"eventType": "OrderCancelled", "payload": {"reason": "", "refundAmount": 0}}"#,
        r#"{"eventType": "PaymentProcessed", "payload": {"paymentId": "p", "amount": 1, "method": "cheque"}}"#,
        r#"{"eventType": "OrderShipped", "payload": {"trackingNumber": "a\u0000b", "carrier": "GHN"}}"#,
        r#"{"eventType": "DeliveryAddressChanged", "payload": {"address": {"line1": "x", "city": "y", "country": "XX"}}}"#,
        r#"{"eventType": "OrderRenamed", "payload": {}}"#,
    ];
    for json in refused {
        assert!(serde_json::from_str::<OrderEvent>(json).is_err(), "{json}");
    }
}
