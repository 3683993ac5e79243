//! The environment of `scripts/bench.sh`: a large deterministic workload of RKE-named images,
//! and a real registry (CNCF distribution, TLS + token auth by default) serving it.
//!
//! ```text
//! cargo run --release --example bench_env -- generate --dir DIR [--scale small|full] [--big-layer-gb 1]
//! cargo run --release --example bench_env -- generate --dir DIR --scale-images N
//! cargo run --release --example bench_env -- serve --dir DIR --auth tls-token|tls-htpasswd|none [--port-file F]
//! ```
//!
//! `generate` writes the workload once, as distribution storage (so the registry serves the
//! exact bytes), plus `DIR/images.txt` and `DIR/blobs.txt`; it does nothing when `DIR/done`
//! names the same parameters, and reuses layers already on disk when they differ. See
//! `bench_env/workload.rs` for the images. With `--scale-images N` it writes the scale workload
//! instead (`bench_env/scale.rs`): N small images in N repositories, for counting requests.
//!
//! `serve` starts a registry on `DIR/storage` (or `--storage PATH`, e.g. an empty dir as an
//! import target) with the integration-test harness, prints one JSON line (`url`, `host`,
//! `ca_file`, `cert_dir`, `username`, `password`, …) and runs until SIGINT/SIGTERM/SIGHUP, or
//! until `--parent-pid` exits, then stops the registry (and the in-process token server).
//!
//! The harness is the dev-only crate `ferry-test-support` (`test-support/`), shared with the
//! integration tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[path = "bench_env/layer.rs"]
mod layer;
#[path = "bench_env/scale.rs"]
mod scale;
#[path = "bench_env/workload.rs"]
mod workload;

use ferry_test_support::registry::{Auth, TestRegistry};
use workload::{Params, Scale};

#[derive(Parser)]
#[command(about = "Workload and registry for scripts/bench.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the workload once (skipped when DIR/done names the same parameters).
    Generate {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "full")]
        scale: Scale,
        /// Also write an image with one layer of this many GiB (images-big.txt); 0: none.
        #[arg(long, value_name = "GB", default_value_t = 0.0)]
        big_layer_gb: f64,
        /// Layers generated at once (default: the number of CPUs).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Write the scale workload instead: N small images `scale/app-NNNNN:v1` in N
        /// repositories (`--scale` and `--big-layer-gb` do not apply).
        #[arg(long, value_name = "N", conflicts_with_all = ["scale", "big_layer_gb"])]
        scale_images: Option<usize>,
    },
    /// Serve a workload (or any storage dir) from a registry until killed.
    Serve {
        /// The workload dir (serves DIR/storage).
        #[arg(long, value_name = "DIR", required_unless_present = "storage")]
        dir: Option<PathBuf>,
        /// Serve this storage root instead (created if missing), e.g. an empty import target.
        #[arg(long, value_name = "PATH", conflicts_with = "dir")]
        storage: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "tls-token")]
        auth: AuthArg,
        /// Listen on this port (default: a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Also write the JSON line to this file (atomically) once the registry is ready.
        #[arg(long, value_name = "F")]
        port_file: Option<PathBuf>,
        /// Stop when this process no longer exists (e.g. the bench script's `$$`).
        #[arg(long, value_name = "PID")]
        parent_pid: Option<u32>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AuthArg {
    /// HTTPS registry, bearer tokens from an HTTPS token server (like Docker Hub).
    TlsToken,
    /// HTTPS registry, Basic auth.
    TlsHtpasswd,
    /// Plain HTTP, Basic auth.
    Htpasswd,
    /// Plain HTTP, bearer tokens.
    Token,
    /// Plain HTTP, no auth.
    None,
}

