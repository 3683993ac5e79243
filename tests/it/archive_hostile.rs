//! `ferry import ARCHIVE` on hostile archives that are small on disk and huge or costly once
//! read (issue 18, round two): a 256 MiB GNU long-name, long-link or PAX header inside a
//! ~260 KB `.tar.gz`; 40,000 one-byte entries; 2,000 `manifest.json` entries naming one big
//! config. Each run is measured from outside — peak RSS and CPU seconds by `/usr/bin/time`,
//! threads and memory mappings by polling `/proc` — under a deadline, so that a regression
//! fails instead of hanging the suite. None needs a registry (`--dry-run`, or a refusal).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ferry_test_support::docker_archive::{self, SavedImage};
use serde_json::json;

use crate::support::*;

/// How long a bounded run may take here (debug build, loaded 2-core machine).
const DEADLINE: Duration = Duration::from_secs(60);
/// Peak RSS a bounded run stays under.
const MAX_RSS_KIB: u64 = 100 * 1024;

/// One `ferry` run as seen from outside.
struct Measured {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// Peak RSS (`/usr/bin/time` `%M`).
    max_rss_kib: u64,
    /// User + system CPU seconds.
    cpu_seconds: f64,
    /// Most threads seen at once (`/proc/PID/status`).
    peak_threads: u64,
    /// Most memory mappings seen at once (`/proc/PID/maps`).
    peak_maps: usize,
}

/// The pid of `parent`'s first child, if it has one yet.
fn child_of(parent: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Runs `ferry ARGS` in `sandbox` under `/usr/bin/time` (and `ulimit -v KIB` when given),
/// polling its threads and mappings, killed at [`DEADLINE`].
fn measure(sandbox: &Sandbox, args: &[&str], address_space_kib: Option<u64>) -> Measured {
    let w = sandbox.work();
    let (out, err, times) = (w.join("out.txt"), w.join("err.txt"), w.join("time.txt"));
    let limit = address_space_kib.map_or(String::new(), |k| format!("ulimit -v {k}; "));
    let script = format!("{limit}exec \"$@\"");
    let mut child = sandbox
        .command("/usr/bin/time")
        .args(["-f", "%M %U %S", "-o"])
        .arg(&times)
        .args(["sh", "-c", &script, "sh", env!("CARGO_BIN_EXE_ferry")])
        .args(args)
        .stdout(Stdio::from(std::fs::File::create(&out).expect("out")))
        .stderr(Stdio::from(std::fs::File::create(&err).expect("err")))
        .spawn()
        .expect("run /usr/bin/time (apt-get install time)");
    let started = Instant::now();
    let (mut peak_threads, mut peak_maps) = (0, 0);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if let Some(pid) = child_of(child.id()) {
            peak_threads = peak_threads.max(status_field(pid, "Threads:").unwrap_or(0));
            if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
                peak_maps = peak_maps.max(maps.lines().count());
            }
        }
        if started.elapsed() > DEADLINE {
            if let Some(pid) = child_of(child.id()) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ferry {args:?} did not finish within {DEADLINE:?} (threads {peak_threads}, mappings {peak_maps})"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let t = read(&times);
    // The last line: "Command exited with non-zero status N" may come first.
    let fields: Vec<&str> = t
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let num = |i: usize| -> f64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(-1.0) };
    Measured {
        status,
        stdout: read(&out),
        stderr: read(&err),
        max_rss_kib: num(0) as u64,
        cpu_seconds: num(1) + num(2),
        peak_threads,
        peak_maps,
    }
}

/// What is left in `dir` and below.
fn left_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        found.push(e.path());
        if e.path().is_dir() {
            found.extend(left_in(&e.path()));
        }
    }
    found
}

