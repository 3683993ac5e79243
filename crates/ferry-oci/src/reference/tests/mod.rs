//! Tests of image references, by topic: docker's documented cases, the errors and their
//! messages, modifiers and equality (`cases`); registry prefixes and the RKE rewrite
//! (`rebase`); property tests of parsing and rebasing (`properties`).

mod cases;
mod properties;
mod rebase;

use super::Reference;

fn parse(s: &str) -> Reference {
    match Reference::parse(s) {
        Ok(r) => r,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}
