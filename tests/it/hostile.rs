//! Hostile bundles (ARCHITECTURE.md, invariants 2, 6 and 8): variants of a real `ferry export` bundle,
//! rewritten entry by entry with a raw ustar writer (so names, types and sizes the `tar` crate
//! would refuse to write can be planted), each fed to BOTH `ferry import` (into a fresh
//! registry) and `ferry verify`.
//!
//! Every variant must be refused with a clear one-paragraph error naming the offending entry,
//! digest or image (no panic, no backtrace), must create nothing outside the sandbox (entries
//! that try to escape carry a unique marker that is looked for next to the sandbox), and must
//! push nothing of the affected images. A bundle that cannot be read at all exits 2 and pushes
//! nothing; a bundle with some bad images exits 1, names them, and imports the rest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::fixtures::BlobKind;
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// A raw tar model: entries with any name, type and data, written as plain ustar headers.

const REGULAR: u8 = b'0';
const HARD_LINK: u8 = b'1';
const SYMLINK: u8 = b'2';
const CHAR_DEVICE: u8 = b'3';
const BLOCK_DEVICE: u8 = b'4';
const DIRECTORY: u8 = b'5';
const FIFO: u8 = b'6';
const PAX: u8 = b'x';
const GNU_LONG_NAME: u8 = b'L';

#[derive(Debug, Clone)]
struct Entry {
    name: Vec<u8>,
    kind: u8,
    link: Vec<u8>,
    device: (u32, u32),
    data: Vec<u8>,
}

impl Entry {
    fn file(name: impl Into<Vec<u8>>, data: Vec<u8>) -> Entry {
        Entry {
            name: name.into(),
            kind: REGULAR,
            link: Vec::new(),
            device: (0, 0),
            data,
        }
    }
    fn special(name: impl Into<Vec<u8>>, kind: u8, link: &str, device: (u32, u32)) -> Entry {
        Entry {
            name: name.into(),
            kind,
            link: link.as_bytes().to_vec(),
            device,
            data: Vec::new(),
        }
    }
}

/// Writes `v` as zero-padded octal plus NUL into `field`.
fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0w$o}\0", w = field.len() - 1);
    field.copy_from_slice(s.as_bytes());
}

/// One ustar header block (name split into prefix/name when longer than 100 bytes).
fn header(e: &Entry) -> [u8; 512] {
    let mut h = [0u8; 512];
    let (prefix, name): (&[u8], &[u8]) = if e.name.len() <= 100 {
        (&[], &e.name)
    } else {
        let cut = e
            .name
            .iter()
            .rposition(|&b| b == b'/')
            .filter(|&i| i <= 155 && e.name.len() - i - 1 <= 100)
            .unwrap_or_else(|| panic!("{:?} does not fit a ustar header", e.name));
        (&e.name[..cut], &e.name[cut + 1..])
    };
    h[..name.len()].copy_from_slice(name);
    octal(
        &mut h[100..108],
        if e.kind == DIRECTORY { 0o755 } else { 0o644 },
    );
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], e.data.len() as u64);
    octal(&mut h[136..148], 0);
    h[156] = e.kind;
    h[157..157 + e.link.len()].copy_from_slice(&e.link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], u64::from(e.device.0));
    octal(&mut h[337..345], u64::from(e.device.1));
    h[345..345 + prefix.len()].copy_from_slice(prefix);
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A bundle as a list of entries, editable, written back as a plain ustar archive.
#[derive(Debug, Clone)]
struct Tar {
    entries: Vec<Entry>,
}

