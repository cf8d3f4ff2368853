//! Commands as data: the token model of a remote or local command line, Kamal's escaping rules,
//! the one renderer that turns commands into shell text (plus its redacted twin for logs), and
//! batches of commands sent to a host as one script.

mod batch;
mod escape;
mod render;
mod script;

pub use batch::{BATCH_MARKER, BatchPart, batch, batch_progress};
pub use escape::{argumentize, escape_shell_value, optionize, optionize_with, shell_single_quote};
pub use render::{for_exec, for_log};
pub use script::{Command, Token};
