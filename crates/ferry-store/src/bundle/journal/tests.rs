//! Unit tests of `store/bundle/journal.rs`.

use super::*;
use crate::bundle::testutil::digest_of;

fn plan() -> (Plan, Digest, Digest) {
    let (a, b) = (digest_of(b"a"), digest_of(b"b"));
    let plan = Plan::new(
        [("index.json", b"{}".to_vec())],
        [(a.clone(), 100), (b.clone(), 10)],
    );
    (plan.expect("plan"), a, b)
}

#[test]
fn replays_in_order_and_ignores_a_torn_tail() {
    let (plan, a, b) = plan();
    let mut text = header_line(&plan, None);
    for r in [
        Record::Progress(a.clone(), 50),
        Record::Done(b.clone()),
        Record::Progress(a.clone(), 60),
    ] {
        text.push_str(&r.line());
    }
    let full = text.len() as u64;
    let (state, valid) = replay(text.as_bytes(), &plan, None).expect("replays");
    assert_eq!(valid, full);
    assert_eq!(state.progress_of(&a), Some(60));
    assert!(state.is_done(&b));

    for torn in ["done sha256:12", "progress", "done sha256:zz\n", "\0\0\0"] {
        let damaged = format!("{text}{torn}");
        let (again, valid) = replay(damaged.as_bytes(), &plan, None).expect("torn tail ignored");
        assert_eq!((again, valid), (state.clone(), full), "{torn:?}");
    }
    let reset = format!("{text}{}", Record::Progress(b.clone(), 0).line());
    let (state, _) = replay(reset.as_bytes(), &plan, None).expect("replays");
    assert!(!state.is_done(&b) && state.progress_of(&b).is_none());
}

#[test]
fn refuses_other_plans_and_inner_damage() {
    let (plan, a, _) = plan();
    let text = header_line(&plan, None);
    let other = Plan::new([("index.json", b"{ }".to_vec())], []).expect("plan");
    assert!(replay(text.as_bytes(), &other, None).is_none());
    assert!(replay(b"", &plan, None).is_none());
    let inner = format!("{text}garbage\n{}", Record::Done(a.clone()).line());
    assert!(replay(inner.as_bytes(), &plan, None).is_none());
    let too_far = format!("{text}{}", Record::Progress(a.clone(), 101).line());
    let (state, valid) = replay(too_far.as_bytes(), &plan, None).expect("last line ignored");
    assert_eq!(state.progress_count(), 0);
    assert_eq!(valid, text.len() as u64);
    let unknown = format!("{text}{}", Record::Done(digest_of(b"zzz")).line());
    let (state, _) = replay(unknown.as_bytes(), &plan, None).expect("last line ignored");
    assert_eq!(state.done_count(), 0);
}
