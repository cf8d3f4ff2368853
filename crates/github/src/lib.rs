//! dhow's GitHub side: the Actions runtime (run context, workflow commands, env files, job
//! summary) and the only REST client (deployments, statuses, sticky comments, runs, pulls).

pub mod context;
pub mod workflow;
