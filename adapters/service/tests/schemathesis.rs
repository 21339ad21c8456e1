//! schemathesis, an outside OpenAPI fuzzer, against the real service: it reads only
//! `GET /openapi.json`, generates requests from it (valid ones and ones the document
//! forbids), follows the document's links from `POST /orders` to the operations on the
//! order it made, and checks every answer against the document. The service is the
//! library [`App`] the binary runs (HTTP and gRPC on port 0, bearer authentication on,
//! an admin's token, so the administration routes are fuzzed too, a throwaway
//! database; no projector, so no broker).
//!
//! The checks are the five of issue 13: no 5xx, every status and content type
//! documented, every body valid against its schema, and every request the document
//! forbids refused (4xx). A fixed seed and [`MAX_EXAMPLES`] bound the run: about 2,600
//! cases in about 40 s on the 2-core development machine.
//!
//! `scripts/test.sh` installs the pinned schemathesis (`scripts/lib.sh`,
//! `ensure_schemathesis`) and sets `SCHEMATHESIS` to its command line; without it this
//! test fails and says how to run it. `scripts/test.sh -p order-service` runs it with
//! the crate's other tests; alone, after one such run:
//! `SCHEMATHESIS=.local/venv-schemathesis/bin/schemathesis
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p order-service
//! --test schemathesis`. Its whole output is kept in `target/tmp/schemathesis.txt`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use order_api::auth::{Authenticator, Claims};
use order_service::{App, Listeners, ServiceSettings};
use sqlx::PgPool;
use tokio::net::TcpListener;

/// The checks run on every answer.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,negative_data_rejection";

/// Fixed, so a failure found once is found again.
const SEED: &str = "20261203";

/// Cases per operation and phase (schemathesis's `--max-examples`): 50 is about 2,600
/// cases, about 40 s here.
const MAX_EXAMPLES: &str = "50";

/// The whole run may not take longer than this (schemathesis is killed after it).
const TIME_LIMIT: Duration = Duration::from_secs(600);

const SECRET: &str = "a-schemathesis-test-secret-of-32-bytes+";

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The command line of the pinned schemathesis, as `scripts/test.sh` gives it.
fn schemathesis() -> PathBuf {
    std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "SCHEMATHESIS is not set: this test runs the schemathesis command line that \
             scripts/test.sh installs into .local/venv-schemathesis and names in \
             SCHEMATHESIS. Run it with `scripts/test.sh -p order-service`, or set \
             SCHEMATHESIS=.local/venv-schemathesis/bin/schemathesis after one such run."
            )
        })
}

#[sqlx::test(migrator = "order_postgres::MIGRATOR")]
async fn schemathesis_finds_no_failure_against_the_served_document(pool: PgPool) {
    let cli = schemathesis();
    let auth = Authenticator::jwt(SECRET.as_bytes()).expect("a long enough secret");
    let token = auth
        .mint(&Claims {
            sub: "schemathesis".to_owned(),
            exp: now_seconds() + 3600,
            iat: Some(now_seconds()),
            roles: vec!["admin".to_owned()],
            customer_id: None,
        })
        .expect("a token");
    let settings = ServiceSettings {
        auth,
        ..ServiceSettings::default()
    };
    let listeners = Listeners {
        http: TcpListener::bind("127.0.0.1:0").await.expect("a port"),
        grpc: TcpListener::bind("127.0.0.1:0").await.expect("a port"),
    };
    let app = App::build(pool, &settings, listeners, None).expect("the service builds");
    let url = format!(
        "http://{}/openapi.json",
        app.http_addr().expect("an address")
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));

    // schemathesis writes nothing but its reports, and none is asked for; it runs in a
    // directory of its own all the same.
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-run");
    std::fs::create_dir_all(&work).expect("a working directory");
    let started = std::time::Instant::now();
    let run = tokio::process::Command::new(&cli)
        .args(["run", &url, "--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args([
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .current_dir(&work)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(TIME_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis took longer than {TIME_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{} cannot be run: {e}", cli.display()));
    let elapsed = started.elapsed();
    let _ = stop.send(());
    service
        .await
        .expect("the service did not panic")
        .expect("the service ran until stopped");

    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schemathesis.txt");
    std::fs::write(&saved, &text).expect("the output can be kept");
    // The summary, for the test log (print macros are captured; stderr itself is not).
    let summary = text
        .find("== SUMMARY")
        .or_else(|| text.find("FAILURES"))
        .map_or(text.as_str(), |at| &text[at..]);
    {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "schemathesis ({} examples per operation and phase, seed {SEED}) in {:.0?}:\n{summary}",
            MAX_EXAMPLES,
            elapsed
        );
    }
    let from_failures = text.find("FAILURES").map_or(summary, |at| &text[at..]);
    assert!(
        output.status.success(),
        "schemathesis failed ({}); whole output in {}:\n{from_failures}",
        output.status,
        saved.display()
    );
    assert!(
        text.contains(" passed") && !text.contains(" failed"),
        "schemathesis exited 0 without saying every case passed; whole output in {}",
        saved.display()
    );
}
