//! The `dhow` binary: parses the command line, runs the command, maps errors to exit codes.

mod actions;
mod build;
mod cli;
mod commands;
mod deploy;
mod error;
mod facts;
mod hooks;
mod hosts;
mod local;
mod printer;
mod reporter;
mod settings;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::printer::{Printer, Verbosity};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            // clap renders its own usage errors and help text.
            let _ = error.print();
            return std::process::ExitCode::from(code);
        }
    };
    let verbosity = if cli.global.quiet {
        Verbosity::Quiet
    } else if cli.global.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let printer = Printer::new(verbosity);
    match run(cli, printer) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            printer.error(&error.render());
            std::process::ExitCode::from(error.exit_code() as u8)
        }
    }
}

fn run(cli: Cli, printer: Printer) -> Result<(), Error> {
    match cli.command {
        Command::Version => {
            printer.data(env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Preview(command) => commands::preview::run(command, &cli.global, printer),
        Command::Badge(args) => commands::badge::badge(&args, printer),
        Command::Status(args) => commands::badge::status(&args, &cli.global, printer),
        Command::Init => commands::init::run(std::path::Path::new("."), printer),
        Command::Help { command } => help(&command, printer),
        Command::Secrets(command) => commands::secrets::run(command, &cli.global, printer),
        Command::Config => {
            let env = settings::environment();
            commands::config::run(&cli.global, &env, std::path::Path::new("."), printer)
        }
        Command::Docs { section } => commands::docs::run(section.as_deref(), printer),
        Command::Server(command) => commands::server::run(command, &cli.global, printer),
        Command::Check => commands::check::run(&cli.global, printer),
        Command::Accessory(command) => commands::accessory::run(command, &cli.global, printer),
        Command::Deploy(args) => commands::deploy::deploy(&args, &cli.global, printer),
        Command::Plan => commands::deploy::show_plan(&cli.global, printer),
        Command::App(args) => commands::app::run(args, &cli.global, printer),
        Command::Proxy(args) => commands::proxy::run(args, &cli.global, printer),
        Command::Prune(args) => commands::prune::run(&args, &cli.global, printer),
        Command::Registry(command) => commands::registry::run(&command, &cli.global, printer),
        Command::Audit { dry_run } => commands::audit::run(&cli.global, printer, dry_run),
        Command::Details { dry_run } => commands::details::run(&cli.global, printer, dry_run),
        Command::Build(command) => commands::build::run(command, &cli.global, printer),
        Command::Setup(args) => commands::setup::setup(&args, &cli.global, printer),
        Command::Redeploy(args) => commands::redeploy::redeploy(&args, &cli.global, printer),
        Command::Rollback(args) => commands::rollback::rollback(&args, &cli.global, printer),
        Command::Remove(args) => commands::remove::remove(&args, &cli.global, printer),
        Command::Lock(command) => commands::lock::run(&command, &cli.global, printer),
    }
}

/// `dhow help [COMMAND...]`: the long help of dhow or of a (nested) subcommand.
fn help(path: &[String], printer: Printer) -> Result<(), Error> {
    let mut command = Cli::command();
    for name in path {
        let Some(sub) = command.find_subcommand(name).cloned() else {
            return Err(Error::Usage {
                message: format!("no such command: {}", path.join(" ")),
            });
        };
        command = sub;
    }
    printer.data(&command.render_long_help().to_string());
    Ok(())
}
