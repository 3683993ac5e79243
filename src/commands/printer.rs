//! What a command says, in one place (uv's `Printer`): data on stdout or into `-o FILE`
//! (atomically), JSON on stdout, summaries and failures on stderr unless `--quiet`, and
//! progress bars only for a person at a terminal (never with `--json` or `--quiet`).
//!
//! The output mode is chosen once, from the global `--quiet` and the command's `--json`
//! ([`Printer::new`]), and every command asks the printer ([`Printer::is_json`],
//! [`Printer::is_quiet`]) instead of carrying the flags around.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How a command speaks: the output mode of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printer {
    /// For a person: lines for people, summaries and notes on stderr, progress bars on a
    /// terminal.
    Human,
    /// `--quiet`: the same data, but nothing on stderr except errors, and no progress bars.
    Quiet,
    /// `--json`: JSON on stdout; notes and failures still on stderr; no progress bars.
    Json,
    /// `--json --quiet`: JSON on stdout, nothing on stderr except errors.
    QuietJson,
}

/// Bytes for people: `1.2 GB`, `340 MB`, `12 kB` (decimal, like every size ferry prints).
pub fn human_bytes(n: u64) -> String {
    indicatif::DecimalBytes(n).to_string()
}

impl Printer {
    /// The printer of a run: `quiet` silences everything but errors and data, `json` makes
    /// the output JSON.
    pub fn new(quiet: bool, json: bool) -> Printer {
        match (quiet, json) {
            (false, false) => Printer::Human,
            (true, false) => Printer::Quiet,
            (false, true) => Printer::Json,
            (true, true) => Printer::QuietJson,
        }
    }

    /// Whether only errors and data are to be printed.
    pub fn is_quiet(&self) -> bool {
        matches!(self, Printer::Quiet | Printer::QuietJson)
    }

    /// Whether the output is JSON (`--json`).
    pub fn is_json(&self) -> bool {
        matches!(self, Printer::Json | Printer::QuietJson)
    }

    /// Writes command output to `output` (atomically) or stdout. A closed pipe
    /// (`ferry images | head`) is not an error.
    pub fn data(&self, output: Option<&Path>, text: &str) -> anyhow::Result<()> {
        match output {
            Some(path) => ferry_base::fsutil::write_atomic(path, text.as_bytes()),
            None => {
                let mut out = std::io::stdout().lock();
                match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
                }
            }
        }
    }

    /// `value` as pretty JSON on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value).context("cannot render JSON")?;
        self.data(None, &(text + "\n"))
    }

    /// One line for people on stderr (unless quiet).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.is_quiet() {
            eprintln!("{}", line.as_ref());
        }
    }

    /// Names the images a command could not handle (`verb`: "locked", "exported"), grouped
    /// by cause: each cause once, with the images it hit.
    pub fn failures<'a>(&self, verb: &str, failures: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let failures: Vec<(&str, &str)> = failures.into_iter().collect();
        if failures.is_empty() || self.is_quiet() {
            return;
        }
        let mut text = format!("{} image(s) could not be {verb}:\n", failures.len());
        for (cause, names) in crate::error::group_by_cause(failures) {
            text.push_str(&format!("  {}: {cause}\n", names.join(", ")));
        }
        eprint!("{text}");
    }

    /// A progress bar on stderr, drawn only for a person ([`Printer::Human`]) at a terminal.
    pub fn bar(&self, len: u64, template: &str) -> ProgressBar {
        let visible = *self == Printer::Human && std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(len),
            if visible {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        // Redrawn on its own (spinner, elapsed, rate, ETA) even while nothing is counted: a
        // bar never sits still for long on a terminal. Hidden bars draw nothing and tick not.
        if visible {
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
        }
        bar
    }

    /// A spinner with `message` and the time elapsed, for a step whose size is unknown.
    pub fn spinner(&self, message: String) -> ProgressBar {
        let bar = self.bar(0, "{spinner} {msg} {elapsed}");
        bar.set_message(message);
        bar
    }
}
