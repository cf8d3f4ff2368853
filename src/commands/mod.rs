//! One module per subcommand: each resolves what it needs, does its work through the edge
//! modules, and hands text to the printer. No clap types are defined here.

pub mod accessory;
pub mod app;
pub mod audit;
pub mod badge;
pub mod build;
pub mod check;
pub mod config;
pub mod deploy;
pub mod details;
pub mod docs;
pub mod groups;
pub mod init;
pub mod lifecycle;
pub mod lock;
pub mod preview;
pub mod proxy;
pub mod prune;
pub mod redeploy;
pub mod registry;
pub mod remove;
pub mod rollback;
pub mod secrets;
pub mod server;
pub mod setup;
