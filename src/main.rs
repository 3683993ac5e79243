//! The `ferry` binary: parse arguments, run the command, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{Cli, Command};
use ferry::error::{ERROR_EXIT_CODE, render};
use ferry_base::env_vars::EnvVars;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // A panic on any thread is a bug: say so and stop, rather than leave a transfer waiting
    // forever on a task that is gone.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        // process::exit runs no destructors: the spool directories go here.
        ferry_store::archive::spool::remove_all_now();
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
    let filter = EnvVars::var(EnvVars::FERRY_LOG)
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    // Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    use std::io::IsTerminal as _;
    let colour = std::io::stderr().is_terminal()
        && EnvVars::var_os(EnvVars::NO_COLOR).is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2);
    if json {
        // A long-running server's messages, as JSON lines with their time.
        fmt.json().init();
    } else {
        fmt.with_ansi(colour).without_time().init();
    }
}
