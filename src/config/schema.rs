//! `switchyard schema`: the JSON Schema of the config file, derived from the file structs
//! (`file.rs`) with every default of `defaults.rs` written into it.

/// The JSON Schema (draft 2020-12) of the config file, generated from the structs the loader
/// reads (`switchyard schema`; committed as `conf/switchyard.schema.json`).
pub fn json_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<super::file::FileConfig>();
    let mut schema = serde_json::to_value(&schema).unwrap_or_default();
    for d in crate::config::defaults::TABLE {
        annotate(&mut schema, d);
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Write one default into the schema: the property's `default`, and "(default …)" at the end
/// of its description. Returns whether the schema has the key (a test checks every key).
fn annotate(schema: &mut serde_json::Value, d: &crate::config::defaults::Default) -> bool {
    let Some(at) = locate(schema, "", &d.key.split('.').collect::<Vec<_>>()) else {
        return false;
    };
    let Some(prop) = schema.pointer_mut(&at).and_then(|p| p.as_object_mut()) else {
        return false;
    };
    prop.insert("default".into(), crate::config::defaults::json(d));
    let description = prop
        .get("description")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .trim_end_matches('.')
        .to_string();
    let description = if description.is_empty() {
        format!("Default {}.", d.text)
    } else if let Some(open) = description.strip_suffix(')') {
        format!("{open}; default {}).", d.text)
    } else {
        format!("{description} (default {}).", d.text)
    };
    prop.insert("description".into(), description.into());
    true
}

/// The JSON pointer of the schema node for `keys` (`*`: any entry of a mapping or list),
/// starting at the node at `at` and following `$ref`s and `anyOf`s.
pub(super) fn locate(schema: &serde_json::Value, at: &str, keys: &[&str]) -> Option<String> {
    let Some((key, rest)) = keys.split_first() else {
        return Some(at.to_string());
    };
    let node = schema.pointer(at)?;
    let mut next = Vec::new();
    if *key == "*" {
        for child in ["additionalProperties", "items"] {
            if node.get(child).is_some_and(|c| c.is_object()) {
                next.push(format!("{at}/{child}"));
            }
        }
    } else if node.get("properties").and_then(|p| p.get(key)).is_some() {
        next.push(format!("{at}/properties/{key}"));
    }
    if let Some(r) = node.get("$ref").and_then(|r| r.as_str())
        && let Some(found) = locate(schema, r.strip_prefix('#')?, keys)
    {
        return Some(found);
    }
    for alt in ["anyOf", "oneOf"] {
        let n = node.get(alt).and_then(|a| a.as_array()).map_or(0, Vec::len);
        for i in 0..n {
            if let Some(found) = locate(schema, &format!("{at}/{alt}/{i}"), keys) {
                return Some(found);
            }
        }
    }
    next.into_iter().find_map(|n| locate(schema, &n, rest))
}
