//! AWS keys from the environment and from cluster.yml, and their `Debug`.

use super::{ID, SECRET, keys};
use crate::registry::ecr::AwsKeys;
use ferry_base::secret::Secret;

#[test]
fn keys_from_env_and_plugin() {
    let env = |pairs: Vec<(&'static str, &'static str)>| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(AwsKeys::from_env(env(vec![])), None);
    assert_eq!(
        AwsKeys::from_env(env(vec![("AWS_ACCESS_KEY_ID", ID)])),
        None
    );
    assert_eq!(
        AwsKeys::from_env(env(vec![("AWS_SECRET_ACCESS_KEY", SECRET)])),
        None
    );
    assert_eq!(
        AwsKeys::from_env(env(vec![
            ("AWS_ACCESS_KEY_ID", ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", "")
        ])),
        Some(keys())
    );
    let k = AwsKeys::from_env(env(vec![
        ("AWS_ACCESS_KEY_ID", ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", "tok3n-value"),
    ]))
    .unwrap();
    assert_eq!(k.session_token, Some(Secret::new("tok3n-value")));

    let empty = Secret::default();
    assert_eq!(
        AwsKeys::from_plugin(Some(ID), &Secret::new(SECRET), &empty),
        Some(keys())
    );
    assert_eq!(
        AwsKeys::from_plugin(None, &Secret::new(SECRET), &empty),
        None
    );
    assert_eq!(
        AwsKeys::from_plugin(Some(""), &Secret::new(SECRET), &empty),
        None
    );
    assert_eq!(AwsKeys::from_plugin(Some(ID), &empty, &empty), None);
    assert_eq!(
        AwsKeys::from_plugin(Some(ID), &Secret::new(SECRET), &Secret::new("t0ken"))
            .unwrap()
            .session_token,
        Some(Secret::new("t0ken"))
    );
}

#[test]
fn keys_never_print() {
    let k = keys().with_session_token(Secret::new("sess-token-value"));
    let shown = format!("{k:?}");
    assert!(shown.contains("AKID…"), "{shown}");
    for secret in [ID, SECRET, "sess-token-value"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}
