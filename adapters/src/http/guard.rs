//! The bound on requests in flight and on their duration, shared by the HTTP and gRPC
//! servers (each builds its own [`Guard`], so each has a budget of its own). Each
//! server answers a [`Refusal`] in its own terms.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::HttpLimits;

/// Permits for requests in flight, and how long one may take.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

/// Why the guard did not let a request finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every permit is taken: refused at once, not queued.
    Overloaded,
    /// The request took longer than the limit; its work was dropped.
    TimedOut,
}

impl From<HttpLimits> for Guard {
    fn from(limits: HttpLimits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            timeout: limits.request_timeout,
        }
    }
}

impl Guard {
    /// Runs `work` if a permit is free (else refuses at once), within the time limit.
    pub(crate) async fn run<T>(&self, work: impl Future<Output = T>) -> Result<T, Refusal> {
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            return Err(Refusal::Overloaded);
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Refusal::TimedOut)
    }
}
