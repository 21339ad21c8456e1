//! Bearer authentication in the document.

use super::*;

#[test]
fn with_bearer_auth_every_route_but_the_open_ones_requires_a_bearer_token() {
    let spec = Spec::new(built_document(true));
    assert_eq!(
        spec.doc["components"]["securitySchemes"]["bearer"],
        json!({
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": spec.doc["components"]["securitySchemes"]["bearer"]["description"],
        })
    );
    for op in spec.operations() {
        if op.is_public() {
            assert!(
                op.value.get("security").is_none(),
                "{} needs no authentication",
                op.describe()
            );
        } else {
            assert_eq!(
                op.value["security"],
                json!([{"bearer": []}]),
                "{} requires the bearer token",
                op.describe()
            );
            let unauthorized = spec.resolve(&op.responses()["401"]);
            assert!(unauthorized["headers"].get("WWW-Authenticate").is_some());
        }
    }

    let open = Spec::new(built_document(false));
    assert!(open.doc["components"].get("securitySchemes").is_none());
    assert!(open.doc.get("security").is_none());
    assert!(open
        .operations()
        .iter()
        .all(|op| op.value.get("security").is_none()));
}