impl Tar {
    fn read(path: &Path) -> Tar {
        let file = std::fs::File::open(path).expect("open bundle");
        let mut archive = tar::Archive::new(file);
        let mut entries = Vec::new();
        for e in archive.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path_bytes().into_owned();
            let kind = e.header().entry_type().as_byte();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("read entry");
            entries.push(Entry {
                name,
                kind,
                link: Vec::new(),
                device: (0, 0),
                data,
            });
        }
        Tar { entries }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.entries {
            out.extend_from_slice(&header(e));
            out.extend_from_slice(&e.data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn position(&self, name: &str) -> usize {
        self.entries
            .iter()
            .position(|e| e.name == name.as_bytes())
            .unwrap_or_else(|| panic!("no entry {name} in the bundle"))
    }
    fn data(&self, name: &str) -> &[u8] {
        &self.entries[self.position(name)].data
    }
    fn set_data(&mut self, name: &str, data: Vec<u8>) {
        let i = self.position(name);
        self.entries[i].data = data;
    }
    fn remove(&mut self, name: &str) -> Entry {
        let i = self.position(name);
        self.entries.remove(i)
    }
    /// Adds a blob named after its digest; returns the digest.
    fn add_blob(&mut self, bytes: Vec<u8>) -> String {
        let digest = sha256_digest(&bytes);
        self.entries.push(Entry::file(blob_name(&digest), bytes));
        digest
    }
    /// Replaces entry `name` by `entry` at the same position.
    fn replace(&mut self, name: &str, entry: Entry) {
        let i = self.position(name);
        self.entries[i] = entry;
    }

    fn index(&self) -> Value {
        serde_json::from_slice(self.data("index.json")).expect("index.json")
    }
    fn set_index(&mut self, v: &Value) {
        self.set_data("index.json", serde_json::to_vec(v).expect("json"));
    }
    fn lock(&self) -> Value {
        let text = std::str::from_utf8(self.data("images.lock")).expect("utf-8");
        serde_saphyr::from_str(text).expect("images.lock")
    }
    fn set_lock(&mut self, v: &Value) {
        let text = serde_saphyr::to_string(v).expect("yaml");
        self.set_data("images.lock", text.into_bytes());
    }

    /// Points image `reference` (fixture `repo:tag`) at another top-level manifest in
    /// index.json (if `index`) and images.lock (if `lock`); a single-platform lock entry's
    /// platform follows. `size` is the new manifest's size.
    fn retarget(&mut self, reference: &str, digest: &str, size: usize, index: bool, lock: bool) {
        let full = format!("docker.io/{reference}");
        if index {
            let mut v = self.index();
            let m = v["manifests"]
                .as_array_mut()
                .expect("manifests")
                .iter_mut()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == full.as_str())
                .unwrap_or_else(|| panic!("{full} in index.json"));
            m["digest"] = json!(digest);
            m["size"] = json!(size);
            self.set_index(&v);
        }
        if lock {
            let mut v = self.lock();
            let e = lock_entry(&mut v, &full);
            let old = e["digest"].clone();
            e["digest"] = json!(digest);
            e["size"] = json!(size);
            for p in e["platforms"].as_array_mut().expect("platforms") {
                if p["digest"] == old {
                    p["digest"] = json!(digest);
                    p["size"] = json!(size);
                }
            }
            self.set_lock(&v);
        }
    }
}

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

fn lock_entry<'a>(lock: &'a mut Value, source: &str) -> &'a mut Value {
    lock["images"]
        .as_array_mut()
        .expect("images")
        .iter_mut()
        .find(|e| e["source"] == source)
        .unwrap_or_else(|| panic!("{source} in images.lock"))
}

