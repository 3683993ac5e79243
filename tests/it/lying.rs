//! Untrusted registries (ARCHITECTURE.md, invariants 2, 5 and 7). A lying upstream ([`LyingRegistry`]:
//! a test-only wrapper for protocol lies a real registry will not produce) is caught by
//! `ferry lock` and `ferry export`: wrong `Docker-Content-Digest`, bytes that do not match the
//! digest asked for, blobs longer than their descriptor, a `Content-Length` that lies, endless
//! bodies (read no further than the descriptor allows), oversized manifests; nothing
//! complete-looking is left behind. And with the most verbose logging, the password and the
//! bearer tokens never reach stdout, stderr, the lock or the bundle.

use std::path::PathBuf;
use std::process::Output;

use crate::support::fixtures::BlobKind;
use crate::support::lying::{Lie, LyingRegistry};
use crate::support::*;

/// What a lie is about.
#[derive(Debug, Clone, Copy)]
enum About {
    /// PAUSE's manifest.
    Manifest,
    /// PAUSE's config (read by `lock` to learn the platform, and by `export`).
    Config,
    /// PAUSE's own layer (read by `export` only).
    Layer,
}

fn target(about: About) -> FixtureBlob {
    let pause = fixture(PAUSE);
    match about {
        About::Manifest => FixtureBlob {
            digest: pause.digest.clone(),
            media_type: pause.media_type.clone(),
            kind: BlobKind::Config,
            bytes: pause.manifest.clone(),
        },
        About::Config | About::Layer => {
            let kind = if matches!(about, About::Config) {
                BlobKind::Config
            } else {
                BlobKind::Layer
            };
            let others: Vec<FixtureImage> = fixtures()
                .into_iter()
                .filter(|i| i.repository != pause.repository)
                .collect();
            pause
                .blobs
                .iter()
                .find(|b| b.kind == kind && others.iter().all(|o| o.blob(&b.digest).is_none()))
                .expect("a blob of PAUSE's own")
                .clone()
        }
    }
}

struct Liar {
    sandbox: Sandbox,
    registry: LyingRegistry,
    list: PathBuf,
    target: FixtureBlob,
}

fn liar(lie: Lie, about: About) -> Liar {
    let target = target(about);
    let registry = LyingRegistry::start(&fixtures_named(&[PAUSE]), lie, &target.digest);
    let sandbox = Sandbox::new();
    let list = sandbox.work().join("images.txt");
    std::fs::write(&list, format!("{PAUSE}\n")).expect("list");
    Liar {
        sandbox,
        registry,
        list,
        target,
    }
}

impl Liar {
    fn run(&self, command: &str, output: &PathBuf) -> Output {
        self.sandbox
            .ferry()
            .args([command, "--images"])
            .arg(&self.list)
            .args([
                "--upstream",
                &format!("docker.io={}", self.registry.url()),
                "--retries",
                "2",
                "-o",
            ])
            .arg(output)
            .output()
            .expect("run ferry")
    }

    /// Runs `command` (`lock` or `export`) and asserts the lie is caught: exit 2 (the only
    /// image failed), one paragraph naming the target digest and every needle, no output file.
    fn assert_caught(&self, command: &str, needles: &[&str]) {
        let output = self.sandbox.work().join(format!("{command}.out"));
        let out = self.run(command, &output);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{command} against {:?}", self.registry.requests());
        assert_eq!(out.status.code(), Some(2), "{what}: exit 2:\n{stderr}");
        for bad in ["panicked", "backtrace"] {
            assert!(!stderr.contains(bad), "{what}: no panic:\n{stderr}");
        }
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{what}: an error paragraph:\n{stderr}"));
        for needle in std::iter::once(&self.target.digest.as_str()).chain(needles) {
            assert!(
                error.contains(needle),
                "{what}: names {needle:?}:\n{stderr}"
            );
        }
        assert!(
            !error.contains("cannot reach"),
            "{what}: a lie is not a connection problem:\n{stderr}"
        );
        assert!(!output.exists(), "{what}: no {} written", output.display());
    }
}

