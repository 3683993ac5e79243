//! Faults and crashes: export and import through the fault proxy (5xx, resets mid-body, 429
//! with `Retry-After`, a stalled body) give the same bytes as a clean run; an endpoint that
//! never recovers fails clearly after bounded retries; kill -9 at seeded random moments, many
//! times over, never costs a verified blob twice; a full disk is a clear error and never a
//! complete-looking bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::blobs::Prng;
use crate::support::fixtures::BlobKind;
use crate::support::proxy::ProxyRecord;
use crate::support::*;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// `Retry-After` seconds of the injected 429s.
const RETRY_AFTER: u64 = 2;

/// A fault-free export of every fixture, made once per test process: the reference bytes.
struct Reference {
    bundle: PathBuf,
    sha: String,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let images = fixtures();
        let reg = TestRegistry::start(Auth::None);
        seed(&reg, &images);
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-bundles");
        for old in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if !Path::new("/proc").join(old.file_name()).exists() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("mkdir");
        let list = image_list(&dir, &images, &[]);
        let bundle = dir.join("reference.tar");
        let out = ferry()
            .arg("export")
            .arg("--images")
            .arg(&list)
            .args(["--upstream", &format!("docker.io={}", reg.url()), "-o"])
            .arg(&bundle)
            .output()
            .expect("run ferry");
        assert!(
            out.status.success(),
            "reference export: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let sha = file_sha(&bundle);
        Reference { bundle, sha }
    })
}

fn file_sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

/// `ferry export` of `list` from `upstream` (a URL) into `out`, in `sandbox`.
fn export_cmd(sandbox: &Sandbox, upstream: &str, list: &Path, out: &Path) -> std::process::Command {
    let mut c = sandbox.command(FERRY);
    c.arg("export")
        .arg("--images")
        .arg(list)
        .args(["--upstream", &format!("docker.io={upstream}"), "-o"])
        .arg(out);
    c
}

/// `ferry import` of `bundle` into `host` over plain HTTP, in `sandbox`.
fn import_cmd(sandbox: &Sandbox, bundle: &Path, host: &str) -> std::process::Command {
    let mut c = sandbox.command(FERRY);
    c.arg("import")
        .arg(bundle)
        .args(["--to", host, "--plain-http"]);
    c
}

/// Runs `cmd` to completion (killed after `limit`); its output and how long it took.
fn run_within(cmd: std::process::Command, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let out = assert_cmd::Command::from_std(cmd)
        .timeout(limit)
        .output()
        .expect("run ferry");
    (out, started.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The one `error:` line of `stderr` (asserting there is exactly one, and it is one paragraph).
fn the_error(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "exactly one error paragraph:\n{stderr}");
    lines[0].to_string()
}

/// The digest of a blob request target (`/v2/<repo>/blobs/<digest>`).
fn blob_digest_of_get(target: &str) -> Option<String> {
    let path = target.split('?').next()?;
    let (_, d) = path.rsplit_once("/blobs/")?;
    d.starts_with("sha256:").then(|| d.to_string())
}

/// The digest in query parameter `key` (`digest=sha256%3A…`, `mount=sha256%3A…`).
fn query_digest(target: &str, key: &str) -> Option<String> {
    let (_, query) = target.split_once('?')?;
    query.split('&').find_map(|kv| {
        let v = kv.strip_prefix(key)?.strip_prefix('=')?;
        Some(v.replace("%3A", ":").replace("%3a", ":"))
    })
}

/// `/v2/<repo>/blobs/uploads/…` → `<repo>`.
fn upload_repo(target: &str) -> Option<String> {
    let path = target.split('?').next()?;
    let rest = path.strip_prefix("/v2/")?;
    let (repo, _) = rest.split_once("/blobs/uploads")?;
    Some(repo.to_string())
}

/// GETs per blob digest.
fn blob_gets(log: &[ProxyRecord]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in log {
        if r.method == "GET"
            && r.kind == Kind::Blob
            && let Some(d) = blob_digest_of_get(&r.target)
        {
            *m.entry(d).or_insert(0) += 1;
        }
    }
    m
}

/// Blob transfers into the target per (repository, digest): upload PUTs (`digest=` in the
/// query) and mount POSTs (`mount=`).
fn uploads(log: &[ProxyRecord]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for r in log.iter().filter(|r| r.kind == Kind::Upload) {
        let digest = match r.method.as_str() {
            "PUT" => query_digest(&r.target, "digest"),
            "POST" => query_digest(&r.target, "mount"),
            _ => None,
        };
        if let (Some(d), Some(repo)) = (digest, upload_repo(&r.target)) {
            *m.entry((repo, d)).or_insert(0) += 1;
        }
    }
    m
}

/// Upload PUTs per digest, whatever the repository.
fn upload_puts(log: &[ProxyRecord]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in log {
        if r.kind == Kind::Upload
            && r.method == "PUT"
            && let Some(d) = query_digest(&r.target, "digest")
        {
            *m.entry(d).or_insert(0) += 1;
        }
    }
    m
}

/// The `done sha256:…` digests of an export journal (empty when there is none).
fn journal_done(journal: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("done "))
        .map(|d| d.trim().to_string())
        .collect()
}