impl AuthArg {
    fn auth(self) -> Auth {
        match self {
            AuthArg::TlsToken => Auth::TlsToken,
            AuthArg::TlsHtpasswd => Auth::TlsHtpasswd,
            AuthArg::Htpasswd => Auth::Htpasswd,
            AuthArg::Token => Auth::Token,
            AuthArg::None => Auth::None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            AuthArg::TlsToken => "tls-token",
            AuthArg::TlsHtpasswd => "tls-htpasswd",
            AuthArg::Htpasswd => "htpasswd",
            AuthArg::Token => "token",
            AuthArg::None => "none",
        }
    }
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate {
            dir,
            scale,
            big_layer_gb,
            threads,
            scale_images,
        } => {
            if !(0.0..=64.0).contains(&big_layer_gb) {
                bail!("--big-layer-gb must be between 0 and 64");
            }
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
            if let Some(n) = scale_images {
                return scale::generate(&dir, n, threads);
            }
            workload::generate(&dir, &Params::new(scale, big_layer_gb), threads)
        }
        Command::Serve {
            dir,
            storage,
            auth,
            port,
            port_file,
            parent_pid,
        } => {
            let storage = match (dir, storage) {
                (_, Some(s)) => s,
                (Some(d), None) => {
                    if !d.join("done").is_file() {
                        bail!(
                            "{} holds no complete workload: run `generate` first",
                            d.display()
                        );
                    }
                    d.join("storage")
                }
                (None, None) => unreachable!("clap requires one"),
            };
            serve(&storage, auth, port, port_file.as_deref(), parent_pid)
        }
    }
}

fn serve(
    storage: &Path,
    auth: AuthArg,
    port: Option<u16>,
    port_file: Option<&Path>,
    parent_pid: Option<u32>,
) -> Result<()> {
    std::fs::create_dir_all(storage)
        .with_context(|| format!("create storage {}", storage.display()))?;
    let storage = storage.canonicalize()?;
    // The harness panics with the registry's log if it cannot start; that is our error report.
    let mut builder = TestRegistry::builder(auth.auth()).storage_dir(&storage);
    if let Some(p) = port {
        builder = builder.port(p);
    }
    let mut reg = builder.start();

    let token = reg.token_server();
    let info = serde_json::json!({
        "url": reg.url(),
        "host": reg.host(),
        "port": reg.port(),
        "auth": auth.name(),
        "ca_file": reg.ca_file(),
        "cert_dir": reg.cert_dir(),
        "username": reg.username(),
        "password": reg.password(),
        "token_realm": token.map(|t| t.realm()),
        "token_service": token.map(|t| t.service()),
        "storage": storage,
        "config": reg.config_path(),
        "pid": std::process::id(),
    });
    let line = serde_json::to_string(&info)?;
    if let Some(f) = port_file {
        let tmp = f.with_extension("tmp");
        std::fs::write(&tmp, format!("{line}\n"))?;
        std::fs::rename(&tmp, f)?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }

    let why = wait_for_stop(&mut reg, parent_pid)?;
    eprintln!(
        "bench_env serve: {why}; stopping the registry on {}",
        reg.url()
    );
    let died = why == "registry exited";
    if died {
        eprintln!("registry log:\n{}", reg.log());
    }
    drop(reg); // kills the registry, stops the token server, removes the temp dir
    if let Some(f) = port_file {
        let _ = std::fs::remove_file(f);
    }
    if died {
        bail!("the registry exited unexpectedly");
    }
    Ok(())
}

/// Blocks until a stop signal, the parent's exit, or the registry's own exit; says which.
fn wait_for_stop(reg: &mut TestRegistry, parent_pid: Option<u32>) -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = term.recv() => return Ok("SIGTERM"),
                _ = int.recv() => return Ok("SIGINT"),
                _ = hup.recv() => return Ok("SIGHUP"),
                _ = tick.tick() => {
                    if !reg.is_running() {
                        return Ok("registry exited");
                    }
                    if let Some(pid) = parent_pid
                        && !Path::new(&format!("/proc/{pid}")).exists()
                    {
                        return Ok("parent process exited");
                    }
                }
            }
        }
    })
}
