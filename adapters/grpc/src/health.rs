//! The probes' side of the gRPC server: `grpc.health.v1.Health` (from `tonic-health`),
//! SERVING while the database answers and NOT_SERVING otherwise, and server reflection
//! (`grpc.reflection.v1`, and `v1alpha` for older clients, from `tonic-reflection`), so `grpcurl list` and a Kubernetes
//! gRPC probe need no proto file. Both are served outside the authentication layer.

use std::sync::Arc;
use std::time::Duration;

use application::Readiness;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::proto::order_service_server::OrderServiceServer;
use crate::service::OrderRpcs;

/// The encoded descriptor set of `orders.proto`, written by `build.rs`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/orders_descriptor.bin"));

/// How often the database is asked, and how long an answer may take.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Keeps the health service's answers current: [`HealthProbe::watch`] asks readiness (the
/// database, and the identity provider's keys with `JWT_JWKS_URL`) every second and
/// reports the server (`""`) and `orders.v1.OrderService`
/// SERVING or NOT_SERVING.
#[derive(Debug)]
pub struct HealthProbe {
    reporter: HealthReporter,
    readiness: Arc<dyn Readiness>,
}

impl HealthProbe {
    /// Asks the database until the future is dropped (it never returns); logs each
    /// change of status.
    pub async fn watch(self) -> std::convert::Infallible {
        // Nothing is known until the database answers: not SERVING before that
        // (tonic-health starts the server's own entry at SERVING).
        let mut last = ServingStatus::NotServing;
        self.report(last).await;
        let mut ticker = tokio::time::interval(CHECK_EVERY);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let ready = tokio::time::timeout(CHECK_EVERY, self.readiness.is_ready())
                .await
                .unwrap_or(false);
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if status != last {
                tracing::info!(?status, "gRPC health changed");
                self.report(status).await;
                last = status;
            }
        }
    }

    /// Reports `status` for the server (`""`) and for `orders.v1.OrderService`.
    async fn report(&self, status: ServingStatus) {
        for service in ["", OrderServiceServer::<OrderRpcs>::NAME] {
            self.reporter.set_service_status(service, status).await;
        }
    }
}

/// Adds the health and reflection services to `routes` (outside its layers), and
/// returns the probe that keeps health current.
pub(crate) fn add_probes(routes: Routes, readiness: Arc<dyn Readiness>) -> (Routes, HealthProbe) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let invalid = "the descriptor sets compiled into the binary are valid";
    // v1 is the standard; v1alpha is what many clients still ask (grpcio's reflection
    // client, Postman, grpcurl before 1.9), so both are served.
    let routes = routes
        .add_service(health)
        .add_service(reflection().build_v1().expect(invalid))
        .add_service(reflection().build_v1alpha().expect(invalid));
    (
        routes,
        HealthProbe {
            reporter,
            readiness,
        },
    )
}
