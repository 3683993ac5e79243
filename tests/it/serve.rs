//! `ferry serve`: bundles as a read-only registry, read by real clients — skopeo, `ferry
//! export`, Docker Engine (`docker login`, `pull`, `run`), podman and containerd's `ctr` —
//! over plain HTTP and over TLS with Basic auth; the read API to the letter (ranges,
//! pagination, every error code, refused writes); the names `rke up` pulls; a corrupt blob
//! withdrawn and named; a truncated bundle refused.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferry_test_support::busybox::{GREETING, busybox};
use ferry_test_support::engines::{DockerTrust, Dockerd, Podman};

use crate::support::fixtures::BlobKind;
use crate::support::*;

/// A running `ferry serve`.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) url: String,
    pub(crate) host: String,
    stderr: PathBuf,
}

impl Server {
    /// Starts `ferry serve BUNDLES ARGS --listen 127.0.0.1:0` and waits for its readiness line.
    pub(crate) fn start(sandbox: &Sandbox, bundles: &[&Path], args: &[&str]) -> Server {
        let stderr = sandbox.work().join(format!("serve-{}.err", rand_id()));
        let mut child = sandbox
            .command(env!("CARGO_BIN_EXE_ferry"))
            .arg("serve")
            .args(bundles)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn ferry serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "no readiness line: {line:?}\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            })
            .to_string();
        let host = url.split("://").nth(1).expect("host").to_string();
        Server {
            child: Some(child),
            url,
            host,
            stderr,
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and returns at once.
    fn terminate(&self) {
        let child = self.child.as_ref().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }

    /// SIGTERM, then the exit code and everything it said on stderr.
    pub(crate) fn stop(mut self) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().expect("wait");
        (status.code(), self.log())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exports `images` from a fresh registry into `dir/name.tar`.
pub(crate) fn bundle_of(sandbox: &Sandbox, images: &[FixtureImage], name: &str) -> PathBuf {
    let reg = TestRegistry::start(Auth::None);
    seed(&reg, images);
    let list = sandbox.work().join(format!("{name}.txt"));
    std::fs::write(
        &list,
        images
            .iter()
            .map(|i| i.reference() + "\n")
            .collect::<String>(),
    )
    .expect("list");
    let out = sandbox.work().join(format!("{name}.tar"));
    let o = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", reg.url()), "-o"])
        .arg(&out)
        .output()
        .expect("export");
    assert!(o.status.success(), "{}", text(&o.stderr));
    out
}

fn code_of(r: &http::Response) -> String {
    r.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn serves_the_read_api_to_the_letter_and_exports_back_byte_identical() {
    let images = fixtures();
    let bundle = fixtures_bundle();
    let sandbox = Sandbox::new();
    let s = Server::start(&sandbox, &[bundle], &[]);
    let get = |path: &str| http::get(&format!("{}{path}", s.url)).expect("GET");
    let req = |method: &str, path: &str, headers: &[(&str, &str)]| {
        http::request(method, &format!("{}{path}", s.url), headers, &[]).expect("request")
    };

    let base = get("/v2/");
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // _catalog with pagination.
    let first = get("/v2/_catalog?n=2");
    let repos = first.json()["repositories"].clone();
    assert_eq!(repos.as_array().expect("array").len(), 2);
    let link = first
        .header("link")
        .expect("a Link to the next page")
        .to_string();
    let next = link.trim_start_matches('<').split('>').next().expect("url");
    let second = get(next);
    assert_eq!(second.status, 200);
    let mut all: Vec<String> = get("/v2/_catalog").json()["repositories"]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("name").to_string())
        .collect();
    all.sort();
    let mut want: Vec<String> = images.iter().map(|i| i.repository.clone()).collect();
    want.sort();
    assert_eq!(all, want);

    let hk = fixture(HYPERKUBE);
    let tags = get(&format!("/v2/{}/tags/list", hk.repository));
    assert_eq!(tags.json()["name"], hk.repository.as_str());
    assert_eq!(tags.json()["tags"], serde_json::json!([hk.tag]));

    // Manifests by tag and by digest: exact bytes, true media type, digest, length, ETag.
    for path in [
        format!("/v2/{}/manifests/{}", hk.repository, hk.tag),
        format!("/v2/{}/manifests/{}", hk.repository, hk.digest),
    ] {
        let m = get(&path);
        assert_eq!(m.status, 200, "{path}");
        assert_eq!(m.body, hk.manifest);
        assert_eq!(m.header("content-type"), Some(hk.media_type.as_str()));
        assert_eq!(m.header("docker-content-digest"), Some(hk.digest.as_str()));
        assert_eq!(
            m.header("etag"),
            Some(format!("\"{}\"", hk.digest).as_str())
        );
        let h = req("HEAD", &path, &[]);
        assert_eq!(h.status, 200);
        assert_eq!(
            h.header("content-length"),
            Some(hk.manifest.len().to_string().as_str())
        );
        assert!(h.body.is_empty());
    }

    // Blobs: whole, a range, past the end.
    let layer = hk
        .blobs
        .iter()
        .find(|b| b.kind == BlobKind::Layer)
        .expect("layer");
    let path = format!("/v2/{}/blobs/{}", hk.repository, layer.digest);
    assert_eq!(get(&path).body, layer.bytes);
    let part = req("GET", &path, &[("Range", "bytes=10-19")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, layer.bytes[10..20]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 10-19/{}", layer.bytes.len()).as_str())
    );
    let size = layer.bytes.len();
    let past = req("GET", &path, &[("Range", &format!("bytes={size}-"))]);
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );

    // Every error code, in the spec's JSON.
    assert_eq!(
        code_of(&get("/v2/rancher/nothing/manifests/v1")),
        "NAME_UNKNOWN"
    );
    assert_eq!(
        code_of(&get("/v2/rancher/nothing/tags/list")),
        "NAME_UNKNOWN"
    );
    assert_eq!(
        code_of(&get(&format!(
            "/v2/{}/manifests/no-such-tag",
            hk.repository
        ))),
        "MANIFEST_UNKNOWN"
    );
    let other = fixture(ETCD);
    let foreign = other
        .blobs
        .iter()
        .find(|b| hk.blob(&b.digest).is_none())
        .expect("a blob hyperkube lacks");
    let unknown = get(&format!("/v2/{}/blobs/{}", hk.repository, foreign.digest));
    assert_eq!(
        (unknown.status, code_of(&unknown)),
        (404, "BLOB_UNKNOWN".to_string())
    );
    for (method, path) in [
        ("POST", format!("/v2/{}/blobs/uploads/", hk.repository)),
        ("PUT", format!("/v2/{}/manifests/v2", hk.repository)),
        (
            "DELETE",
            format!("/v2/{}/manifests/{}", hk.repository, hk.digest),
        ),
        ("PATCH", "/v2/x/blobs/uploads/u".to_string()),
    ] {
        let r = req(method, &path, &[]);
        assert_eq!(
            (r.status, code_of(&r)),
            (405, "UNSUPPORTED".to_string()),
            "{method} {path}"
        );
    }

    // skopeo reads every manifest byte for byte.
    for img in &images {
        let raw = skopeo_ok([
            "inspect".to_string(),
            "--raw".to_string(),
            "--tls-verify=false".to_string(),
            format!("docker://{}/{}", s.host, img.reference()),
        ]);
        assert_eq!(sha256_digest(&raw), img.digest, "{}", img.reference());
    }
    let dir = sandbox.work().join("copied");
    skopeo_ok([
        "copy".to_string(),
        "--all".to_string(),
        "--src-tls-verify=false".to_string(),
        format!("docker://{}/{}", s.host, fixture(RKE_TOOLS).reference()),
        format!("dir:{}", dir.display()),
    ]);

    // ferry export from the server gives back the very bundle it serves.
    let list = image_list(&sandbox.work(), &images, &[]);
    let again = sandbox.work().join("again.tar");
    let o = sandbox
        .ferry()
        .arg("export")
        .arg("--images")
        .arg(&list)
        .args(["--upstream", &format!("docker.io={}", s.url), "-o"])
        .arg(&again)
        .output()
        .expect("export from serve");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        sha256_hex(&std::fs::read(&again).expect("read")),
        sha256_hex(&std::fs::read(bundle).expect("read")),
        "byte-identical bundle"
    );

    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "a clean shutdown on SIGTERM:\n{log}");
    assert!(
        log.lines().any(|l| l.starts_with("GET /v2/_catalog 200 ")),
        "an access-log line per request:\n{log}"
    );
}

#[test]
fn docker_podman_ctr_and_skopeo_pull_through_tls_and_basic_auth() {
    let sandbox = Sandbox::new();
    let image = busybox("library/busybox:1.36");
    let bundle = bundle_of(&sandbox, &[image.clone(), fixture(RKE_TOOLS)], "busybox");
    let htpasswd = sandbox.work().join("htpasswd");
    let line = Command::new("htpasswd")
        .args(["-nbB", "-C", "4", USERNAME, PASSWORD])
        .output()
        .expect("htpasswd");
    std::fs::write(&htpasswd, &line.stdout).expect("write htpasswd");
    let tls = sandbox.work().join("tls");
    let s = Server::start(
        &sandbox,
        &[&bundle],
        &[
            "--tls-self-signed",
            tls.to_str().expect("path"),
            "--htpasswd",
            htpasswd.to_str().expect("path"),
        ],
    );
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let ca = tls.join("ca.crt");
    let name = format!("{}/library/busybox:1.36", s.host);

    // Without credentials: 401 with a Basic challenge.
    let refused = skopeo([
        "inspect".to_string(),
        "--raw".to_string(),
        format!("--cert-dir={}", tls.display()),
        format!("docker://{name}"),
    ]);
    assert!(!refused.status.success());

    // skopeo with the CA and the user.
    let creds = format!("--creds={USERNAME}:{PASSWORD}");
    let raw = skopeo_ok([
        "inspect".to_string(),
        "--raw".to_string(),
        format!("--cert-dir={}", tls.display()),
        creds.clone(),
        format!("docker://{name}"),
    ]);
    assert_eq!(sha256_digest(&raw), image.digest);

    // Docker: trust the CA, log in, pull, run.
    let docker = Dockerd::start();
    let _trust = DockerTrust::install(&s.host, &ca);
    let login = docker
        .command()
        .args(["login", &s.host, "--username", USERNAME, "--password-stdin"])
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
    assert!(login.status.success(), "{}", text(&login.stderr));
    let pull = docker.docker(["pull", &name]);
    assert!(pull.status.success(), "{}\n{}", text(&pull.stderr), s.log());
    let run = docker.docker(["run", "--rm", "--network", "none", &name]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(
        text(&run.stdout).trim(),
        GREETING,
        "docker run of an image that was only ever in the bundle"
    );
    let tools = format!("{}/{}", s.host, fixture(RKE_TOOLS).reference());
    let pull = docker.docker(["pull", &tools]);
    assert!(
        pull.status.success(),
        "a multi-arch index: {}",
        text(&pull.stderr)
    );

    // containerd's ctr, on the engine's containerd, configured the way an RKE2/k3s node is:
    // a hosts.toml naming the https endpoint and the CA (ctr takes 127.0.0.1 for plain http
    // otherwise).
    let hosts = sandbox.work().join("certs.d");
    let host_dir = hosts.join(&s.host);
    std::fs::create_dir_all(&host_dir).expect("hosts dir");
    std::fs::write(
        host_dir.join("hosts.toml"),
        format!(
            "server = \"https://{host}\"\n\n[host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{ca}\"\n",
            host = s.host,
            ca = ca.display()
        ),
    )
    .expect("hosts.toml");
    let ctr = docker.ctr([
        "images",
        "pull",
        "--hosts-dir",
        hosts.to_str().expect("path"),
        "--user",
        &format!("{USERNAME}:{PASSWORD}"),
        &name,
    ]);
    assert!(
        ctr.status.success(),
        "ctr: {}{}",
        text(&ctr.stdout),
        text(&ctr.stderr)
    );
    let listed = docker.ctr(["images", "ls", "-q"]);
    assert!(
        text(&listed.stdout).contains(&name),
        "{}",
        text(&listed.stdout)
    );

    // podman.
    let podman = Podman::new();
    let pulled = podman.podman([
        "pull",
        "--cert-dir",
        tls.to_str().expect("path"),
        "--creds",
        &format!("{USERNAME}:{PASSWORD}"),
        &name,
    ]);
    assert!(pulled.status.success(), "podman: {}", text(&pulled.stderr));
    let inspect = podman.podman(["image", "inspect", "--format", "{{.Digest}}", &name]);
    assert_eq!(text(&inspect.stdout).trim(), image.digest);
    drop(s);
}

#[test]
fn the_names_rke_up_pulls_all_pull() {
    // An image for every name of RKE's default list, served under a path prefix.
    let sandbox = Sandbox::new();
    let listed = sandbox
        .ferry()
        .args(["images", "-k", "v1.30.5-rancher1-1"])
        .output()
        .expect("images");
    assert!(listed.status.success());
    let names: Vec<String> = text(&listed.stdout).lines().map(String::from).collect();
    assert!(names.len() > 20, "{names:?}");
    let images: Vec<FixtureImage> = names
        .iter()
        .map(|n| crate::support::fixtures::synthetic(n))
        .collect();
    let bundle = bundle_of(&sandbox, &images, "rke");
    let s = Server::start(&sandbox, &[&bundle], &["--prefix", "rke-mirror"]);
    let cluster = sandbox.work().join("cluster.yml");
    std::fs::write(
        &cluster,
        format!(
            "kubernetes_version: v1.30.5-rancher1-1\nprivate_registries:\n  - url: {}/rke-mirror\n    is_default: true\n",
            s.host
        ),
    )
    .expect("cluster.yml");
    let pulls = sandbox
        .ferry()
        // Every name the version lists, rewritten as rke up rewrites them (the trimmed set
        // is a subset: tests/it/trim_e2e.rs).
        .args(["images", "--include-unused", "--cluster"])
        .arg(&cluster)
        .output()
        .expect("images --cluster");
    let pulls: Vec<String> = text(&pulls.stdout).lines().map(String::from).collect();
    assert_eq!(pulls.len(), names.len());
    for (name, img) in pulls.iter().zip(&images) {
        assert!(
            name.starts_with(&format!("{}/rke-mirror/", s.host)),
            "{name}"
        );
        let raw = skopeo_ok([
            "inspect".to_string(),
            "--raw".to_string(),
            "--tls-verify=false".to_string(),
            format!("docker://{name}"),
        ]);
        assert_eq!(sha256_digest(&raw), img.digest, "{name}");
    }
}

#[test]
fn a_corrupt_blob_is_withdrawn_and_named() {
    let sandbox = Sandbox::new();
    let etcd = fixture(ETCD);
    let others: Vec<FixtureImage> = fixtures()
        .into_iter()
        .filter(|i| i.repository != etcd.repository)
        .collect();
    let layer = etcd
        .blobs
        .iter()
        .find(|b| b.kind == BlobKind::Layer && others.iter().all(|o| o.blob(&b.digest).is_none()))
        .expect("an etcd-only layer")
        .clone();
    let mut data = std::fs::read(fixtures_bundle()).expect("read");
    let at = data
        .windows(64)
        .position(|w| w == &layer.bytes[..64])
        .expect("the layer in the tar");
    data[at + 100] ^= 0xff;
    let corrupt = sandbox.work().join("corrupt.tar");
    std::fs::write(&corrupt, &data).expect("write");

    // Served before it is checked: the client never gets the whole wrong blob.
    let s = Server::start(&sandbox, &[&corrupt], &[]);
    let url = format!("{}/v2/{}/blobs/{}", s.url, etcd.repository, layer.digest);
    match http::get(&url) {
        Ok(r) => assert_ne!(
            (r.status, r.body.len()),
            (200, layer.bytes.len()),
            "a complete wrong blob"
        ),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}"),
    }
    // Once found, withdrawn for every later client.
    let again = http::get(&url).expect("GET");
    assert_eq!(
        (again.status, code_of(&again)),
        (404, "BLOB_UNKNOWN".to_string())
    );
    drop(s);

    // Hashed in the background from the start: found before anyone asks for it.
    let s = Server::start(&sandbox, &[&corrupt], &[]);
    let found = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        s.log().contains(&layer.digest)
    });
    assert!(
        found,
        "the background check names the corrupt blob:\n{}",
        s.log()
    );
    let url = format!("{}/v2/{}/blobs/{}", s.url, etcd.repository, layer.digest);
    let r = http::get(&url).expect("GET");
    assert_eq!((r.status, code_of(&r)), (404, "BLOB_UNKNOWN".to_string()));
    drop(s);

    // Checked before listening: withdrawn (404) and named with the image it breaks.
    let s = Server::start(&sandbox, &[&corrupt], &["--verify-first"]);
    let url = format!("{}/v2/{}/blobs/{}", s.url, etcd.repository, layer.digest);
    let r = http::get(&url).expect("GET");
    assert_eq!((r.status, code_of(&r)), (404, "BLOB_UNKNOWN".to_string()));
    let log = s.log();
    assert!(
        log.contains(&layer.digest) && log.contains(&etcd.reference()),
        "the corrupt blob and the image it breaks are named:\n{log}"
    );
    // The other images are served whole.
    let pause = fixture(PAUSE);
    let raw = skopeo_ok([
        "inspect".to_string(),
        "--raw".to_string(),
        "--tls-verify=false".to_string(),
        format!("docker://{}/{}", s.host, pause.reference()),
    ]);
    assert_eq!(sha256_digest(&raw), pause.digest);
}

