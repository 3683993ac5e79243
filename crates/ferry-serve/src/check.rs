//! Trust in what is served ([`Checks`]): every blob is re-hashed against its name, in the
//! background from the moment `ferry serve` starts (or all before it listens, with
//! `--verify-first`), each once. A blob that fails is withdrawn (404) and named with the
//! images it breaks. A request may need a blob before its turn: a whole-blob GET is then hashed
//! while it streams (its last chunk held back until it matches), and a range waits for the
//! check, so no client ever gets a wrong blob whole. How far the check has come
//! ([`Progress`]) and what it withdrew ([`Checks::withdrawn`]) are what the status page and
//! `/metrics` show.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use tokio::sync::OnceCell;

use super::catalog::Catalog;
use ferry_oci::digest::Digest;

type Verdict = Arc<OnceCell<Result<(), Withdrawn>>>;

/// Why a blob is withdrawn (cloned to every request that asks: the causes are shared).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Withdrawn {
    /// No bundle of the set holds it.
    #[error("no bundle holds it")]
    Unheld,
    /// The server stopped before the blob's turn came.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The background check found it corrupt, or could not read it.
    #[error(transparent)]
    Check(Arc<ferry_store::bundle::BundleError>),
    /// The check's thread failed.
    #[error(transparent)]
    Thread(Arc<tokio::task::JoinError>),
    /// Hashed while it was served, it did not match (or could not be read).
    #[error(transparent)]
    Served(Arc<std::io::Error>),
}

/// The check of every served blob.
pub struct Checks {
    catalog: Arc<Catalog>,
    cells: Mutex<HashMap<Digest, Verdict>>,
    /// Blobs hashed at once, whoever asks (the background check, or requests for blobs not
    /// checked yet): clients asking for thousands of distinct blobs at once queue here,
    /// instead of taking a blocking thread and a buffer each.
    hashing: tokio::sync::Semaphore,
    total_blobs: u64,
    total_bytes: u64,
    verified_blobs: AtomicU64,
    verified_bytes: AtomicU64,
    withdrawn_blobs: AtomicU64,
    withdrawn_bytes: AtomicU64,
}

/// How far the check of the served blobs has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Blobs served.
    pub total_blobs: u64,
    /// Their bytes.
    pub total_bytes: u64,
    /// Blobs found to match their digest.
    pub verified_blobs: u64,
    /// Their bytes.
    pub verified_bytes: u64,
    /// Blobs found corrupt (or unreadable), withdrawn.
    pub withdrawn_blobs: u64,
    /// Their bytes.
    pub withdrawn_bytes: u64,
}

impl Progress {
    /// Blobs with a verdict, good or bad.
    pub fn checked_blobs(&self) -> u64 {
        self.verified_blobs + self.withdrawn_blobs
    }

    /// Their bytes.
    pub fn checked_bytes(&self) -> u64 {
        self.verified_bytes + self.withdrawn_bytes
    }

    /// Blobs not checked yet.
    pub fn pending_blobs(&self) -> u64 {
        self.total_blobs.saturating_sub(self.checked_blobs())
    }
}

/// A withdrawn blob, as the status page lists it.
#[derive(Debug, Clone)]
pub struct WithdrawnBlob {
    /// The blob.
    pub digest: Digest,
    /// Its size in the bundle (0 when no bundle holds it).
    pub size: u64,
    /// Why.
    pub why: String,
    /// The images (`repo:tag`) it breaks.
    pub images: Vec<String>,
}

impl Checks {
    /// No blob checked yet.
    pub fn new(catalog: Arc<Catalog>) -> Checks {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let blobs = catalog.blobs();
        let total_bytes = blobs.iter().map(|d| size_of(&catalog, d)).sum();
        Checks {
            total_blobs: blobs.len() as u64,
            total_bytes,
            catalog,
            cells: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(cpus),
            verified_blobs: AtomicU64::new(0),
            verified_bytes: AtomicU64::new(0),
            withdrawn_blobs: AtomicU64::new(0),
            withdrawn_bytes: AtomicU64::new(0),
        }
    }

    /// How far the check has come, now.
    pub fn progress(&self) -> Progress {
        Progress {
            total_blobs: self.total_blobs,
            total_bytes: self.total_bytes,
            verified_blobs: self.verified_blobs.load(Ordering::Relaxed),
            verified_bytes: self.verified_bytes.load(Ordering::Relaxed),
            withdrawn_blobs: self.withdrawn_blobs.load(Ordering::Relaxed),
            withdrawn_bytes: self.withdrawn_bytes.load(Ordering::Relaxed),
        }
    }

