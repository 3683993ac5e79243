//! The container engines an RKE site runs, for tests of what they really pull: a Docker
//! Engine (Debian's `docker.io`) on a private socket — vfs storage, no iptables, no bridge,
//! as TESTING.md describes — with containerd's `ctr` on the engine's own containerd, and
//! podman with its storage in a temp dir. Each is stopped and cleaned up on Drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A Docker Engine for one test.
pub struct Dockerd {
    dir: TempDir,
    child: Option<Child>,
}

impl Dockerd {
    /// Starts `dockerd` and waits until it answers (panics with its log if it does not).
    pub fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("ferry-it-dockerd-")
            .tempdir()
            .expect("dockerd dir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("config")).expect("docker config dir");
        let log = std::fs::File::create(d.join("dockerd.log")).expect("dockerd log");
        let child = Command::new("dockerd")
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dockerd (apt-get install docker.io): {e}"));
        let engine = Dockerd {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = engine.docker(["version", "--format", "{{.Server.Version}}"]);
            if out.status.success() {
                return engine;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                engine.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The engine's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// `docker ARGS` against this engine (its own client config dir).
    pub fn command(&self) -> Command {
        let mut c = Command::new("docker");
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("docker.sock").display()),
        )
        .env("DOCKER_CONFIG", self.dir.path().join("config"))
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null());
        c
    }

    /// Runs `docker ARGS`.
    pub fn docker<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command().args(args).output().expect("run docker")
    }

    /// The engine's containerd socket, for `ctr --address`.
    pub fn containerd_socket(&self) -> PathBuf {
        self.dir.path().join("exec/containerd/containerd.sock")
    }

    /// Runs `ctr --address SOCKET ARGS` in namespace `ferry-test`.
    pub fn ctr<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Command::new("ctr")
            .arg("--address")
            .arg(self.containerd_socket())
            .args(["--namespace", "ferry-test"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run ctr (apt-get install containerd): {e}"))
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `/etc/docker/certs.d/HOST:PORT/ca.crt`, where a Docker Engine looks for a registry's CA;
/// removed on Drop.
pub struct DockerTrust {
    dir: PathBuf,
}

impl DockerTrust {
    /// Makes Docker trust `ca` for `host` (`HOST:PORT`).
    pub fn install(host: &str, ca: &Path) -> DockerTrust {
        let dir = Path::new("/etc/docker/certs.d").join(host);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("create {} (tests run as root): {e}", dir.display()));
        std::fs::copy(ca, dir.join("ca.crt")).expect("copy the CA");
        DockerTrust { dir }
    }
}

impl Drop for DockerTrust {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// podman with its storage in a temp dir (vfs).
pub struct Podman {
    dir: TempDir,
}

impl Default for Podman {
    fn default() -> Self {
        Self::new()
    }
}

impl Podman {
    /// A podman with empty storage.
    pub fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("ferry-it-podman-")
            .tempdir()
            .expect("podman dir");
        // podman stats REGISTRY_AUTH_FILE even when --creds is given.
        std::fs::write(dir.path().join("auth.json"), b"{}").expect("auth.json");
        std::fs::create_dir_all(dir.path().join("xdg")).expect("xdg dir");
        Podman { dir }
    }

    /// Runs `podman ARGS` on this storage.
    pub fn podman<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let d = self.dir.path();
        Command::new("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("XDG_RUNTIME_DIR", d.join("xdg"))
            .env("REGISTRY_AUTH_FILE", d.join("auth.json"))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run podman (apt-get install podman): {e}"))
    }
}
