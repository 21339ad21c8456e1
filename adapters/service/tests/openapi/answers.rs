//! Real answers against the schemas: a scripted lifecycle, and the checks themselves.

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn a_whole_lifecycle_and_its_errors_match_the_documented_schemas(pool: PgPool) {
    let mut api = Checked::new(&pool).await;

    // One order through its whole lifecycle.
    let created = api.expect(Call::post("/orders", &order_body()), 201).await;
    let a = created.json["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();
    api.expect(
        Call::post(format!("/orders/{a}/items"), &item("sku-3", 3, 20_000)),
        200,
    )
    .await;
    api.expect(
        Call::new(Method::DELETE, format!("/orders/{a}/items/sku-2")),
        200,
    )
    .await;
    api.expect(
        Call::json(
            Method::PUT,
            format!("/orders/{a}/delivery-address"),
            &json!({"line1": "2 Tràng Tiền", "line2": "Floor 3", "city": "Hà Nội", "country": "VN"}),
        )
        .header("if-match", "\"3\"")
        .header("idempotency-key", "change-address-1")
        .header("x-correlation-id", "txn-42")
        .header("x-user-id", "user-456")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        200,
    )
    .await;
    let order = api.expect(Call::get(format!("/orders/{a}")), 200).await;
    let total = order.json["total"].as_u64().expect("total");
    api.expect(
        Call::post(format!("/orders/{a}/payment"), &payment(total)),
        200,
    )
    .await;
    api.expect(
        Call::post(
            format!("/orders/{a}/shipment"),
            &json!({"trackingNumber": "TRK-1", "carrier": "VNPost"}),
        ),
        200,
    )
    .await;
    let shipped = api.expect(Call::get(format!("/orders/{a}")), 200).await;
    assert!(shipped.json.get("payment").is_some() && shipped.json.get("shipment").is_some());

    // Another, with the client's id, paid then cancelled (a refund).
    let b = Uuid::now_v7().to_string();
    let mut with_id = order_body();
    with_id["orderId"] = json!(b);
    api.expect(Call::post("/orders", &with_id), 201).await;
    api.expect(
        Call::post(format!("/orders/{b}/payment"), &payment(10_000_000)),
        200,
    )
    .await;
    api.expect(
        Call::post(
            format!("/orders/{b}/cancellation"),
            &json!({"reason": "changed my mind"}),
        ),
        200,
    )
    .await;
    let cancelled = api.expect(Call::get(format!("/orders/{b}")), 200).await;
    assert!(cancelled.json.get("cancellation").is_some());

    // A third one, left created, for the errors.
    let before = now();
    let created = api.expect(Call::post("/orders", &order_body()), 201).await;
    let c = created.json["orderId"]
        .as_str()
        .expect("orderId")
        .to_owned();

    // Queries.
    api.expect(Call::get(format!("/orders/{c}?asOf={}", now())), 200)
        .await;
    api.expect(Call::get(format!("/orders/{c}?asOf={before}")), 404)
        .await;
    for id in [&a, &b, &c] {
        let history = api
            .expect(Call::get(format!("/orders/{id}/history")), 200)
            .await;
        assert!(!history.json["events"]
            .as_array()
            .expect("events")
            .is_empty());
    }
    project(&pool).await;
    let page = api
        .expect(Call::get("/orders?customerId=cust-1&limit=2"), 200)
        .await;
    assert_eq!(page.json["items"].as_array().map(Vec::len), Some(2));
    let cursor = page.json["nextCursor"].as_str().expect("a next page");
    let last = api
        .expect(Call::get(format!("/orders?limit=2&cursor={cursor}")), 200)
        .await;
    assert_eq!(last.json["nextCursor"], Value::Null);
    api.expect(Call::get("/orders?status=shipped"), 200).await;
    for path in OPEN {
        api.expect(Call::get(path), 200).await;
    }

    // The administration: a parked row retried, an order's rows retried and skipped, a
    // replay and a rebuild with their jobs, the recorded actions.
    park_first_row(&pool, &c).await;
    api.expect(Call::get("/admin/outbox"), 200).await;
    let parked = api
        .expect(
            Call::get(format!("/admin/outbox/parked?orderId={c}&limit=5")),
            200,
        )
        .await;
    let row = parked.json["items"][0]["outboxId"]
        .as_i64()
        .expect("a parked row");
    api.expect(
        Call::new(Method::POST, format!("/admin/outbox/parked/{row}/retry")),
        200,
    )
    .await;
    park_first_row(&pool, &c).await;
    api.expect(
        Call::new(Method::POST, format!("/admin/orders/{c}/outbox/retry")),
        200,
    )
    .await;
    park_first_row(&pool, &c).await;
    api.expect(
        Call::post(
            format!("/admin/orders/{c}/outbox/skip"),
            &json!({"reason": "checked by hand"}),
        ),
        200,
    )
    .await;
    let replay = api
        .expect(Call::post("/admin/replay", &json!({"orderId": a})), 202)
        .await;
    let job = replay.headers["location"]
        .to_str()
        .expect("a location")
        .to_owned();
    api.expect(Call::get(job), 200).await;
    api.expect(Call::new(Method::POST, "/admin/projections/rebuild"), 202)
        .await;
    api.expect(Call::get("/admin/actions?limit=2"), 200).await;
    api.expect(Call::get(format!("/admin/jobs/{}", Uuid::now_v7())), 404)
        .await;
    api.expect(
        Call::post("/admin/replay", &json!({"orderId": a, "since": now()})),
        422,
    )
    .await;
    api.expect(
        Call::post(format!("/admin/orders/{c}/outbox/skip"), &json!({})).shape(Shape::Invalid),
        422,
    )
    .await;
    api.expect(
        Call::new(Method::POST, "/admin/outbox/parked/999999/retry"),
        404,
    )
    .await;

    // 400: a malformed path, query or header parameter, or a body that is not JSON.
    api.expect(Call::get("/orders/not-a-uuid"), 400).await;
    api.expect(Call::get("/orders?limit=0"), 400).await;
    api.expect(
        Call::post(format!("/orders/{c}/items"), &item("sku-9", 1, 1)).header("if-match", "v1"),
        400,
    )
    .await;
    api.expect(
        Call::post(format!("/orders/{c}/items"), &json!(null))
            .raw("{\"productId\":")
            .shape(Shape::Unchecked),
        400,
    )
    .await;
    // 404: no such order, no such line.
    api.expect(Call::get(format!("/orders/{}", Uuid::now_v7())), 404)
        .await;
    api.expect(
        Call::post(format!("/orders/{}/payment", Uuid::now_v7()), &payment(1)),
        404,
    )
    .await;
    api.expect(
        Call::new(Method::DELETE, format!("/orders/{c}/items/sku-404")),
        404,
    )
    .await;
    // 409: the state does not allow it; the id exists.
    api.expect(
        Call::post(format!("/orders/{a}/items"), &item("sku-9", 1, 1)),
        409,
    )
    .await;
    api.expect(Call::post("/orders", &with_id), 409).await;
    // 412: If-Match does not match.
    api.expect(
        Call::post(format!("/orders/{c}/payment"), &payment(total)).header("if-match", "\"9\""),
        412,
    )
    .await;
    // 413 and 415: framing.
    api.expect(
        Call::post(format!("/orders/{c}/items"), &json!(null))
            .raw(format!("\"{}\"", "x".repeat(70 * 1024)))
            .shape(Shape::Unchecked),
        413,
    )
    .await;
    api.expect(
        Call::new(Method::POST, "/orders")
            .header("content-type", "text/plain")
            .raw(order_body().to_string())
            .shape(Shape::Unchecked),
        415,
    )
    .await;
    // 422: shapes the schema refuses too, and a rule on the order's content.
    let mut no_customer = order_body();
    no_customer
        .as_object_mut()
        .expect("an object")
        .remove("customer");
    api.expect(
        Call::post("/orders", &no_customer).shape(Shape::Invalid),
        422,
    )
    .await;
    api.expect(
        Call::post(format!("/orders/{c}/items"), &item("sku-9", 0, 1)).shape(Shape::Invalid),
        422,
    )
    .await;
    api.expect(
        Call::post(
            format!("/orders/{c}/payment"),
            &json!({"paymentId": "pay-2", "amount": 1, "method": "cheque"}),
        )
        .shape(Shape::Invalid),
        422,
    )
    .await;
    api.expect(Call::post(format!("/orders/{c}/payment"), &payment(1)), 422)
        .await;

    // Every route of API.md answered with success, and each error status came up.
    for (method, template) in ROUTES {
        assert!(
            api.seen
                .iter()
                .any(|(m, t, s)| m == method && t == template && *s < 300),
            "{method} {template} was never answered with success"
        );
    }
    let errors: BTreeSet<u16> = api
        .seen
        .iter()
        .map(|(_, _, s)| *s)
        .filter(|s| *s >= 400)
        .collect();
    assert_eq!(errors, BTreeSet::from([400, 404, 409, 412, 413, 415, 422]));
}

#[test]
fn the_checks_refuse_a_wrong_body_and_an_undocumented_status() {
    let spec = Spec::new(built_document(false));
    let create = spec
        .operation(&Method::POST, "/orders")
        .expect("POST /orders");

    // Requests.
    let body = order_body();
    let check = |body: &Value| spec.check_request(&create, body.to_string().as_bytes());
    assert_eq!(check(&body), Ok(()));
    let mut missing = body.clone();
    missing
        .as_object_mut()
        .expect("an object")
        .remove("currency");
    assert!(check(&missing).is_err(), "a missing required field");
    let mut negative = body.clone();
    negative["items"][0]["quantity"] = json!(-1);
    assert!(check(&negative).is_err(), "a quantity below 1");
    let mut fractional = body.clone();
    fractional["items"][0]["unitPrice"] = json!(1.5);
    assert!(
        check(&fractional).is_err(),
        "an amount that is not an integer"
    );
    let mut bad_id = body.clone();
    bad_id["orderId"] = json!("not-a-uuid");
    assert!(check(&bad_id).is_err(), "an orderId that is not a UUID");
    let mut too_long = body;
    too_long["customer"]["address"]["city"] = json!("x".repeat(201));
    assert!(
        check(&too_long).is_err(),
        "a string over its limit (through $refs)"
    );

    // Answers.
    let reply = |status: StatusCode, content_type: &str, body: Value| {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            content_type.parse().expect("a header value"),
        );
        for name in ["etag", "location", "x-correlation-id"] {
            headers.insert(name, "\"1\"".parse().expect("a header value"));
        }
        Reply {
            status,
            headers,
            text: body.to_string(),
            json: body,
        }
    };
    let ack = json!({"orderId": Uuid::now_v7(), "version": 1});
    assert_eq!(
        spec.check_response(
            &create,
            &reply(StatusCode::CREATED, "application/json", ack)
        ),
        Ok(())
    );
    let no_version = json!({"orderId": Uuid::now_v7()});
    assert!(spec
        .check_response(
            &create,
            &reply(StatusCode::CREATED, "application/json", no_version)
        )
        .is_err());
    let problem =
        json!({"type": "/problems/x", "title": "I'm a teapot", "status": 418, "detail": ""});
    let teapot = reply(StatusCode::IM_A_TEAPOT, "application/problem+json", problem);
    let refused = spec.check_response(&create, &teapot);
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("does not give")),
        "{refused:?}"
    );
    let untitled = json!({"type": "/problems/x", "status": 409, "detail": ""});
    assert!(spec
        .check_response(
            &create,
            &reply(StatusCode::CONFLICT, "application/problem+json", untitled)
        )
        .is_err());
    let as_json = json!({"type": "/problems/x", "title": "Conflict", "status": 409, "detail": ""});
    assert!(
        spec.check_response(
            &create,
            &reply(StatusCode::CONFLICT, "application/json", as_json)
        )
        .is_err(),
        "a problem must be application/problem+json"
    );
}

/// Parks the first outbox row of `order` as the relay does after its last attempt.
async fn park_first_row(pool: &PgPool, order: &str) {
    let id: i64 = sqlx::query_scalar("SELECT min(id) FROM outbox WHERE aggregate_id = $1::uuid")
        .bind(order)
        .fetch_one(pool)
        .await
        .expect("a row");
    let mut conn = pool.acquire().await.expect("a connection");
    order_postgres::outbox::record_failure(&mut conn, id, "refused by the broker", 0, 1)
        .await
        .expect("parked");
}
