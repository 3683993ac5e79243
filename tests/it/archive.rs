//! `ferry import ARCHIVE`: what people already have. A `rancher-images.tar.gz` made the way
//! `rancher-save-images.sh` makes it, by a real Docker Engine (`docker save … | gzip`),
//! imported into a TLS + htpasswd registry, then pulled and run by Docker; podman's
//! `--multi-image-archive` and OCI archives; Docker 25's layout (built byte by byte, as no
//! Docker 25 runs here); and every failure the issue names, each clear and pushing nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ferry_test_support::busybox::{BUSYBOX, GREETING};
use ferry_test_support::docker_archive::{self, SavedImage, layer_tar};
use ferry_test_support::engines::{DockerTrust, Dockerd, Podman};

use crate::support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// `ferry import ARCHIVE --to REG` (plain HTTP, no auth) with `extra` arguments.
fn import(sandbox: &Sandbox, archive: &Path, reg: &TestRegistry, extra: &[&str]) -> Output {
    sandbox
        .ferry()
        .arg("import")
        .arg(archive)
        .args(["--to", &reg.host(), "--plain-http"])
        .args(extra)
        .output()
        .expect("ferry import")
}

/// A Docker build context: the static busybox and this Dockerfile.
fn context(dir: &Path, dockerfile: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::copy(BUSYBOX, dir.join("busybox"))
        .expect("copy busybox (apt-get install busybox-static)");
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("Dockerfile");
    dir.to_path_buf()
}

#[test]
fn rancher_images_tar_gz_from_a_real_docker_engine_imports_and_runs_after_a_pull() {
    let sandbox = Sandbox::new();
    let w = sandbox.work();
    let docker = Dockerd::start();
    let base = context(
        &w.join("ctx-base"),
        &format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"echo\", \"{GREETING}\"]\n"
        ),
    );
    ok(
        &docker.docker([
            "build",
            "-q",
            "-t",
            "rancher/busybox:1.36",
            base.to_str().expect("path"),
        ]),
        "docker build",
    );
    ok(
        &docker.docker(["tag", "rancher/busybox:1.36", "rancher/busybox:latest"]),
        "docker tag",
    );
    let derived = context(
        &w.join("ctx-derived"),
        "FROM rancher/busybox:1.36\nRUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/data\"]\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo layered > /data/x\"]\n",
    );
    ok(
        &docker.docker([
            "build",
            "-q",
            "-t",
            "rancher/derived:v1",
            derived.to_str().expect("path"),
        ]),
        "docker build",
    );

    // As rancher-save-images.sh: docker save $(cat rancher-images.txt) | gzip --stdout > rancher-images.tar.gz
    let saved = w.join("saved.tar");
    ok(
        &docker.docker([
            "save",
            "-o",
            saved.to_str().expect("path"),
            "rancher/busybox:1.36",
            "rancher/busybox:latest",
            "rancher/derived:v1",
        ]),
        "docker save",
    );
    let archive = w.join("rancher-images.tar.gz");
    let gz = Command::new("gzip")
        .arg("--stdout")
        .arg(&saved)
        .stdout(Stdio::from(
            std::fs::File::create(&archive).expect("create"),
        ))
        .status()
        .expect("gzip");
    assert!(gz.success());

    let reg = TestRegistry::start(Auth::TlsHtpasswd);
    sandbox.login(&[&reg]);
    let ca = reg.ca_file().expect("a TLS registry").to_path_buf();
    let lock = w.join("pushed.lock");
    let o = sandbox
        .ferry()
        .arg("import")
        .arg(&archive)
        .args(["--to", &reg.host(), "--json", "--ca-file"])
        .arg(&ca)
        .arg("--lock-out")
        .arg(&lock)
        .output()
        .expect("import");
    ok(&o, "ferry import rancher-images.tar.gz");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["pushed"], 3, "{summary}");
    assert!(
        summary["spooled_bytes"].as_u64().expect("spooled") > 0,
        "a gzip stream is spooled: {summary}"
    );
    assert!(
        text(&o.stderr).contains("is gzip-compressed, so it is read once"),
        "the import says so: {}",
        text(&o.stderr)
    );

    // The lock of what was pushed verifies the registry.
    let v = sandbox
        .ferry()
        .arg("verify")
        .arg("--lock")
        .arg(&lock)
        .args(["--to", &reg.host(), "--ca-file"])
        .arg(&ca)
        .output()
        .expect("verify");
    ok(&v, "ferry verify --lock pushed.lock");

    // Docker pulls from the mirror (its own copies removed first) and runs it.
    ok(
        &docker.docker([
            "rmi",
            "-f",
            "rancher/busybox:1.36",
            "rancher/busybox:latest",
            "rancher/derived:v1",
        ]),
        "docker rmi",
    );
    let _trust = DockerTrust::install(&reg.host(), &ca);
    let login = docker
        .command()
        .args([
            "login",
            &reg.host(),
            "--username",
            USERNAME,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(PASSWORD.as_bytes())?;
            c.wait_with_output()
        })
        .expect("docker login");
    ok(&login, "docker login");
    let busybox = format!("{}/rancher/busybox:1.36", reg.host());
    ok(&docker.docker(["pull", &busybox]), "docker pull");
    let run = docker.docker(["run", "--rm", "--network", "none", &busybox]);
    ok(&run, "docker run");
    assert_eq!(text(&run.stdout).trim(), GREETING);
    let derived = format!("{}/rancher/derived:v1", reg.host());
    ok(&docker.docker(["pull", &derived]), "docker pull");
    let cat = docker.docker([
        "run",
        "--rm",
        "--network",
        "none",
        &derived,
        "cat",
        "/data/x",
    ]);
    ok(&cat, "docker run derived");
    assert_eq!(
        text(&cat.stdout).trim(),
        "layered",
        "every layer arrived, in order"
    );
}

