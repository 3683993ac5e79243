//! One file per subcommand. This is the only layer that chooses concrete stores and wires the
//! engine, the reporter and the output together.

use std::io::Write;
use std::path::Path;

use crate::cli::{Cli, Command};
use crate::error::Exit;

pub mod common;
pub mod export;
pub mod images;
pub mod import;
pub mod lock;
pub mod render;
pub mod verify;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Images(args) => images::run(&args),
        Command::Lock(args) => {
            // Upstream credentials: docker login's config.json (and its helpers), else anonymous.
            let creds = crate::store::registry::credentials::CredentialChain::builder().build();
            lock::run(&args, std::sync::Arc::new(creds))
        }
        Command::Export(args) => {
            let creds = crate::store::registry::credentials::CredentialChain::builder().build();
            export::run(&args, std::sync::Arc::new(creds))
        }
        Command::Import(args) => import::run(&args),
        Command::Verify(args) => verify::run(&args),
    }
}

/// Writes command output to `-o FILE` (atomically) or stdout.
pub(crate) fn emit(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => crate::fsutil::write_atomic(path, text.as_bytes()),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Ok(()) => Ok(()),
                // `ferry images | head` closes the pipe early; that is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
            }
        }
    }
}
