//! The layering, kept by the build: each crate under `crates/` may depend only on the layers
//! below it (ARCHITECTURE.md, "Crates"). The compiler already refuses a cycle; this test also
//! refuses an arrow that runs sideways (copy, verify and serve never name each other) or skips
//! the picture (rke never names store or plan; store never names plan).

use std::collections::BTreeSet;
use std::path::Path;

/// Each crate and the ferry crates its `[dependencies]` may name.
const ALLOWED: &[(&str, &[&str])] = &[
    ("ferry-base", &[]),
    ("ferry-oci", &[]),
    ("ferry-rke", &["ferry-base", "ferry-oci"]),
    ("ferry-store", &["ferry-base", "ferry-oci"]),
    ("ferry-plan", &["ferry-base", "ferry-oci", "ferry-store"]),
    (
        "ferry-copy",
        &["ferry-base", "ferry-oci", "ferry-plan", "ferry-store"],
    ),
    (
        "ferry-verify",
        &["ferry-base", "ferry-oci", "ferry-plan", "ferry-store"],
    ),
    (
        "ferry-serve",
        &["ferry-base", "ferry-oci", "ferry-plan", "ferry-store"],
    ),
];

/// The `ferry-*` names in the `[dependencies]` table of a Cargo.toml (not dev-dependencies:
/// a test may use a helper of a crate it sits above anyway).
fn ferry_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && line.starts_with("ferry-") {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            out.insert(name.to_string());
        }
    }
    out
}

#[test]
fn every_crate_depends_only_on_the_layers_below_it() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&crates).expect("read crates/").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{name}/Cargo.toml: {e}"));
        let allowed = ALLOWED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| {
                panic!("crates/{name} is new: add it to ALLOWED and ARCHITECTURE.md")
            })
            .1;
        let deps = ferry_dependencies(&manifest);
        let wrong: Vec<&String> = deps
            .iter()
            .filter(|d| !allowed.contains(&d.as_str()))
            .collect();
        assert!(
            wrong.is_empty(),
            "{name} depends on {wrong:?}, above or beside it"
        );
        seen.insert(name);
    }
    assert_eq!(
        seen.len(),
        ALLOWED.len(),
        "a crate of ALLOWED is gone: {seen:?}"
    );
}

#[test]
fn the_dependency_reader_sees_what_cargo_sees() {
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nferry-oci.workspace = true\nferry-store = { workspace = true }\nserde = \"1\"\n\n[dev-dependencies]\nferry-serve.workspace = true\n";
    let got: Vec<String> = ferry_dependencies(manifest).into_iter().collect();
    assert_eq!(got, ["ferry-oci", "ferry-store"]);
}
