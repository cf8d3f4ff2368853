//! Commands as data: the token model of a remote or local command line, Kamal's escaping rules,
//! and the one renderer that turns commands into shell text (plus its redacted twin for logs).

mod escape;
mod render;
mod script;

pub use escape::{argumentize, escape_shell_value, optionize, optionize_with, shell_single_quote};
pub use render::{for_exec, for_log};
pub use script::{Command, Token};