/// One gzip member of `data`.
fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// The 512-byte header of an entry of `kind` named `name`, `size` bytes long.
fn header(name: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_path(name).expect("name");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A small valid docker-save archive: one image, one layer (uncompressed tar bytes).
fn small_image(name: &str) -> Vec<u8> {
    docker_archive::legacy(&[SavedImage::new(name, &[], &[2_000])], &[])
}

/// A `.tar.gz` (concatenated gzip members, as `MultiGzDecoder` and `gzip -d` read them) in
/// which an extension header of `kind` carries `mib` MiB of zeros, then a valid image:
/// ~1 KB on disk per MiB.
fn huge_extension_header(kind: tar::EntryType, mib: usize) -> Vec<u8> {
    let mut out = gz(&header("././@LongLink", kind, (mib as u64) << 20));
    let zeros = gz(&vec![0u8; 1 << 20]);
    for _ in 0..mib {
        out.extend_from_slice(&zeros);
    }
    out.extend(gz(&header("x", tar::EntryType::Regular, 0)));
    out.extend(gz(&small_image("rancher/after:v1")));
    out
}

#[test]
fn a_256_mib_long_name_long_link_or_pax_header_is_refused_in_bounded_memory() {
    for (kind, what) in [
        (tar::EntryType::GNULongName, "long-name"),
        (tar::EntryType::GNULongLink, "long-link"),
        (tar::EntryType::XHeader, "PAX"),
    ] {
        let sandbox = Sandbox::new();
        let archive = sandbox.work().join(format!("{what}.tar.gz"));
        let bytes = huge_extension_header(kind, 256);
        assert!(bytes.len() < 400_000, "{} bytes on disk", bytes.len());
        std::fs::write(&archive, &bytes).expect("write");
        let spool = sandbox.work().join("spool");
        std::fs::create_dir_all(&spool).expect("spool dir");
        let a = archive.to_str().expect("path");
        let m = measure(
            &sandbox,
            &[
                "import",
                a,
                "--to",
                "127.0.0.1:9",
                "--dry-run",
                "--spool-dir",
                spool.to_str().expect("path"),
            ],
            None,
        );
        assert_eq!(m.status.code(), Some(2), "{what}: {}", m.stderr);
        assert!(
            m.max_rss_kib < MAX_RSS_KIB,
            "{what}: peak RSS {} KiB reading a {} KB archive",
            m.max_rss_kib,
            bytes.len() / 1000
        );
        // One paragraph naming the archive, the entry and the cap.
        assert!(
            m.stderr.contains(a)
                && m.stderr.contains("@LongLink")
                && m.stderr.contains(what)
                && m.stderr.contains("65536"),
            "{what}: {}",
            m.stderr
        );
        assert!(!m.stderr.contains("internal error"), "{}", m.stderr);
        assert_eq!(left_in(&spool), Vec::<PathBuf>::new(), "{what}: spool left");
    }
}

/// A valid docker-save archive, gzip-compressed, with `junk` one-byte files before it.
fn with_tiny_entries(sandbox: &Sandbox, junk: usize) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..junk {
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("junk/{i:05}")).expect("path");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b"x"[..]).expect("append");
    }
    let mut tar = b.into_inner().expect("tar");
    tar.truncate(tar.len() - 1024); // the end-of-archive blocks: the image follows
    tar.extend(small_image("rancher/tiny:v1"));
    let plain = sandbox.work().join("tiny.tar");
    std::fs::write(&plain, &tar).expect("write");
    // The system gzip: a debug build of flate2 takes seconds over 40 MB.
    let status = Command::new("gzip")
        .arg("-9")
        .arg(&plain)
        .status()
        .expect("gzip");
    assert!(status.success());
    sandbox.work().join("tiny.tar.gz")
}

