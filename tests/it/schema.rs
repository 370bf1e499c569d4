//! `switchyard schema`: the committed `conf/switchyard.schema.json` is what the command prints,
//! every shipped config validates against it, and misspellings are rejected (as editors using
//! yaml-language-server will show them).

use crate::support;

use serde_json::{Map, Value, json};
use std::path::Path;
use switchyard::config::yaml::{Node, NodeKind, parse};

/// The YAML tree as JSON, plain scalars typed by the YAML 1.2 core schema (as editors do).
fn to_json(n: &Node) -> Value {
    match &n.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Scalar { text, quoted: true } => json!(text),
        NodeKind::Scalar { text, .. } => match text.as_str() {
            "true" | "True" | "TRUE" => json!(true),
            "false" | "False" | "FALSE" => json!(false),
            t => t
                .parse::<i64>()
                .map(|i| json!(i))
                .or_else(|_| t.parse::<f64>().map(|f| json!(f)))
                .unwrap_or_else(|_| json!(t)),
        },
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.text.clone(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("conf/switchyard.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

fn errors(v: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let doc = to_json(&parse(yaml).unwrap());
    v.iter_errors(&doc).map(|e| e.to_string()).collect()
}

#[test]
fn the_committed_schema_is_what_the_command_prints() {
    let out = std::process::Command::new(support::binary())
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(root().join("conf/switchyard.schema.json")).unwrap();
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "conf/switchyard.schema.json is stale: run `switchyard schema > conf/switchyard.schema.json`"
    );
}

#[test]
fn every_shipped_config_validates_and_misspellings_do_not() {
    let v = validator();
    let mut checked = 0;
    for dir in ["conf", "conf/examples"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let errs = errors(&v, &text);
                assert!(errs.is_empty(), "{}: {errs:?}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} files");

    let base = "listen: [\"127.0.0.1:8080\"]\nupstreams:\n  app:\n    servers:\n      - addr: \"127.0.0.1:3000\"\n";
    assert!(errors(&v, base).is_empty());
    for (bad, what) in [
        (base.replace("addr:", "adr:"), "a misspelt server key"),
        (
            format!("{base}    balance: leastconn\n"),
            "an unknown balance",
        ),
        (format!("{base}lisen: 8080\n"), "a misspelt top-level key"),
        (
            "listen:\n  - addr: \"0.0.0.0:443\"\n    tsl: {}\nupstreams: {}\n".to_string(),
            "a misspelt listener key",
        ),
        (
            format!("{base}routes:\n  - {{path: /, upstream: app, strip_prefx: true}}\n"),
            "a misspelt route key",
        ),
        (
            base.replace(
                "\"127.0.0.1:3000\"",
                "\"127.0.0.1:3000\"\n        weight: heavy",
            ),
            "a weight that is not a number",
        ),
    ] {
        assert!(!errors(&v, &bad).is_empty(), "{what} passed the schema");
    }
    // Plain numbers where the loader takes them as text.
    let sizes = format!("{base}limits: {{max_body_bytes: 1048576}}\n");
    assert!(errors(&v, &sizes).is_empty(), "{:?}", errors(&v, &sizes));
}
