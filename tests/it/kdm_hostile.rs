//! Hostile KDM metadata (issue 18, items 5 and 7): an https URL that redirects to plain
//! http, a `data.json` under the 64 MiB cap with millions of empty versions, one with millions
//! of unknown image fields, and a file over the cap. Each big case runs ferry under GNU time
//! (peak RSS) and `timeout` (a deadline instead of a hang), with its output in files so that
//! a regression cannot flood the test's own memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_test_support::static_files::StaticServer;

use crate::kdm::{Env, K, kdm_bytes, one_paragraph_error};

/// How long one run on a big input may take (debug build, 2 loaded cores).
const DEADLINE: Duration = Duration::from_secs(60);
/// The peak RSS a run on a big input may reach (the input itself is ~63 MiB).
const MAX_RSS_KIB: u64 = 400 << 10;
/// What a run may print to stderr about a big input.
const MAX_STDERR: u64 = 10_000;

/// One measured run of ferry.
struct Measured {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    stderr_bytes: u64,
    rss_kib: u64,
    seconds: f64,
}

/// Runs `ferry ARGS` under `/usr/bin/time -f %M` and `timeout`, stdout and stderr into files.
fn measured(env: &Env, args: &[&str]) -> Measured {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "GNU time is needed to measure peak RSS: apt-get install time (scripts/test.sh does)"
    );
    let dir = env.sandbox.work();
    let (rss, out, err) = (dir.join("rss"), dir.join("stdout"), dir.join("stderr"));
    let start = Instant::now();
    let status = env
        .sandbox
        .command(time)
        .env("XDG_CACHE_HOME", env.cache_home())
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .args(["timeout", "-s", "KILL"])
        .arg(DEADLINE.as_secs().to_string())
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .status()
        .expect("run ferry under /usr/bin/time");
    let seconds = start.elapsed().as_secs_f64();
    let rss_text = std::fs::read_to_string(&rss).expect("GNU time's output");
    let rss_kib = rss_text
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or_else(|| panic!("no RSS in {rss_text:?}"));
    let stderr_bytes = std::fs::metadata(&err).expect("stderr file").len();
    let head = |p: &PathBuf| {
        use std::io::Read as _;
        let mut s = String::new();
        let f = std::fs::File::open(p).expect("open output");
        let _ = f.take(MAX_STDERR * 2).read_to_string(&mut s);
        s
    };
    Measured {
        code: status.code(),
        stdout: head(&out),
        stderr: head(&err),
        stderr_bytes,
        rss_kib,
        seconds,
    }
}

