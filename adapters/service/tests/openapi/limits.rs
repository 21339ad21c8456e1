//! Every limit the code enforces is in the document: a body at each limit is accepted by
//! the document and the service, one past it refused by both (422), and `null` in an
//! optional field means absent for both, while `null` in a required one is refused.

use super::*;
use support::with;

/// `POST /orders` with `body`, expected to answer `status`, the body checked against
/// the document as `Valid` (201) or `Invalid` (422).
async fn create(api: &mut Checked, body: Value, status: u16) -> Reply {
    let shape = if status == 201 {
        Shape::Valid
    } else {
        Shape::Invalid
    };
    api.expect(Call::post("/orders", &body).shape(shape), status)
        .await
}

fn lines(n: usize) -> Value {
    Value::Array((0..n).map(|i| item(&format!("sku-{i}"), 1, 1)).collect())
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn values_at_each_limit_are_accepted_and_past_it_refused_as_documented(pool: PgPool) {
    let mut api = Checked::new(&pool).await;
    let base = order_body;
    let at_and_past: Vec<(&str, Value, Value)> = vec![
        ("/items/0/quantity", json!(1_000_000), json!(1_000_001)),
        ("/items/0/quantity", json!(1), json!(0)),
        (
            "/items/0/unitPrice",
            json!(1_000_000_000_000_000_u64),
            json!(1_000_000_000_000_001_u64),
        ),
        ("/items/0/unitPrice", json!(0), json!(-1)),
        ("/items", lines(100), lines(101)),
        ("/items", lines(1), json!([])),
        // The default policy knows two codes; a fourth is refused whatever it is.
        (
            "/discountCodes",
            json!(["WELCOME10", "VIP20"]),
            json!(["WELCOME10", "VIP20", "A", "B"]),
        ),
        (
            "/discountCodes",
            json!(["VIP20"]),
            json!(["VIP20", "VIP20"]),
        ),
        ("/discountCodes", json!([]), json!([""])),
        (
            "/items/0/productId",
            json!("é".repeat(64)),
            json!("é".repeat(65)),
        ),
        (
            "/customer/name",
            json!("n".repeat(200)),
            json!("n".repeat(201)),
        ),
        ("/customer/name", json!(" A "), json!(" \u{3000} ")),
        ("/customer/phone", json!("+84 90"), json!("+84\u{7f}90")),
        ("/customer/address/city", json!("Hà Nội"), json!("Hà\nNội")),
        ("/customer/address/country", json!("VN"), json!("XX")),
        ("/currency", json!("USD"), json!("usd")),
        (
            "/orderId",
            json!("urn:uuid:0190B5E3-7C1E-7000-8000-000000000001"),
            json!("0190b5e3-7c1e-7000-8000-00000000000"),
        ),
    ];
    for (pointer, at, past) in at_and_past {
        let body = with(base(), pointer, at.clone());
        let reply = create(&mut api, body, 201).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{pointer} = {at}");
        let reply = create(&mut api, with(base(), pointer, past.clone()), 422).await;
        assert_eq!(reply.status.as_u16(), 422, "{pointer} = {past}");
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn null_is_absent_in_an_optional_field_and_refused_in_a_required_one(pool: PgPool) {
    let mut api = Checked::new(&pool).await;
    let mut nulls = order_body();
    for pointer in ["/orderId", "/discountCodes"] {
        nulls = with(nulls, pointer, Value::Null);
    }
    for pointer in ["/customer/address/line2", "/customer/address/postalCode"] {
        nulls = with(nulls, pointer, Value::Null);
    }
    let created = create(&mut api, nulls, 201).await;
    let id = created.json["orderId"]
        .as_str()
        .expect("an orderId")
        .to_owned();
    let order = api.expect(Call::get(format!("/orders/{id}")), 200).await;
    assert_eq!(order.json["discountPercent"], json!(0), "null codes: none");
    assert!(order.json["deliveryAddress"].get("line2").is_none());
    api.expect(
        Call::json(
            Method::PUT,
            format!("/orders/{id}/delivery-address"),
            &json!({"line1": "1 Le Loi", "line2": null, "city": "Huế", "postalCode": null, "country": "VN"}),
        ),
        200,
    )
    .await;

    for pointer in [
        "/currency",
        "/items",
        "/customer",
        "/customer/name",
        "/customer/address/line1",
        "/items/0/quantity",
    ] {
        let reply = create(&mut api, with(order_body(), pointer, Value::Null), 422).await;
        assert!(
            reply
                .text
                .contains(pointer.rsplit('/').next().unwrap_or_default()),
            "{pointer}: {}",
            reply.text
        );
    }
}
