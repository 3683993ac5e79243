//! `Reference::parse` and `RegistryPrefix::parse` on arbitrary UTF-8: never panic, and what
//! parses keeps its documented promises (its text forms parse back to the same image;
//! `rebase` equals parsing `prefix/written` as RKE builds it).
//!
//! Input: `REFERENCE` or `REFERENCE\nPREFIX`.
#![no_main]

use ferry_oci::reference::{Reference, RegistryPrefix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let (reference, prefix) = match input.split_once('\n') {
        Some((r, p)) => (r, Some(p)),
        None => (input, None),
    };
    let prefix = prefix.and_then(|p| {
        let parsed = RegistryPrefix::parse(p).ok()?;
        assert_eq!(parsed.as_str(), p, "a prefix is kept as written");
        assert!(
            p.starts_with(parsed.host()),
            "{p:?}: host {:?}",
            parsed.host()
        );
        Some(parsed)
    });
    // Both parsers see every input, whatever the other made of it.
    let _ = RegistryPrefix::parse(reference);
    let Ok(r) = Reference::parse(reference) else {
        return;
    };
    let full = r.to_string();
    let back = Reference::parse(&full).unwrap_or_else(|e| panic!("{full:?} does not parse: {e}"));
    assert_eq!(back, r, "{reference:?} -> {full:?}");
    assert_eq!(back.to_string(), full, "the full form is stable");
    // The short form must name the same image (fuzz/regressions/reference/ holds the inputs
    // that once broke this: a Docker Hub namespace that looks like a host).
    let familiar = r.familiar();
    let back = Reference::parse(&familiar)
        .unwrap_or_else(|e| panic!("familiar {familiar:?} does not parse: {e}"));
    assert_eq!(back, r, "{reference:?} -> familiar {familiar:?}");
    assert!(
        r.tag().is_some() || r.digest().is_some(),
        "{full:?}: tag or digest"
    );
    let _ = (r.without_digest(), r.name(), r.is_docker_hub());
    if let Some(prefix) = prefix
        && let Ok(rebased) = r.try_rebase(&prefix)
    {
        let mut written = format!("{prefix}/{}", r.written_path());
        if let Some(tag) = r.tag() {
            written.push(':');
            written.push_str(tag);
        }
        if let Some(d) = r.digest() {
            written.push('@');
            written.push_str(d.as_str());
        }
        let parsed = Reference::parse(&written)
            .unwrap_or_else(|e| panic!("rebased {written:?} does not parse: {e}"));
        assert_eq!(parsed, rebased, "{reference:?} onto {prefix}");
    }
});
