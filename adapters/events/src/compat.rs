//! The compatibility gate: would a consumer written against a released schema break
//! on messages of the code's schema of the same `(eventType, schemaVersion)`?
//!
//! API.md allows one change within a schema version: a payload gains an optional
//! field. Everything else found here (a field removed or renamed, retyped, made
//! required, an added required field, an enum value removed or added, a `const`,
//! `pattern` or `format` changed, a limit widened) needs a new `schemaVersion` and an
//! upcaster in [`crate::decode`]. Narrowing a limit or a type passes: every message of
//! the new schema still fits the old one.

use serde_json::Value;

/// What in `new` would break a consumer of `old`, one line each (empty: compatible).
/// Both are self-contained schemas (subschemas inlined, as [`crate::schema`] makes
/// them).
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut found = Vec::new();
    compare("", old, new, &mut found);
    found
}

fn compare(path: &str, old: &Value, new: &Value, found: &mut Vec<String>) {
    let at = if path.is_empty() { "/" } else { path };
    let old_types = types(old);
    let new_types = types(new);
    // No type before means any type: a new one only narrows it.
    if !old_types.is_empty() && !new_types.iter().all(|t| old_types.contains(t)) {
        found.push(format!("{at}: type {old_types:?} became {new_types:?}"));
    }
    for keyword in ["const", "pattern", "format"] {
        if old.get(keyword) != new.get(keyword) {
            found.push(format!(
                "{at}: {keyword} {} became {}",
                show(old.get(keyword)),
                show(new.get(keyword))
            ));
        }
    }
    if old.get("enum") != new.get("enum") {
        let values = |schema: &Value| schema.get("enum").and_then(Value::as_array).cloned();
        match (values(old), values(new)) {
            (Some(before), Some(after)) => {
                for gone in before.iter().filter(|v| !after.contains(v)) {
                    found.push(format!("{at}: enum value {gone} removed"));
                }
                for added in after.iter().filter(|v| !before.contains(v)) {
                    found.push(format!("{at}: enum value {added} added"));
                }
            }
            (before, after) => found.push(format!(
                "{at}: enum {} became {}",
                show(before.map(Value::Array).as_ref()),
                show(after.map(Value::Array).as_ref())
            )),
        }
    }
    for (keyword, wider) in [
        ("maximum", Wider::Larger),
        ("maxLength", Wider::Larger),
        ("maxItems", Wider::Larger),
        ("minimum", Wider::Smaller),
        ("minLength", Wider::Smaller),
        ("minItems", Wider::Smaller),
    ] {
        let (before, after) = (number(old, keyword), number(new, keyword));
        let widened = match (before, after, wider) {
            (Some(_), None, _) => true,
            (Some(b), Some(a), Wider::Larger) => a > b,
            (Some(b), Some(a), Wider::Smaller) => a < b,
            _ => false,
        };
        if widened {
            found.push(format!(
                "{at}: {keyword} {} became {} (wider)",
                show(old.get(keyword)),
                show(new.get(keyword))
            ));
        }
    }
    compare_properties(path, old, new, found);
    if let (Some(before), Some(after)) = (old.get("items"), new.get("items")) {
        compare(&format!("{path}/items"), before, after, found);
    }
}

fn compare_properties(path: &str, old: &Value, new: &Value, found: &mut Vec<String>) {
    let empty = serde_json::Map::new();
    let properties = |schema: &Value| {
        schema
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let required = |schema: &Value| -> Vec<String> {
        schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| {
                names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (before, after) = (properties(old), properties(new));
    let (was_required, is_required) = (required(old), required(new));
    for (name, schema) in &before {
        let field = format!("{path}/{name}");
        match after.get(name) {
            None => found.push(format!("{field}: removed (or renamed)")),
            Some(now) => compare(&field, schema, now, found),
        }
        if !was_required.contains(name) && is_required.contains(name) {
            found.push(format!("{field}: made required"));
        }
    }
    for name in after.keys().filter(|name| !before.contains_key(*name)) {
        if is_required.contains(name) {
            found.push(format!("{path}/{name}: added as required"));
        }
    }
}

#[derive(Clone, Copy)]
enum Wider {
    Larger,
    Smaller,
}

fn types(schema: &Value) -> Vec<String> {
    match schema.get("type") {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn number(schema: &Value, keyword: &str) -> Option<f64> {
    schema.get(keyword).and_then(Value::as_f64)
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "none".to_owned(), Value::to_string)
}
