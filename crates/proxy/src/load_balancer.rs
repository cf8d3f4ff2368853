//! A set of writer and reader targets: health checking them, the health wait of a deploy,
//! round-robin choice among healthy ones, writer affinity, and draining them together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::ProxyError;
use crate::health;
use crate::log;
use crate::options::{HealthCheckConfig, valid_target};
use crate::target::{HealthState, Target};

pub const WRITER_COOKIE: &str = "kamal-writer";

#[derive(Debug)]
pub struct LoadBalancer {
    pub writers: Vec<Arc<Target>>,
    pub readers: Vec<Arc<Target>>,
    healthy_writers: RwLock<Vec<Arc<Target>>>,
    healthy_readers: RwLock<Vec<Arc<Target>>>,
    next_writer: AtomicUsize,
    next_reader: AtomicUsize,
    pub writer_affinity_timeout: Duration,
    pub read_targets_accept_websockets: bool,
    all_healthy: watch::Sender<bool>,
    stop: CancellationToken,
}

/// Parses target names (`<target> :invalid host pattern` on a bad one).
pub fn parse_targets(names: &[String]) -> Result<Vec<Arc<Target>>, ProxyError> {
    names
        .iter()
        .map(|n| {
            if valid_target(n) {
                Ok(Target::new(n))
            } else {
                Err(ProxyError::InvalidHostPattern(n.clone()))
            }
        })
        .collect()
}

impl LoadBalancer {
    pub fn new(
        writers: Vec<Arc<Target>>,
        readers: Vec<Arc<Target>>,
        writer_affinity_timeout: Duration,
        read_targets_accept_websockets: bool,
    ) -> Arc<Self> {
        let (all_healthy, _) = watch::channel(false);
        let lb = Arc::new(Self {
            writers,
            readers,
            healthy_writers: RwLock::new(Vec::new()),
            healthy_readers: RwLock::new(Vec::new()),
            next_writer: AtomicUsize::new(0),
            next_reader: AtomicUsize::new(0),
            writer_affinity_timeout,
            read_targets_accept_websockets,
            all_healthy,
            stop: CancellationToken::new(),
        });
        lb.refresh();
        lb
    }

    pub fn targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.writers.iter().chain(self.readers.iter())
    }

    pub fn writer_names(&self) -> Vec<String> {
        self.writers.iter().map(|t| t.address.clone()).collect()
    }

    pub fn reader_names(&self) -> Vec<String> {
        self.readers.iter().map(|t| t.address.clone()).collect()
    }

    fn refresh(&self) {
        let healthy = |list: &[Arc<Target>]| -> Vec<Arc<Target>> {
            list.iter()
                .filter(|t| t.health() == HealthState::Healthy)
                .cloned()
                .collect()
        };
        let writers = healthy(&self.writers);
        let readers = healthy(&self.readers);
        let all = writers.len() == self.writers.len() && readers.len() == self.readers.len();
        if let Ok(mut w) = self.healthy_writers.write() {
            *w = writers;
        }
        if let Ok(mut r) = self.healthy_readers.write() {
            *r = readers;
        }
        self.all_healthy.send_replace(all);
    }

    /// Marks every target healthy without checking (restored state).
    pub fn mark_all_healthy(&self) {
        for target in self.targets() {
            target.mark_healthy();
        }
        self.refresh();
    }

    /// Starts checking every target. A single target stops being checked once healthy.
    pub fn start_health_checks(self: &Arc<Self>, config: &HealthCheckConfig) {
        let single = self.writers.len() + self.readers.len() == 1;
        let client = health::client();
        for target in self.targets() {
            if single && target.health() == HealthState::Healthy {
                continue;
            }
            let lb = Arc::clone(self);
            let target = Arc::clone(target);
            let client = client.clone();
            let url = health::check_url(&target.address, config.port, &config.path);
            let host = config.host.clone();
            let interval = config.interval.0.max(Duration::from_millis(1));
            let timeout = config.timeout.0;
            tokio::spawn(async move {
                loop {
                    let result = tokio::select! {
                        r = health::check(&client, &url, &host, timeout) => r,
                        () = lb.stop.cancelled() => return,
                    };
                    if let Err(error) = &result {
                        log::info(
                            "Healthcheck failed",
                            &[
                                ("target", target.address.as_str().into()),
                                ("url", url.as_str().into()),
                                ("error", error.as_str().into()),
                            ],
                        );
                    }
                    if let Some(state) = target.record_check(result.is_ok()) {
                        log::info(
                            "Target health updated",
                            &[
                                ("target", target.address.as_str().into()),
                                ("state", state.as_str().into()),
                            ],
                        );
                        lb.refresh();
                    }
                    if single && target.health() == HealthState::Healthy {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(interval) => {}
                        () = lb.stop.cancelled() => return,
                    }
                }
            });
        }
    }

    /// Waits until every target is healthy.
    pub async fn wait_until_healthy(&self, timeout: Duration) -> Result<(), ProxyError> {
        let mut rx = self.all_healthy.subscribe();
        let wait = rx.wait_for(|all| *all);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ProxyError::TargetFailedToBecomeHealthy(timeout)),
        }
    }

    /// Stops health checks.
    pub fn dispose(&self) {
        self.stop.cancel();
    }

    pub async fn drain(&self, timeout: Duration) {
        let mut tasks = Vec::new();
        for target in self.targets() {
            let target = Arc::clone(target);
            tasks.push(tokio::spawn(async move {
                target.drain(timeout).await;
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    pub fn has_readers(&self) -> bool {
        !self.readers.is_empty()
    }

    pub fn affinity_enabled(&self) -> bool {
        self.has_readers() && !self.writer_affinity_timeout.is_zero()
    }

    /// Picks a target: reads go to healthy readers (unless the client has writer affinity),
    /// everything else to writers. `None` when no suitable target is healthy.
    pub fn choose(&self, read: bool, writer_affinity: bool) -> Option<Arc<Target>> {
        let pick = |list: &RwLock<Vec<Arc<Target>>>, next: &AtomicUsize| {
            let list = list.read().ok()?;
            if list.is_empty() {
                return None;
            }
            let index = next.fetch_add(1, Ordering::Relaxed).wrapping_add(1) % list.len();
            Some(Arc::clone(&list[index]))
        };
        if read
            && !(writer_affinity && self.affinity_enabled())
            && let Some(reader) = pick(&self.healthy_readers, &self.next_reader)
        {
            return Some(reader);
        }
        pick(&self.healthy_writers, &self.next_writer)
    }
}
