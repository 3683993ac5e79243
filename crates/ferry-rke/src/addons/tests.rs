use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::catalog::RawMetadata;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn reference() -> Value {
    let text = std::fs::read_to_string(data("addon-templates.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A template's fields in the reference's notation.
fn fields_json(t: &Template) -> Value {
    Value::Array(
        t.fields
            .as_ref()
            .unwrap()
            .iter()
            .map(|f| match f.condition() {
                None => json!(f.field.yaml),
                Some(c) => json!({"field": f.field.yaml, "if": c}),
            })
            .collect(),
    )
}

fn compare(ours: &AddonTemplates, dataset: &Value) {
    let ranges: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_value(dataset["ranges"].clone()).unwrap();
    let ours_ranges: BTreeMap<String, BTreeMap<String, String>> = ours
        .ranges
        .iter()
        .map(|(a, r)| (a.clone(), r.iter().cloned().collect()))
        .collect();
    assert_eq!(ours_ranges, ranges);
    let templates = dataset["templates"].as_object().unwrap();
    assert_eq!(ours.templates.len(), templates.len());
    for (key, t) in templates {
        let mine = &ours.templates[key];
        assert_eq!(mine.addon, t["addon"].as_str().unwrap(), "{key}");
        assert_eq!(fields_json(mine), t["fields"], "{key}");
    }
}

#[test]
fn embedded_matches_reference() {
    let r = reference();
    compare(AddonTemplates::embedded(), &r["datasets"]["kdm_v2.9"]);
    // var_to_field and conditions as well (scripts/gen_addon_templates.py --check says the same).
    let embedded: Value = serde_json::from_str(EMBEDDED_TEMPLATES).unwrap();
    assert_eq!(embedded["var_to_field"], r["var_to_field"]);
    for (name, c) in r["conditions"].as_object().unwrap() {
        assert_eq!(embedded["conditions"][name], c["template"], "{name}");
    }
}

#[test]
fn kdm_2022_text_reproduces_reference() {
    let bytes = std::fs::read(data("kdm-data-2022-11-21.json")).unwrap();
    let raw = RawMetadata::from_slice(&bytes, "2022").unwrap();
    let derived = AddonTemplates::from_kdm(raw.templates.unwrap(), "2022");
    compare(&derived, &reference()["datasets"]["kdm_2022_11_21"]);
}

#[test]
fn lookup_picks_rke_templates() {
    let t = AddonTemplates::embedded();
    let key = |addon, v| t.lookup(addon, v).unwrap().map(|t| t.key.clone());
    assert_eq!(
        key("calico", "v1.30.5-rancher1-1").as_deref(),
        Some("calico-v3.28.1")
    );
    assert_eq!(
        key("nginxIngress", "v1.14.6-rancher1-1").as_deref(),
        Some("nginxingress-v1.8")
    );
    assert_eq!(
        key("nginxIngress", "v1.14.6-rancher2").as_deref(),
        Some("nginxingress-v1.15")
    );
    assert_eq!(key("aci", "v1.16.15-rancher1-1"), None);
    assert!(t.lookup("calico", "1.30.5").is_err());
}

#[test]
fn every_version_matches_at_most_one_range() {
    let catalog = crate::Catalog::load(None, "v1.6.3").unwrap();
    let t = AddonTemplates::embedded();
    for v in catalog.available() {
        let sv = Version::kubernetes(v).unwrap();
        for addon in ADDONS {
            let n = t.ranges[addon]
                .iter()
                .filter(|(r, _)| Range::parse(r).unwrap().contains(&sv))
                .count();
            assert!(n <= 1, "{addon} {v}: {n} ranges");
        }
    }
}
