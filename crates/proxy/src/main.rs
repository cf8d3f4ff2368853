//! The `kamal-proxy` executable: the server (`run`) and the client subcommands.

/// mimalloc instead of the C library's allocator: the static musl build's malloc takes a global
/// lock on every call, and a proxy allocates a little for every request on every worker.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dhow_proxy::cli::main_with_args(std::env::args().collect())
}