    /// Every blob withdrawn so far, by digest, with the images it breaks.
    pub fn withdrawn(&self) -> Vec<WithdrawnBlob> {
        let cells: Vec<(Digest, Verdict)> = self
            .cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(d, v)| (d.clone(), v.clone()))
            .collect();
        let mut out: Vec<WithdrawnBlob> = cells
            .into_iter()
            .filter_map(|(digest, cell)| match cell.get() {
                Some(Err(why)) => Some(WithdrawnBlob {
                    size: size_of(&self.catalog, &digest),
                    why: why.to_string(),
                    images: self.catalog.users.get(&digest).cloned().unwrap_or_default(),
                    digest,
                }),
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| a.digest.cmp(&b.digest));
        out
    }

    fn cell(&self, digest: &Digest) -> Verdict {
        self.cells
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(digest.clone())
            .or_default()
            .clone()
    }

    /// The verdict on `digest`, if it was checked: `Some(Err(why))` for a corrupt blob.
    pub fn verdict(&self, digest: &Digest) -> Option<Result<(), Withdrawn>> {
        self.cell(digest).get().cloned()
    }

    /// Records the verdict of a blob hashed while it was served (only when none is known).
    pub fn record(&self, digest: &Digest, verdict: Result<(), Withdrawn>) {
        let cell = self.cell(digest);
        if cell.set(verdict.clone()).is_ok() {
            self.announce(digest, &verdict);
        }
    }

    /// Counts a blob's first verdict, and names a corrupt one with the images it breaks.
    fn announce(&self, digest: &Digest, verdict: &Result<(), Withdrawn>) {
        let size = size_of(&self.catalog, digest);
        let (blobs, bytes) = match verdict {
            Ok(()) => (&self.verified_blobs, &self.verified_bytes),
            Err(_) => (&self.withdrawn_blobs, &self.withdrawn_bytes),
        };
        // A manifest fetched as a blob is checked too, but is not one of the blobs counted.
        if !self.catalog.manifests.contains_key(digest) {
            blobs.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(size, Ordering::Relaxed);
        }
        if let Err(why) = verdict {
            let users = self
                .catalog
                .users
                .get(digest)
                .map(|u| u.join(", "))
                .unwrap_or_default();
            tracing::error!(
                "blob {digest} is corrupt and withdrawn ({why}); these images cannot be pulled until the bundle is copied again: {users}"
            );
        }
    }

    /// Checks `digest` now (or waits for the check under way) and returns the verdict.
    pub async fn ensure(&self, digest: &Digest) -> Result<(), Withdrawn> {
        let cell = self.cell(digest);
        let mut fresh = false;
        let verdict = cell
            .get_or_init(|| async {
                fresh = true;
                let Some(bundle) = self.catalog.set.holding(digest).cloned() else {
                    return Err(Withdrawn::Unheld);
                };
                let d = digest.clone();
                let Ok(_permit) = self.hashing.acquire().await else {
                    return Err(Withdrawn::ShuttingDown);
                };
                tokio::task::spawn_blocking(move || {
                    bundle
                        .reader()
                        .verify_blob(&d)
                        .map_err(|e| Withdrawn::Check(Arc::new(e)))
                })
                .await
                .unwrap_or_else(|e| Err(Withdrawn::Thread(Arc::new(e))))
            })
            .await
            .clone();
        if fresh {
            self.announce(digest, &verdict);
        }
        verdict
    }

    /// Checks every served blob, `parallel` at a time; returns how many are corrupt.
    pub async fn all(&self, parallel: usize) -> usize {
        let started = std::time::Instant::now();
        let blobs = self.catalog.blobs();
        let total = blobs.len();
        let bad = futures_util::stream::iter(blobs)
            .map(|d| async move { self.ensure(&d).await.is_err() })
            .buffer_unordered(parallel.max(1))
            .filter(|bad| std::future::ready(*bad))
            .count()
            .await;
        let took = started.elapsed().as_secs_f64();
        if bad == 0 {
            tracing::info!("all {total} blobs checked against their digests in {took:.1} s");
        } else {
            tracing::warn!("{total} blobs checked in {took:.1} s: {bad} corrupt, withdrawn");
        }
        bad
    }
}

/// A blob's size in the bundle that holds it (0 when none does).
fn size_of(catalog: &Catalog, digest: &Digest) -> u64 {
    catalog
        .set
        .holding(digest)
        .and_then(|b| b.reader().blob(digest).map(|l| l.size))
        .unwrap_or(0)
}
