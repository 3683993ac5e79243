//! The trimmed set end to end: what `rke up` deploys for a cluster.yml (calico, kube-dns, no
//! ingress, no monitoring, on v1.30.5) is exported with `--cluster`, imported into the
//! cluster.yml's default registry, verified there, and pulled by a real Docker Engine. The
//! upstream holds an image under every name of the version's full list, so nothing but the
//! trimming keeps the other 15 out.

use ferry_test_support::engines::Dockerd;
use ferry_test_support::fixtures::synthetic;

use crate::support::*;

const CLUSTER: &str = "kubernetes_version: v1.30.5-rancher1-1
network: {plugin: calico}
dns: {provider: kube-dns}
ingress: {provider: none}
monitoring: {provider: none}
";

fn lines(out: &std::process::Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn the_trimmed_set_is_exported_imported_verified_and_pulled_by_docker() {
    let sandbox = Sandbox::new();
    let work = sandbox.work();
    let target = TestRegistry::start(Auth::None);
    let plain = work.join("plain.yml");
    std::fs::write(&plain, CLUSTER).expect("write");
    let cluster = work.join("cluster.yml");
    std::fs::write(
        &cluster,
        format!(
            "{CLUSTER}private_registries:\n  - url: {}\n    is_default: true\n",
            target.host()
        ),
    )
    .expect("write");

    let trimmed = lines(
        &sandbox
            .ferry()
            .args(["images", "--cluster"])
            .arg(&plain)
            .output()
            .expect("images"),
    );
    let all = lines(
        &sandbox
            .ferry()
            .args(["images", "--include-unused", "--cluster"])
            .arg(&plain)
            .output()
            .expect("images"),
    );
    assert_eq!((trimmed.len(), all.len()), (11, 26), "{trimmed:#?}");

    // Upstream has every image of the version, so export must leave 15 out by itself.
    let upstream = TestRegistry::start(Auth::None);
    let images: Vec<FixtureImage> = all.iter().map(|r| synthetic(r)).collect();
    seed(&upstream, &images);
    let bundle = work.join("trimmed.tar");
    let out = sandbox
        .ferry()
        .args(["export", "--json", "--cluster"])
        .arg(&cluster)
        .args(["--upstream", &format!("docker.io={}", upstream.url()), "-o"])
        .arg(&bundle)
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(summary["exported"], 11, "{summary}");

    let out = sandbox
        .ferry()
        .arg("import")
        .arg(&bundle)
        .args(["--cluster"])
        .arg(&cluster)
        .arg("--plain-http")
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sandbox
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .args(["--cluster"])
        .arg(&cluster)
        .arg("--plain-http")
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The mirror holds the 11 and nothing else.
    let mut repos = target.storage().repositories();
    repos.sort();
    let mut want: Vec<String> = trimmed
        .iter()
        .map(|r| {
            r.rsplit_once(':')
                .map_or(r.as_str(), |(repo, _)| repo)
                .to_string()
        })
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(repos, want);

    // What rke up pulls: the rewritten names, each pulled by Docker from the mirror.
    let rewritten = lines(
        &sandbox
            .ferry()
            .args(["images", "--cluster"])
            .arg(&cluster)
            .output()
            .expect("images"),
    );
    assert_eq!(rewritten.len(), 11);
    let docker = Dockerd::start();
    for image in &rewritten {
        assert!(image.starts_with(&target.host()), "{image}");
        let pull = docker.docker(["pull", image.as_str()]);
        assert!(
            pull.status.success(),
            "docker pull {image}: {}\n{}",
            String::from_utf8_lossy(&pull.stderr),
            docker.log()
        );
    }
}
