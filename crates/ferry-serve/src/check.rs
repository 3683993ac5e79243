//! Trust in what is served ([`Checks`]): every blob is re-hashed against its name, in the
//! background from the moment `ferry serve` starts (or all before it listens, with
//! `--verify-first`), each once. A blob that fails is withdrawn (404) and named with the
//! images it breaks. A request may need a blob before its turn: a whole-blob GET is then hashed
//! while it streams (its last chunk held back until it matches), and a range waits for the
//! check, so no client ever gets a wrong blob whole.

use std::collections::HashMap;
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
}

impl Checks {
    /// No blob checked yet.
    pub fn new(catalog: Arc<Catalog>) -> Checks {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Checks {
            catalog,
            cells: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(cpus),
        }
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

    fn announce(&self, digest: &Digest, verdict: &Result<(), Withdrawn>) {
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
