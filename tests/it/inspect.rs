//! `ferry inspect` and `ferry diff`: golden output from two hand-written locks
//! (`golden/inspect-{old,new}.lock`, the expected text hand-written beside them); real bundles
//! exported from a registry (whole, split, and a delta), their `--json` checked field by
//! field against the fixtures exported; diff's exit codes, and its "bytes needed" equal to
//! what `export --since OLD` really wrote; the HTML report rendered by headless Chromium;
//! hostile bundles (a manifest naming itself, absurd counts, script in names).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fixtures::{
    BlobKind, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, synthetic,
};
use crate::support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(name)
}

fn read_golden(name: &str) -> String {
    std::fs::read_to_string(golden(name)).expect("read golden")
}

/// A sandbox with the two hand-written locks as `old.lock` and `new.lock` in its work dir.
fn golden_sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    for (from, to) in [
        ("inspect-old.lock", "old.lock"),
        ("inspect-new.lock", "new.lock"),
    ] {
        std::fs::copy(golden(from), sandbox.work().join(to)).expect("copy lock");
    }
    sandbox
}

#[test]
fn inspect_of_a_lock_matches_the_hand_written_golden() {
    let sandbox = golden_sandbox();
    let o = sandbox
        .ferry()
        .args(["inspect", "old.lock"])
        .output()
        .expect("inspect");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), read_golden("inspect-old.lock.txt"));

    // --json: what the lock knows, and no bundle-only field.
    let o = sandbox
        .ferry()
        .args(["inspect", "old.lock", "--json"])
        .output()
        .expect("inspect");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["kind"], "lock");
    assert_eq!(v["totals"]["images"], 4);
    assert_eq!(v["totals"]["bytes"], 360_000_000u64);
    assert_eq!(v["totals"]["bytes_saved"], 25_300_000u64);
    assert_eq!(
        v["totals"]["platforms"],
        json!(["linux/amd64", "linux/arm64"])
    );
    let tools = &v["images"][3];
    assert_eq!(tools["name"], "rancher/rke-tools:v0.1.100");
    assert_eq!(tools["attestations"], 1);
    assert_eq!(tools["platforms"], json!(["linux/amd64", "linux/arm64"]));
    assert!(
        tools.get("unique_bytes").is_none(),
        "a lock has no manifests"
    );
    assert!(v.get("parts").is_none() && v.get("delta").is_none());
    assert_eq!(
        v["lock_digest"],
        sha256_digest(&std::fs::read(golden("inspect-old.lock")).expect("read"))
    );
}

