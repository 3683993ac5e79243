//! docker's (and podman's) config files, read the way docker reads them: for a registry, a
//! `credHelpers` entry, else `credsStore`, else `auths` (`auth`, `username`/`password`,
//! `identitytoken`). A file that cannot be read or parsed is skipped with a warning, and no
//! message quotes a value from it (it could be a secret).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::helper::HelperAnswer;
use super::{CredentialChain, CredentialOrigin, DOCKER_HUB, Resolved, canonical_host};
use crate::registry::auth::Credentials;
use ferry_base::secret::Secret;

/// The server URL docker uses for Docker Hub in `auths` and towards helpers.
pub(super) const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// One parsed docker/podman config file.
#[derive(Debug)]
pub(super) struct ConfigFile {
    path: PathBuf,
    /// `auths`: key as written, its normalised host, the credentials (None: no usable ones).
    auths: Vec<(String, String, Option<Credentials>)>,
    /// `credHelpers`: key as written, normalised host, helper suffix.
    helpers: Vec<(String, String, String)>,
    /// `credsStore`.
    store: Option<String>,
}

/// Why a config file was not used.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConfigFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {detail}")]
    Json { path: PathBuf, detail: String },
}

impl CredentialChain {
    /// Docker's order (`configfile.GetCredentialsStore`): a `credHelpers` entry for the host,
    /// else `credsStore`, else `auths`. Where a helper says "not found", docker uses no
    /// credentials, and so does this file (the next file may still answer). Where a helper
    /// fails, docker fails; ferry warns and falls back to `auths`.
    pub(super) fn config_lookup(&self, file: &ConfigFile, name: &str) -> Option<Resolved> {
        let server = server_url(name);
        let helper = file
            .helpers
            .iter()
            .find(|(key, ..)| key == server || key == name)
            .or_else(|| file.helpers.iter().find(|(_, host, _)| host == name))
            .map(|(.., h)| h)
            .or(file.store.as_ref());
        if let Some(helper) = helper {
            match self.run_helper(helper, server, name) {
                HelperAnswer::Found(credentials) => {
                    return Some(Resolved {
                        credentials,
                        origin: CredentialOrigin::CredentialHelper {
                            helper: helper.clone(),
                            file: file.path.clone(),
                        },
                    });
                }
                HelperAnswer::NotFound => return None,
                HelperAnswer::Failed => {}
            }
        }
        let usable = || {
            file.auths
                .iter()
                .filter(|(_, host, _)| host == name)
                .filter_map(|(key, _, c)| Some((key.as_str(), c.as_ref()?)))
        };
        let (_, credentials) = usable()
            .find(|(key, _)| *key == server || *key == name)
            .or_else(|| usable().next())?;
        Some(Resolved {
            credentials: credentials.clone(),
            origin: CredentialOrigin::DockerConfigAuths {
                file: file.path.clone(),
            },
        })
    }
}

/// The server address docker uses for a registry in `auths` and towards helpers.
pub(super) fn server_url(name: &str) -> &str {
    if name == DOCKER_HUB {
        DOCKER_HUB_SERVER
    } else {
        name
    }
}

/// Reads one config file; `Ok(None)` when it does not exist.
pub(super) fn load_config(path: &Path) -> Result<Option<ConfigFile>, ConfigFileError> {
    let text = match ferry_base::fsutil::read_small(path, ferry_base::fsutil::MAX_TEXT_FILE) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigFileError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let json_error = |detail| ConfigFileError::Json {
        path: path.to_path_buf(),
        detail,
    };
    let root: Map<String, Value> = if text.trim().is_empty() {
        Map::new()
    } else {
        serde_json::from_str(&text).map_err(|e| {
            json_error(if e.is_data() {
                // A data error quotes the offending value, which could be a secret.
                format!(
                    "expected a JSON object at line {} column {}",
                    e.line(),
                    e.column()
                )
            } else {
                e.to_string()
            })
        })?
    };
    let object = |key: &str| match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(json_error(format!("{key} is not an object"))),
    };
    let mut file = ConfigFile {
        path: path.to_path_buf(),
        auths: Vec::new(),
        helpers: Vec::new(),
        store: match root.get("credsStore") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            None | Some(Value::Null) | Some(Value::String(_)) => None,
            Some(_) => return Err(json_error("credsStore is not a string".into())),
        },
    };
    for (key, value) in object("credHelpers")?.into_iter().flatten() {
        match value.as_str() {
            Some(h) if !h.is_empty() => {
                file.helpers
                    .push((key.clone(), canonical_host(key), h.to_string()))
            }
            _ => tracing::warn!(
                "{}: credHelpers.{key} is not a helper name; ignoring it",
                path.display()
            ),
        }
    }
    for (key, value) in object("auths")?.into_iter().flatten() {
        let credentials = auth_entry(value).unwrap_or_else(|why| {
            tracing::warn!("{}: auths.{key} {why}; ignoring it", path.display());
            None
        });
        file.auths
            .push((key.clone(), canonical_host(key), credentials));
    }
    Ok(Some(file))
}

/// The credentials of one `auths` entry: `auth` (base64 `user:password`, which wins over
/// `username`/`password` as in docker), and `identitytoken`, which wins over a password.
fn auth_entry(value: &Value) -> Result<Option<Credentials>, &'static str> {
    let Value::Object(entry) = value else {
        return Err("is not an object");
    };
    let field = |name: &str| match entry.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err("has a field that is not a string"),
    };
    let (mut username, mut password) = (
        field("username")?.to_string(),
        Secret::new(field("password")?),
    );
    let auth = field("auth")?;
    if !auth.trim().is_empty() {
        (username, password) =
            decode_auth(auth).ok_or("has an auth that is not base64 of user:password")?;
    }
    let token = field("identitytoken")?;
    Ok(if !token.is_empty() {
        Some(Credentials::IdentityToken {
            username,
            token: Secret::new(token),
        })
    } else if username.is_empty() && password.is_empty() {
        None
    } else {
        Some(Credentials::Basic { username, password })
    })
}

fn decode_auth(auth: &str) -> Option<(String, Secret)> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = String::from_utf8(engine.decode(auth.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_string(), Secret::new(password.trim_matches('\0'))))
}
