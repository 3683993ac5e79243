//! docker credential helpers: `docker-credential-<name> get`, found on `PATH`, with the server
//! URL on stdin, killed after a timeout, its output capped. "credentials not found" is told
//! apart from a failure; a failure is a warning, so the caller can fall back to `auths`.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::CredentialChain;
use crate::registry::auth::Credentials;
use ferry_base::secret::Secret;

const HELPER_OUTPUT_LIMIT: u64 = 1 << 20;

pub(super) enum HelperAnswer {
    Found(Credentials),
    NotFound,
    Failed,
}

impl CredentialChain {
    /// Runs `docker-credential-<helper> get` with the server URL on stdin.
    pub(super) fn run_helper(&self, helper: &str, server: &str, name: &str) -> HelperAnswer {
        let program = format!("docker-credential-{helper}");
        if helper.is_empty() || helper.contains(['/', '\\']) || helper.starts_with('.') {
            tracing::warn!(
                "registry {name}: ignoring credential helper {helper:?}: not a helper name"
            );
            return HelperAnswer::Failed;
        }
        let Some(path) = find_program(self.path.as_deref(), &program) else {
            tracing::warn!(
                "registry {name}: credential helper {program} is configured but not on PATH; trying without it"
            );
            return HelperAnswer::Failed;
        };
        let output = match execute(&path, server, self.helper_timeout) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("registry {name}: credential helper {program} failed: {e}");
                return HelperAnswer::Failed;
            }
        };
        if !output.success {
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            if text.to_ascii_lowercase().contains("credentials not found") {
                return HelperAnswer::NotFound;
            }
            let first: String = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no message")
                .chars()
                .take(200)
                .collect();
            tracing::warn!(
                "registry {name}: credential helper {program} failed ({}): {first}",
                output.status
            );
            return HelperAnswer::Failed;
        }
        #[derive(Deserialize)]
        struct Reply {
            #[serde(rename = "Username", default)]
            username: Option<String>,
            #[serde(rename = "Secret", default)]
            secret: Secret,
        }
        let reply: Reply = match serde_json::from_slice(&output.stdout) {
            Ok(r) => r,
            Err(e) => {
                // No serde message: a data error could quote the secret.
                tracing::warn!(
                    "registry {name}: credential helper {program} answered with something other than {{\"ServerURL\",\"Username\",\"Secret\"}} JSON (line {}, column {})",
                    e.line(),
                    e.column()
                );
                return HelperAnswer::Failed;
            }
        };
        let username = reply.username.unwrap_or_default();
        if username.is_empty() && reply.secret.is_empty() {
            return HelperAnswer::NotFound;
        }
        HelperAnswer::Found(if username == "<token>" {
            Credentials::IdentityToken {
                username,
                token: reply.secret,
            }
        } else {
            Credentials::Basic {
                username,
                password: reply.secret,
            }
        })
    }
}

/// Finds an executable on a PATH value.
fn find_program(path: Option<&OsStr>, name: &str) -> Option<PathBuf> {
    let names = if cfg!(windows) {
        vec![format!("{name}.exe"), name.to_string()]
    } else {
        vec![name.to_string()]
    };
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// Why a helper gave no answer at all.
#[derive(Debug, thiserror::Error)]
enum HelperError {
    /// It could not be started.
    #[error("cannot start it: {0}")]
    Spawn(std::io::Error),
    /// It did not answer in time (and was killed).
    #[error("no answer within {} s", .0.as_secs_f32())]
    Timeout(Duration),
    /// Its exit could not be waited for.
    #[error("cannot wait for it: {0}")]
    Wait(std::io::Error),
}

struct HelperOutput {
    success: bool,
    status: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `<program> get` with `server` on stdin, killing it after `timeout`.
fn execute(program: &Path, server: &str, timeout: Duration) -> Result<HelperOutput, HelperError> {
    let mut cmd = Command::new(program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A script just written (tests, installers) can be briefly busy while another thread forks.
    let mut attempt = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(HelperError::Spawn(e)),
            Ok(c) => break c,
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin closes the pipe; its exit status tells.
        let _ = stdin.write_all(server.as_bytes());
    }
    let (tx, rx) = mpsc::channel();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (i, pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(HELPER_OUTPUT_LIMIT).read_to_end(&mut buf);
            }
            let _ = tx.send((i, buf));
        });
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HelperError::Timeout(timeout));
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HelperError::Wait(e));
            }
        }
    };
    // A grandchild may still hold the pipes open; do not wait for it long.
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok((0, b)) => stdout = b,
            Ok((_, b)) => stderr = b,
            Err(_) => break,
        }
    }
    Ok(HelperOutput {
        success: status.success(),
        status: status.to_string(),
        stdout,
        stderr,
    })
}
