//! [`Secret`]: a string that never prints. Passwords, tokens and AWS keys live in this type
//! from the moment they are read, so a `{:?}` in a log line or an error cannot leak them.
//! [`redact_url`]: a URL as it may be printed.

use serde::{Deserialize, Deserializer};

/// A credential. `Debug` and `Display` print `<redacted>`; only [`Secret::expose`] gives the
/// value, and every call site of it is a place where the secret legitimately leaves ferry
/// (an HTTP header, a signature).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the few places that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        Ok(Secret(v.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests;

/// A URL safe to print: scheme, host, port and path only (no userinfo, query or fragment,
/// where logins and signed tokens travel).
pub fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}