#[test]
fn wrong_docker_content_digest_on_a_tag() {
    let l = liar(Lie::TagDigestHeader, About::Manifest);
    l.assert_caught("lock", &["corrupt"]);
    l.assert_caught("export", &["corrupt"]);
}

#[test]
fn wrong_docker_content_digest_on_a_manifest() {
    let l = liar(Lie::ManifestDigestHeader, About::Manifest);
    l.assert_caught("lock", &["refusing it"]);
    l.assert_caught("export", &["refusing it"]);
}

#[test]
fn manifest_bytes_not_matching_the_digest_asked_for() {
    let l = liar(Lie::ManifestBytes, About::Manifest);
    l.assert_caught("lock", &["corrupt"]);
    l.assert_caught("export", &["corrupt"]);
}

#[test]
fn manifest_larger_than_8_mib() {
    let l = liar(Lie::HugeManifest, About::Manifest);
    l.assert_caught("lock", &["larger than"]);
    l.assert_caught("export", &["larger than"]);
}

#[test]
fn endless_manifest_is_read_no_further_than_the_limit() {
    let l = liar(Lie::EndlessManifest, About::Manifest);
    l.assert_caught("lock", &["larger than"]);
    let limit = 8u64 << 20;
    let sent = l.registry.sent();
    println!("endless manifest: {sent} bytes sent for a {limit}-byte limit");
    assert!(
        sent < limit + (1 << 20),
        "lock stopped reading soon after the {limit}-byte manifest limit: {sent} bytes sent"
    );
}

#[test]
fn config_bytes_not_matching_their_digest() {
    let l = liar(Lie::BlobBytes, About::Config);
    l.assert_caught("lock", &["corrupt"]);
    l.assert_caught("export", &["corrupt"]);
}

#[test]
fn layer_bytes_not_matching_their_digest() {
    let l = liar(Lie::BlobBytes, About::Layer);
    l.assert_caught("export", &["corrupt"]);
}

#[test]
fn layer_longer_than_its_descriptor() {
    let l = liar(Lie::LongerBlob, About::Layer);
    l.assert_caught("export", &["larger than"]);
    let l = liar(Lie::LongerBlob, About::Config);
    l.assert_caught("lock", &["larger than"]);
}

#[test]
fn layer_with_a_lying_content_length() {
    let l = liar(Lie::LyingContentLength, About::Layer);
    l.assert_caught("export", &["corrupt"]);
}

