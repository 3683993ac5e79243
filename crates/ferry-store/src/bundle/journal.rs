//! The writer's journal (`BUNDLE.journal`): an append-only text file that says which blob
//! slots of `BUNDLE.partial` hold durable bytes, so an interrupted export resumes.
//!
//! ```text
//! ferry-bundle-journal 1 plan sha256:<fingerprint> size <total bytes>[ split <part bytes>]
//! progress sha256:<hex> <bytes>    the first <bytes> of the slot are on disk (fdatasync'ed)
//! done sha256:<hex>                the whole slot is on disk and verified
//! ```
//!
//! The first line ties the journal to one [`Plan`]: a journal of another plan is discarded.
//! Later lines are replayed in order, the last line about a blob wins (`progress d 0` after
//! `done d` means the blob was reset). A torn or garbled final line (a crash mid-write) is
//! ignored and cut off before appending; garbage anywhere else makes the journal unusable,
//! and the export starts over.

use std::collections::{BTreeMap, BTreeSet};

use super::layout::Plan;
use ferry_oci::digest::Digest;

/// The first word of every journal.
const MAGIC: &str = "ferry-bundle-journal 1";

/// One journal line after the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// The first `bytes` of the blob's slot are durable.
    Progress(Digest, u64),
    /// The blob's slot is complete, durable and verified.
    Done(Digest),
}

impl Record {
    /// The line, newline included.
    pub(crate) fn line(&self) -> String {
        match self {
            Record::Progress(d, n) => format!("progress {d} {n}\n"),
            Record::Done(d) => format!("done {d}\n"),
        }
    }

    fn parse(line: &str, plan: &Plan) -> Option<Record> {
        let mut words = line.split(' ');
        let record = match (words.next(), words.next(), words.next()) {
            (Some("progress"), Some(d), Some(n)) => {
                let digest = Digest::parse(d).ok()?;
                let n: u64 = n.parse().ok()?;
                (n <= plan.blob(&digest)?.size()).then_some(Record::Progress(digest, n))?
            }
            (Some("done"), Some(d), None) => {
                let digest = Digest::parse(d).ok()?;
                plan.blob(&digest)?;
                Record::Done(digest)
            }
            _ => return None,
        };
        words.next().is_none().then_some(record)
    }
}

/// The journal's first line for `plan` written whole or split every `split` bytes, newline
/// included.
pub(crate) fn header_line(plan: &Plan, split: Option<u64>) -> String {
    let split = split.map(|n| format!(" split {n}")).unwrap_or_default();
    format!(
        "{MAGIC} plan {} size {}{split}\n",
        plan.fingerprint(),
        plan.total_size()
    )
}

/// What a journal says about the slots, by the blobs' SHA-256 bytes (a plan holds
/// `blobs/sha256/` only; a record of another digest names no slot and is never applied).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// Blobs whose slots are complete.
    done: BTreeSet<[u8; 32]>,
    /// Durable prefix lengths of blobs that are not done (zero entries are dropped).
    progress: BTreeMap<[u8; 32], u64>,
}

impl State {
    /// Applies one record.
    pub(crate) fn apply(&mut self, record: &Record) {
        match record {
            Record::Progress(d, n) => {
                let Some(k) = d.sha256_bytes() else { return };
                self.done.remove(&k);
                if *n == 0 {
                    self.progress.remove(&k);
                } else {
                    self.progress.insert(k, *n);
                }
            }
            Record::Done(d) => {
                let Some(k) = d.sha256_bytes() else { return };
                self.progress.remove(&k);
                self.done.insert(k);
            }
        }
    }

    /// Whether blob `d`'s slot is complete.
    pub(crate) fn is_done(&self, d: &Digest) -> bool {
        d.sha256_bytes().is_some_and(|k| self.done.contains(&k))
    }

    /// The durable prefix of blob `d`'s slot, when it is not done and has one.
    pub(crate) fn progress_of(&self, d: &Digest) -> Option<u64> {
        self.progress.get(&d.sha256_bytes()?).copied()
    }

    /// How many slots are complete.
    #[cfg(test)]
    pub(crate) fn done_count(&self) -> usize {
        self.done.len()
    }

    /// How many incomplete slots have a durable prefix.
    #[cfg(test)]
    pub(crate) fn progress_count(&self) -> usize {
        self.progress.len()
    }
}

/// Replays a journal against `plan`: the state it records, and the length of its valid
/// prefix (where appending continues). `None` when the journal belongs to another plan or
/// is damaged before its last line.
pub(crate) fn replay(text: &[u8], plan: &Plan, split: Option<u64>) -> Option<(State, u64)> {
    let header = header_line(plan, split);
    if !text.starts_with(header.as_bytes()) {
        return None;
    }
    let mut state = State::default();
    let mut valid = header.len();
    let mut rest = text.get(valid..)?;
    while !rest.is_empty() {
        let (line, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (rest.get(..i)?, true),
            None => (rest, false),
        };
        let record = std::str::from_utf8(line)
            .ok()
            .and_then(|l| Record::parse(l, plan));
        let consumed = line.len() + usize::from(complete);
        let is_last = consumed == rest.len();
        match record {
            Some(r) if complete => state.apply(&r),
            // A torn or garbled final line: a crash interrupted its write.
            _ if is_last => break,
            _ => return None,
        }
        valid += consumed;
        rest = rest.get(consumed..)?;
    }
    Some((state, u64::try_from(valid).ok()?))
}

#[cfg(test)]
mod tests;
