//! dhow's GitHub side: the Actions runtime (run context, workflow commands, env files, job
//! summary) and the only REST client (deployments, statuses, sticky comments, runs, pulls).

pub mod client;
pub mod comments;
pub mod contents;
pub mod context;
pub mod deployments;
pub mod workflow;

pub use client::{ApiError, GitHub, RetryPolicy};
pub use context::{ActionsContext, Event, Repository};
