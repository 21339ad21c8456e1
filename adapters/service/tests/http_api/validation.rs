//! Invalid fields and broken rules of the order (422).

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn missing_fields_answer_422_naming_each_of_them(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    let problem = api
        .assert_invalid(Call::post("/orders", &json!({})), "currency")
        .await;
    for field in ["customer", "items"] {
        assert_names(&problem, field);
    }
    for (pointer, field) in [
        ("/currency", "currency"),
        ("/customer/customerId", "customer.customerId"),
        ("/customer/name", "customer.name"),
        ("/customer/phone", "customer.phone"),
        ("/customer/address", "customer.address"),
        ("/customer/address/country", "customer.address.country"),
        ("/customer/address/line1", "customer.address.line1"),
        ("/customer/address/city", "customer.address.city"),
        ("/items/0/quantity", "items[0].quantity"),
        ("/items/1/productId", "items[1].productId"),
        ("/items/1/unitPrice", "items[1].unitPrice"),
    ] {
        let problem = api
            .assert_invalid(
                Call::post("/orders", &without(order_body(), pointer)),
                field,
            )
            .await;
        assert_eq!(fields(&problem), [field], "only {field} is at fault");
    }
    // Optional fields may be left out.
    api.place_with(&without(
        without(order_body(), "/discountCodes"),
        "/customer/address/postalCode",
    ))
    .await;

    // Several at once are all named.
    let problem = api
        .assert_invalid(
            Call::post(
                "/orders",
                &without(without(order_body(), "/currency"), "/items/0/unitPrice"),
            ),
            "currency",
        )
        .await;
    assert_names(&problem, "items[0].unitPrice");

    let commands = [
        ("items", &["productId", "quantity", "unitPrice"][..]),
        ("payment", &["paymentId", "amount", "method"][..]),
        ("shipment", &["trackingNumber", "carrier"][..]),
        ("cancellation", &["reason"][..]),
    ];
    for (route, named) in commands {
        let problem = api
            .assert_invalid(
                Call::post(format!("/orders/{id}/{route}"), &json!({})),
                named[0],
            )
            .await;
        for field in named {
            assert_names(&problem, field);
        }
    }
    let problem = api
        .assert_invalid(
            Call::put(format!("/orders/{id}/delivery-address"), &json!({})),
            "line1",
        )
        .await;
    assert_names(&problem, "city");
    assert_names(&problem, "country");
    // A body of another JSON type altogether.
    for body in [json!([]), json!("order"), json!(null), json!(1)] {
        api.assert_rejected_without_writes(Call::post("/orders", &body), 422, "validation")
            .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn quantities_out_of_range_or_not_integers_answer_422(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let create = serde_json::to_string(&order_body()).expect("serializes");
    let add = format!("/orders/{id}/items");
    let json = Some("application/json");

    for bad in [
        "0",
        "1000001",
        "-1",
        "1.5",
        "1e30",
        "10000000000000000000000000",
        "\"2\"",
        "null",
    ] {
        let body = create.replacen("\"quantity\":2", &format!("\"quantity\":{bad}"), 1);
        assert_ne!(body, create);
        api.assert_invalid(
            Call::new(Method::POST, "/orders").raw(json, body),
            "items[0].quantity",
        )
        .await;
        api.assert_invalid(
            Call::new(Method::POST, add.clone()).raw(
                json,
                format!("{{\"productId\":\"sku-9\",\"quantity\":{bad},\"unitPrice\":1}}"),
            ),
            "quantity",
        )
        .await;
    }
    // The bounds themselves are accepted.
    api.ok(Call::post(add.clone(), &item("sku-min", 1, 1)))
        .await;
    api.ok(Call::post(add, &item("sku-max", 1_000_000, 1)))
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn amounts_out_of_range_answer_422(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let limit: u64 = 1_000_000_000_000_000;

    api.assert_invalid(
        Call::post(
            "/orders",
            &with(order_body(), "/items/1/unitPrice", json!(limit + 1)),
        ),
        "items[1].unitPrice",
    )
    .await;
    api.assert_invalid(
        Call::post(format!("/orders/{id}/items"), &item("sku-9", 1, limit + 1)),
        "unitPrice",
    )
    .await;
    for bad in [json!(-1), json!(1.5), json!("100")] {
        api.assert_invalid(
            Call::post(
                format!("/orders/{id}/items"),
                &with(item("sku-9", 1, 1), "/unitPrice", bad.clone()),
            ),
            "unitPrice",
        )
        .await;
        api.assert_invalid(
            Call::post(
                format!("/orders/{id}/payment"),
                &with(payment(TOTAL), "/amount", bad),
            ),
            "amount",
        )
        .await;
    }
    // 10^15 itself is a valid unit price; 0 too.
    api.ok(Call::post(
        format!("/orders/{id}/items"),
        &item("sku-free", 1, 0),
    ))
    .await;
    api.ok(Call::post(
        format!("/orders/{id}/items"),
        &item("sku-dear", 1, limit),
    ))
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn unknown_codes_and_malformed_strings_answer_422_naming_the_field(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let create =
        |pointer: &str, value: Value| Call::post("/orders", &with(order_body(), pointer, value));

    for (pointer, value, field) in [
        ("/currency", json!("XXX"), "currency"),
        ("/currency", json!("usd"), "currency"),
        ("/currency", json!(""), "currency"),
        (
            "/customer/address/country",
            json!("ZZ"),
            "customer.address.country",
        ),
        (
            "/customer/address/country",
            json!("vn"),
            "customer.address.country",
        ),
        (
            "/customer/address/country",
            json!("VNM"),
            "customer.address.country",
        ),
        ("/customer/name", json!("Nul\u{0}byte"), "customer.name"),
        ("/customer/phone", json!("del\u{7f}"), "customer.phone"),
        (
            "/customer/customerId",
            json!("line\nbreak"),
            "customer.customerId",
        ),
        ("/customer/name", json!("n".repeat(201)), "customer.name"),
        (
            "/customer/address/city",
            json!("é".repeat(201)),
            "customer.address.city",
        ),
        ("/customer/name", json!("   "), "customer.name"),
        (
            "/items/0/productId",
            json!("p".repeat(65)),
            "items[0].productId",
        ),
        ("/items/0/productId", json!(""), "items[0].productId"),
        ("/orderId", json!("not-a-uuid"), "orderId"),
        ("/discountCodes", json!(["NOPE"]), "discountCodes"),
        (
            "/discountCodes",
            json!(["WELCOME10", "WELCOME10"]),
            "discountCodes",
        ),
        (
            "/discountCodes",
            json!(["WELCOME10", "VIP20", "A", "B"]),
            "discountCodes",
        ),
        ("/discountCodes", json!([""]), "discountCodes[0]"),
        ("/customer", json!("cust-1"), "customer"),
    ] {
        api.assert_invalid(create(pointer, value), field).await;
    }
    // At the limits: 200 characters (not bytes), a 64-character product id, 3 codes.
    let mut at_limits = with(order_body(), "/customer/name", json!("é".repeat(200)));
    at_limits = with(at_limits, "/items/0/productId", json!("p".repeat(64)));
    at_limits = with(at_limits, "/discountCodes", json!(["WELCOME10", "VIP20"]));
    api.place_with(&at_limits).await;

    let commands = [
        (Method::POST, "items", item("a\u{0}b", 1, 1), "productId"),
        (
            Method::POST,
            "items",
            item(&"p".repeat(65), 1, 1),
            "productId",
        ),
        (
            Method::PUT,
            "delivery-address",
            with(new_address(), "/country", json!("XX")),
            "country",
        ),
        (
            Method::PUT,
            "delivery-address",
            with(new_address(), "/line2", json!("l".repeat(201))),
            "line2",
        ),
        (
            Method::PUT,
            "delivery-address",
            with(new_address(), "/postalCode", json!("\u{0}")),
            "postalCode",
        ),
        (
            Method::POST,
            "payment",
            with(payment(TOTAL), "/method", json!("bitcoin")),
            "method",
        ),
        (
            Method::POST,
            "payment",
            with(payment(TOTAL), "/paymentId", json!("p".repeat(65))),
            "paymentId",
        ),
        (
            Method::POST,
            "shipment",
            with(shipment(), "/trackingNumber", json!("t".repeat(65))),
            "trackingNumber",
        ),
        (
            Method::POST,
            "shipment",
            with(shipment(), "/carrier", json!("\u{0}")),
            "carrier",
        ),
        (
            Method::POST,
            "cancellation",
            json!({"reason": "r".repeat(201)}),
            "reason",
        ),
        (
            Method::POST,
            "cancellation",
            json!({"reason": "nul\u{0}"}),
            "reason",
        ),
    ];
    for (method, route, body, field) in commands {
        api.assert_invalid(
            Call::json(method, format!("/orders/{id}/{route}"), &body),
            field,
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn creation_rules_answer_422(pool: PgPool) {
    let api = Api::new(pool);

    // A product on two lines.
    api.assert_invalid(
        Call::post(
            "/orders",
            &with(order_body(), "/items/1/productId", json!("sku-1")),
        ),
        "items",
    )
    .await;
    // No line, and 101 lines.
    api.assert_invalid(
        Call::post("/orders", &with(order_body(), "/items", json!([]))),
        "items",
    )
    .await;
    let lines = |n: usize| -> Value {
        (0..n)
            .map(|i| item(&format!("sku-{i}"), 1, 1))
            .collect::<Vec<_>>()
            .into()
    };
    api.assert_invalid(
        Call::post("/orders", &with(order_body(), "/items", lines(101))),
        "items",
    )
    .await;
    api.place_with(&with(order_body(), "/items", lines(100)))
        .await;
    // A line total that overflows (10^15 × 10^6), and a sum that does.
    api.assert_invalid(
        Call::post(
            "/orders",
            &with(
                order_body(),
                "/items",
                json!([item("sku-1", 1_000_000, 1_000_000_000_000_000)]),
            ),
        ),
        "items",
    )
    .await;
    api.assert_invalid(
        Call::post(
            "/orders",
            &with(
                order_body(),
                "/items",
                json!([
                    item("sku-1", 5_000, 1_000_000_000_000_000),
                    item("sku-2", 5_000, 1_000_000_000_000_000)
                ]),
            ),
        ),
        "items",
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn rules_on_the_order_content_answer_422(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let items = format!("/orders/{id}/items");

    // A payment below the total.
    api.assert_invalid(
        Call::post(format!("/orders/{id}/payment"), &payment(TOTAL - 1)),
        "amount",
    )
    .await;
    // The same product at another price.
    api.assert_invalid(
        Call::post(items.clone(), &item("sku-1", 1, 99_999)),
        "unitPrice",
    )
    .await;
    // A merged quantity over 1,000,000 (2 + 999,999); 2 + 999,998 is fine.
    api.assert_invalid(
        Call::post(items.clone(), &item("sku-1", 999_999, 100_000)),
        "quantity",
    )
    .await;
    // A sum that overflows.
    api.assert_invalid(
        Call::post(
            items.clone(),
            &item("sku-big", 1_000_000, 1_000_000_000_000_000),
        ),
        "items",
    )
    .await;
    api.ok(Call::post(items.clone(), &item("sku-1", 999_998, 100_000)))
        .await;
    // Removing the last line.
    let single = api
        .place_with(&with(order_body(), "/items", json!([item("only", 1, 1)])))
        .await;
    api.assert_invalid(
        Call::delete(format!("/orders/{single}/items/only")),
        "productId",
    )
    .await;

    // A 101st line.
    let full = api
        .place_with(&with(
            order_body(),
            "/items",
            (0..100)
                .map(|i| item(&format!("sku-{i}"), 1, 1))
                .collect::<Vec<_>>()
                .into(),
        ))
        .await;
    api.assert_invalid(
        Call::post(format!("/orders/{full}/items"), &item("sku-100", 1, 1)),
        "items",
    )
    .await;
    // ... while adding to an existing line of a full order is fine.
    api.ok(Call::post(
        format!("/orders/{full}/items"),
        &item("sku-0", 1, 1),
    ))
    .await;
}