#[test]
fn podman_multi_image_and_oci_archives_import() {
    let sandbox = Sandbox::new();
    let w = sandbox.work();
    let podman = Podman::new();
    // Two images from root file systems: busybox, and a data layer.
    let rootfs = w.join("rootfs.tar");
    let bin = std::fs::read(BUSYBOX).expect("busybox");
    std::fs::write(
        &rootfs,
        ferry_test_support::blobs::tar_of(&[("bin/busybox".into(), bin)]),
    )
    .expect("write");
    ok(
        &podman.podman([
            "import",
            "--change",
            "ENTRYPOINT [\"/bin/busybox\"]",
            rootfs.to_str().expect("path"),
            "rancher/busybox:1.36",
        ]),
        "podman import",
    );
    let data = w.join("data.tar");
    std::fs::write(&data, layer_tar("podman/data", 200_000)).expect("write");
    ok(
        &podman.podman(["import", data.to_str().expect("path"), "rancher/data:v1"]),
        "podman import",
    );

    let multi = w.join("multi.tar");
    ok(
        &podman.podman([
            "save",
            "--multi-image-archive",
            "-o",
            multi.to_str().expect("path"),
            "rancher/busybox:1.36",
            "rancher/data:v1",
        ]),
        "podman save --multi-image-archive",
    );
    let reg = TestRegistry::start(Auth::None);
    let lock = w.join("multi.lock");
    let o = import(
        &sandbox,
        &multi,
        &reg,
        &["--json", "--lock-out", lock.to_str().expect("path")],
    );
    ok(&o, "import multi");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["pushed"], 2, "{summary}");
    assert!(
        summary["archive"]
            .as_str()
            .expect("kind")
            .contains("legacy"),
        "{summary}"
    );
    // podman names them localhost/rancher/…; they land under the RKE names.
    for name in ["rancher/busybox:1.36", "rancher/data:v1"] {
        assert!(!skopeo_inspect_raw(&reg, name, false).is_empty(), "{name}");
    }
    let v = sandbox
        .ferry()
        .arg("verify")
        .arg("--lock")
        .arg(&lock)
        .args(["--to", &reg.host(), "--plain-http"])
        .output()
        .expect("verify");
    ok(&v, "verify multi");

    // An OCI archive: its layers are already compressed, so its manifest arrives byte for byte.
    let oci = w.join("oci.tar");
    ok(
        &podman.podman([
            "save",
            "--format",
            "oci-archive",
            "-o",
            oci.to_str().expect("path"),
            "rancher/data:v1",
        ]),
        "podman save --format oci-archive",
    );
    let index: serde_json::Value =
        serde_json::from_slice(&entry_of(&oci, "index.json")).expect("index");
    let want = index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let reg2 = TestRegistry::start(Auth::None);
    let o = import(&sandbox, &oci, &reg2, &["--json"]);
    ok(&o, "import oci-archive");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(summary["archive"], "an OCI archive", "{summary}");
    assert_eq!(
        sha256_digest(&skopeo_inspect_raw(&reg2, "rancher/data:v1", false)),
        want
    );
}