/// Layers larger than `min` bytes, by digest.
fn layers_over(images: &[FixtureImage], min: usize) -> Vec<FixtureBlob> {
    unique_blobs(images)
        .into_values()
        .filter(|b| b.kind == BlobKind::Layer && b.bytes.len() > min)
        .collect()
}

/// Configs the resolver reads (single-arch images learn their platform from the config): one
/// GET each per export run, before the transfers.
fn resolver_configs(images: &[FixtureImage]) -> BTreeSet<String> {
    images
        .iter()
        .filter(|i| !i.is_multi_arch())
        .flat_map(|i| &i.blobs)
        .filter(|b| b.kind == BlobKind::Config)
        .map(|b| b.digest.clone())
        .collect()
}

/// Asserts every fixture is in `reg` (plain HTTP) at its lock digest, with every child.
fn assert_pushed(reg: &TestRegistry, images: &[FixtureImage]) {
    for img in images {
        let raw = skopeo_inspect_raw(reg, &img.reference(), false);
        assert_eq!(
            sha256_digest(&raw),
            img.digest,
            "{} hashes to the lock digest",
            img.reference()
        );
        for child in &img.children {
            let raw =
                skopeo_inspect_raw(reg, &format!("{}@{}", img.repository, child.digest), false);
            assert_eq!(raw, child.bytes, "{}@{}", img.repository, child.digest);
        }
    }
}

fn assert_all_hit(proxy: &FaultProxy, rules: &[(&str, proxy::RuleId, usize)]) {
    for (name, rule, times) in rules {
        assert_eq!(
            proxy.hits(*rule),
            *times,
            "fault {name:?} fired as often as armed; requests: {}",
            proxy.counts_summary()
        );
    }
}

/// Every request answered 429 (`Retry-After: RETRY_AFTER`) was tried again (the next request
/// that `same` pairs with it), and not before `Retry-After` had passed. Requests that `same`
/// does not pair with themselves are left to another call.
fn assert_retry_after_honoured(
    log: &[ProxyRecord],
    what: &str,
    same: impl Fn(&ProxyRecord, &ProxyRecord) -> bool,
) {
    let fault = format!(
        "{:?}",
        Fault::TooManyRequests {
            retry_after: RETRY_AFTER
        }
    );
    let wait = Duration::from_secs(RETRY_AFTER) - Duration::from_millis(100);
    for (i, r) in log.iter().enumerate() {
        if r.fault.as_deref() != Some(fault.as_str()) || !same(r, r) {
            continue;
        }
        let next = log[i + 1..]
            .iter()
            .find(|n| same(r, n))
            .unwrap_or_else(|| panic!("{what}: {} {} was never tried again", r.method, r.target));
        let gap = next.at.duration_since(r.at);
        assert!(
            gap >= wait,
            "{what}: {} {} answered 429 with Retry-After: {RETRY_AFTER}, tried again after only {gap:?}",
            r.method,
            r.target
        );
    }
}

