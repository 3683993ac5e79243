//! AWS access keys ([`AwsKeys`]) from the environment or a cluster.yml `ecr_credential_plugin`,
//! with a `Debug` that shows only the key id's prefix and a scrubber that removes the keys from
//! AWS error texts.

use ferry_base::env_vars::EnvVars;
use ferry_base::secret::Secret;

/// AWS access keys. `Debug` shows only the first four characters of the key id (`AKIA` for a
/// long-term key, `ASIA` for a temporary one).
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// `AWS_SESSION_TOKEN`, for temporary keys.
    pub session_token: Option<Secret>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("AwsKeys")
            .field("access_key_id", &format_args!("{prefix}…"))
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .finish()
    }
}

impl AwsKeys {
    /// Keys from their parts; an empty session token counts as none.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: Secret) -> AwsKeys {
        AwsKeys {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
        }
    }

    /// The same keys with a session token (ignored when empty).
    pub fn with_session_token(mut self, token: Secret) -> AwsKeys {
        self.session_token = (!token.is_empty()).then_some(token);
        self
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional `AWS_SESSION_TOKEN`, read
    /// through `env`. `None` unless both keys are set and non-empty.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<AwsKeys> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let id = get(EnvVars::AWS_ACCESS_KEY_ID);
        let secret = get(EnvVars::AWS_SECRET_ACCESS_KEY);
        match (id, secret) {
            (Some(id), Some(secret)) => Some(
                AwsKeys::new(id.trim(), Secret::new(secret.trim())).with_session_token(
                    Secret::new(get(EnvVars::AWS_SESSION_TOKEN).unwrap_or_default()),
                ),
            ),
            (Some(_), None) => {
                tracing::warn!(
                    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; ignoring both"
                );
                None
            }
            (None, Some(_)) => {
                tracing::warn!(
                    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not; ignoring both"
                );
                None
            }
            (None, None) => None,
        }
    }

    /// The keys of a cluster.yml `ecr_credential_plugin`, by RKE's rule: static keys only when
    /// both `aws_access_key_id` and `aws_secret_access_key` are set (then with the optional
    /// `aws_session_token`); otherwise `None`, and RKE falls back to the AWS default chain.
    pub fn from_plugin(
        access_key_id: Option<&str>,
        secret_access_key: &Secret,
        session_token: &Secret,
    ) -> Option<AwsKeys> {
        let id = access_key_id.map(str::trim).filter(|s| !s.is_empty())?;
        if secret_access_key.expose().trim().is_empty() {
            return None;
        }
        Some(
            AwsKeys::new(id, Secret::new(secret_access_key.expose().trim()))
                .with_session_token(session_token.clone()),
        )
    }

    /// Replaces every occurrence of a key in `text` (an AWS error message) with `<redacted>`.
    pub(super) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let token = self.session_token.as_ref().map(Secret::expose);
        for k in [
            Some(self.secret_access_key.expose()),
            token,
            Some(self.access_key_id.as_str()),
        ]
        .into_iter()
        .flatten()
        {
            if k.len() >= 4 {
                out = out.replace(k, "<redacted>");
            }
        }
        out
    }
}
