//! The proxy's error type; its `Display` text is exactly what the CLI prints after `Error: `.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("service not found")]
    ServiceNotFound,
    #[error("target failed to become healthy within configured timeout ({})", crate::duration::format(*.0))]
    TargetFailedToBecomeHealthy(Duration),
    #[error("host settings conflict with another service")]
    HostInUse,
    #[error("automatic TLS does not support wildcards")]
    AutomaticTlsDoesNotSupportWildcards,
    #[error("unable to load certificate")]
    UnableToLoadCertificate,
    #[error("unable to load error pages")]
    UnableToLoadErrorPages,
    #[error("rollout target not set")]
    RolloutTargetNotSet,
    #[error("{0} :invalid host pattern")]
    InvalidHostPattern(String),
    #[error("{0}")]
    Message(String),
}
