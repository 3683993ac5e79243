//! The error chain as one line ([`flatten`]): what every layer needs to turn a typed error
//! with sources (reqwest and io hide the useful part in the chain) into a message, without
//! reaching up into the CLI's rendering (`error.rs`, exit codes and hints).

/// An error and its sources as one line (reqwest and io hide the useful part in the chain);
/// a source whose text is already included is skipped.
pub fn flatten(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}