#[test]
fn endless_layer_is_read_no_further_than_its_size() {
    for (about, command) in [(About::Layer, "export"), (About::Config, "lock")] {
        let l = liar(Lie::EndlessBlob, about);
        l.assert_caught(command, &["larger than"]);
        let size = l.target.bytes.len() as u64;
        let sent = l.registry.sent();
        println!("endless {about:?}: {sent} bytes sent for {size} bytes");
        assert!(
            sent < size + (1 << 20),
            "{command}: stopped reading soon after the {size}-byte {about:?}: {sent} bytes sent"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets.

/// Every secret a run could leak: the password, Basic credentials, bearer token prefixes.
fn secrets(regs: &[&TestRegistry]) -> Vec<(String, String)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = vec![
        ("the password".to_string(), PASSWORD.to_string()),
        (
            "Basic credentials".to_string(),
            b64.encode(format!("{USERNAME}:{PASSWORD}")),
        ),
        (
            "the refresh token".to_string(),
            format!("ferry-test-refresh-{USERNAME}"),
        ),
    ];
    for reg in regs {
        let ts = reg.token_server().expect("token mode");
        // Every token this server signs starts with the same header (its certificate chain):
        // 40 characters of it catch a token printed whole or cut short.
        let token = ts.issue(&["repository:rancher/mirrored-pause:pull"], true);
        let header = token.split('.').next().expect("jwt header");
        out.push(("a bearer token".to_string(), header[..40].to_string()));
        out.push((
            "a bearer token (tail)".to_string(),
            header[header.len() - 40..].to_string(),
        ));
    }
    out
}

fn assert_no_secret(what: &str, bytes: &[u8], secrets: &[(String, String)]) {
    for (name, secret) in secrets {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{name} leaked into {what}"
        );
    }
}

#[test]
fn secrets_never_leak_with_the_most_verbose_logging() {
    let images = fixtures();
    let mut upstream = TestRegistry::builder(Auth::TlsToken);
    for img in &images {
        upstream = upstream.private_repo(&img.repository);
    }
    let upstream = upstream.start();
    seed(&upstream, &images);
    let target = TestRegistry::builder(Auth::TlsToken).start();
    let sandbox = Sandbox::new();
    sandbox.login(&[&upstream]);
    let list = sandbox.work().join("images.txt");
    let text: String = images.iter().map(|i| i.reference() + "\n").collect();
    std::fs::write(&list, text).expect("list");
    let lock = sandbox.work().join("images.lock");
    let bundle = sandbox.work().join("bundle.tar");
    let up_ca = upstream.ca_file().expect("ca").display().to_string();
    let upstream_args = [
        "--upstream".to_string(),
        format!("docker.io={}", upstream.url()),
        "--ca-file".to_string(),
        up_ca,
    ];
    let verbose = |args: &[&str]| {
        let mut cmd = sandbox.ferry();
        cmd.env("FERRY_LOG", "trace").env("RUST_LOG", "trace");
        cmd.arg("-vvv").args(args);
        cmd
    };
    let mut runs: Vec<(&str, Output)> = Vec::new();
    let l = verbose(&["lock", "--images", &list.display().to_string(), "-o"])
        .arg(&lock)
        .args(&upstream_args)
        .output()
        .expect("lock");
    runs.push(("lock", l));
    let e = verbose(&["export", "--lock", &lock.display().to_string(), "-o"])
        .arg(&bundle)
        .args(&upstream_args)
        .output()
        .expect("export");
    runs.push(("export", e));
    let target_ca = target.ca_file().expect("ca").display().to_string();
    let mut import = verbose(&["import", &bundle.display().to_string()]);
    import
        .args(["--to", &target.host(), "--ca-file", &target_ca])
        .args(["--username", USERNAME, "--password-stdin"])
        .write_stdin(format!("{PASSWORD}\n"));
    runs.push(("import", import.output().expect("import")));

    for (name, out) in &runs {
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.len() > 1000,
            "{name}: trace logging is on ({} bytes of stderr)",
            out.stderr.len()
        );
    }
    for (reg, what) in [(&upstream, "upstream"), (&target, "target")] {
        assert!(
            reg.token_server()
                .expect("token")
                .requests()
                .iter()
                .any(|r| r.authenticated),
            "the {what} credentials were used"
        );
    }
    let secrets = secrets(&[&upstream, &target]);
    for (name, out) in &runs {
        assert_no_secret(&format!("{name}'s stdout"), &out.stdout, &secrets);
        assert_no_secret(&format!("{name}'s stderr"), &out.stderr, &secrets);
    }
    assert_no_secret("the lock", &std::fs::read(&lock).expect("lock"), &secrets);
    assert_no_secret(
        "the bundle",
        &std::fs::read(&bundle).expect("bundle"),
        &secrets,
    );
}

/// A tag list that never ends is a hint ferry stops reading at its cap (1 MiB): the lookup
/// falls back to a HEAD per cosign tag, and the image locks.
#[test]
fn an_endless_tag_list_is_read_no_further_than_its_cap_and_the_image_still_locks() {
    let image = fixture(PAUSE);
    let l = liar(Lie::EndlessTagList, About::Manifest);
    let output = l.sandbox.work().join("images.lock");
    let out = l.run("lock", &output);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(output.exists());
    let sent = l.registry.sent();
    assert!(
        sent < 3 << 20,
        "the tag list was read past its 1 MiB cap: {sent} bytes sent"
    );
    let requests = l.registry.requests();
    let cosign_heads = requests
        .iter()
        .filter(|r| r.starts_with("HEAD") && r.contains("sha256-"))
        .count();
    assert_eq!(
        cosign_heads,
        4,
        "one HEAD per kind for the one subject of {}: {requests:?}",
        image.reference()
    );
}
