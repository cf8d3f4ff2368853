//! One module per subcommand: each resolves what it needs, does its work through the edge
//! modules, and hands text to the printer. No clap types are defined here.

pub mod accessory;
pub mod badge;
pub mod check;
pub mod config;
pub mod deploy;
pub mod docs;
pub mod init;
pub mod secrets;
pub mod server;
