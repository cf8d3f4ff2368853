//! The pure core of dhow: configuration loading and validation, secrets as a type, command
//! builders, the one shell renderer and deploy plans.
//!
//! Purity contract: nothing in this crate touches the filesystem, the process environment, the
//! clock, child processes or the network. File contents, environment maps, the time, the version
//! and git state come in as plain values; effects live in the `dhow` binary and `dhow-remote`.
//! `clippy.toml` in this crate's directory bans the obvious escape hatches.

pub mod badge;
pub mod cmd;
pub mod config;
pub mod docker;
pub mod dockerignore;
pub mod erb;
pub mod event;
pub mod plan;
pub mod preview;
pub mod secret;
pub mod secrets;
pub mod selection;

pub use secret::Secret;
