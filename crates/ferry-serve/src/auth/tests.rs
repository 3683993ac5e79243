//! Unit tests of `serve/auth.rs`: the htpasswd file, verdicts, and what a flood of logins costs.

use base64::Engine as _;

use super::*;

const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn users(dir: &Path) -> Htpasswd {
    let path = dir.join("htpasswd");
    let hash = bcrypt::hash("s3cret:with:colons", 4).expect("hash");
    std::fs::write(&path, format!("# users\n\nnode:{hash}\n")).expect("write");
    Htpasswd::load(&path).expect("load")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_logins_once_each_and_refuses_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = Arc::new(users(dir.path()));
    let good = header("node", "s3cret:with:colons");

    // 32 nodes at once with the same login: all let in, one bcrypt check.
    let all = futures_util::future::join_all((0..32).map(|_| {
        let auth = auth.clone();
        let good = good.clone();
        async move { auth.allows(Some(&good), IP).await == Verdict::Allowed }
    }))
    .await;
    assert!(all.iter().all(|ok| *ok));
    assert_eq!(auth.verdicts.lock().expect("lock").len(), 1);

    for refused in [
        None,
        Some(header("node", "wrong")),
        Some(header("nobody", "s3cret:with:colons")),
        Some("Bearer abc".to_string()),
        Some("Basic !!!not-base64".to_string()),
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("no-colon")
        )),
    ] {
        assert_eq!(
            auth.allows(refused.as_deref(), IP).await,
            Verdict::Refused,
            "{refused:?}"
        );
    }

    // A flood of wrong passwords is bounded in memory and never forgets the login.
    for i in 0..MAX_VERDICTS + 10 {
        assert_eq!(
            auth.allows(Some(&format!("Basic {i}")), IP).await,
            Verdict::Refused
        );
    }
    assert!(auth.verdicts.lock().expect("lock").len() <= MAX_VERDICTS);
    assert_eq!(auth.allows(Some(&good), IP).await, Verdict::Allowed);
}

#[test]
fn refuses_a_file_that_is_not_bcrypt_or_names_no_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, "node:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").expect("write");
    let err = Htpasswd::load(&path).err().expect("refused").to_string();
    assert!(err.contains("htpasswd -B") && err.contains(":1:"), "{err}");
    std::fs::write(&path, "# nobody\n").expect("write");
    let err = Htpasswd::load(&path).err().expect("refused").to_string();
    assert!(err.contains("names no user"), "{err}");
}
