//! The bound on requests in flight and on their duration, shared by the HTTP and gRPC
//! servers (each builds its own [`Guard`], so each has a budget of its own). Each
//! server answers a [`Refusal`] in its own terms.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Limits of a server's requests.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Requests taking longer are refused (and write nothing).
    pub request_timeout: Duration,
    /// Requests in flight at once; more are refused at once.
    pub max_concurrent_requests: usize,
}

/// Permits for requests in flight, and how long one may take.
#[derive(Debug, Clone)]
pub struct Guard {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

/// Why the guard did not let a request finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every permit is taken: refused at once, not queued.
    Overloaded,
    /// The request took longer than the limit; its work was dropped.
    TimedOut,
}

impl From<RequestLimits> for Guard {
    fn from(limits: RequestLimits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            timeout: limits.request_timeout,
        }
    }
}

impl Guard {
    /// Runs `work` if a permit is free (else refuses at once), within the time limit.
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> Result<T, Refusal> {
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            return Err(Refusal::Overloaded);
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Refusal::TimedOut)
    }
}