fn kill_9(child: &mut Child) {
    // std's kill() is SIGKILL.
    let _ = child.kill();
    child.wait().expect("reap ferry");
}

/// A uniformly drawn delay in `[lo, hi)` milliseconds.
fn draw(prng: &mut Prng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + prng.next_u64() % (hi - lo))
}

#[test]
fn export_through_5xx_resets_429_and_a_stall_is_byte_identical() {
    let images = fixtures();
    let reference = reference();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    let layers = layers_over(&images, 3000);
    let (cut, stalled, unavailable) = (&layers[0], &layers[1], &layers[2]);
    let blob = |d: &str| Match::get(Kind::Blob).path_contains(d);
    // Specific rules first: the first live matching rule fires.
    let rules = [
        (
            "reset in the middle of a layer",
            proxy.inject(blob(&cut.digest), Fault::ResetAfter(1500), 1),
            1,
        ),
        (
            "stalled layer body",
            proxy.inject(
                blob(&stalled.digest),
                Fault::StallAfter {
                    bytes: 1000,
                    pause: Duration::from_secs(30),
                },
                1,
            ),
            1,
        ),
        (
            "503 on a layer",
            proxy.inject(blob(&unavailable.digest), Fault::Status(503), 2),
            2,
        ),
        (
            "reset in the middle of a manifest",
            proxy.inject(
                Match::get(Kind::Manifest).path_contains("rke-tools/manifests/"),
                Fault::ResetAfter(200),
                1,
            ),
            1,
        ),
        (
            "503 on manifest GETs",
            proxy.inject(Match::get(Kind::Manifest), Fault::Status(503), 2),
            2,
        ),
        (
            "502 on a manifest HEAD",
            proxy.inject(Match::head(Kind::Manifest), Fault::Status(502), 1),
            1,
        ),
        (
            "429 on a manifest HEAD",
            proxy.inject(
                Match::head(Kind::Manifest),
                Fault::TooManyRequests {
                    retry_after: RETRY_AFTER,
                },
                1,
            ),
            1,
        ),
        (
            "429 on a blob GET",
            proxy.inject(
                Match::get(Kind::Blob),
                Fault::TooManyRequests {
                    retry_after: RETRY_AFTER,
                },
                1,
            ),
            1,
        ),
    ];
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let bundle = sandbox.work().join("bundle.tar");
    let mut cmd = export_cmd(&sandbox, &proxy.url(), &list, &bundle);
    cmd.args(["--stall-timeout", "1", "--retries", "5", "--json"]);
    let (out, took) = run_within(cmd, Duration::from_secs(60));
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "export through faults: {stderr}\n{}",
        proxy.counts_summary()
    );
    assert_all_hit(&proxy, &rules);
    assert_eq!(
        file_sha(&bundle),
        reference.sha,
        "the bundle equals a fault-free export byte for byte"
    );
    assert!(
        took < Duration::from_secs(20),
        "a 30 s stall was cut short by --stall-timeout 1 ({took:?})"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    eprintln!("summary: {summary}");
    assert_eq!(summary["exported"], images.len(), "{summary}");
    assert_eq!(
        summary["blobs_downloaded"],
        unique_blobs(&images).len(),
        "{summary}"
    );

    // Both broken bodies were resumed where they broke, not fetched again from byte 0.
    let log = proxy.requests();
    for (blob, at) in [(cut, 1500), (stalled, 1000)] {
        let gets: Vec<&ProxyRecord> = log
            .iter()
            .filter(|r| {
                r.method == "GET" && blob_digest_of_get(&r.target).as_deref() == Some(&blob.digest)
            })
            .collect();
        assert!(
            gets.first()
                .is_some_and(|r| r.fault.is_some() && r.range.is_none()),
            "{}: first GET is the faulted full one: {gets:#?}",
            blob.digest
        );
        let want = format!("bytes={at}-");
        assert!(
            gets[1..]
                .iter()
                .any(|r| r.range.as_deref() == Some(want.as_str()) && r.status == Some(206)),
            "{}: resumed with Range {want}: {gets:#?}",
            blob.digest
        );
        assert!(
            gets[1..].iter().all(|r| r.range.is_some()),
            "{}: never fetched from byte 0 again: {gets:#?}",
            blob.digest
        );
    }
    assert_retry_after_honoured(&log, "export", |a, b| {
        a.method == b.method && a.target == b.target
    });
}

