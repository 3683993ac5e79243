//! The CLI's [`Reporter`]: one indicatif bar of bytes (rate, ETA) with the number of active
//! transfers, drawn only for a person at a terminal. What happened is counted by the engine
//! (its `ImageStats`), not here.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::ProgressBar;

use super::printer::Printer;
use ferry_copy::progress::Reporter;
use ferry_oci::digest::Digest;

/// Renders progress.
pub struct BarReporter {
    bar: ProgressBar,
    active: AtomicU64,
}

impl BarReporter {
    /// A reporter drawing `verb` (e.g. "exporting") when the printer draws bars.
    pub fn new(printer: &Printer, verb: &str) -> BarReporter {
        let template = format!(
            // Decimal units (MB, GB), as every summary and size ferry prints.
            "{verb} [{{bar:30}}] {{decimal_bytes}}/{{decimal_total_bytes}} {{decimal_bytes_per_sec}} eta {{eta}} {{msg}}"
        );
        BarReporter {
            bar: printer.bar(0, &template),
            active: AtomicU64::new(0),
        }
    }

    /// Removes the bar.
    pub fn done(&self) {
        self.bar.finish_and_clear();
    }

    fn show_active(&self) {
        self.bar
            .set_message(format!("{} active", self.active.load(Ordering::Relaxed)));
    }
}

impl Reporter for BarReporter {
    fn planned(&self, _blobs: u64, bytes: u64) {
        self.bar.set_length(bytes);
    }

    fn started(&self, _digest: &Digest, _size: u64) {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.show_active();
    }

    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finished(&self, _digest: &Digest, size: u64, moved: bool) {
        if moved {
            self.active.fetch_sub(1, Ordering::Relaxed);
            self.show_active();
        } else {
            self.bar.inc(size);
        }
    }

    fn image(&self, name: &str, ok: bool) {
        if !ok {
            self.bar.println(format!("failed: {name}"));
        }
    }
}

/// Runs `work` under a bar of the bytes `counter` counts towards `total` (rate, ETA), drawn
/// only for a person at a terminal: for steps that count bytes outside the engine (hashing
/// a bundle or its parts).
pub async fn counting<F: std::future::Future>(
    printer: &Printer,
    verb: &str,
    total: u64,
    counter: &std::sync::Arc<AtomicU64>,
    work: F,
) -> F::Output {
    let bar = printer.bar(
        total,
        &format!(
            "{verb} [{{bar:30}}] {{decimal_bytes}}/{{decimal_total_bytes}} {{decimal_bytes_per_sec}} eta {{eta}}"
        ),
    );
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = tick.tick() => bar.set_position(counter.load(Ordering::Relaxed)),
        }
    };
    bar.finish_and_clear();
    out
}
