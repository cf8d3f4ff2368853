//! dhow-proxy: a kamal-proxy compatible reverse proxy (the `kamal-proxy` binary's library).

pub mod acme;
pub mod body;
pub mod buffer;
pub mod cli;
pub mod commands;
pub mod duration;
pub mod error;
pub mod health;
pub mod load_balancer;
pub mod log;
pub mod metrics;
pub mod on_demand;
pub mod options;
pub mod pages;
pub mod paths;
pub mod pause;
pub mod rollout;
pub mod router;
pub mod server;
pub mod service;
pub mod service_map;
pub mod shard;
pub mod target;
pub mod timefmt;
pub mod tls;
pub mod upstream;
