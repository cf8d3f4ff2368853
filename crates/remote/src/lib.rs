//! dhow's effects on hosts: the SSH transport (russh) behind the [`Transport`] trait, host-key
//! verification against `known_hosts` or pinned fingerprints, the per-run connection pool and
//! bounded, cancellable fan-out that reports every failing host.
//!
//! Commands arrive already rendered ([`RemoteCommand`] holds the shell text and its redacted
//! rendering); this crate never builds or re-quotes them, and never prints.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use dhow_remote::{
//!     HostKeyPolicy, KnownHosts, Pool, PoolLimits, RemoteCommand, SshOptions, Transport,
//! };
//! let mut known = KnownHosts::new();
//! known.add_file_if_exists(std::path::Path::new("/home/me/.ssh/known_hosts"))?;
//! let options = SshOptions { user: "deploy".into(), ..SshOptions::default() };
//! let pool = Pool::new(options, HostKeyPolicy::KnownHosts(known), PoolLimits::default());
//! let hosts = vec!["web1".to_owned(), "web2".to_owned()];
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let results = pool
//!     .run_on_hosts(&hosts, &cancel, |session| async move {
//!         session.run(&RemoteCommand::plain("docker version")).await
//!     })
//!     .await
//!     .into_result()?;
//! # Ok(()) }
//! ```

pub mod error;
pub mod fan_out;
pub mod host_key;
pub mod known_hosts;
pub mod lines;
pub mod pool;
pub mod session;
pub mod settings;
pub mod transport;

pub use error::{CommandFailed, ConnectError, HostFailure, HostsFailed, RemoteError};
pub use fan_out::{FanOut, fan_out};
pub use host_key::{
    FingerprintPins, HostKeyAcceptance, HostKeyError, HostKeyPolicy, HostKeyVerifier,
    LearnedHostKey,
};
pub use known_hosts::{HostKey, KnownHosts};
pub use lines::OutputLines;
pub use pool::{Pool, PoolLimits};
pub use session::{JumpHost, Proxy, SshOptions, SshSession, Target};
pub use settings::{LocalSsh, SshSettingsError, resolve_key_data, ssh_settings};
pub use tokio_util::sync::CancellationToken;
pub use transport::{ExitStatus, InputStream, Output, OutputStream, RemoteCommand, Transport};
