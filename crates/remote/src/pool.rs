//! The connection pool: one SSH session per host, reused by every command of a run (channels
//! are multiplexed on it), a cap on concurrent connection starts (sshkit
//! `max_concurrent_starts`) and on hosts worked on in parallel, and the jump-host connection
//! shared by every host behind it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::{ConnectError, RemoteError};
use crate::fan_out::{FanOut, fan_out};
use crate::host_key::{HostKeyPolicy, HostKeyVerifier, LearnedHostKey};
use crate::session::{JumpHost, Proxy, SshOptions, SshSession, Target};

/// sshkit's default `max_concurrent_starts`.
pub const DEFAULT_MAX_CONCURRENT_STARTS: usize = 30;

/// Limits of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// SSH handshakes in flight at once (`sshkit.max_concurrent_starts`, default 30).
    pub max_concurrent_starts: usize,
    /// Hosts worked on at once by [`Pool::run_on_hosts`]; 0 means all of them.
    pub max_parallel_hosts: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            max_concurrent_starts: DEFAULT_MAX_CONCURRENT_STARTS,
            max_parallel_hosts: 0,
        }
    }
}

type Slot = Arc<OnceCell<Arc<SshSession>>>;

struct PoolInner {
    options: SshOptions,
    verifier: Arc<HostKeyVerifier>,
    limits: PoolLimits,
    starts: Semaphore,
    sessions: Mutex<HashMap<String, Slot>>,
    jump: Mutex<Option<Slot>>,
    learned: Mutex<Vec<LearnedHostKey>>,
}