impl Measured {
    /// Asserts the run met the deadline and the memory and stderr bounds.
    fn assert_bounded(&self) {
        eprintln!(
            "ferry: exit {:?}, {:.1} s, peak RSS {} MiB, {} bytes of stderr",
            self.code,
            self.seconds,
            self.rss_kib >> 10,
            self.stderr_bytes
        );
        assert_ne!(
            self.code,
            Some(137),
            "killed at the {DEADLINE:?} deadline: {}",
            self.stderr
        );
        assert!(
            self.seconds < DEADLINE.as_secs_f64(),
            "{:.1} s",
            self.seconds
        );
        assert!(
            self.rss_kib < MAX_RSS_KIB,
            "peak RSS {} MiB, limit {} MiB",
            self.rss_kib >> 10,
            MAX_RSS_KIB >> 10
        );
        assert!(
            self.stderr_bytes < MAX_STDERR,
            "{} bytes of stderr: {}",
            self.stderr_bytes,
            &self.stderr[..self.stderr.len().min(500)]
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }
}

/// The head of a data.json whose only real version is [`K`] (the default), with its etcd.
fn head(extra_fields: bool) -> Vec<u8> {
    let close = if extra_fields { "" } else { "}" };
    format!(
        r#"{{"RKEDefaultK8sVersions":{{"default":"{K}"}},"K8sVersionRKESystemImages":{{"{K}":{{"etcd":"rancher/mirrored-coreos-etcd:v3.5.4"{close}"#
    )
    .into_bytes()
}

/// Writes `bytes` to a file in the sandbox; returns its path as a string.
fn write(env: &Env, name: &str, bytes: &[u8]) -> String {
    let path = env.sandbox.work().join(name);
    std::fs::write(&path, bytes).expect("write the data.json");
    path.to_str().expect("utf-8 path").to_string()
}

/// ~63 MiB, under the 64 MiB cap: millions of empty versions `"v1.0.N":{}`.
#[test]
fn millions_of_empty_versions_are_refused_past_the_cap_in_bounded_memory() {
    let env = Env::new();
    let target = 63 << 20;
    let mut json = head(false);
    json.reserve(target + 64);
    let mut n: u64 = 0;
    while json.len() < target {
        n += 1;
        json.extend_from_slice(b",\"v1.0.");
        json.extend_from_slice(n.to_string().as_bytes());
        json.extend_from_slice(b"\":{}");
    }
    json.extend_from_slice(b"}}");
    assert!(json.len() < 64 << 20 && n > 2_000_000, "{n} versions");
    let file = write(&env, "versions.json", &json);
    drop(json);

    let run = measured(&env, &["images", "--metadata", &file, "-k", K]);
    run.assert_bounded();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let e = run.stderr.trim_end();
    assert_eq!(e.lines().count(), 1, "one paragraph: {e}");
    assert!(e.starts_with("error: ") && e.contains(&file), "{e}");
    assert!(
        e.contains("10,000") && e.contains("Kubernetes versions"),
        "names the cap: {e}"
    );
}

/// ~54 MiB: one version with 4,500,000 distinct unknown image fields. Accepted, with one
/// summary line instead of one warning per field.
#[test]
fn millions_of_unknown_image_fields_give_one_summary_line() {
    const N: u32 = 4_500_000;
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let env = Env::new();
    let mut json = head(true);
    json.reserve(N as usize * 12 + 64);
    for i in 0..N {
        let mut key = *b",\"u0000\":\"\"";
        let mut v = i as usize;
        for slot in key[3..7].iter_mut().rev() {
            *slot = DIGITS[v % DIGITS.len()];
            v /= DIGITS.len();
        }
        json.extend_from_slice(&key);
    }
    json.extend_from_slice(b"}}}");
    assert!(json.len() < 64 << 20);
    let file = write(&env, "fields.json", &json);
    drop(json);

    let run = measured(&env, &["images", "--metadata", &file, "-k", K]);
    run.assert_bounded();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "rancher/mirrored-coreos-etcd:v3.5.4\n");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line: {}", run.stderr);
    assert!(
        lines[0].contains("4,500,000") && lines[0].contains("\"u0000\""),
        "the count and the first names: {}",
        lines[0]
    );
}

/// A file over the 64 MiB cap (sparse: costs no disk) is refused before it is read.
#[test]
fn metadata_file_over_the_cap_is_refused_before_reading() {
    let env = Env::new();
    let path = env.sandbox.work().join("huge.json");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len((64 << 20) + 1).expect("sparse file");
    let file = path.to_str().expect("path");
    let run = measured(&env, &["images", "--metadata", file]);
    run.assert_bounded();
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.rss_kib < 60 << 10,
        "not read: {} MiB",
        run.rss_kib >> 10
    );
    let e = run.stderr.trim_end();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains(file) && e.contains("64 MiB"), "{e}");
}

/// An https URL answering 302 to a plain-http URL that serves valid data: refused, with an
/// error naming both URLs (no userinfo, no query); the http URL is never asked and nothing
/// is cached. A redirect from https to https still works.
#[test]
fn https_metadata_never_follows_a_redirect_to_plain_http() {
    const SECRET: &str = "s3cr3t-Pa55";
    let env = Env::new();
    let ca = env.ca.to_str().expect("path").to_string();
    let plain = StaticServer::start(&[("/data.json", kdm_bytes())], false);
    let plain_url = plain.url("/data.json");
    let srv = StaticServer::start(&[], true);
    srv.redirect("/data.json", &format!("{plain_url}?signature={SECRET}"));
    let url = srv.url("/data.json");
    let with_creds = url.replace("https://", &format!("https://robot:{SECRET}@"));

    for given in [&url, &with_creds] {
        let out = env.run(&["images", "--metadata", given, "--metadata-ca-file", &ca]);
        let e = one_paragraph_error(&out);
        assert!(e.contains(&url) && e.contains(&plain_url), "both URLs: {e}");
        assert!(!e.contains(SECRET), "{e}");
        assert!(e.contains("--metadata"), "the fix: {e}");
    }
    assert!(plain.log().is_empty(), "the http URL is never requested");
    assert!(env.cached_files().is_empty(), "nothing cached");

    let real = StaticServer::start(&[("/data.json", kdm_bytes())], true);
    srv.redirect("/moved.json", &real.url("/data.json"));
    let (out, _) = env.images(&["--metadata", &srv.url("/moved.json"), "-k", K]);
    assert!(
        out.lines().count() > 10,
        "https to https is followed: {out}"
    );
    assert_eq!(real.log().len(), 1);
}