#[test]
fn import_through_5xx_resets_and_429_pushes_every_image_at_its_digest() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    let proxy = FaultProxy::start(&reg);
    let put = || Match::kind(Kind::Upload).method("PUT");
    let rules = [
        (
            "503 on upload PUTs",
            proxy.inject(put(), Fault::Status(503), 2),
            2,
        ),
        (
            "reset of upload PUTs",
            proxy.inject(put(), Fault::Drop, 2),
            2,
        ),
        (
            "429 on an upload PUT",
            proxy.inject(
                put(),
                Fault::TooManyRequests {
                    retry_after: RETRY_AFTER,
                },
                1,
            ),
            1,
        ),
        (
            "503 on upload POSTs",
            proxy.inject(
                Match::kind(Kind::Upload).method("POST"),
                Fault::Status(503),
                1,
            ),
            1,
        ),
        (
            "503 on blob HEADs",
            proxy.inject(Match::head(Kind::Blob), Fault::Status(503), 2),
            2,
        ),
        (
            "reset of a blob HEAD",
            proxy.inject(Match::head(Kind::Blob), Fault::Drop, 1),
            1,
        ),
        (
            "429 on a blob HEAD",
            proxy.inject(
                Match::head(Kind::Blob),
                Fault::TooManyRequests {
                    retry_after: RETRY_AFTER,
                },
                1,
            ),
            1,
        ),
        (
            "429 on a manifest HEAD",
            proxy.inject(
                Match::head(Kind::Manifest),
                Fault::TooManyRequests {
                    retry_after: RETRY_AFTER,
                },
                1,
            ),
            1,
        ),
        (
            "503 on a manifest HEAD",
            proxy.inject(Match::head(Kind::Manifest), Fault::Status(503), 1),
            1,
        ),
        (
            "503 on a manifest PUT",
            proxy.inject(
                Match::kind(Kind::Manifest).method("PUT"),
                Fault::Status(503),
                1,
            ),
            1,
        ),
    ];
    let sandbox = Sandbox::new();
    let mut cmd = import_cmd(&sandbox, &reference().bundle, &proxy.host());
    cmd.args(["--json", "--retries", "5", "-j", "4"]);
    let (out, _) = run_within(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "import through faults: {}\n{}",
        text(&out.stderr),
        proxy.counts_summary()
    );
    assert_all_hit(&proxy, &rules);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    eprintln!("summary: {summary}");
    assert_eq!(summary["pushed"], images.len(), "{summary}");
    assert_eq!(
        summary["failed"].as_array().map(Vec::len),
        Some(0),
        "{summary}"
    );
    assert_pushed(&reg, &images);
    let log = proxy.requests();
    assert_retry_after_honoured(&log, "import HEADs", |a, b| {
        a.method == "HEAD" && a.method == b.method && a.target == b.target
    });
    // The same blob into the same repository (a retry opens a new upload session).
    let upload_put = |r: &ProxyRecord| {
        (r.kind == Kind::Upload && r.method == "PUT")
            .then(|| Some((upload_repo(&r.target)?, query_digest(&r.target, "digest")?)))
            .flatten()
    };
    assert_retry_after_honoured(&log, "import upload PUTs", |a, b| {
        upload_put(a).is_some() && upload_put(a) == upload_put(b)
    });
}