#[test]
fn docker25_layout_imports_with_layers_gzipped_or_as_they_are() {
    let sandbox = Sandbox::new();
    let w = sandbox.work();
    let shared = layer_tar("shared", 300_000);
    let images = vec![
        SavedImage::new(
            "rancher/mirrored-pause:3.7",
            std::slice::from_ref(&shared),
            &[10_000],
        ),
        SavedImage::new(
            "rancher/kube-api-auth:v0.2.2",
            std::slice::from_ref(&shared),
            &[50_000, 7_000],
        ),
    ];
    let archive = w.join("docker25.tar.gz");
    std::fs::write(
        &archive,
        docker_archive::gzip(&docker_archive::docker25(&images)),
    )
    .expect("write");

    let reg = TestRegistry::start(Auth::None);
    let o = import(&sandbox, &archive, &reg, &["--json"]);
    ok(&o, "import docker25");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        summary["archive"].as_str().expect("kind"),
        "a docker-save archive (OCI layout, Docker 25+)"
    );
    // The config is untouched; every layer is gzip whose content is the saved tar.
    for img in &images {
        let name = &img.repo_tags[0];
        let raw: serde_json::Value =
            serde_json::from_slice(&skopeo_inspect_raw(&reg, name, false)).expect("manifest");
        assert_eq!(
            raw["mediaType"],
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(raw["config"]["digest"], sha256_digest(&img.config(None)));
        let dir = w.join(format!("copy-{}", name.replace(['/', ':'], "_")));
        skopeo_ok([
            "copy".to_string(),
            "--src-tls-verify=false".to_string(),
            format!("docker://{}/{name}", reg.host()),
            format!("dir:{}", dir.display()),
        ]);
        for (i, l) in img.layers.iter().enumerate() {
            let digest = raw["layers"][i]["digest"].as_str().expect("digest");
            let gz = std::fs::read(dir.join(digest.trim_start_matches("sha256:"))).expect("layer");
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut out)
                .expect("gunzip");
            assert_eq!(&out, l, "layer {i} of {name}: the same content");
        }
    }

    // --layer-compression none: the layers go as they are (their digests are their diff_ids).
    let reg2 = TestRegistry::start(Auth::None);
    ok(
        &import(&sandbox, &archive, &reg2, &["--layer-compression", "none"]),
        "import none",
    );
    let raw: serde_json::Value =
        serde_json::from_slice(&skopeo_inspect_raw(&reg2, &images[1].repo_tags[0], false))
            .expect("manifest");
    assert_eq!(
        raw["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    for (i, l) in images[1].layers.iter().enumerate() {
        assert_eq!(raw["layers"][i]["digest"], sha256_digest(l));
        assert_eq!(
            raw["layers"][i]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar"
        );
    }
}

#[test]
fn broken_archives_fail_clearly_and_push_nothing() {
    let sandbox = Sandbox::new();
    let w = sandbox.work();
    let base = layer_tar("base", 30_000);
    let images = vec![
        SavedImage::new(
            "rancher/rke-tools:v0.1.103",
            std::slice::from_ref(&base),
            &[40_000],
        ),
        SavedImage::new(
            "rancher/hyperkube:v1.30.5-rancher1",
            std::slice::from_ref(&base),
            &[60_000, 5_000],
        ),
    ];
    let reg = TestRegistry::start(Auth::None);
    let refused = |name: &str, bytes: &[u8], extra: &[&str], says: &[&str]| {
        let p = w.join(name);
        std::fs::write(&p, bytes).expect("write");
        let o = import(&sandbox, &p, &reg, extra);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        for s in says {
            assert!(stderr.contains(s), "{name}: expected {s:?} in: {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let good = docker_archive::legacy(&images, &[]);
    let gz = docker_archive::gzip(&good);

    refused(
        "cut.tar.gz",
        &gz[..gz.len() / 2],
        &[],
        &["truncated gzip", "copy it again"],
    );
    refused(
        "files.tar",
        &ferry_test_support::blobs::tar_of(&[(
            "etc/hosts".into(),
            b"127.0.0.1 localhost\n".to_vec(),
        )]),
        &[],
        &["not an image archive", "manifest.json"],
    );
    let mut unnamed = images.clone();
    unnamed[1].repo_tags.clear();
    refused(
        "unnamed.tar",
        &docker_archive::legacy(&unnamed, &[]),
        &[],
        &["has no name", "docker save NAME:TAG"],
    );
    let wrong = images[1].config(Some(vec![
        sha256_digest(&images[1].layers[0]),
        sha256_digest(b"other"),
        sha256_digest(&images[1].layers[2]),
    ]));
    refused(
        "diff-ids.tar",
        &docker_archive::legacy(&images, &[(1, wrong)]),
        &[],
        &[
            "does not match its config",
            "rancher/hyperkube:v1.30.5-rancher1",
            "diff_ids",
        ],
    );
    refused(
        "spool.tar.gz",
        &gz,
        &["--spool-limit", "1KiB"],
        &["temporary space", "--spool-limit"],
    );
    assert!(
        reg.storage().repositories().is_empty(),
        "nothing was pushed"
    );

    // The good one imports, and its symlinked shared layer is followed.
    let p = w.join("good.tar");
    std::fs::write(&p, &good).expect("write");
    ok(&import(&sandbox, &p, &reg, &[]), "good archive");
}

/// The bytes of entry `name` of a tar file.
fn entry_of(tar: &Path, name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(std::fs::File::open(tar).expect("open"));
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path().expect("path").to_string_lossy() == name {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).expect("read");
            return v;
        }
    }
    panic!("no {name} in {}", tar.display())
}
