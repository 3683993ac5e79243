//! Tests of the credential chain, by topic: the order of the sources and what each applies to
//! (`chain`), config files (`docker_config`), credential helpers (`helper`). The [`Fixture`]
//! here gives each test its own HOME, PATH and environment.

mod chain;
mod docker_config;
mod helper;

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;

use super::{CredentialChain, CredentialChainBuilder};
use crate::registry::auth::Credentials;

const HELPER: &str = r#"#!/bin/sh
server=$(cat)
case "$server" in
  helper.example.com) echo '{"ServerURL":"helper.example.com","Username":"hu","Secret":"helper-secret"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"helper-token"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"https://index.docker.io/v1/","Username":"hubuser","Secret":"hub-secret"}' ;;
  broken.example.com) echo "keychain locked" >&2; exit 2 ;;
  slow.example.com) sleep 5 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#;

struct Fixture {
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env = BTreeMap::new();
        env.insert("HOME".into(), dir.path().join("home").display().to_string());
        env.insert("PATH".into(), dir.path().join("bin").display().to_string());
        Fixture { dir, env }
    }

    fn set(&mut self, k: &str, v: &str) -> &mut Self {
        self.env.insert(k.into(), v.into());
        self
    }

    /// Writes `~/.docker/config.json` (under the fake HOME).
    fn docker_config(&self, json: &str) -> PathBuf {
        let dir = self.dir.path().join("home/.docker");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("config.json");
        std::fs::write(&path, json).expect("write config");
        path
    }

    #[cfg(unix)]
    fn helper(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir.path().join("bin");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).expect("write helper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn builder(&self) -> CredentialChainBuilder {
        let env = self.env.clone();
        CredentialChain::builder().env_from(move |k| env.get(k).cloned())
    }
}

fn basic_of(c: &Credentials) -> Option<(&str, &str)> {
    match c {
        Credentials::Basic { username, password } => Some((username, password.expose())),
        _ => None,
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}
