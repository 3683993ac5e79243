//! Unit tests of `rke/remote.rs` and `rke/remote/cache.rs`: the cache files, the policy
//! (304, fallback, offline, what gets cached) over a scripted transport and clock, URL
//! redaction, and the size limit over a real socket.

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{Read as _, Write as _};

use super::cache::{Cache, Meta, age_text, dir_from};
use super::*;

const DAY: u64 = 86_400;
const T0: u64 = 1_700_000_000;

/// A transport that answers from a script and records what it was asked.
struct Scripted {
    answers: RefCell<Vec<Result<Answer, FetchError>>>,
    asked: RefCell<Vec<(Option<String>, Option<String>)>>,
}

impl Scripted {
    fn new(answers: Vec<Result<Answer, FetchError>>) -> Scripted {
        Scripted {
            answers: RefCell::new(answers),
            asked: RefCell::new(Vec::new()),
        }
    }
}

impl Transport for Scripted {
    fn get(
        &self,
        _url: &MetadataUrl,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Answer, FetchError> {
        self.asked
            .borrow_mut()
            .push((etag.map(str::to_string), last_modified.map(str::to_string)));
        self.answers.borrow_mut().remove(0)
    }
}

fn fresh(body: &str, etag: Option<&str>) -> Result<Answer, FetchError> {
    Ok(Answer::Fresh {
        body: body.as_bytes().to_vec(),
        etag: etag.map(str::to_string),
        last_modified: None,
    })
}

/// "Metadata" for these tests: any text starting with `{`.
fn parse(text: &str) -> Parsed<String> {
    if text.starts_with('{') {
        Ok(text.to_string())
    } else {
        Err("not JSON".into())
    }
}

fn opts(dir: &std::path::Path, offline: bool) -> RemoteOptions {
    RemoteOptions {
        ca_files: Vec::new(),
        offline,
        cache_dir: Some(dir.to_path_buf()),
        timeout: Duration::from_secs(5),
        max_bytes: 1 << 20,
    }
}

fn url() -> MetadataUrl {
    MetadataUrl::parse("https://kdm.example/release-v2.9/data.json").expect("url")
}

fn run(
    dir: &std::path::Path,
    transport: Option<&dyn Transport>,
    now: u64,
) -> Result<String, RemoteError> {
    let offline = transport.is_none();
    load_with(&url(), &opts(dir, offline), transport, now, &parse)
}

#[test]
fn download_is_cached_then_revalidated_with_its_etag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Scripted::new(vec![fresh("{1}", Some("\"v1\"")), Ok(Answer::NotModified)]);
    assert_eq!(run(dir.path(), Some(&t), T0).expect("first"), "{1}");
    assert_eq!(run(dir.path(), Some(&t), T0 + DAY).expect("second"), "{1}");
    assert_eq!(
        *t.asked.borrow(),
        vec![(None, None), (Some("\"v1\"".to_string()), None)]
    );
    let entry = Cache::new(dir.path())
        .read(&url().cache_key())
        .expect("entry");
    assert_eq!(entry.body, "{1}");
    assert_eq!(
        entry.meta.downloaded_at, T0,
        "a 304 keeps the download time"
    );
    assert_eq!(entry.meta.checked_at, T0 + DAY, "and records the check");
}

#[test]
fn last_modified_is_sent_back_when_there_is_no_etag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Ok(Answer::Fresh {
        body: b"{1}".to_vec(),
        etag: None,
        last_modified: Some("Tue, 22 Nov 2022 10:00:00 GMT".into()),
    });
    let t = Scripted::new(vec![first, Ok(Answer::NotModified)]);
    run(dir.path(), Some(&t), T0).expect("first");
    run(dir.path(), Some(&t), T0).expect("second");
    assert_eq!(
        t.asked.borrow()[1],
        (None, Some("Tue, 22 Nov 2022 10:00:00 GMT".to_string()))
    );
}

#[test]
fn a_changed_file_replaces_the_cached_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Scripted::new(vec![
        fresh("{1}", Some("\"v1\"")),
        fresh("{2}", Some("\"v2\"")),
    ]);
    run(dir.path(), Some(&t), T0).expect("first");
    assert_eq!(run(dir.path(), Some(&t), T0 + 60).expect("second"), "{2}");
    let entry = Cache::new(dir.path())
        .read(&url().cache_key())
        .expect("entry");
    assert_eq!(
        (entry.body.as_str(), entry.meta.etag.as_deref()),
        ("{2}", Some("\"v2\""))
    );
}

