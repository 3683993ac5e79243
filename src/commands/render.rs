//! The CLI's [`Reporter`]: one indicatif bar of bytes (rate, ETA) with the number of active
//! transfers, drawn only on a terminal; plus the counters the end summary prints.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::ProgressBar;

use crate::oci::digest::Digest;
use crate::progress::Reporter;

/// Renders progress and counts what happened.
pub struct BarReporter {
    bar: ProgressBar,
    active: AtomicU64,
    /// Blobs actually moved.
    pub moved: AtomicU64,
    /// Bytes of blobs actually moved.
    pub moved_bytes: AtomicU64,
    /// Blobs already present.
    pub present: AtomicU64,
    /// Bytes that went through transfers (a resumed prefix is counted when re-hashed).
    pub transferred: AtomicU64,
}

impl BarReporter {
    /// A reporter drawing `verb` (e.g. "exporting") unless `json` or not a terminal.
    pub fn new(verb: &str, json: bool) -> BarReporter {
        let template = format!(
            // Decimal units (MB, GB), as every summary and size ferry prints.
            "{verb} [{{bar:30}}] {{decimal_bytes}}/{{decimal_total_bytes}} {{decimal_bytes_per_sec}} eta {{eta}} {{msg}}"
        );
        BarReporter {
            bar: super::common::progress_bar(0, json, &template),
            active: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            moved_bytes: AtomicU64::new(0),
            present: AtomicU64::new(0),
            transferred: AtomicU64::new(0),
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
        self.transferred.fetch_add(n, Ordering::Relaxed);
        self.bar.inc(n);
    }

    fn finished(&self, _digest: &Digest, size: u64, moved: bool) {
        if moved {
            self.active.fetch_sub(1, Ordering::Relaxed);
            self.moved.fetch_add(1, Ordering::Relaxed);
            self.moved_bytes.fetch_add(size, Ordering::Relaxed);
            self.show_active();
        } else {
            self.present.fetch_add(1, Ordering::Relaxed);
            self.bar.inc(size);
        }
    }

    fn image(&self, name: &str, ok: bool) {
        if !ok {
            self.bar.println(format!("failed: {name}"));
        }
    }
}
