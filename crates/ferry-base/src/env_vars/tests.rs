//! The environment is declared once: every variable read is in [`EnvVars::ALL`], no other file
//! of the workspace reads the environment, and the README's table lists exactly these names.

use std::collections::BTreeSet;
use std::path::Path;

use super::EnvVars;

/// The variable names in the first column of the README's "Environment variables" table.
fn readme_names() -> BTreeSet<String> {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("\n## Environment variables\n")
        .nth(1)
        .expect("the README has an `## Environment variables` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut names = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap_or("");
        for part in first.split('`').skip(1).step_by(2) {
            if !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                names.insert(part.to_string());
            }
        }
    }
    names
}

#[test]
fn the_readme_lists_every_declared_variable_and_no_other() {
    let declared: BTreeSet<String> = EnvVars::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        declared.len(),
        EnvVars::ALL.len(),
        "a name is listed twice in ALL"
    );
    assert_eq!(readme_names(), declared, "README table vs EnvVars::ALL");
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_env_vars_rs_reads_the_environment() {
    // The workspace: the CLI crate's src/ and every layer crate's.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates"))
        .expect("read crates")
        .flatten()
    {
        sources(&krate.path().join("src"), &mut files);
    }
    assert!(
        files.len() > 100,
        "the scan found the sources: {}",
        files.len()
    );
    let own = Path::new("ferry-base/src/env_vars.rs");
    let readers: Vec<String> = files
        .iter()
        .filter(|p| !p.ends_with(own))
        .filter(|p| {
            let name = p.to_string_lossy();
            !name.ends_with("tests.rs") && !name.contains("/tests/")
        })
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            text.contains("std::env::var")
                || text.contains("env::var_os(")
                || text.contains("env::vars(")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        readers.is_empty(),
        "read the environment through EnvVars::var: {readers:?}"
    );
}