#[test]
fn failure_falls_back_to_the_cache_and_without_one_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = FetchError::Status {
        status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
    };
    let t = Scripted::new(vec![Err(refused)]);
    let e = run(dir.path(), Some(&t), T0).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            RemoteError::Download {
                cause: FetchError::Status { .. },
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("https://kdm.example/release-v2.9/data.json")
            && msg.contains("the server answered 503 Service Unavailable")
            && msg.contains("--offline")
            && msg.contains("--metadata data.json"),
        "{msg}"
    );

    let timed_out = FetchError::TimedOut {
        limit: Duration::from_secs(5),
    };
    let t = Scripted::new(vec![fresh("{1}", Some("\"v1\"")), Err(timed_out)]);
    run(dir.path(), Some(&t), T0).expect("download");
    assert_eq!(
        run(dir.path(), Some(&t), T0 + 3 * DAY).expect("fallback"),
        "{1}"
    );
}

#[test]
fn an_answer_that_is_not_metadata_is_not_cached() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A proxy's login page: an error, and nothing cached.
    let t = Scripted::new(vec![fresh("<html>login</html>", None)]);
    let e = run(dir.path(), Some(&t), T0).unwrap_err().to_string();
    assert!(e.contains("not RKE metadata: not JSON"), "{e}");
    assert!(Cache::new(dir.path()).read(&url().cache_key()).is_none());

    // With good data cached, the bad answer falls back to it and does not replace it.
    let t = Scripted::new(vec![fresh("{1}", None), fresh("<html>", None)]);
    run(dir.path(), Some(&t), T0).expect("good");
    assert_eq!(run(dir.path(), Some(&t), T0).expect("fallback"), "{1}");
    let entry = Cache::new(dir.path())
        .read(&url().cache_key())
        .expect("entry");
    assert_eq!(entry.body, "{1}");
}

#[test]
fn offline_reads_only_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = run(dir.path(), None, T0).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, RemoteError::NotCached { .. }), "{msg}");
    assert!(
        msg.contains("https://kdm.example/release-v2.9/data.json")
            && msg.contains(&dir.path().display().to_string())
            && msg.contains("without --offline"),
        "{msg}"
    );

    let t = Scripted::new(vec![fresh("{1}", None)]);
    run(dir.path(), Some(&t), T0).expect("download");
    assert_eq!(run(dir.path(), None, T0 + DAY).expect("offline"), "{1}");

    // No cache directory at all.
    let mut o = opts(dir.path(), true);
    o.cache_dir = None;
    let e = load_with(&url(), &o, None, T0, &parse)
        .unwrap_err()
        .to_string();
    assert!(e.contains("neither XDG_CACHE_HOME nor HOME"), "{e}");
}

#[test]
fn a_body_that_does_not_match_its_meta_is_no_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let meta = Meta::new("https://x/data.json", Some("\"e\"".into()), None, T0, "{1}");
    cache.store("k", &meta, "{1}").expect("store");
    assert_eq!(cache.read("k").expect("entry").meta, meta);

    // As after a crash between the two renames: a new body under the old meta.
    std::fs::write(cache.body_path("k"), "{2}").expect("write");
    assert!(cache.read("k").is_none(), "a mismatched pair is no entry");
    // A damaged meta file, or none.
    cache.store("k", &meta, "{1}").expect("store");
    std::fs::write(cache.meta_path("k"), "{ not json").expect("write");
    assert!(cache.read("k").is_none());
    std::fs::remove_file(cache.meta_path("k")).expect("rm");
    assert!(cache.read("k").is_none());
    // Nothing but the two files, no temp files left.
    cache.store("k", &meta, "{1}").expect("store");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn cache_dir_follows_xdg_then_home() {
    let os = |s: &str| Some(OsString::from(s));
    assert_eq!(
        dir_from(os("/xdg"), os("/home/u")),
        Some("/xdg/ferry/metadata".into())
    );
    assert_eq!(
        dir_from(os("relative"), os("/home/u")),
        Some("/home/u/.cache/ferry/metadata".into()),
        "a relative XDG_CACHE_HOME is ignored"
    );
    assert_eq!(
        dir_from(None, os("/home/u")),
        Some("/home/u/.cache/ferry/metadata".into())
    );
    assert_eq!(dir_from(os(""), os("")), None);
    assert_eq!(dir_from(None, None), None);
}

