//! The `kamal-proxy` executable: the server (`run`) and the client subcommands.

fn main() -> std::process::ExitCode {
    dhow_proxy::cli::main_with_args(std::env::args().collect())
}