#[test]
fn ten_thousand_tiny_entries_are_read_with_bounded_threads_and_leave_no_spool() {
    let sandbox = Sandbox::new();
    // The archive had 40,000 (2 CPU-seconds per 10,000 in this debug build); one
    // thread per entry fails on 10,000 all the same under the address-space limit below.
    let archive = with_tiny_entries(&sandbox, 10_000);
    let size = std::fs::metadata(&archive).expect("archive").len();
    assert!(size < 600_000, "{size} bytes on disk");
    let spool = sandbox.work().join("spool");
    std::fs::create_dir_all(&spool).expect("spool dir");
    let a = archive.to_str().expect("path");
    let s = spool.to_str().expect("path");
    // An address-space limit far above what a bounded run maps (a few hundred MiB) and far
    // below what one thread per entry maps (2 MiB of stack each).
    let limit = Some(4 << 20);
    let m = measure(
        &sandbox,
        &[
            "import",
            a,
            "--to",
            "127.0.0.1:9",
            "--dry-run",
            "--spool-dir",
            s,
        ],
        limit,
    );
    assert!(m.status.success(), "{:?}: {}", m.status, m.stderr);
    assert!(m.stdout.contains("would push"), "{}", m.stdout);
    assert!(
        m.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        m.max_rss_kib
    );
    assert!(m.peak_threads <= 32, "{} threads", m.peak_threads);
    assert!(m.peak_maps < 2_000, "{} mappings", m.peak_maps);
    assert_eq!(left_in(&spool), Vec::<PathBuf>::new(), "spool left");

    // Out of spool space half way: a clear error, and every spool file removed.
    let m = measure(
        &sandbox,
        &[
            "import",
            a,
            "--to",
            "127.0.0.1:9",
            "--dry-run",
            "--spool-dir",
            s,
            "--spool-limit",
            "100KiB",
        ],
        limit,
    );
    assert_eq!(m.status.code(), Some(2), "{}", m.stderr);
    assert!(
        m.stderr.contains("temporary space") && !m.stderr.contains("internal error"),
        "{}",
        m.stderr
    );
    assert!(
        m.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        m.max_rss_kib
    );
    assert_eq!(left_in(&spool), Vec::<PathBuf>::new(), "spool left");
}

/// Size of the config that every `manifest.json` entry names: just under the 4 MiB a
/// config may be when it is pushed (the 15 MiB one is refused then, but cost its
/// 22 CPU-seconds before).
const BIG_CONFIG: usize = (4 << 20) - 4096;
/// Entries naming it.
const ENTRIES: usize = 1_000;

#[test]
fn one_big_config_named_by_a_thousand_entries_is_hashed_and_parsed_once() {
    let sandbox = Sandbox::new();
    let layer = docker_archive::layer_tar("shared", 1_000);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "comment": "a".repeat(BIG_CONFIG),
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer)]},
    }))
    .expect("config");
    let config_name = format!("{}.json", sha256_hex(&config));
    let entries: Vec<_> = (0..ENTRIES)
        .map(|i| {
            json!({"Config": config_name, "RepoTags": [format!("rancher/many:v{i}")], "Layers": ["l/layer.tar"]})
        })
        .collect();
    let tar = blobs::tar_of(&[
        (config_name.clone(), config),
        ("l/layer.tar".into(), layer),
        (
            "manifest.json".into(),
            serde_json::to_vec(&entries).expect("json"),
        ),
    ]);
    let archive = sandbox.work().join("many.tar.gz");
    std::fs::write(&archive, gz(&tar)).expect("write");
    let a = archive.to_str().expect("path");
    let m = measure(
        &sandbox,
        &["import", a, "--to", "127.0.0.1:9", "--dry-run"],
        None,
    );
    assert!(m.status.success(), "{:?}: {}", m.status, m.stderr);
    assert_eq!(
        m.stdout.matches("would push").count(),
        ENTRIES,
        "{}",
        m.stdout
    );
    // Hashing and parsing 4 MiB a thousand times costs tens of CPU seconds here; once, well
    // under one.
    assert!(m.cpu_seconds < 5.0, "{} CPU seconds", m.cpu_seconds);
    assert!(
        m.max_rss_kib < MAX_RSS_KIB,
        "peak RSS {} KiB",
        m.max_rss_kib
    );
}
