//! One file per subcommand. This is the only layer that chooses concrete stores and wires
//! them to the engine, the verifier and the printer; each `run` reads its arguments, builds
//! the stores, calls the library and prints. The async runtime is built here, once.

use anyhow::Context as _;

use crate::cli::{Cli, Command};
use crate::error::Exit;

pub mod common;
pub mod delta_check;
pub mod diff;
pub mod ecr_repos;
pub mod export;
pub mod images;
pub mod import;
pub mod inspect;
pub mod lock;
pub mod policy;
pub mod printer;
pub mod progress_bar;
pub mod serve;
pub mod since;
pub mod target_registry;
pub mod verify;

use printer::Printer;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    // The output mode, once: every command asks the printer, not the flags.
    let printer = Printer::new(cli.quiet, cli.command.json());
    match cli.command {
        // Offline and instant: no runtime.
        Command::Images(args) => images::run(&args, &printer),
        Command::Inspect(args) => inspect::run(&args, &printer),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(run_async(command, &printer)),
    }
}

async fn run_async(command: Command, printer: &Printer) -> anyhow::Result<Exit> {
    match command {
        Command::Images(args) => images::run(&args, printer),
        Command::Lock(args) => lock::run(&args, printer).await,
        Command::Export(args) => export::run(&args, printer).await,
        Command::Import(args) => import::run(&args, printer).await,
        Command::Verify(args) => verify::run(&args, printer).await,
        Command::Serve(args) => serve::run(&args, printer).await,
        Command::Inspect(args) => inspect::run(&args, printer),
        Command::Diff(args) => diff::run(&args, printer).await,
    }
}