#[test]
fn a_truncated_bundle_is_refused_at_start() {
    let sandbox = Sandbox::new();
    let data = std::fs::read(fixtures_bundle()).expect("read");
    let cut = sandbox.work().join("cut.tar");
    std::fs::write(&cut, &data[..data.len() / 2]).expect("write");
    let out = sandbox
        .ferry()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(&cut)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("serve");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot serve") && stderr.contains("truncated"),
        "{stderr}"
    );
}

#[test]
fn a_shutdown_lets_a_running_transfer_finish_and_refuses_new_ones() {
    let sandbox = Sandbox::new();
    let big = crate::support::fixtures::sized("rancher/big-layer:v1", 48 << 20);
    let bundle = bundle_of(&sandbox, std::slice::from_ref(&big), "big");
    let s = Server::start(&sandbox, &[&bundle], &[]);
    let layer = big
        .blobs
        .iter()
        .max_by_key(|b| b.bytes.len())
        .expect("layer");
    let (host, port) = s.host.rsplit_once(':').expect("host:port");
    let mut conn = http::connect(host, port.parse().expect("port"), false).expect("connect");
    use std::io::{Read as _, Write as _};
    write!(
        conn,
        "GET /v2/{}/blobs/{} HTTP/1.1\r\nHost: {}\r\n\r\n",
        big.repository, layer.digest, s.host
    )
    .expect("request");
    let mut reader = BufReader::new(conn);
    let head = http::read_head(&mut reader)
        .expect("head")
        .expect("a response");
    let (status, headers) = http::parse_response_head(&head).expect("parse");
    assert_eq!(status, 200);
    let length: usize = http::header(&headers, "content-length")
        .expect("length")
        .parse()
        .expect("number");
    assert_eq!(length, layer.bytes.len());
    let mut body = vec![0u8; 1 << 20];
    reader.read_exact(&mut body).expect("first MiB");

    s.terminate();
    let refused = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        http::get(&format!("{}/v2/", s.url)).is_err()
    });
    assert!(refused, "new connections are refused once the signal is in");

    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("the rest of the blob");
    body.extend_from_slice(&rest);
    assert_eq!(body.len(), length);
    assert_eq!(
        sha256_digest(&body),
        layer.digest,
        "the whole blob, after the signal"
    );
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
}
