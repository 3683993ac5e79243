//! Errors a person can act on: an unreachable registry said once, quickly; failures grouped
//! by cause; files that are not bundles called what they are; no colour on a pipe or with
//! NO_COLOR; flags that mean one thing everywhere.

use std::time::{Duration, Instant};

use crate::support::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    http::free_port()
}

#[test]
fn an_unreachable_registry_is_reported_once_and_quickly() {
    let images = fixtures();
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &images, &[]);
    let url = format!("http://127.0.0.1:{}", dead_port());
    for command in ["lock", "export"] {
        let started = Instant::now();
        let out = sandbox
            .ferry()
            .args([command, "--images"])
            .arg(&list)
            .args(["--upstream", &format!("docker.io={url}"), "-o"])
            .arg(sandbox.work().join(format!("{command}.out")))
            .timeout(Duration::from_secs(60))
            .output()
            .expect("run");
        let took = started.elapsed();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            took < Duration::from_secs(10),
            "{command}: gave up on the registry within seconds, not {took:?}"
        );
        assert_eq!(
            stderr.matches("cannot reach registry docker.io").count(),
            1,
            "{command}: the registry is named once, not once per image:\n{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{command}: {stderr}");
        for i in &images {
            assert!(
                stderr.contains(&i.reference()),
                "{command}: every image is accounted for: {stderr}"
            );
        }
    }
}

#[test]
fn files_that_are_not_bundles_say_what_they_are() {
    let sandbox = Sandbox::new();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("empty.tar", Vec::new(), "is empty"),
        (
            "page.tar",
            b"<html><body>502 Bad Gateway</body></html>\n".repeat(20),
            "does not start with a tar header",
        ),
        (
            "gz.tar.gz",
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0, 0],
            "gzip-compressed",
        ),
    ];
    for (name, bytes, needle) in cases {
        let path = sandbox.work().join(name);
        std::fs::write(&path, bytes).expect("write");
        for args in [
            vec!["verify".to_string(), path.display().to_string()],
            vec![
                "import".to_string(),
                path.display().to_string(),
                "--to".into(),
                format!("127.0.0.1:{}", dead_port()),
                "--plain-http".into(),
            ],
        ] {
            let out = sandbox.ferry().args(&args).output().expect("run");
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            // import also reads gzip-compressed image archives (rancher-images.tar.gz): a
            // gzip file that is not one is named as a broken gzip stream.
            if args[0] == "import" && name.ends_with(".gz") {
                assert!(stderr.contains("truncated gzip"), "{args:?}: {stderr}");
                continue;
            }
            assert!(
                stderr.contains("is not a ferry bundle") && stderr.contains(needle),
                "{args:?}: {stderr}"
            );
            for wrong in ["truncated", "--lock", "copy it again"] {
                assert!(!stderr.contains(wrong), "{args:?}: {stderr}");
            }
        }
    }
}

#[test]
fn no_colour_on_a_pipe_even_without_no_color() {
    let sandbox = Sandbox::new();
    let list = image_list(&sandbox.work(), &fixtures_named(&[PAUSE]), &[]);
    // A warning (--tls-verify=false) and an error, both on a piped stderr.
    let out = sandbox
        .ferry()
        .env_remove("NO_COLOR")
        .args(["lock", "--tls-verify=false", "--images"])
        .arg(&list)
        .args([
            "--upstream",
            &format!("docker.io=http://127.0.0.1:{}", dead_port()),
        ])
        .output()
        .expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes: {stderr:?}");
}

#[test]
fn flags_mean_one_thing_everywhere() {
    // -u is --username (as in docker login), never --unique.
    let out = ferry().args(["images", "-u"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    // --upstream only where there are upstream registries.
    for args in [
        vec![
            "import",
            "b.tar",
            "--to",
            "r:5000",
            "--upstream",
            "docker.io=http://x",
        ],
        vec!["verify", "b.tar", "--upstream", "docker.io=http://x"],
    ] {
        let out = ferry().args(&args).output().expect("run");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr.contains("--upstream"), "{args:?}: {stderr}");
    }
    // import without a target names both ways to give one.
    let out = ferry().args(["import", "b.tar"]).output().expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("--cluster") && stderr.contains("--to"),
        "{stderr}"
    );
}
