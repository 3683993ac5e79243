use super::*;

fn all(body: &str) -> BTreeMap<String, When> {
    scan(body, &|_| true).unwrap()
}

fn w(alts: &[&[&str]]) -> When {
    alts.iter()
        .map(|a| a.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn renders_conditions_and_scopes() {
    let got = all(r#"
image: {{ .A }}
{{- if .DefaultBackend }}
  b: {{.B | quote}}
{{- else if eq .X "y" }}
  c: {{.C}}
{{- else }}
  d: {{ .D }}
{{- end }}
{{ if ne .AlpineImage "" }}{{ .AlpineImage }}{{ end }}
{{ range $k, $v := .Opts }}{{ $k }}{{ .Elem }}{{ $.Root }}{{ else }}{{ .Empty }}{{ end }}
{{ with .W }}{{ .Inner }}{{ end }}
{{/* a comment with {{ .Commented }} and }} inside */}}
{{- /* trimmed comment */ -}}
{{ $x := .Declared }}{{ "{{ .InString }}" }}
{{ toYaml .Tolerations | indent 4 }}{{ .A.Sub }}{{ (.P).Q }}{{ 0.5 }}
{{ if .U }}{{ .B }}{{ end }}{{ if .Never }}{{ if .Nested }}{{ .N }}{{ end }}{{ end }}
"#);
    assert_eq!(got["A"], w(&[&[]]));
    assert_eq!(got["B"], w(&[&[".DefaultBackend"], &[".U"]]));
    assert_eq!(got["C"], w(&[&["not (.DefaultBackend)", r#"eq .X "y""#]]));
    assert_eq!(
        got["D"],
        w(&[&["not (.DefaultBackend)", r#"not (eq .X "y")"#]])
    );
    assert_eq!(got["AlpineImage"], w(&[&[r#"ne .AlpineImage """#]]));
    assert_eq!(got["Root"], w(&[&[]]));
    assert_eq!(got["Empty"], w(&[&[]]));
    assert_eq!(got["Tolerations"], w(&[&[]]));
    assert_eq!(got["P"], w(&[&[]]));
    assert_eq!(got["N"], w(&[&[".Never", ".Nested"]]));
    for absent in [
        "Elem",
        "Inner",
        "Commented",
        "Declared",
        "InString",
        "Sub",
        "Q",
        "DefaultBackend",
        "Opts",
        "X",
        "W",
        "U",
    ] {
        assert!(!got.contains_key(absent), "{absent}: {got:?}");
    }
}

#[test]
fn broken_bodies_are_errors() {
    assert_eq!(scan("a {{ .X ", &|_| true), Err(ScanError::Unclosed(2)));
    assert!(matches!(
        scan("{{/* x }}", &|_| true),
        Err(ScanError::UnclosedComment(0))
    ));
    assert!(scan("{{ end }}", &|_| true).is_err());
    assert!(scan("{{ if .X }}", &|_| true).is_err());
    assert!(scan(&"{{ if .X }}".repeat(100), &|_| true).is_err());
    assert_eq!(all("{{- 3 }}{{-3}}").len(), 0);
}
