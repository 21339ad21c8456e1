//! The routes: the document describes exactly API.md's, each is routed, none is served undocumented.

use super::*;

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_served_document_is_openapi_3_1_and_describes_exactly_the_routes_of_api_md(
    pool: PgPool,
) {
    let doc = served_document(&app(&pool)).await;

    let version = doc["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert_eq!(
        doc,
        built_document(false),
        "the service serves `document(false)`"
    );

    let spec = Spec::new(doc);
    let documented: BTreeSet<(String, String)> = spec
        .operations()
        .iter()
        .map(|op| (op.method.to_owned(), op.template.to_owned()))
        .collect();
    let contract: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(
        documented.difference(&contract).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in API.md"
    );
    assert_eq!(
        contract.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "in API.md but not documented"
    );
}

/// A route answered by the router itself rather than a handler: the fallback's 404
/// ("no route for ...") or 405.
fn answered_by_the_router(reply: &Reply) -> bool {
    reply.status == StatusCode::METHOD_NOT_ALLOWED
        || (reply.status == StatusCode::NOT_FOUND
            && reply.json["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no route for")))
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn every_documented_operation_is_routed_and_no_other_method_is(pool: PgPool) {
    let router = app(&pool);
    let spec = Spec::new(served_document(&router).await);
    let order = Uuid::now_v7();
    let concrete = |template: &str| {
        template
            .replace("{id}", &order.to_string())
            .replace("{productId}", "sku-1")
            .replace("{outboxId}", "1")
            .replace("{jobId}", &Uuid::now_v7().to_string())
    };

    for op in spec.operations() {
        let method = Method::from_bytes(op.method.as_bytes()).expect("a method");
        let call = Call::new(method, concrete(op.template))
            .header("content-type", "application/json")
            .raw("{}");
        let reply = send(&router, call).await;
        assert!(
            !answered_by_the_router(&reply),
            "{} is documented but not routed: {} {}",
            op.describe(),
            reply.status,
            reply.text
        );
    }

    // Every other method on a documented path is refused by the router: no handler is
    // reachable there that the document does not describe.
    let paths: BTreeSet<&str> = spec.operations().iter().map(|op| op.template).collect();
    for template in paths {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if spec
                .operations()
                .iter()
                .any(|op| op.template == template && op.method == method.as_str())
            {
                continue;
            }
            let reply = send(&router, Call::new(method.clone(), concrete(template))).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {template} is served but not documented: {}",
                reply.text
            );
        }
    }
}

/// Routes are added only through `utoipa-axum`'s `OpenApiRouter::routes(routes!(...))`,
/// which takes nothing but `#[utoipa::path]` handlers, so a route cannot be served
/// without being documented (and the tests above compare the document with API.md).
/// The ways around it (`Router::route`, `OpenApiRouter::route`, nesting or merging a
/// plain router) must not appear anywhere in the HTTP crate's code (`adapters/http/src`)
/// nor in the service's wiring (`adapters/service/src`).
#[test]
fn no_route_is_added_around_the_documented_route_table() {
    let forbidden = [
        ".route(",
        ".route_service(",
        ".nest(",
        ".nest_service(",
        ".merge(",
        "Router::new(",
    ];
    let mut found = Vec::new();
    let service = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut folders = vec![service.join("src"), service.join("../http/src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("the source folder can be read") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                for (number, line) in text.lines().enumerate() {
                    for pattern in forbidden.iter().filter(|p| line.contains(*p)) {
                        found.push(format!("{}:{}: {pattern}", path.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "register routes only with `.routes(routes!(...))` in http/openapi: {found:#?}"
    );
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn the_asyncapi_document_of_the_configured_topic_is_served_without_a_token(pool: PgPool) {
    let settings = ServiceSettings {
        auth: order_api::Authenticator::jwt(b"an-openapi-test-secret-of-32-bytes-or-more")
            .expect("a long enough secret"),
        orders_topic: "shop.orders".to_owned(),
        ..ServiceSettings::default()
    };
    let router = build_router(pool, &settings).expect("the router builds");
    let reply = send(&router, Call::get("/asyncapi.json")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(
        reply.json,
        order_events::asyncapi::document("shop.orders", env!("CARGO_PKG_VERSION")),
        "the consumer crate's document, for ORDERS_TOPIC"
    );
}
