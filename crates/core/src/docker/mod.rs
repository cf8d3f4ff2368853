//! Command builders, one file per Kamal command family. Every builder is a pure function from
//! plain values to [`Command`](crate::cmd::Command)s whose rendering matches Kamal's byte for byte
//! (except where dhow deliberately does better, e.g. `docker login --password-stdin`).

pub mod accessory;
pub mod app;
pub mod app_files;
pub mod audit;
pub mod builder;
pub mod lock;
pub mod proxy;
pub mod prune;
pub mod registry;
pub mod server;

mod scope;

pub use scope::Scope;