#[test]
fn diff_of_two_locks_matches_the_hand_written_golden_and_exits_as_diff_does() {
    let sandbox = golden_sandbox();
    let o = sandbox
        .ferry()
        .args(["diff", "old.lock", "new.lock"])
        .output()
        .expect("diff");
    assert_eq!(o.status.code(), Some(1), "they differ: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), read_golden("diff-old-new.txt"));

    let o = sandbox
        .ferry()
        .args(["diff", "old.lock", "old.lock"])
        .output()
        .expect("diff");
    assert_eq!(o.status.code(), Some(0), "identical: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), read_golden("diff-old-old.txt"));

    let o = sandbox
        .ferry()
        .args(["diff", "old.lock", "new.lock", "--json"])
        .output()
        .expect("diff");
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["identical"], false);
    assert_eq!(v["unchanged"], 2);
    assert_eq!(
        v["added"][0]["name"],
        "rancher/mirrored-coredns-coredns:1.11.1"
    );
    assert_eq!(
        v["removed"][0]["name"],
        "rancher/mirrored-coreos-etcd:v3.5.9"
    );
    let c = &v["changed"][0];
    assert_eq!(c["name"], "rancher/hyperkube:v1.29.9-rancher1");
    assert_eq!(c["old_digest"], format!("sha256:{}", "1a".repeat(32)));
    assert_eq!(c["new_digest"], format!("sha256:{}", "4a".repeat(32)));
    assert_eq!(c["platforms_added"], json!(["linux/s390x"]));
    assert_eq!(c["platforms_removed"], json!(["linux/arm64"]));
    assert_eq!(v["bytes_needed"], Value::Null, "two locks, no --resolve");
    assert_eq!(v["bytes_at_most"], 280_000_000u64);

    // Errors keep ferry's error code, not diff's "they differ".
    let o = sandbox
        .ferry()
        .args(["diff", "old.lock", "missing.lock"])
        .output()
        .expect("diff");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("missing.lock"),
        "{}",
        text(&o.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Real bundles.

/// The older release.
fn old_set() -> Vec<FixtureImage> {
    vec![
        synthetic("rancher/hyperkube:v1.29.9-rancher1"),
        synthetic("rancher/mirrored-coreos-etcd:v3.5.9"),
        fixture(PAUSE),
        fixture(RKE_TOOLS),
    ]
}

/// The newer one: hyperkube and etcd move on (same base layer), pause and rke-tools stay,
/// coredns comes.
fn new_set() -> Vec<FixtureImage> {
    vec![
        synthetic("rancher/hyperkube:v1.30.5-rancher1"),
        synthetic("rancher/mirrored-coreos-etcd:v3.5.12"),
        fixture(PAUSE),
        fixture(RKE_TOOLS),
        fixture(COREDNS),
    ]
}

/// Every object (manifest, config, layer) of an image, with its size.
fn objects(img: &FixtureImage) -> BTreeMap<String, u64> {
    let mut m: BTreeMap<String, u64> = img
        .all_manifests()
        .into_iter()
        .map(|m| (m.digest, m.bytes.len() as u64))
        .collect();
    for b in &img.blobs {
        m.insert(b.digest.clone(), b.bytes.len() as u64);
    }
    m
}

fn layer_digests(images: &[FixtureImage]) -> BTreeSet<String> {
    images
        .iter()
        .flat_map(|i| &i.blobs)
        .filter(|b| b.kind == BlobKind::Layer)
        .map(|b| b.digest.clone())
        .collect()
}

/// Asserts `v` (inspect --json of a bundle of `images`, leaving out `left_out`) field by
/// field against the fixtures.
fn assert_inventory(v: &Value, images: &[FixtureImage], left_out: &BTreeSet<String>) {
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    for img in images {
        for d in objects(img).keys() {
            *holders.entry(d.clone()).or_default() += 1;
        }
    }
    let mut sorted: Vec<&FixtureImage> = images.iter().collect();
    sorted.sort_by_key(|i| format!("docker.io/{}", i.reference()));
    let got = v["images"].as_array().expect("images");
    assert_eq!(got.len(), images.len());
    let mut union: BTreeMap<String, u64> = BTreeMap::new();
    let mut one_by_one = 0u64;
    for (img, g) in sorted.iter().zip(got) {
        let name = img.reference();
        assert_eq!(g["name"], name);
        assert_eq!(g["source"], format!("docker.io/{name}"));
        assert_eq!(g["digest"], img.digest, "{name}");
        assert_eq!(g["media_type"], img.media_type, "{name}");
        let platforms: Vec<String> = img.real_platforms().iter().map(|p| p.name()).collect();
        assert_eq!(g["platforms"], json!(platforms), "{name}");
        let attestations = img.platforms.iter().filter(|p| p.attestation).count();
        assert_eq!(g["attestations"], attestations, "{name}");
        assert_eq!(g["manifests"], img.all_manifests().len(), "{name}");
        assert_eq!(g["blobs"], img.blobs.len(), "{name}");
        let objs = objects(img);
        let (mut unique, mut shared, mut out) = (0u64, 0u64, 0u64);
        for (d, size) in &objs {
            if left_out.contains(d) {
                out += size;
            } else {
                union.insert(d.clone(), *size);
                if holders[d] > 1 {
                    shared += size;
                } else {
                    unique += size;
                }
            }
        }
        one_by_one += unique + shared;
        assert_eq!(g["bytes"], objs.values().sum::<u64>(), "{name}");
        assert_eq!(g["unique_bytes"], unique, "{name}");
        assert_eq!(g["shared_bytes"], shared, "{name}");
        if left_out.is_empty() {
            assert!(g.get("left_out_bytes").is_none(), "{name}");
        } else {
            assert_eq!(g["left_out_bytes"], out, "{name}");
        }
    }
    let t = &v["totals"];
    let bytes: u64 = union.values().sum();
    assert_eq!(t["images"], images.len());
    assert_eq!(t["blobs"], union.len(), "every object once");
    assert_eq!(t["bytes"], bytes);
    if left_out.is_empty() {
        assert_eq!(bytes, total_unique_bytes(images));
    }
    assert_eq!(t["bytes_without_dedup"], one_by_one);
    assert_eq!(t["bytes_saved"], one_by_one - bytes);
    if left_out.is_empty() {
        // (In the delta, the layers the images share are the base's, left out.)
        assert!(
            t["bytes_saved"].as_u64().expect("saved") > 0,
            "the sets share layers"
        );
    }
    let mut all: BTreeSet<String> = BTreeSet::new();
    for img in images {
        all.extend(img.real_platforms().iter().map(|p| p.name()));
    }
    assert_eq!(t["platforms"], json!(all));
}

/// The bytes of every `blobs/sha256/…` entry of a bundle file.
fn blob_bytes(bundle: &Path) -> (u64, usize) {
    let mut ar = tar::Archive::new(std::fs::File::open(bundle).expect("open"));
    let (mut bytes, mut n) = (0, 0);
    for e in ar.entries().expect("entries") {
        let e = e.expect("entry");
        let path = e.path().expect("path").display().to_string();
        if e.header().entry_type().is_file() && path.starts_with("blobs/sha256/") {
            bytes += e.size();
            n += 1;
        }
    }
    (bytes, n)
}

/// A metadata file of a bundle file.
fn bundle_file(bundle: &Path, name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(std::fs::File::open(bundle).expect("open"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path().expect("path").display().to_string() == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).expect("read");
            return v;
        }
    }
    panic!("{name} not in {}", bundle.display())
}

struct Env {
    sandbox: Sandbox,
    upstream: TestRegistry,
}

impl Env {
    fn new() -> Env {
        let upstream = TestRegistry::start(Auth::None);
        let mut all = old_set();
        all.extend(new_set());
        seed(&upstream, &all);
        Env {
            sandbox: Sandbox::new(),
            upstream,
        }
    }

    fn upstream(&self) -> String {
        format!("docker.io={}", self.upstream.url())
    }

    fn export(&self, images: &[FixtureImage], out: &str, extra: &[&str]) -> PathBuf {
        let dir = self.sandbox.work().join(format!("list-{out}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let list = image_list(&dir, images, &[]);
        let o = self
            .sandbox
            .ferry()
            .arg("export")
            .arg("--images")
            .arg(&list)
            .args(["--upstream", &self.upstream(), "-o", out])
            .args(extra)
            .output()
            .expect("export");
        assert!(o.status.success(), "export {out}: {}", text(&o.stderr));
        self.sandbox.work().join(out)
    }

    fn ferry_json(&self, args: &[&str], code: i32) -> Value {
        let o = self
            .sandbox
            .ferry()
            .args(args)
            .arg("--json")
            .timeout(Duration::from_secs(120))
            .output()
            .expect("ferry");
        assert_eq!(
            o.status.code(),
            Some(code),
            "ferry {args:?}: {}",
            text(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).expect("json")
    }
}

#[test]
fn inspect_of_real_bundles_whole_split_and_delta_says_what_was_exported() {
    let env = Env::new();
    let (old, new) = (old_set(), new_set());
    env.export(&old, "old.tar", &[]);
    let new_tar = env.export(&new, "new.tar", &[]);

    // The whole bundle.
    let v = env.ferry_json(&["inspect", "new.tar"], 0);
    assert_eq!(v["kind"], "bundle");
    assert_eq!(v["path"], "new.tar");
    assert_eq!(
        v["file_size"],
        std::fs::metadata(&new_tar).expect("stat").len()
    );
    assert_eq!(
        v["lock_digest"],
        sha256_digest(&bundle_file(&new_tar, "images.lock"))
    );
    assert_inventory(&v, &new, &BTreeSet::new());
    assert_eq!(v["totals"]["blobs"], blob_bytes(&new_tar).1);

    // The text table names every image with its short digest.
    let o = env
        .sandbox
        .ferry()
        .args(["inspect", "new.tar"])
        .output()
        .expect("inspect");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let table = text(&o.stdout);
    assert!(!table.contains('\x1b'), "no colour into a pipe");
    for img in &new {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{} ", img.reference())))
            .unwrap_or_else(|| panic!("{} in\n{table}", img.reference()));
        assert!(line.contains(&img.digest[..19]), "{line}");
    }
    assert!(table.contains("1 attestation"), "{table}");

    // Split: the same record, and the parts as the .parts file gives them (sums checked here
    // against the files, not by inspect).
    let split = env.export(&new, "split.tar", &["--split", "40000"]);
    let v = env.ferry_json(&["inspect", "split.tar.parts"], 0);
    assert_eq!(v["kind"], "split-bundle");
    assert_inventory(&v, &new, &BTreeSet::new());
    let parts = v["parts"]["parts"].as_array().expect("parts");
    assert!(parts.len() >= 3, "{parts:?}");
    let mut total = 0;
    for (i, p) in parts.iter().enumerate() {
        let name = format!("split.tar.{:03}", i + 1);
        let bytes = std::fs::read(env.sandbox.work().join(&name)).expect("part");
        assert_eq!(p["name"], name);
        assert_eq!(p["size"], bytes.len());
        assert_eq!(p["sha256"], sha256_digest(&bytes));
        total += bytes.len() as u64;
    }
    assert_eq!(v["parts"]["bundle"], "split.tar");
    assert_eq!(v["parts"]["size"], total);
    assert_eq!(v["file_size"], total);
    assert_eq!(
        v["parts"]["sha256"],
        sha256_digest(&std::fs::read(&new_tar).expect("read")),
        "the parts joined are the whole bundle"
    );
    assert!(!split.exists());
    // A part names its split bundle too.
    let v = env.ferry_json(&["inspect", "split.tar.002"], 0);
    assert_eq!(v["kind"], "split-bundle");

    // The delta: left-out layers counted apart, and what it is a delta of.
    let delta = env.export(&new, "delta.tar", &["--since", "old.tar"]);
    let v = env.ferry_json(&["inspect", "delta.tar"], 0);
    let left_out: BTreeSet<String> = layer_digests(&new)
        .intersection(&layer_digests(&old))
        .cloned()
        .collect();
    assert!(!left_out.is_empty());
    assert_inventory(&v, &new, &left_out);
    let d = &v["delta"];
    assert_eq!(
        d["delta_of"],
        sha256_digest(&bundle_file(
            &env.sandbox.work().join("old.tar"),
            "images.lock"
        ))
    );
    assert_eq!(d["base"], "old.tar");
    assert_eq!(d["layers_left_out"], left_out.len());
    let unique = unique_blobs(&new);
    assert_eq!(
        d["bytes_left_out"],
        left_out
            .iter()
            .map(|l| unique[l].bytes.len() as u64)
            .sum::<u64>()
    );
    let (bytes, n) = blob_bytes(&delta);
    assert_eq!(v["totals"]["bytes"], bytes, "what the delta holds");
    assert_eq!(v["totals"]["blobs"], n);
    let o = env
        .sandbox
        .ferry()
        .args(["inspect", "delta.tar"])
        .output()
        .expect("inspect");
    let delta_text = text(&o.stdout);
    println!("{delta_text}");
    assert!(delta_text.contains("delta-of   sha256:"), "{delta_text}");
    assert!(delta_text.contains("LEFT OUT"), "{delta_text}");
    let o = env
        .sandbox
        .ferry()
        .args(["inspect", "split.tar.parts"])
        .output()
        .expect("inspect");
    let split_text = text(&o.stdout);
    println!("{split_text}");
    for p in parts {
        let name = p["name"].as_str().expect("name");
        let line = split_text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in\n{split_text}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                name,
                &p["size"].to_string(),
                p["sha256"].as_str().expect("sum")
            ]
        );
    }
}

#[test]
fn diff_needs_exactly_what_export_since_wrote_and_exits_0_or_1() {
    let env = Env::new();
    let (old, new) = (old_set(), new_set());
    let old_tar = env.export(&old, "old.tar", &[]);
    let new_tar = env.export(&new, "new.tar", &[]);
    let delta = env.export(&new, "delta.tar", &["--since", "old.tar"]);
    let (written, _) = blob_bytes(&delta);

    // Bundle against bundle.
    let v = env.ferry_json(&["diff", "old.tar", "new.tar"], 1);
    assert_eq!(v["identical"], false);
    assert_eq!(
        v["bytes_needed"]["bytes"], written,
        "what export --since wrote"
    );
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .expect("list")
            .iter()
            .map(|i| i["name"].as_str().expect("name").to_string())
            .collect()
    };
    assert_eq!(
        names("added"),
        vec![
            "rancher/hyperkube:v1.30.5-rancher1",
            "rancher/mirrored-coredns-coredns:1.11.1",
            "rancher/mirrored-coreos-etcd:v3.5.12"
        ]
    );
    assert_eq!(
        names("removed"),
        vec![
            "rancher/hyperkube:v1.29.9-rancher1",
            "rancher/mirrored-coreos-etcd:v3.5.9"
        ]
    );
    assert_eq!(v["unchanged"], 2);
    let o = env
        .sandbox
        .ferry()
        .args(["diff", "old.tar", "new.tar"])
        .output()
        .expect("diff");
    assert_eq!(o.status.code(), Some(1));
    let human = text(&o.stdout);
    println!("{human}");
    assert!(
        human.contains(&format!("({written} bytes, ")),
        "the exact bytes: {human}"
    );
    assert!(human.contains("what `ferry export --since old.tar` carries"));

    // Locks (manifests fetched by digest with --resolve) in any mix: the same bytes.
    std::fs::write(
        env.sandbox.work().join("old.lock"),
        bundle_file(&old_tar, "images.lock"),
    )
    .expect("write");
    std::fs::write(
        env.sandbox.work().join("new.lock"),
        bundle_file(&new_tar, "images.lock"),
    )
    .expect("write");
    let up = env.upstream();
    for (a, b) in [
        ("old.lock", "new.tar"),
        ("old.lock", "new.lock"),
        ("old.tar", "new.lock"),
    ] {
        let v = env.ferry_json(&["diff", a, b, "--resolve", "--upstream", &up], 1);
        assert_eq!(v["bytes_needed"]["bytes"], written, "diff {a} {b}");
    }
    // Without --resolve a lock gives an upper bound only.
    let v = env.ferry_json(&["diff", "old.lock", "new.tar"], 1);
    assert_eq!(v["bytes_needed"], Value::Null);
    assert!(v["bytes_at_most"].as_u64().expect("at most") >= written);

    // Identical sets: exit 0, whatever they are given as.
    for (a, b) in [("new.tar", "new.tar"), ("new.lock", "new.tar")] {
        let v = env.ferry_json(&["diff", a, b], 0);
        assert_eq!(v["identical"], true, "diff {a} {b}");
    }
}

#[test]
fn the_html_report_renders_in_chromium_with_names_sizes_and_part_sums_and_nothing_external() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let o = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args([
            "--upstream",
            &format!("docker.io={}", reg.url()),
            "--split",
            "50000",
            "-o",
            "rke.tar",
        ])
        .output()
        .expect("export");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = sandbox
        .ferry()
        .args([
            "inspect",
            "rke.tar.parts",
            "--html",
            "report.html",
            "--markdown",
            "report.md",
            "--json",
        ])
        .output()
        .expect("inspect");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let html_path = sandbox.work().join("report.html");
    let html = std::fs::read_to_string(&html_path).expect("html");
    for external in ["src=", "href=", "@import", "url(", "http://", "https://"] {
        assert!(!html.contains(external), "the report names {external:?}");
    }
    assert!(html.contains("@page { size: A4"), "print CSS for A4");
    assert!(html.contains("break-inside: avoid"));
    assert!(
        html.contains("<svg") && html.contains("class=\"shared\""),
        "stacked chart"
    );

    let profile = sandbox.path().join("tmp/chromium-profile");
    let chromium = |extra: &[&str]| {
        let o = sandbox
            .command("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(format!("file://{}", html_path.display()))
            .output()
            .expect("run chromium (scripts/test.sh installs it)");
        assert!(o.status.success(), "chromium: {}", text(&o.stderr));
        o
    };
    let dom = text(&chromium(&["--dump-dom"]).stdout);
    let human = |n: &Value| indicatif_like(n.as_u64().expect("bytes"));
    for i in v["images"].as_array().expect("images") {
        let name = i["name"].as_str().expect("name");
        assert!(dom.contains(name), "{name} rendered");
        assert!(
            dom.contains(&human(&i["unique_bytes"])),
            "{name}'s unique bytes"
        );
        assert!(
            dom.contains(&human(&i["shared_bytes"])),
            "{name}'s shared bytes"
        );
    }
    for p in v["parts"]["parts"].as_array().expect("parts") {
        let hex = p["sha256"]
            .as_str()
            .expect("sum")
            .trim_start_matches("sha256:");
        assert!(dom.contains(hex), "part sum {hex} rendered");
        assert!(dom.contains(p["name"].as_str().expect("name")));
    }
    assert!(
        dom.contains("sha256sum -c rke.tar.parts\nferry verify rke.tar.parts</pre>"),
        "the verify commands, one a line"
    );
    // The sorting script ran: every header is clickable.
    assert!(dom.contains("sortable"), "the script ran");

    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inspect-report.png");
    let _ = std::fs::remove_file(&png);
    chromium(&[
        &format!("--screenshot={}", png.display()),
        "--window-size=1200,1600",
        "--hide-scrollbars",
    ]);
    let shot = std::fs::read(&png).expect("screenshot written");
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");
    println!("screenshot of the transfer report: {}", png.display());

    let md = std::fs::read_to_string(sandbox.work().join("report.md")).expect("md");
    for i in v["images"].as_array().expect("images") {
        let name = i["name"].as_str().expect("name");
        assert!(
            md.contains(&name.replace('_', "\\_")),
            "{name} in the Markdown"
        );
    }
    assert!(md.contains("```sh\nsha256sum -c rke.tar.parts\nferry verify rke.tar.parts\n```"));
}

/// Decimal bytes as ferry prints them (`12.34 kB`, `527 B`): indicatif's DecimalBytes.
fn indicatif_like(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.2} {unit}")
}

// ---------------------------------------------------------------------------------------------
// Hostile bundles, written with the tar crate: names are checked by the reader, contents are
// not hashed by inspect, so a "manifest" may name itself.

fn hex_of(i: usize) -> String {
    format!("{i:064x}")
}

/// A bundle of `blobs` (hex → bytes) whose index.json names `top` (hex, media type) as
/// `docker.io/evil/image:1`, with a lock naming it `lock_name`.
fn hostile_bundle(
    dir: &Path,
    file: &str,
    top: (&str, &str),
    blobs: &[(String, Vec<u8>)],
    lock_name: &str,
) -> PathBuf {
    let path = dir.join(file);
    let mut b = tar::Builder::new(std::fs::File::create(&path).expect("create"));
    let mut add = |name: &str, data: &[u8], dir: bool| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(if dir { 0o755 } else { 0o644 });
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mtime(0);
        b.append_data(&mut h, name, data).expect("append");
    };
    let size = blobs
        .iter()
        .find(|(h, _)| h == top.0)
        .map_or(0, |(_, d)| d.len());
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": top.1,
            "digest": format!("sha256:{}", top.0),
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": "docker.io/evil/image:1"}
        }]
    });
    let lock = format!(
        "version: 1\ngenerator: ferry 0.1.0\ntotal_size: 1\nimages:\n- name: {}\n  source: docker.io/evil/image:1\n  digest: sha256:{}\n  media_type: {}\n  size: {size}\n  total_size: 1\n  platforms:\n  - platform: linux/amd64\n    digest: sha256:{}\n    media_type: {}\n    size: {size}\n",
        serde_json::to_string(lock_name).expect("quote"),
        top.0,
        top.1,
        top.0,
        top.1
    );
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, false);
    add("index.json", index.to_string().as_bytes(), false);
    add("images.lock", lock.as_bytes(), false);
    add("blobs/", b"", true);
    add("blobs/sha256/", b"", true);
    for (hex, data) in blobs {
        add(&format!("blobs/sha256/{hex}"), data, false);
    }
    b.into_inner().expect("finish");
    path
}

