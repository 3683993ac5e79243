//! Split bundles (`ferry export --split`): the parts are byte ranges of the very tar an
//! unsplit export writes, `sha256sum -c` checks them, and import, verify and serve read them
//! in place; a corrupt or missing part is named; kill -9 during a split export resumes to
//! the same parts. skopeo and umoci read the joined file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::serve::Server;
use crate::support::*;

/// Every file of a split export in `dir`: `(name, bytes)` of each part, in order.
fn parts_of(dir: &Path, name: &str) -> Vec<(String, Vec<u8>)> {
    (1..)
        .map(|i| format!("{name}.{i:03}"))
        .map_while(|n| std::fs::read(dir.join(&n)).ok().map(|b| (n, b)))
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ferry export` of every fixture from `upstream` into `out`, split every `split` bytes.
fn export_split(
    sandbox: &Sandbox,
    upstream: &str,
    out: &Path,
    split: &str,
) -> std::process::Command {
    let list = image_list(&sandbox.work(), &fixtures(), &[]);
    let mut c = sandbox.command(env!("CARGO_BIN_EXE_ferry"));
    c.arg("export")
        .arg("--images")
        .arg(&list)
        .args([
            "--upstream",
            &format!("docker.io={upstream}"),
            "--split",
            split,
            "-o",
        ])
        .arg(out);
    c
}

/// The largest layer of the fixtures, in bytes.
fn largest_layer() -> usize {
    unique_blobs(&fixtures())
        .values()
        .map(|b| b.bytes.len())
        .max()
        .expect("blobs")
}

#[test]
fn a_split_bundle_is_the_unsplit_one_in_parts_and_imports_verifies_and_serves_in_place() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let out = sandbox.work().join("rke-images.tar");
    // Smaller than the largest layer: that blob spans parts.
    let split = largest_layer() / 2;
    let o = export_split(&sandbox, &reg.url(), &out, &split.to_string())
        .output()
        .expect("export");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!out.exists(), "no unsplit file");
    let parts = parts_of(&sandbox.work(), "rke-images.tar");
    assert!(parts.len() > 3, "{} parts", parts.len());
    assert!(parts.iter().all(|(_, b)| b.len() <= split));
    let joined: Vec<u8> = parts.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(
        sha256_hex(&joined),
        sha256_hex(&std::fs::read(fixtures_bundle()).expect("read")),
        "cat of the parts is the unsplit bundle, byte for byte"
    );
    let parts_file = sandbox.work().join("rke-images.tar.parts");

    // Checked without ferry.
    let sums = sandbox
        .command("sha256sum")
        .arg("-c")
        .arg(&parts_file)
        .current_dir(sandbox.work())
        .output()
        .expect("sha256sum");
    assert!(
        sums.status.success(),
        "{}{}",
        text(&sums.stdout),
        text(&sums.stderr)
    );

    // Offline verify of the parts.
    let v = sandbox
        .ferry()
        .arg("verify")
        .arg(&parts_file)
        .output()
        .expect("verify");
    assert!(v.status.success(), "{}{}", text(&v.stdout), text(&v.stderr));

    // Import from the first part (the .parts file beside it is found), then verify the registry.
    let target = TestRegistry::start(Auth::None);
    let first = sandbox.work().join("rke-images.tar.001");
    let imp = sandbox
        .ferry()
        .arg("import")
        .arg(&first)
        .args(["--to", &target.host(), "--plain-http"])
        .output()
        .expect("import");
    assert!(imp.status.success(), "{}", text(&imp.stderr));
    for img in &images {
        assert_eq!(
            sha256_digest(&skopeo_inspect_raw(&target, &img.reference(), false)),
            img.digest,
            "{}",
            img.reference()
        );
    }
    let vr = sandbox
        .ferry()
        .arg("verify")
        .arg(&parts_file)
        .args(["--to", &target.host(), "--plain-http"])
        .output()
        .expect("verify registry");
    assert!(
        vr.status.success(),
        "{}{}",
        text(&vr.stdout),
        text(&vr.stderr)
    );

    // Served in place.
    let s = Server::start(&sandbox, &[&parts_file], &[]);
    for img in &images {
        let raw = skopeo_ok([
            "inspect".to_string(),
            "--raw".to_string(),
            "--tls-verify=false".to_string(),
            format!("docker://{}/{}", s.host, img.reference()),
        ]);
        assert_eq!(sha256_digest(&raw), img.digest);
    }
    let copied = sandbox.work().join("copied");
    skopeo_ok([
        "copy".to_string(),
        "--all".to_string(),
        "--src-tls-verify=false".to_string(),
        format!("docker://{}/{}", s.host, fixture(RKE_TOOLS).reference()),
        format!("dir:{}", copied.display()),
    ]);
    drop(s);

    // skopeo and umoci read the joined file.
    let joined_path = sandbox.work().join("joined.tar");
    std::fs::write(&joined_path, &joined).expect("write");
    let raw = skopeo_ok([
        "inspect".to_string(),
        "--raw".to_string(),
        format!("oci-archive:{}:docker.io/{ETCD}", joined_path.display()),
    ]);
    assert_eq!(sha256_digest(&raw), fixture(ETCD).digest);
    let layout = sandbox.work().join("layout");
    std::fs::create_dir_all(&layout).expect("mkdir");
    assert!(
        sandbox
            .command("tar")
            .arg("-xf")
            .arg(&joined_path)
            .arg("-C")
            .arg(&layout)
            .status()
            .expect("tar")
            .success()
    );
    let ls = sandbox
        .command("umoci")
        .args(["ls", "--layout"])
        .arg(&layout)
        .output()
        .expect("umoci");
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert!(text(&ls.stdout).contains(&format!("docker.io/{ETCD}")));
}

#[test]
fn a_corrupt_part_and_a_missing_part_are_named() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let sandbox = Sandbox::new();
    let out = sandbox.work().join("b.tar");
    let o = export_split(
        &sandbox,
        &reg.url(),
        &out,
        &(largest_layer() / 2).to_string(),
    )
    .output()
    .expect("export");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let parts_file = sandbox.work().join("b.tar.parts");
    let part3 = sandbox.work().join("b.tar.003");

    // A flipped byte in part 3: verify names part 3, and says what to do.
    let mut bytes = std::fs::read(&part3).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&part3, &bytes).expect("write");
    let v = sandbox
        .ferry()
        .arg("verify")
        .arg(&parts_file)
        .output()
        .expect("verify");
    let said = format!("{}{}", text(&v.stdout), text(&v.stderr));
    assert_eq!(v.status.code(), Some(1), "{said}");
    assert!(
        said.contains("part 3 of")
            && said.contains("b.tar.003")
            && said.contains("copy that file again"),
        "{said}"
    );
    assert!(!said.contains("b.tar.002,"), "only part 3 is named: {said}");
    bytes[mid] ^= 0x55;
    std::fs::write(&part3, &bytes).expect("restore");

    // A missing part 2: verify names it (exit 1), import refuses naming it (exit 2).
    let part2 = sandbox.work().join("b.tar.002");
    let moved: PathBuf = sandbox.work().join("elsewhere");
    std::fs::rename(&part2, &moved).expect("move");
    let v = sandbox
        .ferry()
        .args(["verify", "--json"])
        .arg(&parts_file)
        .output()
        .expect("verify");
    assert_eq!(v.status.code(), Some(1), "{}", text(&v.stderr));
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).expect("json");
    let general = report["general"].to_string();
    assert!(
        general.contains("part 2 of") && general.contains("is missing"),
        "{general}"
    );
    let target = TestRegistry::start(Auth::None);
    let imp = sandbox
        .ferry()
        .arg("import")
        .arg(&parts_file)
        .args(["--to", &target.host(), "--plain-http"])
        .output()
        .expect("import");
    let stderr = text(&imp.stderr);
    assert_eq!(imp.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("part 2 of") && stderr.contains("b.tar.002") && stderr.contains("missing"),
        "{stderr}"
    );
    std::fs::rename(&moved, &part2).expect("move back");
}

#[test]
fn kill_9_during_a_split_export_resumes_to_identical_parts() {
    let images = fixtures();
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, &images);
    let split = (largest_layer() / 2).to_string();

    // The reference: an uninterrupted split export.
    let clean = Sandbox::new();
    let o = export_split(&clean, &reg.url(), &clean.work().join("b.tar"), &split)
        .output()
        .expect("export");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let want = parts_of(&clean.work(), "b.tar");
    let want_list = std::fs::read_to_string(clean.work().join("b.tar.parts")).expect("parts");

    // Slow blob transfers, killed twice mid-way, then run to the end.
    let proxy = FaultProxy::start(&reg);
    proxy.inject(
        Match::get(Kind::Blob),
        Fault::Delay(Duration::from_millis(250)),
        usize::MAX,
    );
    let sandbox = Sandbox::new();
    let out = sandbox.work().join("b.tar");
    // Each run first resolves (a few config reads), then fills blobs one at a time.
    for delay in [1500, 1500] {
        let mut cmd = export_split(&sandbox, &proxy.url(), &out, &split);
        cmd.args(["-j", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        assert!(
            child.try_wait().expect("wait").is_none(),
            "finished before the kill"
        );
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            !sandbox.work().join("b.tar.parts").exists(),
            "no parts list before the end"
        );
        assert!(sandbox.work().join("b.tar.journal").exists());
    }
    let o = export_split(&sandbox, &proxy.url(), &out, &split)
        .args(["--json"])
        .output()
        .expect("final run");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["resumed"], true, "{summary}");
    assert_eq!(
        parts_of(&sandbox.work(), "b.tar"),
        want,
        "byte-identical parts"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.work().join("b.tar.parts")).expect("parts"),
        want_list
    );
    assert!(!sandbox.work().join("b.tar.journal").exists());
    assert!(!sandbox.work().join("b.tar.001.partial").exists());
}
