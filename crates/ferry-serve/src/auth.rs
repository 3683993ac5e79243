//! Basic auth for `ferry serve` from an htpasswd file, as distribution does: bcrypt hashes
//! only (`htpasswd -B`). The verdict on an `Authorization` value is remembered (by its
//! SHA-256), so a bcrypt check costs once per login, not once per request: a login for good,
//! a refusal for [`REFUSAL_TTL`].
//!
//! Against a peer that guesses: an unknown user costs one bcrypt as a known one does (against
//! a stand-in hash of the same cost), so timing does not tell which user names exist; and the
//! bcrypt queue is bounded, [`QUEUE`] checks at most and [`QUEUE_PER_CLIENT`] per client
//! address, so a flood of guesses is answered 503 at once instead of queueing in front of a
//! real node's first login.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;

use tokio::sync::{OnceCell, Semaphore};

use ferry_oci::digest::Digest;

/// bcrypt checks running at once (each takes a blocking thread and a CPU).
pub const BCRYPT_AT_ONCE: usize = 2;

/// bcrypt checks running or waiting, from all clients.
pub const QUEUE: usize = 16;

/// bcrypt checks running or waiting for one client address.
pub const QUEUE_PER_CLIENT: usize = 2;

/// How long a refused `Authorization` value is answered from memory.
pub const REFUSAL_TTL: Duration = Duration::from_secs(10);

/// Verdicts remembered before refusals are forgotten (logins are always kept).
const MAX_VERDICTS: usize = 4096;

/// The answer to an `Authorization` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A user of the file, with the right password.
    Allowed,
    /// Anything else.
    Refused,
    /// Not checked: too many checks are queued (answer 503, the client tries again).
    Overloaded,
}

/// A remembered verdict: allowed, or refused at that time.
type Remembered = Arc<OnceCell<(bool, Instant)>>;

/// The users of an htpasswd file.
pub struct Htpasswd {
    users: Arc<HashMap<String, String>>,
    /// A bcrypt hash of a random password at the cost of the file's first user: checked for
    /// unknown users, so they cost what known ones do.
    stand_in: String,
    verdicts: Mutex<HashMap<Digest, Remembered>>,
    bcrypt: Semaphore,
    queued: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A place in the bcrypt queue; given back on Drop.
struct Ticket<'a> {
    queue: &'a Mutex<Queue>,
    client: IpAddr,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.total -= 1;
        if let Some(n) = q.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                q.per_client.remove(&self.client);
            }
        }
    }
}

impl Htpasswd {
    /// Reads `path`: `user:$2y$…` lines (comments and blank lines skipped).
    pub fn load(path: &Path) -> anyhow::Result<Htpasswd> {
        let text = ferry_base::fsutil::read_small(path, MAX_FILE)
            .with_context(|| format!("cannot read the htpasswd file {}", path.display()))?;
        let mut users = HashMap::new();
        let mut first_cost = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                anyhow::bail!("{}:{}: not a user:hash line", path.display(), i + 1);
            };
            let parts = ["$2y$", "$2a$", "$2b$"]
                .iter()
                .any(|p| hash.starts_with(p))
                .then(|| hash.parse::<bcrypt::HashParts>().ok())
                .flatten();
            let Some(parts) = parts else {
                anyhow::bail!(
                    "{}:{}: the hash of user {user:?} is not bcrypt; write the file with `htpasswd -B`",
                    path.display(),
                    i + 1
                );
            };
            first_cost.get_or_insert(parts.get_cost());
            users.insert(user.to_string(), hash.to_string());
        }
        let Some(cost) = first_cost else {
            anyhow::bail!("the htpasswd file {} names no user", path.display());
        };
        let random: [u8; 16] = rand::random();
        let stand_in = bcrypt::hash(hex::encode(random), cost)
            .context("cannot make the stand-in bcrypt hash for unknown users")?;
        Ok(Htpasswd {
            users: Arc::new(users),
            stand_in,
            verdicts: Mutex::new(HashMap::new()),
            bcrypt: Semaphore::new(BCRYPT_AT_ONCE),
            queued: Mutex::new(Queue::default()),
        })
    }

    /// The remembered verdict on `key`, fresh: a refusal older than [`REFUSAL_TTL`] is
    /// forgotten, so it is checked again.
    fn remembered(&self, key: Digest) -> Remembered {
        let mut verdicts = self
            .verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verdicts.len() >= MAX_VERDICTS && !verdicts.contains_key(&key) {
            // Someone is trying many passwords: forget the refusals, keep the logins.
            verdicts.retain(|_, v| v.get().is_some_and(|(ok, _)| *ok));
        }
        let cell = verdicts.entry(key).or_default();
        if cell
            .get()
            .is_some_and(|(ok, at)| !ok && at.elapsed() >= REFUSAL_TTL)
        {
            *cell = Remembered::default();
        }
        cell.clone()
    }

    /// A place in the bcrypt queue for `client`, if there is room.
    fn enter(&self, client: IpAddr) -> Option<Ticket<'_>> {
        let mut q = self
            .queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mine = q.per_client.get(&client).copied().unwrap_or(0);
        if q.total >= QUEUE || mine >= QUEUE_PER_CLIENT {
            return None;
        }
        q.total += 1;
        *q.per_client.entry(client).or_default() += 1;
        Some(Ticket {
            queue: &self.queued,
            client,
        })
    }

    /// Whether an `Authorization` header value from `client` names a user with the right
    /// password.
    ///
    /// bcrypt is slow on purpose (milliseconds at cost 4, a quarter second at cost 12), so it
    /// runs off the async workers, at most [`BCRYPT_AT_ONCE`] at a time, and once per distinct
    /// header value: 32 nodes arriving at once with the same login cost one check, and a
    /// client repeating a wrong password costs one check per [`REFUSAL_TTL`].
    pub async fn allows(&self, authorization: Option<&str>, client: IpAddr) -> Verdict {
        let Some(value) = authorization else {
            return Verdict::Refused;
        };
        let cell = self.remembered(Digest::sha256_of(value.as_bytes()));
        let checked = cell
            .get_or_try_init(|| async {
                let Some((user, password)) = basic_credentials(value) else {
                    return Ok((false, Instant::now()));
                };
                let Some(_ticket) = self.enter(client) else {
                    return Err(Verdict::Overloaded);
                };
                let (hash, known) = match self.users.get(&user) {
                    Some(hash) => (hash.clone(), true),
                    None => (self.stand_in.clone(), false),
                };
                let Ok(_permit) = self.bcrypt.acquire().await else {
                    return Ok((false, Instant::now()));
                };
                let matches = tokio::task::spawn_blocking(move || {
                    bcrypt::verify(password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                Ok((known && matches, Instant::now()))
            })
            .await;
        match checked {
            Ok((true, _)) => Verdict::Allowed,
            Ok((false, _)) => Verdict::Refused,
            Err(v) => v,
        }
    }
}

/// The largest htpasswd file read (thousands of users fit in far less).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// `(user, password)` of a `Basic` authorization value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?.trim();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests;
