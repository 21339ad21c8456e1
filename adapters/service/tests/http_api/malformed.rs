//! Malformed requests: bodies that are not JSON, malformed parameters (400), unknown orders, lines and routes (404, 405), bodies too large or not JSON (413, 415).

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn bodies_that_are_not_json_answer_400_and_write_nothing(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let json = Some("application/json");

    for bytes in [
        &b"{"[..],
        b"",
        b"not json",
        b"{\"currency\": }",
        b"{} trailing garbage",
        b"{}{}",
        // Invalid JSON is 400 even when what precedes the error has the wrong shape.
        b"{\"customer\": 1, \"currency\": \"VND\"",
        b"\xff\xfe",
    ] {
        api.assert_rejected_without_writes(
            Call::new(Method::POST, "/orders").raw(json, bytes),
            400,
            "bad-request",
        )
        .await;
    }
    for call in commands_on(&id)
        .into_iter()
        .filter(|c| c.method != Method::DELETE)
    {
        api.assert_rejected_without_writes(
            call.clone().raw(json, "{\"x\": 1,}"),
            400,
            "bad-request",
        )
        .await;
        api.assert_rejected_without_writes(
            call.raw(json, "{\"quantity\": -1, \"amount\": \"x\"} trailing"),
            400,
            "bad-request",
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn malformed_path_query_and_header_parameters_answer_400(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    // A malformed order id in the path, on every route that takes one.
    for bad in ["not-a-uuid", "1234", "%20"] {
        api.assert_rejected_without_writes(Call::get(format!("/orders/{bad}")), 400, "bad-request")
            .await;
        api.assert_rejected_without_writes(
            Call::get(format!("/orders/{bad}/history")),
            400,
            "bad-request",
        )
        .await;
        for call in commands_on(bad) {
            api.assert_rejected_without_writes(call, 400, "bad-request")
                .await;
        }
    }
    // A product id in the path that no product id can be (65 characters).
    api.assert_rejected_without_writes(
        Call::delete(format!("/orders/{id}/items/{}", "p".repeat(65))),
        400,
        "bad-request",
    )
    .await;

    // Malformed asOf.
    for bad in ["yesterday", "2026-01-15", "2026-13-01T00:00:00Z", ""] {
        api.assert_rejected_without_writes(
            Call::get(format!("/orders/{id}?asOf={bad}")),
            400,
            "bad-request",
        )
        .await;
    }

    // Malformed If-Match, on every command.
    for bad in [
        "abc",
        "\"x\"",
        "\"\"",
        "\"-1\"",
        "\"99999999999999999999999\"",
    ] {
        for call in commands_on(&id) {
            api.assert_rejected_without_writes(call.header("if-match", bad), 400, "bad-request")
                .await;
        }
    }

    // Malformed Idempotency-Key: empty, 256 characters, a space, non-ASCII.
    let too_long = "k".repeat(256);
    let bad_keys: [&[u8]; 5] = [
        b"",
        too_long.as_bytes(),
        b"has space",
        "clé".as_bytes(),
        b"tab\there",
    ];
    for key in bad_keys {
        api.assert_rejected_without_writes(
            Call::post("/orders", &order_body()).header_bytes("idempotency-key", key),
            400,
            "bad-request",
        )
        .await;
        for call in commands_on(&id) {
            api.assert_rejected_without_writes(
                call.header_bytes("idempotency-key", key),
                400,
                "bad-request",
            )
            .await;
        }
    }
    // 255 visible ASCII characters are a valid key.
    api.ok(Call::post("/orders", &order_body()).header("idempotency-key", &"k".repeat(255)))
        .await;

    // Malformed X-Correlation-Id: checked on every route, even queries.
    let too_long = "c".repeat(201);
    let bad_ids: [&[u8]; 4] = [b"", b"has space", too_long.as_bytes(), "tương".as_bytes()];
    for bad in bad_ids {
        api.assert_rejected_without_writes(
            Call::post("/orders", &order_body()).header_bytes("x-correlation-id", bad),
            400,
            "bad-request",
        )
        .await;
        api.assert_rejected_without_writes(
            Call::get(format!("/orders/{id}")).header_bytes("x-correlation-id", bad),
            400,
            "bad-request",
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_unknown_order_answers_404_on_queries_and_on_every_command(pool: PgPool) {
    let api = Api::new(pool);
    api.place().await;
    let unknown = Uuid::now_v7().to_string();

    api.assert_rejected_without_writes(Call::get(format!("/orders/{unknown}")), 404, "not-found")
        .await;
    api.assert_rejected_without_writes(
        Call::get(format!("/orders/{unknown}/history")),
        404,
        "not-found",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::get(format!("/orders/{unknown}?asOf={}", rfc3339(Utc::now()))),
        404,
        "not-found",
    )
    .await;
    for call in commands_on(&unknown) {
        api.assert_rejected_without_writes(call.clone(), 404, "not-found")
            .await;
        // With an Idempotency-Key: no key is kept for a rejected command.
        api.assert_rejected_without_writes(
            call.header("idempotency-key", "k-404"),
            404,
            "not-found",
        )
        .await;
    }
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn an_unknown_line_or_route_answers_404_and_a_wrong_method_405(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;

    api.assert_rejected_without_writes(
        Call::delete(format!("/orders/{id}/items/sku-404")),
        404,
        "not-found",
    )
    .await;
    for path in ["/", "/nope", "/orders/x/y/z", "/order"] {
        api.assert_rejected_without_writes(Call::get(path), 404, "not-found")
            .await;
    }
    api.assert_rejected_without_writes(Call::post("/nope", &order_body()), 404, "not-found")
        .await;
    api.assert_rejected_without_writes(
        Call::get(format!("/orders/{id}/payment")),
        405,
        "method-not-allowed",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::new(Method::PATCH, format!("/orders/{id}")),
        405,
        "method-not-allowed",
    )
    .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn bodies_over_64_kib_answer_413(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let big = oversized_order();
    let length = big.len().to_string();
    let json = Some("application/json");

    // Declared in Content-Length, and only found while reading (no Content-Length).
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders")
            .raw(json, big.clone())
            .header("content-length", &length),
        413,
        "payload-too-large",
    )
    .await;
    api.assert_rejected_without_writes(
        Call::new(Method::POST, "/orders").raw(json, big.clone()),
        413,
        "payload-too-large",
    )
    .await;
    for call in commands_on(&id)
        .into_iter()
        .filter(|c| c.method != Method::DELETE)
    {
        api.assert_rejected_without_writes(call.raw(json, big.clone()), 413, "payload-too-large")
            .await;
    }

    // Exactly at the limit is accepted (spaces are valid JSON padding).
    let mut at_limit = serde_json::to_vec(&order_body()).expect("serializes");
    at_limit.resize(64 * 1024, b' ');
    api.ok(Call::new(Method::POST, "/orders").raw(json, at_limit))
        .await;
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn bodies_that_are_not_application_json_answer_415(pool: PgPool) {
    let api = Api::new(pool);
    let id = api.place().await;
    let valid = serde_json::to_vec(&order_body()).expect("serializes");

    for content_type in [
        Some("text/plain"),
        None,
        Some("application/xml"),
        Some("application/jsonx"),
        Some("multipart/form-data"),
    ] {
        api.assert_rejected_without_writes(
            Call::new(Method::POST, "/orders").raw(content_type, valid.clone()),
            415,
            "unsupported-media-type",
        )
        .await;
        for call in commands_on(&id)
            .into_iter()
            .filter(|c| c.method != Method::DELETE)
        {
            let body = call.body.clone();
            api.assert_rejected_without_writes(
                call.raw(content_type, body),
                415,
                "unsupported-media-type",
            )
            .await;
        }
    }

    // Parameters and case do not matter.
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        api.ok(Call::new(Method::POST, "/orders").raw(Some(content_type), valid.clone()))
            .await;
    }
}
