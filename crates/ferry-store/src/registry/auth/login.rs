//! The credentials of one registry as its [`Authenticator`](super::Authenticator) holds them
//! ([`Login`]): looked up on first need on a blocking thread, and looked up again when the
//! source says they expire ([`CredentialSource::renew_at`]) or when the registry refused them
//! and the source can log in again ([`CredentialSource::invalidate`], ECR's login tokens).
//!
//! Each lookup is a numbered generation in its own once-cell. Concurrent requests share one
//! lookup (single flight); a refusal retires only the generation that was refused, so many
//! requests refused at once, or refused late with a generation already replaced, cause one new
//! lookup between them. The slot's lock is held only to clone or swap an `Arc`, never across
//! an await.
//!
//! [`CredentialSource::renew_at`]: crate::registry::CredentialSource::renew_at
//! [`CredentialSource::invalidate`]: crate::registry::CredentialSource::invalidate

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::OnceCell;

use super::{CredentialLookup, Credentials};

/// The soonest a lookup is repeated for being due, whatever the source says: a source whose
/// renewal time is already past when it answers must not be asked on every request.
const MIN_RENEWAL: Duration = Duration::from_secs(60);

/// The answer of one lookup.
pub(crate) struct Resolved {
    /// The credentials (anonymous when no name had any).
    pub(crate) credentials: Credentials,
    /// The user and where the credentials came from, for messages.
    pub(crate) label: Option<String>,
    /// Which generation of lookups this is.
    pub(crate) generation: u64,
    /// The name the source answered for (`None`: anonymous).
    name: Option<String>,
    /// When to look up again.
    renew_at: Option<SystemTime>,
}

/// One generation: its lookup runs once, whoever asks first.
struct Slot {
    generation: u64,
    cell: OnceCell<Arc<Resolved>>,
}

impl Slot {
    fn new(generation: u64) -> Arc<Slot> {
        Arc::new(Slot {
            generation,
            cell: OnceCell::new(),
        })
    }
}

/// The credentials of one registry, renewable.
pub(crate) struct Login {
    registry: String,
    lookup: CredentialLookup,
    current: Mutex<Arc<Slot>>,
    min_renewal: Duration,
}

impl Login {
    /// Nothing looked up yet.
    pub(crate) fn new(registry: &str, lookup: CredentialLookup) -> Login {
        Login {
            registry: registry.to_string(),
            lookup,
            current: Mutex::new(Slot::new(0)),
            min_renewal: MIN_RENEWAL,
        }
    }

    /// Lets renewals come as soon as the source asks (tests).
    #[cfg(test)]
    fn with_min_renewal(mut self, min_renewal: Duration) -> Login {
        self.min_renewal = min_renewal;
        self
    }

    fn slot(&self) -> Arc<Slot> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces `stale` with an empty next generation, unless someone did already.
    fn retire(&self, stale: &Arc<Slot>) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::ptr_eq(&current, stale) {
            *current = Slot::new(stale.generation + 1);
        }
    }

    /// The label of the credentials looked up last, if any were.
    pub(crate) fn label(&self) -> Option<String> {
        self.slot().cell.get().and_then(|r| r.label.clone())
    }

    /// The current credentials: looked up on first use, and again once they are due.
    pub(crate) async fn get(&self) -> Arc<Resolved> {
        let slot = self.slot();
        let resolved = self.resolve(&slot).await;
        let due = resolved.renew_at.is_some_and(|at| SystemTime::now() >= at);
        if !due {
            return resolved;
        }
        tracing::debug!(
            "registry {}: the credentials are due for renewal; looking them up again",
            self.registry
        );
        self.retire(&slot);
        let slot = self.slot();
        self.resolve(&slot).await
    }

    async fn resolve(&self, slot: &Slot) -> Arc<Resolved> {
        slot.cell
            .get_or_init(|| self.look_up(slot.generation))
            .await
            .clone()
    }

    /// The registry refused the credentials of `generation`. True when a retry can help:
    /// newer credentials are there already, or the source gave up the refused ones and can
    /// log in again (once per refused login, however many requests were refused).
    pub(crate) async fn refused(&self, generation: u64) -> bool {
        let slot = self.slot();
        if slot.generation != generation {
            return true;
        }
        let Some(resolved) = slot.cell.get().cloned() else {
            return false;
        };
        let Some(name) = resolved.name.clone() else {
            return false;
        };
        let source = self.lookup.source.clone();
        let credentials = resolved.credentials.clone();
        // A source may wait for a lock its login call holds: off the async runtime.
        let again = tokio::task::spawn_blocking(move || source.invalidate(&name, &credentials))
            .await
            .unwrap_or(false);
        if again {
            self.retire(&slot);
        }
        again
    }

    /// Asks the source for each name in turn, on a blocking thread (a credential helper is
    /// a process, an ECR login an HTTPS call).
    async fn look_up(&self, generation: u64) -> Arc<Resolved> {
        let source = self.lookup.source.clone();
        let names = self.lookup.names.clone();
        let found = tokio::task::spawn_blocking(move || {
            for name in &names {
                let c = source.credentials(name);
                if c != Credentials::Anonymous {
                    let origin = source.origin(name);
                    let renew_at = source.renew_at(name);
                    return (c, origin, Some(name.clone()), renew_at);
                }
            }
            (Credentials::Anonymous, None, None, None)
        })
        .await
        .unwrap_or((Credentials::Anonymous, None, None, None));
        let (credentials, origin, name, renew_at) = found;
        tracing::debug!(
            "registry {}: user {:?}",
            self.registry,
            credentials.username()
        );
        let label = credentials.username().map(|u| match &origin {
            Some(o) => format!("{u:?} (from {o})"),
            None => format!("{u:?}"),
        });
        let soonest = SystemTime::now() + self.min_renewal;
        let renew_at = renew_at.map(|at| at.max(soonest));
        Arc::new(Resolved {
            credentials,
            label,
            generation,
            name,
            renew_at,
        })
    }
}

#[cfg(test)]
mod tests;
