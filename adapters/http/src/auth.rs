//! Middleware: authenticates every request but the open routes, before anything else
//! is looked at (401 comes first in API.md's order of checks), and hands the
//! [`application::Actor`] to the handlers as a request extension.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::openapi::OPEN_PATHS;
use order_api::Authenticator;

pub(super) async fn authenticate(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    // The same list the OpenAPI document leaves without security.
    if OPEN_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let actor = auth.authenticate_headers(request.headers()).await;
    match actor {
        Ok(actor) => {
            // The administration's role, right after authentication: a non-admin gets
            // 403 whatever the path or body (the use cases check it again).
            if is_admin_path(request.uri().path()) {
                if let Err(forbidden) = actor.check_administer() {
                    return super::ApiError::new(order_api::ProblemKind::Forbidden, forbidden.0)
                        .into_response();
                }
            }
            request.extensions_mut().insert(actor);
            next.run(request).await
        }
        Err(error) => super::ApiError::from(error).into_response(),
    }
}

/// `/admin` and everything under it.
fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}