fn index_of(children: &[(String, usize)]) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|(h, size)| json!({
            "mediaType": OCI_INDEX, "digest": format!("sha256:{h}"), "size": size,
            "platform": {"os": "linux", "architecture": "amd64"}
        })).collect::<Vec<_>>()
    })
    .to_string()
    .into_bytes()
}

fn image_manifest(layers: usize) -> Vec<u8> {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": format!("sha256:{}", hex_of(1)), "size": 2},
        "layers": (0..layers).map(|i| json!({
            "mediaType": OCI_LAYER_GZIP, "digest": format!("sha256:{}", hex_of(1_000_000 + i)), "size": 1
        })).collect::<Vec<_>>()
    })
    .to_string()
    .into_bytes()
}

fn inspect_fails(sandbox: &Sandbox, file: &str, expect: &str) {
    let o = sandbox
        .ferry()
        .args(["inspect", file])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("inspect");
    assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains(expect), "{file}: {err}");
    assert!(
        err.contains("docker.io/evil/image:1") || err.contains("evil"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn hostile_bundles_end_with_a_clear_error_and_names_are_escaped_in_reports() {
    let sandbox = Sandbox::new();
    let w = sandbox.work();

    // An index that names itself.
    let me = hex_of(7);
    let body = index_of(&[(me.clone(), 0)]);
    hostile_bundle(
        &w,
        "cycle.tar",
        (&me, OCI_INDEX),
        &[(me.clone(), body)],
        "evil",
    );
    inspect_fails(&sandbox, "cycle.tar", "names itself");

    // Two indexes naming each other.
    let (a, b) = (hex_of(8), hex_of(9));
    hostile_bundle(
        &w,
        "pair.tar",
        (&a, OCI_INDEX),
        &[
            (a.clone(), index_of(&[(b.clone(), 0)])),
            (b.clone(), index_of(&[(a.clone(), 0)])),
        ],
        "evil",
    );
    inspect_fails(&sandbox, "pair.tar", "names itself");

    // Indexes nested ten deep.
    let chain: Vec<String> = (20..30).map(hex_of).collect();
    let mut blobs: Vec<(String, Vec<u8>)> = chain
        .windows(2)
        .map(|w| (w[0].clone(), index_of(&[(w[1].clone(), 0)])))
        .collect();
    blobs.push((chain[9].clone(), index_of(&[])));
    hostile_bundle(&w, "deep.tar", (&chain[0], OCI_INDEX), &blobs, "evil");
    inspect_fails(&sandbox, "deep.tar", "deeper than");

    // An image of 20,000 layers, and an index naming 40,000 children (the same one).
    let m = hex_of(40);
    hostile_bundle(
        &w,
        "huge.tar",
        (&m, OCI_MANIFEST),
        &[(m.clone(), image_manifest(20_000))],
        "evil",
    );
    inspect_fails(&sandbox, "huge.tar", "more than 10000");
    let (top, child) = (hex_of(41), hex_of(42));
    let many: Vec<(String, usize)> = (0..40_000).map(|_| (child.clone(), 0)).collect();
    hostile_bundle(
        &w,
        "many.tar",
        (&top, OCI_INDEX),
        &[
            (top.clone(), index_of(&many)),
            (child.clone(), index_of(&[])),
        ],
        "evil",
    );
    // Visited once: it answers, with one platform manifest entry per index entry.
    let o = sandbox
        .ferry()
        .args(["inspect", "many.tar", "--json"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("inspect");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["images"][0]["manifests"], 2);

    // Script in a name: escaped in both reports.
    let m = hex_of(50);
    let evil = "<script>alert(1)</script><img src=x onerror=alert(2)>|*_[x](y)";
    hostile_bundle(
        &w,
        "names.tar",
        (&m, OCI_MANIFEST),
        &[(m.clone(), image_manifest(1))],
        evil,
    );
    let o = sandbox
        .ferry()
        .args([
            "inspect",
            "names.tar",
            "--html",
            "n.html",
            "--markdown",
            "n.md",
        ])
        .output()
        .expect("inspect");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(w.join("n.html")).expect("html");
    assert!(!html.contains("<script>alert"), "escaped");
    assert!(!html.contains("<img"), "escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only ferry's own script"
    );
    let md = std::fs::read_to_string(w.join("n.md")).expect("md");
    assert!(!md.contains("<script>") && !md.contains("<img"), "{md}");
    assert!(md.contains("&lt;script&gt;") && md.contains("\\|\\*\\_\\[x\\]\\(y\\)"));
}