/// A config or layer only `reference` uses (its app layer when it has one).
fn own_blob(reference: &str, kind: BlobKind) -> FixtureBlob {
    let me = fixture(reference);
    let others: Vec<FixtureImage> = fixtures()
        .into_iter()
        .filter(|i| i.repository != me.repository)
        .collect();
    me.blobs
        .iter()
        .find(|b| b.kind == kind && others.iter().all(|o| o.blob(&b.digest).is_none()))
        .unwrap_or_else(|| panic!("{reference} has no {kind:?} of its own"))
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Running ferry on a variant and checking what it did.

/// Unique per process and variant: planted in escaping entry names, looked for afterwards.
fn marker(variant: &str) -> String {
    format!("ferry-hostile-{}-{variant}", std::process::id())
}

/// Every path under `dir` (not following links).
fn snapshot(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// Names next to the sandbox (and in `/`, `/tmp`, `/etc`) that carry this test's marker.
fn escaped(sandbox: &Sandbox, marker: &str) -> Vec<PathBuf> {
    let mut dirs = vec![
        PathBuf::from("/"),
        PathBuf::from("/tmp"),
        PathBuf::from("/etc"),
    ];
    dirs.extend(sandbox.path().ancestors().skip(1).map(Path::to_path_buf));
    dirs.iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(marker))
        .collect()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// One variant, written into a sandbox, with the runs of import and verify against it.
struct Case {
    name: &'static str,
    /// Kept so the variant lives as long as the case.
    _sandbox: Sandbox,
    path: PathBuf,
    registry: TestRegistry,
    import: Run,
    verify: Run,
}

/// Writes `bytes` as the variant's bundle, runs `ferry import` (into a fresh registry) and
/// `ferry verify` on it, and checks the generic promises: no panic, nothing written in the
/// sandbox or next to it.
fn run_case(name: &'static str, bytes: Vec<u8>) -> Case {
    let sandbox = Sandbox::new();
    let path = sandbox.work().join(format!("{name}.tar"));
    std::fs::write(&path, bytes).expect("write variant");
    let registry = TestRegistry::start(Auth::None);
    let before = snapshot(sandbox.path());
    let run = |args: Vec<String>| {
        // A deadline: an unbounded walk over a hostile bundle must fail the test, not hang it.
        let o = sandbox
            .ferry()
            .args(&args)
            .timeout(crate::bounds::DEADLINE)
            .output()
            .expect("run ferry");
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    let p = path.display().to_string();
    let import = run(vec![
        "import".into(),
        p.clone(),
        "--to".into(),
        registry.host(),
        "--plain-http".into(),
        "--retries".into(),
        "1".into(),
        "--json".into(),
    ]);
    let verify = run(vec!["verify".into(), p, "--json".into()]);
    // Shown when a test fails (the harness captures stdout).
    println!(
        "--- {name}: import exited {:?}\n{}{}--- {name}: verify exited {:?}\n{}{}",
        import.code, import.stderr, import.stdout, verify.code, verify.stderr, verify.stdout
    );
    for (what, r) in [("import", &import), ("verify", &verify)] {
        for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
            assert!(
                !r.stderr.contains(bad),
                "{name}: {what} must fail cleanly, not panic:\n{}",
                r.stderr
            );
        }
    }
    let after = snapshot(sandbox.path());
    let created: Vec<&PathBuf> = after.difference(&before).collect();
    assert!(
        created.is_empty(),
        "{name}: ferry created files in the sandbox: {created:?}"
    );
    let out = escaped(&sandbox, &marker(name));
    assert!(
        out.is_empty(),
        "{name}: entries escaped the sandbox: {out:?}"
    );
    Case {
        name,
        _sandbox: sandbox,
        path,
        registry,
        import,
        verify,
    }
}

/// The bundle cannot be read at all: both commands exit 2 with one paragraph that contains
/// every needle (the offending entry, the reason), and nothing at all is pushed.
fn assert_unreadable(name: &'static str, bytes: Vec<u8>, needles: &[&str]) {
    let case = run_case(name, bytes);
    for (what, r) in [("import", &case.import), ("verify", &case.verify)] {
        assert_eq!(r.code, Some(2), "{name}: {what} exits 2:\n{}", r.stderr);
        let text = r.stderr.trim_end();
        assert!(
            text.starts_with("error: ") && !text.contains('\n'),
            "{name}: {what} says one paragraph:\n{text}"
        );
        for needle in needles {
            assert!(
                text.contains(needle),
                "{name}: {what} names {needle:?}:\n{text}"
            );
        }
        assert!(
            text.contains(&case.path.display().to_string()),
            "{name}: {what} names the bundle file:\n{text}"
        );
    }
    let repos = case.registry.storage().repositories();
    assert!(repos.is_empty(), "{name}: nothing pushed, got {repos:?}");
}

/// Some images are bad (`bad`: fixture `repo:tag`, or other `repo:tag` added by the variant):
/// both commands exit 1 and name each bad image and every needle; import pushes every other
/// fixture and nothing of the bad ones; verify finds the other fixtures complete.
fn assert_images_fail(case: &Case, bad: &[&str], needles: &[&str]) {
    let name = case.name;
    let good: Vec<FixtureImage> = fixtures()
        .into_iter()
        .filter(|f| !bad.contains(&f.reference().as_str()))
        .collect();
    let imp = &case.import;
    assert_eq!(
        imp.code,
        Some(1),
        "{name}: import exits 1 (some images bad, the rest imported):\n{}",
        imp.stderr
    );
    let summary = imp.json();
    let failed = summary["failed"].as_array().expect("failed");
    for b in bad {
        let f = failed
            .iter()
            .find(|f| f["name"] == *b)
            .unwrap_or_else(|| panic!("{name}: import reports {b} as failed: {summary:#}"));
        let error = f["error"].as_str().unwrap_or("");
        for needle in needles {
            assert!(
                error.contains(needle),
                "{name}: the failure of {b} names {needle:?}: {error}"
            );
        }
        // The registry and the link are healthy: advice about them sends the user the wrong
        // way (re-running cannot fix a bundle).
        for blame in ["cannot reach", "flaky link", "check the address"] {
            assert!(
                !error.contains(blame),
                "{name}: a bad bundle is not a connection problem: {error}"
            );
        }
        assert!(
            imp.stderr.contains(b),
            "{name}: stderr names {b}:\n{}",
            imp.stderr
        );
    }
    assert_eq!(
        failed.len(),
        bad.len(),
        "{name}: only {bad:?} fail: {summary:#}"
    );
    assert_eq!(summary["pushed"], good.len(), "{name}: {summary:#}");
    let repos = case.registry.storage().repositories();
    for b in bad {
        let repo = b.split(':').next().unwrap_or(b);
        assert!(
            !repos.iter().any(|r| r == repo),
            "{name}: nothing of {b} is pushed: {repos:?}"
        );
    }
    for g in &good {
        let tag = case.registry.storage().tag_digest(&g.repository, &g.tag);
        assert_eq!(
            tag.as_deref(),
            Some(g.digest.as_str()),
            "{name}: {} is imported",
            g.reference()
        );
    }

    let ver = &case.verify;
    assert_eq!(ver.code, Some(1), "{name}: verify exits 1:\n{}", ver.stderr);
    let report = ver.json();
    let images = report["images"].as_array().expect("images");
    for b in bad {
        let problems = images
            .iter()
            .find(|i| i["name"] == *b)
            .map(|i| i["problems"].to_string())
            .unwrap_or_default();
        for needle in needles {
            assert!(
                problems.contains(needle),
                "{name}: verify names {needle:?} for {b}: {report:#}"
            );
        }
    }
    for g in &good {
        let i = images
            .iter()
            .find(|i| i["name"] == g.reference().as_str())
            .unwrap_or_else(|| panic!("{name}: {} in the report", g.reference()));
        assert_eq!(i["problems"], json!([]), "{name}: {report:#}");
    }
}

// ---------------------------------------------------------------------------------------------
// Entry names and types: the bundle is refused as a whole (exit 2), nothing pushed.

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The real bundle plus one extra entry.
fn with_extra(entry: Entry) -> Vec<u8> {
    let mut t = Tar::read(fixtures_bundle());
    t.entries.push(entry);
    t.bytes()
}

#[test]
fn entry_climbing_out_with_dot_dot() {
    let name = "dotdot";
    let evil = format!("blobs/sha256/../../../../{}", marker(name));
    assert_unreadable(
        name,
        with_extra(Entry::file(evil.clone(), b"pwned".to_vec())),
        &[&evil, "climbs out"],
    );
    let name = "dotdot_top";
    let evil = format!("../{}", marker(name));
    assert_unreadable(
        name,
        with_extra(Entry::file(evil.clone(), b"pwned".to_vec())),
        &[&evil, "climbs out"],
    );
}

#[test]
fn entry_with_an_absolute_path() {
    let name = "absolute";
    let evil = std::env::temp_dir()
        .join(marker(name))
        .display()
        .to_string();
    assert_unreadable(
        name,
        with_extra(Entry::file(
            evil.clone(),
            b"root::0:0::/root:/bin/sh\n".to_vec(),
        )),
        &[&evil, "absolute path"],
    );
    assert_unreadable(
        "etc_passwd",
        with_extra(Entry::file(
            "/etc/passwd",
            b"root::0:0::/root:/bin/sh\n".to_vec(),
        )),
        &["/etc/passwd", "absolute path"],
    );
}

#[test]
fn blob_names_that_are_not_sha256_digests() {
    let upper = format!("blobs/sha256/{}", HEX.to_uppercase());
    let nonhex = format!("blobs/sha256/{}", "z".repeat(64));
    let short = format!("blobs/sha256/{}", &HEX[..63]);
    let long = format!("blobs/sha256/{HEX}0");
    let md5 = format!("blobs/md5/{}", &HEX[..32]);
    let sha512_short = format!("blobs/sha512/{HEX}");
    let sha384 = format!("blobs/sha384/{HEX}{}", &HEX[..32]);
    let cases: [(&str, &str, &str); 7] = [
        ("uppercase", &upper, "uppercase"),
        ("nonhex", &nonhex, "not a lowercase hex digit"),
        ("hex63", &short, "found 63"),
        ("hex65", &long, "found 65"),
        ("md5", &md5, "unsupported algorithm"),
        ("sha512_wrong_length", &sha512_short, "exactly 128"),
        ("sha384", &sha384, "unsupported algorithm"),
    ];
    for (name, entry, why) in cases {
        let shown: String = entry.chars().take(100).collect();
        assert_unreadable(
            name,
            with_extra(Entry::file(entry, b"{}".to_vec())),
            &[&shown, why],
        );
    }
}

#[test]
fn sha512_blob_behind_long_name_headers() {
    // 141 characters: too long for ustar, so tar tools write a GNU long-name or a PAX header.
    let long = format!("blobs/sha512/{HEX}{HEX}");
    let mut t = Tar::read(fixtures_bundle());
    let mut gnu = t.clone();
    let mut data = long.clone().into_bytes();
    data.push(0);
    gnu.entries.push(Entry {
        kind: GNU_LONG_NAME,
        ..Entry::file("././@LongLink", data)
    });
    gnu.entries
        .push(Entry::file(&long.as_bytes()[..100], b"{}".to_vec()));
    assert_unreadable("sha512_gnu", gnu.bytes(), &["@LongLink", "long-name"]);

    t.entries.push(Entry {
        kind: PAX,
        ..Entry::file("blobs/sha512/PaxHeader", pax_record("path", &long))
    });
    t.entries
        .push(Entry::file(&long.as_bytes()[..100], b"{}".to_vec()));
    assert_unreadable(
        "sha512_pax",
        t.bytes(),
        &["blobs/sha512/PaxHeader", "overrides \"path\""],
    );
}

/// One PAX record, `<length> <key>=<value>\n`, the length counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut n = body.len() + 1;
    while n.to_string().len() + body.len() != n {
        n = n.to_string().len() + body.len();
    }
    format!("{n}{body}").into_bytes()
}

/// Replaces the app layer of ETCD by `entry` built from its name.
fn etcd_layer_as(f: impl Fn(String) -> Entry) -> (String, Vec<u8>) {
    let layer = own_blob(ETCD, BlobKind::Layer);
    let name = blob_name(&layer.digest);
    let mut t = Tar::read(fixtures_bundle());
    t.replace(&name, f(name.clone()));
    (name, t.bytes())
}

#[test]
fn links_devices_and_fifos_in_place_of_a_blob() {
    let kinds = [
        ("symlink", SYMLINK, "/etc/passwd", (0, 0), "symbolic link"),
        (
            "hardlink",
            HARD_LINK,
            "../../../etc/shadow",
            (0, 0),
            "hard link",
        ),
        ("chardev", CHAR_DEVICE, "", (1, 3), "character device"),
        ("blockdev", BLOCK_DEVICE, "", (8, 0), "block device"),
        ("fifo", FIFO, "", (0, 0), "FIFO"),
    ];
    for (variant, kind, link, dev, why) in kinds {
        let (entry, bytes) = etcd_layer_as(|n| Entry::special(n, kind, link, dev));
        assert_unreadable(variant, bytes, &[&entry, why]);
    }
    let (entry, bytes) = etcd_layer_as(|n| Entry::special(n, DIRECTORY, "", (0, 0)));
    assert_unreadable(
        "directory",
        bytes,
        &[&entry, "directory where a file belongs"],
    );
}

#[test]
fn the_same_blob_twice() {
    let layer = own_blob(ETCD, BlobKind::Layer);
    let name = blob_name(&layer.digest);
    let mut t = Tar::read(fixtures_bundle());
    t.entries
        .push(Entry::file(name.clone(), b"second copy".to_vec()));
    assert_unreadable("duplicate", t.bytes(), &[&name, "twice"]);
}

// ---------------------------------------------------------------------------------------------
// Content and metadata lies: the affected images fail (exit 1), the rest is imported.

#[test]
fn blob_content_not_matching_its_name() {
    let layer = own_blob(ETCD, BlobKind::Layer);
    let name = blob_name(&layer.digest);
    let mut t = Tar::read(fixtures_bundle());
    let mut data = t.data(&name).to_vec();
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    t.set_data(&name, data);
    let case = run_case("content", t.bytes());
    assert_images_fail(&case, &[ETCD], &[&layer.digest, "corrupt"]);
}

/// PAUSE's manifest with its own layer's size changed by `delta`, re-named, and index.json and
/// images.lock updated to it: the only lie is the size.
fn pause_with_layer_size(delta: i64) -> (Vec<u8>, String) {
    let pause = fixture(PAUSE);
    let layer = own_blob(PAUSE, BlobKind::Layer);
    let mut t = Tar::read(fixtures_bundle());
    let old = t.remove(&blob_name(&pause.digest));
    let mut m: Value = serde_json::from_slice(&old.data).expect("manifest");
    for l in m["layers"].as_array_mut().expect("layers") {
        if l["digest"] == layer.digest.as_str() {
            let size = l["size"].as_i64().expect("size") + delta;
            l["size"] = json!(size);
        }
    }
    let bytes = serde_json::to_vec_pretty(&m).expect("json");
    let size = bytes.len();
    let digest = t.add_blob(bytes);
    t.retarget(PAUSE, &digest, size, true, true);
    (t.bytes(), layer.digest)
}

#[test]
fn layer_descriptor_larger_than_the_blob() {
    let (bytes, layer) = pause_with_layer_size(1);
    let case = run_case("size_larger", bytes);
    assert_images_fail(&case, &[PAUSE], &[&layer, "bytes"]);
}

#[test]
fn layer_descriptor_smaller_than_the_blob() {
    let (bytes, layer) = pause_with_layer_size(-1);
    let case = run_case("size_smaller", bytes);
    assert_images_fail(&case, &[PAUSE], &[&layer, "bytes"]);
}

#[test]
fn index_descriptor_size_lies() {
    let tools = fixture(RKE_TOOLS);
    let mut t = Tar::read(fixtures_bundle());
    let old = t.remove(&blob_name(&tools.digest));
    let mut m: Value = serde_json::from_slice(&old.data).expect("index");
    let child = m["manifests"][0]["digest"]
        .as_str()
        .expect("child")
        .to_string();
    let size = m["manifests"][0]["size"].as_u64().expect("size") + 7;
    m["manifests"][0]["size"] = json!(size);
    let bytes = serde_json::to_vec(&m).expect("json");
    let len = bytes.len();
    let digest = t.add_blob(bytes);
    t.retarget(RKE_TOOLS, &digest, len, true, true);
    let mut lock = t.lock();
    for p in lock_entry(&mut lock, &format!("docker.io/{RKE_TOOLS}"))["platforms"]
        .as_array_mut()
        .expect("platforms")
    {
        if p["digest"] == child.as_str() {
            p["size"] = json!(size);
        }
    }
    t.set_lock(&lock);
    let case = run_case("index_size", t.bytes());
    assert_images_fail(&case, &[RKE_TOOLS], &[&child]);
}

#[test]
fn huge_manifest_is_refused_without_reading_it_whole() {
    let etcd = fixture(ETCD);
    let huge_ref = "rancher/huge:v1";
    let mut m: Value = serde_json::from_slice(&etcd.manifest).expect("manifest");
    m["annotations"] = json!({ "padding": "a".repeat(9 << 20) });
    let bytes = serde_json::to_vec(&m).expect("json");
    let size = bytes.len();
    let mut t = Tar::read(fixtures_bundle());
    let digest = t.add_blob(bytes);
    let full = format!("docker.io/{huge_ref}");
    let mut index = t.index();
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(json!({
            "mediaType": crate::support::fixtures::OCI_MANIFEST,
            "digest": digest,
            "size": size,
            "annotations": {
                "io.containerd.image.name": full,
                "org.opencontainers.image.ref.name": full,
            },
        }));
    t.set_index(&index);
    let mut lock = t.lock();
    let mut entry = lock_entry(&mut lock, &format!("docker.io/{ETCD}")).clone();
    entry["name"] = json!(huge_ref);
    entry["source"] = json!(full);
    entry["digest"] = json!(digest);
    entry["size"] = json!(size);
    entry["platforms"][0]["digest"] = json!(digest);
    entry["platforms"][0]["size"] = json!(size);
    let images = lock["images"].as_array_mut().expect("images");
    images.push(entry);
    images.sort_by_key(|e| e["source"].as_str().unwrap_or("").to_string());
    t.set_lock(&lock);
    let case = run_case("huge", t.bytes());
    assert_images_fail(&case, &[huge_ref], &[&digest]);
}

/// Adds image `reference` (`repo:tag`) to the bundle's index.json and images.lock, pointing at
/// top-level manifest `digest` (already in the bundle) whose lock platforms are `platforms`.
fn add_image(t: &mut Tar, reference: &str, media_type: &str, top: &[u8], platforms: Vec<Value>) {
    let digest = sha256_digest(top);
    let full = format!("docker.io/{reference}");
    let mut index = t.index();
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(json!({
            "mediaType": media_type,
            "digest": digest,
            "size": top.len(),
            "annotations": {
                "io.containerd.image.name": full,
                "org.opencontainers.image.ref.name": full,
            },
        }));
    t.set_index(&index);
    let mut lock = t.lock();
    let images = lock["images"].as_array_mut().expect("images");
    images.push(json!({
        "name": reference,
        "source": full,
        "digest": digest,
        "media_type": media_type,
        "size": top.len(),
        "total_size": top.len(),
        "platforms": platforms,
    }));
    images.sort_by_key(|e| e["source"].as_str().unwrap_or("").to_string());
    t.set_lock(&lock);
}

#[test]
fn an_index_naming_one_child_index_25000_times_imports_and_verifies_in_bounded_time() {
    let pause = fixture(PAUSE);
    let (top, child) = crate::bounds::fanout(&pause);
    let child_digest = sha256_digest(&child);
    let mut t = Tar::read(fixtures_bundle());
    t.add_blob(child.clone());
    t.add_blob(top.clone());
    let platform = json!({"platform": "unknown/unknown", "digest": child_digest, "media_type": crate::support::fixtures::OCI_INDEX, "size": child.len()});
    add_image(
        &mut t,
        "rancher/fanout:v1",
        crate::support::fixtures::OCI_INDEX,
        &top,
        vec![platform; crate::bounds::FANOUT],
    );
    let case = run_case("fanout", t.bytes());
    assert_eq!(case.import.code, Some(0), "{}", case.import.stderr);
    assert_eq!(
        case.registry.storage().tag_digest("rancher/fanout", "v1"),
        Some(sha256_digest(&top))
    );
    assert_eq!(case.verify.code, Some(0), "{}", case.verify.stdout);
}

#[test]
fn an_index_with_more_distinct_children_than_any_image_fails_that_image() {
    let entries = (0..12_000).map(|i| {
        json!({"mediaType": crate::support::fixtures::OCI_MANIFEST, "digest": sha256_digest(format!("child {i}").as_bytes()), "size": 500})
    });
    let top = crate::bounds::index_of(entries);
    let mut t = Tar::read(fixtures_bundle());
    t.add_blob(top.clone());
    add_image(
        &mut t,
        "rancher/wide:v1",
        crate::support::fixtures::OCI_INDEX,
        &top,
        Vec::new(),
    );
    let case = run_case("wide", t.bytes());
    assert_images_fail(&case, &["rancher/wide:v1"], &["more than 10000"]);
}

#[test]
fn a_layer_of_absurd_size_fails_that_image() {
    let pause = fixture(PAUSE);
    let m = crate::bounds::manifest_with_layer_size(&pause, u64::MAX);
    let mut t = Tar::read(fixtures_bundle());
    t.add_blob(m.clone());
    let platform = json!({"platform": "linux/amd64", "digest": sha256_digest(&m), "media_type": crate::support::fixtures::OCI_MANIFEST, "size": m.len()});
    add_image(
        &mut t,
        "rancher/absurd:v1",
        crate::support::fixtures::OCI_MANIFEST,
        &m,
        vec![platform],
    );
    let case = run_case("absurd", t.bytes());
    assert_images_fail(&case, &["rancher/absurd:v1"], &["absurd"]);
}

#[test]
fn index_and_lock_name_a_missing_manifest() {
    let mut t = Tar::read(fixtures_bundle());
    let missing = sha256_digest(b"not in the bundle");
    t.retarget(ETCD, &missing, 1234, true, true);
    let case = run_case("missing", t.bytes());
    assert_images_fail(&case, &[ETCD], &[&missing]);
}

#[test]
fn index_points_at_a_missing_blob_the_lock_does_not() {
    let mut t = Tar::read(fixtures_bundle());
    let missing = sha256_digest(b"not in the bundle either");
    t.retarget(ETCD, &missing, 1234, true, false);
    let case = run_case("index_missing", t.bytes());
    assert_images_fail(&case, &[ETCD], &[&missing]);
}

#[test]
fn lock_disagrees_with_the_index() {
    // The lock sends COREDNS's tag to PAUSE's manifest (same media type, present in the
    // bundle); index.json still names the real one. Pushing it would plant the wrong image
    // under rancher/mirrored-coredns-coredns:1.11.1.
    let pause = fixture(PAUSE);
    let coredns = fixture(COREDNS);
    let mut t = Tar::read(fixtures_bundle());
    t.retarget(COREDNS, &pause.digest, pause.manifest.len(), false, true);
    let case = run_case("lock_vs_index", t.bytes());
    assert_images_fail(&case, &[COREDNS], &[&pause.digest, &coredns.digest]);
}

#[test]
fn truncated_in_the_middle_of_a_blob() {
    // ETCD's own layer is moved to the end (any order is a valid bundle), then the file is
    // cut in the middle of it: only ETCD is affected, the rest is whole.
    let layer = own_blob(ETCD, BlobKind::Layer);
    let name = blob_name(&layer.digest);
    let mut t = Tar::read(fixtures_bundle());
    let entry = t.remove(&name);
    t.entries.push(entry);
    let mut bytes = t.bytes();
    let cut = bytes.len() - 1024 - layer.bytes.len().div_ceil(512) * 512 + layer.bytes.len() / 2;
    bytes.truncate(cut);
    let case = run_case("truncated", bytes);
    assert_images_fail(&case, &[ETCD], &[&layer.digest]);
}