/// A cheap-to-clone handle on the sessions of a run.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("options", &self.inner.options)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for hosts reached with `options`, verifying host keys with `policy`.
    pub fn new(options: SshOptions, policy: HostKeyPolicy, limits: PoolLimits) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                starts: Semaphore::new(limits.max_concurrent_starts.max(1)),
                options,
                verifier: Arc::new(HostKeyVerifier::new(policy)),
                limits,
                sessions: Mutex::new(HashMap::new()),
                jump: Mutex::new(None),
                learned: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The options every connection uses.
    pub fn options(&self) -> &SshOptions {
        &self.inner.options
    }

    /// Where `host` is reached: `[user@]host[:port]` with the pool's user and port as defaults
    /// (sshkit accepts the same forms in server lists).
    pub fn target(&self, host: &str) -> Target {
        parse_target(host, &self.inner.options)
    }

    /// The session for `host`, connecting on first use. Concurrent callers share one
    /// connection attempt; a failed attempt is not cached, a closed session is replaced.
    pub async fn session(&self, host: &str) -> Result<Arc<SshSession>, ConnectError> {
        let slot = {
            let mut sessions = lock(&self.inner.sessions);
            let slot = sessions.entry(host.to_owned()).or_default();
            if slot.get().is_some_and(|session| session.is_closed()) {
                *slot = Arc::default();
            }
            Arc::clone(slot)
        };
        let session = slot
            .get_or_try_init(|| self.connect(host))
            .await
            .map(Arc::clone)?;
        Ok(session)
    }

    /// The sessions for `hosts`, every host connecting at once (the handshakes in flight are
    /// still capped by `max_concurrent_starts`); each host's result, in the given order.
    pub async fn connect_all(
        &self,
        hosts: &[String],
    ) -> Vec<(String, Result<Arc<SshSession>, ConnectError>)> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, host) in hosts.iter().enumerate() {
            let pool = self.clone();
            let host = host.clone();
            tasks.spawn(async move {
                let session = pool.session(&host).await;
                (index, session)
            });
        }
        let mut results: Vec<Option<Result<Arc<SshSession>, ConnectError>>> =
            hosts.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, session)) = joined
                && let Some(slot) = results.get_mut(index)
            {
                *slot = Some(session);
            }
        }
        hosts
            .iter()
            .zip(results)
            .map(|(host, result)| {
                let result = result.unwrap_or_else(|| {
                    Err(ConnectError::Io {
                        host: host.clone(),
                        port: self.target(host).port,
                        reason: "the connection task ended early".to_owned(),
                    })
                });
                (host.clone(), result)
            })
            .collect()
    }

    async fn connect(&self, host: &str) -> Result<Arc<SshSession>, ConnectError> {
        let target = self.target(host);
        let via = match &self.inner.options.proxy {
            Some(Proxy::Jump(jump)) => Some(self.jump_session(jump, &target).await?),
            _ => None,
        };
        let _permit = self.inner.starts.acquire().await;
        let session = SshSession::connect(
            &target,
            &self.inner.options,
            Arc::clone(&self.inner.verifier),
            via,
        )
        .await?;
        self.note_learned(&session);
        Ok(Arc::new(session))
    }

    async fn jump_session(
        &self,
        jump: &JumpHost,
        target: &Target,
    ) -> Result<Arc<SshSession>, ConnectError> {
        let slot = {
            let mut guard = lock(&self.inner.jump);
            let slot = guard.get_or_insert_with(Arc::default);
            if slot.get().is_some_and(|session| session.is_closed()) {
                *slot = Arc::default();
            }
            Arc::clone(slot)
        };
        let result = slot
            .get_or_try_init(|| async {
                let jump_target = Target {
                    name: jump.to_string(),
                    host: jump.host.clone(),
                    port: jump.port,
                    user: jump.user.clone(),
                };
                let mut options = self.inner.options.clone();
                options.proxy = None;
                let _permit = self.inner.starts.acquire().await;
                let session = SshSession::connect(
                    &jump_target,
                    &options,
                    Arc::clone(&self.inner.verifier),
                    None,
                )
                .await?;
                self.note_learned(&session);
                Ok::<_, ConnectError>(Arc::new(session))
            })
            .await;
        result.map(Arc::clone).map_err(|source| ConnectError::Jump {
            host: target.host.clone(),
            port: target.port,
            via: jump.to_string(),
            source: Box::new(source),
        })
    }

    fn note_learned(&self, session: &SshSession) {
        if let Some(learned) = session.learned_host_key() {
            lock(&self.inner.learned).push(learned.clone());
        }
    }

    /// Host keys written by trust-on-first-use during this run (to be reported to the user).
    pub fn learned_host_keys(&self) -> Vec<LearnedHostKey> {
        lock(&self.inner.learned).clone()
    }

    /// Runs `work` on every host's session, bounded by the pool's limits and cancellable with
    /// `cancel`. Connection failures are reported per host like command failures; every host
    /// gets a result (see [`FanOut::into_result`] for one error listing every failing host).
    pub async fn run_on_hosts<T, F, Fut>(
        &self,
        hosts: &[String],
        cancel: &CancellationToken,
        work: F,
    ) -> FanOut<T>
    where
        T: Send + 'static,
        F: Fn(Arc<SshSession>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, RemoteError>> + Send + 'static,
    {
        let pool = self.clone();
        let work = Arc::new(work);
        fan_out(
            hosts,
            self.inner.limits.max_parallel_hosts,
            cancel,
            move |host| {
                let pool = pool.clone();
                let work = Arc::clone(&work);
                async move {
                    let session = pool.session(&host).await?;
                    work(session).await
                }
            },
        )
        .await
    }

    /// Closes every open session (jump host last).
    pub async fn close(&self) {
        let sessions: Vec<Slot> = lock(&self.inner.sessions).drain().map(|(_, s)| s).collect();
        for slot in sessions {
            if let Some(session) = slot.get() {
                session.close().await;
            }
        }
        let jump = lock(&self.inner.jump).take();
        if let Some(session) = jump.as_ref().and_then(|slot| slot.get()) {
            session.close().await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Parses a server entry `[user@]host[:port]` (IPv6 in brackets), defaulting user and port.
pub fn parse_target(spec: &str, options: &SshOptions) -> Target {
    let (user, rest) = match spec.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (user.to_owned(), rest),
        _ => (options.user.clone(), spec),
    };
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((host, after)) => (
                host.to_owned(),
                after
                    .strip_prefix(':')
                    .and_then(|port| port.parse().ok())
                    .unwrap_or(options.port),
            ),
            None => (rest.to_owned(), options.port),
        }
    } else {
        match rest.split_once(':') {
            // More than one colon: a bare IPv6 address.
            Some((host, port)) if !port.contains(':') => match port.parse() {
                Ok(port) => (host.to_owned(), port),
                Err(_) => (rest.to_owned(), options.port),
            },
            _ => (rest.to_owned(), options.port),
        }
    };
    Target {
        name: spec.to_owned(),
        host,
        port,
        user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_default_user_and_port() {
        let options = SshOptions {
            user: "deploy".into(),
            port: 2222,
            ..SshOptions::default()
        };
        let t = |spec: &str| {
            let target = parse_target(spec, &options);
            (target.user, target.host, target.port)
        };
        assert_eq!(t("web1"), ("deploy".into(), "web1".into(), 2222));
        assert_eq!(t("web1:2201"), ("deploy".into(), "web1".into(), 2201));
        assert_eq!(t("app@web1:2201"), ("app".into(), "web1".into(), 2201));
        assert_eq!(t("[::1]:2201"), ("deploy".into(), "::1".into(), 2201));
        assert_eq!(t("fe80::1"), ("deploy".into(), "fe80::1".into(), 2222));
    }
}