#[test]
fn export_from_an_endpoint_that_never_recovers_fails_clearly_after_bounded_retries() {
    let images = fixtures_named(&[ETCD, RKE_TOOLS]);
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    for (what, matcher, fault, cause) in [
        ("always 503", Match::any(), Fault::Status(503), "503"),
        (
            "blob bodies always reset",
            Match::get(Kind::Blob),
            Fault::ResetAfter(100),
            "after 2 attempt",
        ),
    ] {
        let proxy = FaultProxy::start(&reg);
        proxy.inject(matcher, fault, usize::MAX);
        let sandbox = Sandbox::new();
        let list = image_list(&sandbox.work(), &images, &[]);
        let bundle = sandbox.work().join("bundle.tar");
        let mut cmd = export_cmd(&sandbox, &proxy.url(), &list, &bundle);
        cmd.args(["--retries", "2"]);
        let (out, took) = run_within(cmd, Duration::from_secs(90));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            took < Duration::from_secs(30),
            "{what}: gave up after bounded retries, not {took:?}"
        );
        let error = the_error(&stderr);
        eprintln!("{what}, after {took:?}: {stderr}");
        assert!(
            error.contains("docker.io") && error.contains(cause),
            "{what}: the error names the registry and the cause: {error}"
        );
        for img in &images {
            assert!(
                error.contains(&img.reference()),
                "{what}: the error accounts for every image that failed, {} too: {error}",
                img.reference()
            );
        }
        assert!(!bundle.exists(), "{what}: no complete-looking bundle");
    }
}

#[test]
fn import_into_an_endpoint_that_never_recovers_fails_clearly_after_bounded_retries() {
    let bundle = &reference().bundle;
    for (what, matcher, fault, cause) in [
        ("always 503", Match::any(), Fault::Status(503), "503"),
        (
            "uploads always reset",
            Match::kind(Kind::Upload).method("PUT"),
            Fault::Drop,
            "after 2 attempt",
        ),
    ] {
        let reg = TestRegistry::start(Auth::None);
        let proxy = FaultProxy::start(&reg);
        proxy.inject(matcher, fault, usize::MAX);
        let sandbox = Sandbox::new();
        let mut cmd = import_cmd(&sandbox, bundle, &proxy.host());
        cmd.args(["--retries", "2"]);
        let (out, took) = run_within(cmd, Duration::from_secs(90));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            took < Duration::from_secs(30),
            "{what}: gave up after bounded retries, not {took:?}"
        );
        let error = the_error(&stderr);
        eprintln!("{what}, after {took:?}: {stderr}");
        assert!(
            error.contains(&proxy.host()) && error.contains(cause),
            "{what}: the error names the registry and the cause: {error}"
        );
    }
}

