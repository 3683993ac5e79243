//! Basic auth for `ferry serve` from an htpasswd file, as distribution does: bcrypt hashes
//! only (`htpasswd -B`). The verdict on an `Authorization` value is remembered (by its
//! SHA-256), so a bcrypt check costs once per login, not once per request.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use base64::Engine as _;

use tokio::sync::{OnceCell, Semaphore};

use crate::oci::digest::Digest;

/// bcrypt checks running at once (each takes a blocking thread and a CPU).
pub const BCRYPT_AT_ONCE: usize = 2;

/// Verdicts remembered before refusals are forgotten (logins are always kept).
const MAX_VERDICTS: usize = 4096;

/// The users of an htpasswd file.
pub struct Htpasswd {
    users: Arc<HashMap<String, String>>,
    verdicts: Mutex<HashMap<Digest, Arc<OnceCell<bool>>>>,
    bcrypt: Semaphore,
}

impl Htpasswd {
    /// Reads `path`: `user:$2y$…` lines (comments and blank lines skipped).
    pub fn load(path: &Path) -> anyhow::Result<Htpasswd> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the htpasswd file {}", path.display()))?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                anyhow::bail!("{}:{}: not a user:hash line", path.display(), i + 1);
            };
            if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
                anyhow::bail!(
                    "{}:{}: the hash of user {user:?} is not bcrypt; write the file with `htpasswd -B`",
                    path.display(),
                    i + 1
                );
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            anyhow::bail!("the htpasswd file {} names no user", path.display());
        }
        Ok(Htpasswd {
            users: Arc::new(users),
            verdicts: Mutex::new(HashMap::new()),
            bcrypt: Semaphore::new(BCRYPT_AT_ONCE),
        })
    }

    /// Whether an `Authorization` header value names a user with the right password.
    ///
    /// bcrypt is slow on purpose (milliseconds at cost 4, a quarter second at cost 12), so it
    /// runs off the async workers, at most [`BCRYPT_AT_ONCE`] at a time, and once per distinct
    /// header value: 32 nodes arriving at once with the same login cost one check, and a
    /// client repeating a wrong password costs one check, not one per request.
    pub async fn allows(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let key = Digest::sha256_of(value.as_bytes());
        let cell = {
            let mut verdicts = self
                .verdicts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if verdicts.len() >= MAX_VERDICTS && !verdicts.contains_key(&key) {
                // Someone is trying many passwords: forget the refusals, keep the logins.
                verdicts.retain(|_, v| v.get() == Some(&true));
            }
            verdicts.entry(key).or_default().clone()
        };
        *cell
            .get_or_init(|| async {
                let Some((user, password)) = basic_credentials(value) else {
                    return false;
                };
                let Some(hash) = self.users.get(&user).cloned() else {
                    return false;
                };
                let Ok(_permit) = self.bcrypt.acquire().await else {
                    return false;
                };
                tokio::task::spawn_blocking(move || {
                    bcrypt::verify(password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false)
            })
            .await
    }
}

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
