//! The operator console, `GET /console`: one self-contained HTML page (`console.html`,
//! inline style and script, no framework, nothing fetched from elsewhere) that asks
//! for an admin token and drives the administration routes with it.
//!
//! The route is open, like `/openapi.json`: the page itself holds no data and no
//! secret; every figure it shows comes from the authenticated `/admin/...` routes,
//! called by the page with the token the operator typed (kept in the tab's
//! `sessionStorage` only).
//!
//! # Content-Security-Policy
//! The page is served with a policy that allows its own inline `<style>` and
//! `<script>` by their SHA-256 hashes, computed once from the embedded file when the
//! router is built, rather than with `'unsafe-inline'`: the page shows text that
//! operators and the broker wrote (a parked row's `lastError`, a skip's reason), and
//! although it only ever sets text (`textContent`), a hash also refuses any script or
//! style that an injection might slip in. Fetches go to the service itself only
//! (`connect-src 'self'`); nothing else may load, frame it or be submitted anywhere.
//! The hashes follow the file, so editing the page needs no other change.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::openapi::{ConsoleHtml, CorrelationHeader, OpenProblems};

/// The page, as written.
const PAGE: &str = include_str!("console.html");

/// The page and its `Content-Security-Policy`, made once when the router is built.
#[derive(Debug, Clone)]
pub(super) struct ConsolePage {
    policy: HeaderValue,
}

impl ConsolePage {
    pub(super) fn new() -> Self {
        let policy = policy(PAGE);
        Self {
            // The policy is built from fixed words and base64 digests: always a valid
            // header value; an empty policy (which would allow everything) cannot result.
            policy: HeaderValue::from_str(&policy)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'")),
        }
    }
}

/// The text between the first `<{tag}>` and the `</{tag}>` after it.
fn inline<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = page.find(&open)? + open.len();
    let end = start + page[start..].find(&close)?;
    Some(&page[start..end])
}

/// `'sha256-<base64>'` of `text`, as CSP names an inline element.
fn hash_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The Content-Security-Policy of `page`: its one inline style and script by hash,
/// fetches to this origin, nothing else.
fn policy(page: &str) -> String {
    let style = inline(page, "style").map_or_else(|| "'none'".to_owned(), hash_source);
    let script = inline(page, "script").map_or_else(|| "'none'".to_owned(), hash_source);
    format!(
        "default-src 'none'; style-src {style}; script-src {script}; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// The operator console: an HTML page that asks for an admin token and shows the
/// outbox (backlog per partition, relays, parked rows), runs retry, skip, replay and
/// rebuild with their jobs' progress, and lists the recorded actions, refreshing
/// itself every 2 s. Needs no token itself; the administration routes it calls do.
#[utoipa::path(
    get,
    path = "/console",
    tag = "operations",
    params(CorrelationHeader),
    responses(ConsoleHtml, OpenProblems)
)]
pub(super) async fn console(Extension(page): Extension<ConsolePage>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, page.policy),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        ],
        PAGE,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_one_inline_style_and_one_inline_script_and_loads_nothing_else() {
        assert_eq!(PAGE.matches("<style").count(), 1);
        assert_eq!(PAGE.matches("<script").count(), 1);
        for outside in ["src=", "href=", "http://", "https://", "@import", "url("] {
            assert!(!PAGE.contains(outside), "the page refers to {outside}");
        }
    }

    #[test]
    fn the_token_lives_in_session_storage_only() {
        assert!(PAGE.contains("sessionStorage"));
        for elsewhere in ["localStorage", "document.cookie", "indexedDB"] {
            assert!(!PAGE.contains(elsewhere), "the page uses {elsewhere}");
        }
    }

    #[test]
    fn the_policy_names_the_pages_style_and_script_by_their_hashes() {
        let policy = policy(PAGE);
        let style = inline(PAGE, "style").expect("a style");
        let script = inline(PAGE, "script").expect("a script");
        assert!(
            script.contains("sessionStorage"),
            "the script is the page's"
        );
        assert!(policy.contains(&format!("style-src {}", hash_source(style))));
        assert!(policy.contains(&format!("script-src {}", hash_source(script))));
        assert!(policy.starts_with("default-src 'none';"));
        assert!(policy.contains("connect-src 'self'"));
        assert!(!policy.contains("unsafe"));
        assert!(HeaderValue::from_str(&policy).is_ok());
    }

    #[test]
    fn a_hash_source_is_the_base64_sha256_of_the_exact_text() {
        // printf 'alert(1)' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            hash_source("alert(1)"),
            "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
        );
    }

    #[test]
    fn the_page_gives_the_browser_test_its_hooks() {
        for id in [
            "token-input",
            "sign-in",
            "sign-out",
            "connection",
            "banner",
            "partition-bar",
            "relay-row",
            "parked-row",
            "retry",
            "skip",
            "confirm-reason",
            "confirm-ok",
            "replay-form",
            "rebuild",
            "job",
            "action-row",
            "read-model-lag",
        ] {
            assert!(
                PAGE.contains(&format!("\"{id}\"")),
                "data-testid {id} is missing"
            );
        }
    }
}