#[test]
fn kill_9_export_at_seeded_random_moments_never_refetches_a_verified_blob() {
    let images = fixtures();
    let reference = reference();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let proxy = FaultProxy::start(&reg);
    let resolver_reads = resolver_configs(&images);
    let blobs: BTreeSet<String> = unique_blobs(&images).into_keys().collect();
    // Transfers are slow (one at a time, 200 ms each: the seeded kill times, each under
    // 1 s, let the rounds finish at most 19 of these 22 in all, so no round completes the
    // bundle); the resolver's config reads are not, so most kills land among transfers.
    for d in blobs.difference(&resolver_reads) {
        proxy.inject(
            Match::get(Kind::Blob).path_contains(d),
            Fault::Delay(Duration::from_millis(200)),
            usize::MAX,
        );
    }
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let bundle = sandbox.work().join("bundle.tar");
    let journal = sandbox.work().join("bundle.tar.journal");
    let mut prng = Prng::new("faults/kill-9-export");
    let mut kills = Vec::new();

    // GETs of blobs journaled `done` before a run, beyond the resolver's one config read.
    let refetched = |done: &BTreeSet<String>| -> Vec<(String, usize)> {
        blob_gets(&proxy.requests())
            .into_iter()
            .filter(|(d, n)| done.contains(d) && *n > usize::from(resolver_reads.contains(d)))
            .collect()
    };
    for round in 0..6 {
        let done = journal_done(&journal);
        proxy.clear_log();
        let mut cmd = export_cmd(&sandbox, &proxy.url(), &list, &bundle);
        cmd.args(["-j", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn ferry");
        let delay = draw(&mut prng, 100, 1000);
        std::thread::sleep(delay);
        let finished = child.try_wait().expect("try_wait").is_some();
        kill_9(&mut child);
        assert!(
            !finished,
            "round {round}: the export finished before the kill at {delay:?}; slow it down"
        );
        kills.push((delay, done.len()));
        assert!(
            !bundle.exists(),
            "round {round}: no complete-looking bundle after kill -9"
        );
        let again = refetched(&done);
        assert!(
            again.is_empty(),
            "round {round} (killed at {delay:?}): blobs verified before it were downloaded again: {again:?}"
        );
    }

    let done = journal_done(&journal);
    assert!(!done.is_empty(), "the crash loop made progress: {kills:?}");
    proxy.clear_log();
    let mut cmd = export_cmd(&sandbox, &proxy.url(), &list, &bundle);
    cmd.args(["-j", "4", "--json"]);
    let (out, _) = run_within(cmd, Duration::from_secs(60));
    assert!(out.status.success(), "final run: {}", text(&out.stderr));
    assert_eq!(
        file_sha(&bundle),
        reference.sha,
        "after {} kills the bundle equals an uninterrupted export ({kills:?})",
        kills.len()
    );
    let again = refetched(&done);
    assert!(
        again.is_empty(),
        "final run: blobs verified before it were downloaded again: {again:?}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    eprintln!("kills (delay, objects journaled done before): {kills:?}\nsummary: {summary}");
    assert_eq!(summary["resumed"], true, "{summary}");
    assert_eq!(
        summary["blobs_already_present"].as_u64(),
        Some(done.intersection(&blobs).count() as u64),
        "every journaled blob is kept: {summary}"
    );
    assert!(
        !journal.exists(),
        "the journal is gone once the bundle is complete"
    );
}

#[test]
fn kill_9_import_at_seeded_random_moments_never_reuploads_a_present_blob() {
    let images = fixtures();
    let bundle = &reference().bundle;
    let reg = TestRegistry::start(Auth::None);
    let storage = reg.storage();
    let proxy = FaultProxy::start(&reg);
    // Uploads are slow (two at a time, 300 ms each: the seeded kill times, under 0.9 s,
    // let the rounds finish at most 18 of the 25 uploads in all).
    proxy.inject(
        Match::kind(Kind::Upload).method("PUT"),
        Fault::Delay(Duration::from_millis(300)),
        usize::MAX,
    );
    // Every (repository, blob) the import writes.
    let wanted: BTreeSet<(String, String)> = images
        .iter()
        .flat_map(|i| {
            i.blobs
                .iter()
                .map(|b| (i.repository.clone(), b.digest.clone()))
        })
        .collect();
    let present_now = || -> BTreeSet<(String, String)> {
        wanted
            .iter()
            .filter(|(r, d)| storage.has_layer_link(r, d))
            .cloned()
            .collect()
    };
    let stored_now = || -> BTreeSet<String> {
        wanted
            .iter()
            .filter(|(_, d)| storage.has_blob_data(d))
            .map(|(_, d)| d.clone())
            .collect()
    };
    // Transfers into a repository that already held the blob, and uploads of blobs the
    // registry already stored somewhere (a mount would do).
    let redone = |present: &BTreeSet<(String, String)>, stored: &BTreeSet<String>| {
        let log = proxy.requests();
        let into_same: Vec<_> = uploads(&log)
            .into_iter()
            .filter(|(k, _)| present.contains(k))
            .collect();
        let anywhere: Vec<_> = upload_puts(&log)
            .into_iter()
            .filter(|(d, _)| stored.contains(d))
            .collect();
        (into_same, anywhere)
    };
    let sandbox = Sandbox::new();
    let mut prng = Prng::new("faults/kill-9-import");
    let mut kills = Vec::new();
    for round in 0..6 {
        let (present, stored) = (present_now(), stored_now());
        proxy.clear_log();
        let mut cmd = import_cmd(&sandbox, bundle, &proxy.host());
        cmd.args(["-j", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn ferry");
        let delay = draw(&mut prng, 100, 900);
        std::thread::sleep(delay);
        let finished = child.try_wait().expect("try_wait").is_some();
        kill_9(&mut child);
        assert!(
            !finished,
            "round {round}: the import finished before the kill at {delay:?}; slow it down"
        );
        kills.push((delay, present.len()));
        eprintln!(
            "round {round}: killed at {delay:?}; {} (repository, blob) pairs present before",
            present.len()
        );
        // Let the registry finish a request that was in flight.
        std::thread::sleep(Duration::from_millis(100));
        let (into_same, anywhere) = redone(&present, &stored);
        assert!(
            into_same.is_empty(),
            "round {round} (killed at {delay:?}): blobs present in a repository were transferred into it again: {into_same:?}"
        );
        assert!(
            anywhere.is_empty(),
            "round {round} (killed at {delay:?}): blobs the registry already had were uploaded again instead of mounted: {anywhere:?}"
        );
    }

    let (present, stored) = (present_now(), stored_now());
    assert!(
        !present.is_empty(),
        "the crash loop made progress: {kills:?}"
    );
    proxy.clear_log();
    let mut cmd = import_cmd(&sandbox, bundle, &proxy.host());
    cmd.args(["-j", "4", "--json"]);
    let (out, _) = run_within(cmd, Duration::from_secs(60));
    assert!(out.status.success(), "final run: {}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    eprintln!("kills (delay, blobs present before): {kills:?}\nsummary: {summary}");
    assert_eq!(
        summary["pushed"].as_u64().unwrap_or(0) + summary["already_present"].as_u64().unwrap_or(0),
        images.len() as u64,
        "{summary}"
    );
    let (into_same, anywhere) = redone(&present, &stored);
    assert!(
        into_same.is_empty(),
        "final run: blobs present in a repository were transferred into it again: {into_same:?}"
    );
    assert!(
        anywhere.is_empty(),
        "final run: blobs the registry already had were uploaded again instead of mounted: {anywhere:?}"
    );
    assert_pushed(&reg, &images);
}

#[test]
fn re_import_after_an_interrupted_one_mounts_blobs_the_registry_already_has() {
    let images = fixtures();
    let pause = fixture(PAUSE);
    let reg = TestRegistry::start(Auth::None);
    // What an import killed right after finishing PAUSE leaves behind.
    seed(&reg, std::slice::from_ref(&pause));
    let shared: Vec<&FixtureBlob> = pause
        .blobs
        .iter()
        .filter(|b| {
            images
                .iter()
                .any(|i| i.repository != pause.repository && i.blob(&b.digest).is_some())
        })
        .collect();
    assert!(!shared.is_empty(), "PAUSE shares its base layer");
    let proxy = FaultProxy::start(&reg);
    let sandbox = Sandbox::new();
    let mut cmd = import_cmd(&sandbox, &reference().bundle, &proxy.host());
    cmd.args(["--json", "-j", "1"]);
    let (out, _) = run_within(cmd, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["already_present"], 1, "{summary}");
    assert_pushed(&reg, &images);
    let puts = upload_puts(&proxy.requests());
    for b in shared {
        assert_eq!(
            puts.get(&b.digest),
            None,
            "{} is already stored under {} (whose tag is at the lock digest, so it holds every \
             blob of the image): mount it, do not upload it again; {summary}",
            b.digest,
            pause.repository
        );
    }
}

/// A tiny tmpfs at `dir`: mounted here (as root), or else inside a user + mount namespace kept
/// alive by a `sleep`, which commands enter with nsenter and whose files this process reads
/// through `/proc/PID/root`. Unmounted (or ended) on Drop.
struct SmallDisk {
    dir: PathBuf,
    namespace: Option<Child>,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mkdir mount point");
        let opts = format!("size={size}");
        let direct = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        if direct.status.success() {
            return SmallDisk {
                dir: dir.to_path_buf(),
                namespace: None,
            };
        }
        // Not root: a user namespace may mount a tmpfs of its own.
        let mut ns = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
            .arg("mount -t tmpfs -o \"$1\" tmpfs \"$2\" && echo mounted && exec sleep 600")
            .args(["sh", &opts])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run unshare");
        let mut line = String::new();
        let _ = std::io::BufReader::new(ns.stdout.take().expect("stdout")).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = ns.kill();
            let out = ns.wait_with_output().expect("unshare");
            panic!(
                "cannot mount a small tmpfs: mount said {:?}; unshare -rm said {:?}",
                text(&direct.stderr),
                text(&out.stderr)
            );
        }
        SmallDisk {
            dir: dir.to_path_buf(),
            namespace: Some(ns),
        }
    }

    /// Where this process sees `path` (a path under the mount point).
    fn view(&self, path: &Path) -> PathBuf {
        match &self.namespace {
            None => path.to_path_buf(),
            Some(ns) => Path::new(&format!("/proc/{}/root", ns.id()))
                .join(path.strip_prefix("/").expect("absolute path")),
        }
    }

    /// `program` in `sandbox`, running where the tmpfs is mounted.
    fn command(&self, sandbox: &Sandbox, program: &str) -> std::process::Command {
        match &self.namespace {
            None => sandbox.command(program),
            Some(ns) => {
                let mut c = sandbox.command("nsenter");
                c.args([
                    "-t",
                    &ns.id().to_string(),
                    "-U",
                    "-m",
                    "--preserve-credentials",
                    "--",
                ])
                .arg(program);
                c
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        match &mut self.namespace {
            None => {
                let ok = std::process::Command::new("umount")
                    .arg(&self.dir)
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    let _ = std::process::Command::new("umount")
                        .arg("-l")
                        .arg(&self.dir)
                        .status();
                }
            }
            Some(ns) => {
                let _ = ns.kill();
                let _ = ns.wait();
            }
        }
    }
}

#[test]
fn a_full_disk_is_a_clear_error_and_never_a_complete_bundle() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let reference_size = std::fs::metadata(&reference().bundle).expect("stat").len();
    // 64 KiB: full while the planned file is laid out; 100 KiB: full among the blob writes.
    for size_kib in [64u64, 100] {
        assert!(
            reference_size > size_kib * 1024 + 16 * 1024,
            "the bundle ({reference_size} bytes) is bigger than the disk ({size_kib} KiB)"
        );
        let sandbox = Sandbox::new();
        let list = image_list(&sandbox.work(), &images, &[]);
        let mount_point = sandbox.work().join("small");
        // Declared after the sandbox: unmounted before the sandbox is removed.
        let disk = SmallDisk::mount(&mount_point, &format!("{size_kib}k"));
        let bundle = mount_point.join("bundle.tar");
        let partial = mount_point.join("bundle.tar.partial");

        let mut cmd = disk.command(&sandbox, FERRY);
        cmd.arg("export")
            .arg("--images")
            .arg(&list)
            .args(["--upstream", &format!("docker.io={}", reg.url()), "-o"])
            .arg(&bundle);
        let (out, took) = run_within(cmd, Duration::from_secs(60));
        let stderr = text(&out.stderr);
        let what = format!("{size_kib} KiB disk");
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(
            took < Duration::from_secs(30),
            "{what}: failed promptly, not after {took:?}"
        );
        let error = the_error(&stderr);
        eprintln!("{what}, after {took:?}: {stderr}");
        assert!(
            error.contains("No space left on device"),
            "{what}: the error says the disk is full: {error}"
        );
        assert!(
            error.contains(&bundle.display().to_string()),
            "{what}: the error names the bundle: {error}"
        );
        // Each failed write says why, not only that something failed.
        for clause in error.split("; ").filter(|c| c.contains("cannot write")) {
            assert!(
                clause.contains("No space left on device"),
                "{what}: a failed write without its cause: {clause:?} in {error}"
            );
        }
        let left: BTreeSet<String> = std::fs::read_dir(disk.view(&mount_point))
            .expect("list the small disk")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            left.iter()
                .all(|n| n == "bundle.tar.partial" || n == "bundle.tar.journal"),
            "{what}: only the partial bundle and its journal are left: {left:?}"
        );

        // verify never takes what is there for a complete bundle.
        for path in [&bundle, &partial] {
            let mut cmd = disk.command(&sandbox, FERRY);
            cmd.arg("verify").arg(path);
            let (v, _) = run_within(cmd, Duration::from_secs(60));
            assert!(
                !v.status.success(),
                "{what}: verify {} must not pass: {}\n{}",
                path.display(),
                text(&v.stdout),
                text(&v.stderr)
            );
        }
        drop(disk);
    }
}
