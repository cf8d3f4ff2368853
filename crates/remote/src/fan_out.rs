//! Bounded, cancellable fan-out over hosts that returns every host's result, so a failure
//! report can list every failing host rather than the first.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{HostFailure, HostsFailed, RemoteError};

/// Each host's result, in the order the hosts were given.
#[derive(Debug)]
pub struct FanOut<T> {
    /// `(host, result)` pairs.
    pub results: Vec<(String, Result<T, RemoteError>)>,
}

impl<T> FanOut<T> {
    /// True when every host succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.results.iter().all(|(_, result)| result.is_ok())
    }

    /// The successes, or one error that lists every failing host.
    pub fn into_result(self) -> Result<Vec<(String, T)>, HostsFailed> {
        let total = self.results.len();
        let mut successes = Vec::new();
        let mut failures = Vec::new();
        for (host, result) in self.results {
            match result {
                Ok(value) => successes.push((host, value)),
                Err(error) => failures.push(HostFailure { host, error }),
            }
        }
        if failures.is_empty() {
            Ok(successes)
        } else {
            Err(HostsFailed { failures, total })
        }
    }
}

/// Runs `work(host)` for every host, at most `max_parallel` at once (0 means no limit).
/// When `cancel` fires, hosts that have not finished stop at their next await point and report
/// [`RemoteError::Cancelled`]. Every host gets a result.
pub async fn fan_out<T, F, Fut>(
    hosts: &[String],
    max_parallel: usize,
    cancel: &CancellationToken,
    work: F,
) -> FanOut<T>
where
    T: Send + 'static,
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, RemoteError>> + Send + 'static,
{
    let limit = if max_parallel == 0 {
        Semaphore::MAX_PERMITS
    } else {
        max_parallel
    };
    let permits = Arc::new(Semaphore::new(limit));
    let work = Arc::new(work);
    let mut tasks = JoinSet::new();
    for (index, host) in hosts.iter().enumerate() {
        let permits = Arc::clone(&permits);
        let work = Arc::clone(&work);
        let cancel = cancel.clone();
        let host = host.clone();
        tasks.spawn(async move {
            let cancelled = RemoteError::Cancelled { host: host.clone() };
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => Err(cancelled),
                result = async {
                    let _permit = permits.acquire_owned().await;
                    work(host.clone()).await
                } => result,
            };
            (index, host, result)
        });
    }
    let mut slots: Vec<Option<(String, Result<T, RemoteError>)>> =
        hosts.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, host, result)) => slots[index] = Some((host, result)),
            // A panicking host task is a bug; keep it visible instead of losing the host.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => {}
        }
    }
    FanOut {
        results: slots
            .into_iter()
            .zip(hosts)
            .map(|(slot, host)| {
                slot.unwrap_or_else(|| {
                    (
                        host.clone(),
                        Err(RemoteError::Cancelled { host: host.clone() }),
                    )
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::CommandFailed;
    use crate::transport::ExitStatus;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web{i}")).collect()
    }

    #[tokio::test]
    async fn every_failure_is_reported_in_host_order() {
        let result = fan_out(&hosts(4), 0, &CancellationToken::new(), |host| async move {
            if host == "web2" || host == "web4" {
                Err(RemoteError::CommandFailed(CommandFailed {
                    host: host.clone(),
                    command: "false".into(),
                    status: ExitStatus::Code(1),
                    stderr: format!("boom on {host}"),
                }))
            } else {
                Ok(host.len())
            }
        })
        .await;
        assert!(!result.all_succeeded());
        let error = result.into_result().unwrap_err();
        assert_eq!(error.total, 4);
        let failed: Vec<&str> = error.failures.iter().map(|f| f.host.as_str()).collect();
        assert_eq!(failed, ["web2", "web4"]);
        let message = error.to_string();
        assert!(message.starts_with("failed on 2 of 4 hosts:"), "{message}");
        assert!(message.contains("web4: `false` failed on web4 with exit status 1: boom on web4"));
    }

    #[tokio::test]
    async fn parallelism_is_bounded() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (running2, peak2) = (Arc::clone(&running), Arc::clone(&peak));
        let result = fan_out(&hosts(12), 3, &CancellationToken::new(), move |_| {
            let running = Arc::clone(&running2);
            let peak = Arc::clone(&peak2);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .await;
        assert!(result.all_succeeded());
        assert_eq!(result.results.len(), 12);
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert!(peak.load(Ordering::SeqCst) >= 2);
    }

    #[tokio::test]
    async fn cancellation_stops_waiting_hosts() {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let result = fan_out(&hosts(3), 0, &cancel, move |host| {
            let trigger = trigger.clone();
            async move {
                if host == "web1" {
                    // One host cancels the run; every host would otherwise wait forever.
                    trigger.cancel();
                }
                std::future::pending::<()>().await;
                Ok(host)
            }
        })
        .await;
        for (host, outcome) in &result.results {
            assert!(
                matches!(outcome, Err(RemoteError::Cancelled { host: h }) if h == host),
                "{host}: {outcome:?}"
            );
        }
    }
}
