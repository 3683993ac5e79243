//! The `ferry` binary: parse arguments, run the command, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{Cli, Command};
use ferry::error::{ERROR_EXIT_CODE, render};
use ferry_base::env_vars::EnvVars;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    // A panic on any thread is a bug: say so and stop, rather than leave a transfer waiting
    // forever on a task that is gone.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        // process::exit runs no destructors: the spool directories go here.
        ferry_store::archive::remove_all_now();
        eprintln!(
            "error: ferry hit an internal error (a bug; please report it with the message above)"
        );
        std::process::exit(i32::from(ERROR_EXIT_CODE));
    }));
    let cli = Cli::parse();
    let server = matches!(&cli.command, Command::Serve(_));
    let json = matches!(&cli.command, Command::Serve(a) if a.json);
    init_logging(cli.verbose.max(u8::from(server)), cli.quiet, json);
    match ferry::commands::run(cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            eprintln!("error: {}", render(&err));
            ExitCode::from(ERROR_EXIT_CODE)
        }
    }
}

fn init_logging(verbose: u8, quiet: bool, json: bool) {
    // -v levels apply to ferry's own logs; libraries stay at warn unless FERRY_LOG says more.
    // A server (`ferry serve`) says what it does at info level from the start.
    // rustls-platform-verifier logs its own ERROR line for a certificate ferry then reports
    // in one paragraph of its own: off.
    let default = match (quiet, verbose) {
        (true, _) => "error,rustls_platform_verifier=off",
        (false, 0) => "warn,rustls_platform_verifier=off",
        (false, 1) => "warn,rustls_platform_verifier=off,ferry=info",
        (false, 2) => "warn,rustls_platform_verifier=off,ferry=debug",
        (false, _) => "warn,rustls_platform_verifier=off,ferry=trace",
    };
    // FERRY_LOG is a list of `target=level` (or a bare level for everything else); a target
    // matches by prefix, so `ferry` covers every ferry crate (`ferry_store`, `ferry_serve`, ...).
    let filter = EnvVars::var(EnvVars::FERRY_LOG)
        .and_then(|f| f.parse::<Targets>().ok())
        .unwrap_or_else(|| default.parse().expect("the default log filter parses"));
    // Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    use std::io::IsTerminal as _;
    let colour = std::io::stderr().is_terminal()
        && EnvVars::var_os(EnvVars::NO_COLOR).is_none_or(|v| v.is_empty());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2);
    if json {
        // A long-running server's messages, as JSON lines with their time.
        tracing_subscriber::registry()
            .with(layer.json().with_filter(filter))
            .init();
    } else {
        tracing_subscriber::registry()
            .with(layer.with_ansi(colour).without_time().with_filter(filter))
            .init();
    }
}