#[test]
fn ages_read_naturally() {
    assert_eq!(age_text(T0, T0 + 5), "less than a minute ago");
    assert_eq!(age_text(T0, T0 + 60), "1 minute ago");
    assert_eq!(age_text(T0, T0 + 2 * 3600 + 5), "2 hours ago");
    assert_eq!(age_text(T0, T0 + 3 * DAY + 10), "3 days ago");
    assert_eq!(
        age_text(T0 + 10, T0),
        "less than a minute ago",
        "clock skew"
    );
}

#[test]
fn credentials_stay_out_of_what_is_shown_and_the_cache_key() {
    let u =
        MetadataUrl::parse("https://robot:p%40ss@kdm.example/data.json?token=abc#f").expect("url");
    assert_eq!(u.shown(), "https://kdm.example/data.json");
    let (user, password) = u.user.as_ref().expect("credentials");
    assert_eq!((user.as_str(), password.expose()), ("robot", "p@ss"));
    assert!(!format!("{u:?}").contains("p@ss") && !format!("{u:?}").contains("p%40ss"));
    let same = MetadataUrl::parse("https://kdm.example/data.json?token=abc#f").expect("url");
    assert_eq!(
        u.cache_key(),
        same.cache_key(),
        "one cache entry whoever logs in"
    );

    assert_eq!(
        redact_text("https://u:secret@host:8443/p@th"),
        "https://host:8443/p@th"
    );
    assert_eq!(redact_text("/srv/data.json"), "/srv/data.json");
    let e = MetadataUrl::parse("https://u:secret@")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("secret"), "{e}");
    let e = MetadataUrl::parse("ftp://u:secret@host/x")
        .unwrap_err()
        .to_string();
    assert!(!e.contains("secret") && e.contains("ftp"), "{e}");
}

#[test]
fn urls_are_recognised_like_rke_does() {
    assert!(is_url(
        "https://releases.rancher.com/kontainer-driver-metadata/release-v2.9/data.json"
    ));
    assert!(is_url("HTTP://127.0.0.1:8080/data.json"));
    assert!(!is_url("data.json"));
    assert!(!is_url("file:///srv/data.json"));
    assert!(!is_url("http"));
}

/// One plain-HTTP answer of `len` bytes on a loopback socket; the port.
fn serve_once(len: usize, content_length: bool) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = if content_length {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")
            } else {
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string()
            };
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&vec![b'{'; len]);
        }
    });
    port
}

#[test]
fn answers_over_the_size_limit_are_refused_and_say_so() {
    for content_length in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = serve_once(3 << 20, content_length);
        let mut o = opts(dir.path(), false);
        o.max_bytes = 2 << 20;
        let e = load(&format!("http://127.0.0.1:{port}/data.json"), &o, parse)
            .unwrap_err()
            .to_string();
        assert!(e.contains("larger than 2 MiB"), "{e}");
        assert!(
            e.contains(&format!("http://127.0.0.1:{port}/data.json")),
            "{e}"
        );
    }
    // Under the limit, the same server's answer is accepted.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = serve_once(1000, true);
    let (text, shown) = load(
        &format!("http://127.0.0.1:{port}/data.json"),
        &opts(dir.path(), false),
        parse,
    )
    .expect("small answer");
    assert_eq!(
        (text.len(), shown),
        (1000, format!("http://127.0.0.1:{port}/data.json"))
    );
}

/// A meta file naming a body over the size cap, or a body longer than its meta says, reads
/// as absent without the body being read whole.
#[test]
fn cache_reads_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path());
    let mut meta = Meta::new("https://x/data.json", None, None, T0, "{1}");
    cache.store("k", &meta, "{1}").expect("store");
    assert!(cache.read("k").is_some());

    // The body grows past what its meta names (sparse: no disk, and never read).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(cache.body_path("k"))
        .expect("open");
    f.set_len(MAX_BYTES + 1).expect("grow");
    assert!(cache.read("k").is_none());

    // A meta naming a body larger than a download may be.
    meta.size = MAX_BYTES + 1;
    cache.write_meta("k", &meta).expect("meta");
    assert!(cache.read("k").is_none());

    // A meta file past its own cap.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(cache.meta_path("k"))
        .expect("open");
    f.set_len(super::cache::MAX_META_BYTES + 1).expect("grow");
    assert!(cache.read("k").is_none());
}
