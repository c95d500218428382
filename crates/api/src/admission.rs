//! Admission of a custom resource against its CRD's OpenAPI v3 schema, as kube-apiserver does
//! it: structural checks (types, enums, patterns, lengths, ranges, item counts, list-map keys,
//! unknown fields) and the `x-kubernetes-validations` CEL rules, with `oldSelf` on update.
//!
//! The fixture corpus test runs every fixture through this and through the Rust
//! [`crate::validation`], and the sandbox API server admits custom resources with it, so there
//! is one implementation of "what the API server would say".

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;

use crate::messages;
use crate::validation::Violation;

/// Structural and CEL violations of `object` (and `old` on update) against `schema`, the
/// CRD version's `openAPIV3Schema` as JSON.
/// Schema defaults are applied first, as the API server does before it runs CEL rules; a
/// blocking schema violation ([`messages::blocks_cel`]) skips the CEL rules, as it does there.
pub fn admit(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<Violation> {
    let object = kube::core::cel::apply_defaults(schema, object);
    let old = old.map(|o| kube::core::cel::apply_defaults(schema, o));
    let mut out = structural(schema, &object);
    if out.iter().any(|v| messages::blocks_cel(&v.message)) {
        out.push(Violation {
            field: messages::CEL_NOT_CHECKED_FIELD.into(),
            message: messages::CEL_NOT_CHECKED.into(),
        });
        return out;
    }
    if let Err(errors) = kube::core::cel::Validator::new().validate(schema, &object, old.as_ref()) {
        out.extend(errors.into_vec().into_iter().map(|e| Violation {
            // A rule on the object itself has no path; kube-apiserver prints it as `<nil>`.
            field: if e.field_path.is_empty() {
                messages::ROOT_FIELD.into()
            } else {
                e.field_path
            },
            message: e.message,
        }));
    }
    out
}

/// `object` with the schema's defaults filled in, as the API server stores it.
pub fn apply_defaults(schema: &Value, object: &Value) -> Value {
    kube::core::cel::apply_defaults(schema, object)
}

/// The structural (non-CEL) violations of `value` against `schema`.
pub fn structural(schema: &Value, value: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    walk(schema, value, "", &mut out);
    out
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        other => type_name(value) == other,
    }
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let get = |k: &str| schema.get(k);
    let flag = |k: &str| get(k).and_then(Value::as_bool).unwrap_or(false);
    let at = if path.is_empty() { "<root>" } else { path };

    if value.is_null() {
        // kube-apiserver drops nulls of non-nullable fields rather than refusing them.
        return;
    }
    if flag("x-kubernetes-int-or-string") {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            out.push(Violation {
                field: at.to_string(),
                message: format!(
                    "Invalid value: must be an integer or a string, not {}",
                    type_name(value)
                ),
            });
        }
        return;
    }
    if let Some(expected) = get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        out.push(Violation {
            field: at.to_string(),
            message: format!(
                "Invalid value: \"{}\": {at} in body must be of type {expected}",
                type_name(value)
            ),
        });
        return;
    }

    if let Some(allowed) = get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
        out.push(Violation {
            field: at.to_string(),
            message: messages::unsupported(value, &allowed),
        });
    }

    match value {
        Value::String(s) => check_string(schema, s, at, out),
        Value::Number(n) => check_number(schema, n, at, out),
        Value::Array(items) => check_array(schema, items, path, at, out),
        Value::Object(map) => {
            let count = map.len();
            if let Some(max) = get("maxProperties").and_then(Value::as_u64)
                && count as u64 > max
            {
                out.push(Violation {
                    field: at.to_string(),
                    message: messages::too_many(count, max),
                });
            }
            for req in get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = req.as_str()
                    && map.get(name).is_none_or(Value::is_null)
                {
                    out.push(Violation {
                        field: child(path, name),
                        message: messages::required(),
                    });
                }
            }
            let properties = get("properties").and_then(Value::as_object);
            let additional = get("additionalProperties");
            let preserve = flag("x-kubernetes-preserve-unknown-fields");
            for (key, v) in map {
                // Every object has these; kube-apiserver validates them apart from the schema.
                if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let sub = child(path, key);
                if let Some(prop) = properties.and_then(|p| p.get(key)) {
                    walk(prop, v, &sub, out);
                } else if let Some(add) = additional.filter(|a| a.is_object()) {
                    walk(add, v, &sub, out);
                } else if properties.is_some() && !preserve {
                    out.push(Violation {
                        field: sub.clone(),
                        message: format!("unknown field \"{sub}\""),
                    });
                }
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn check_string(schema: &Value, s: &str, at: &str, out: &mut Vec<Violation>) {
    let num = |k: &str| schema.get(k).and_then(Value::as_u64);
    let len = s.chars().count() as u64;
    if let Some(min) = num("minLength").filter(|m| len < *m) {
        out.push(Violation {
            field: at.to_string(),
            message: messages::too_short(at, min),
        });
    }
    if let Some(max) = num("maxLength").filter(|m| len > *m) {
        out.push(Violation {
            field: at.to_string(),
            message: messages::too_long(max),
        });
    }
    // kube-apiserver checks the formats it knows; date-time is the one these CRDs use.
    if schema.get("format").and_then(Value::as_str) == Some("date-time")
        && serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>(
            Value::String(s.to_string()),
        )
        .is_err()
    {
        out.push(Violation {
            field: at.to_string(),
            message: messages::not_a_time(at, s),
        });
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        let matches = Regex::new(pattern)
            .map(|re| re.is_match(s))
            .unwrap_or(false);
        if !matches {
            out.push(Violation {
                field: at.to_string(),
                message: messages::no_match(at, pattern),
            });
        }
    }
}

fn check_number(schema: &Value, n: &serde_json::Number, at: &str, out: &mut Vec<Violation>) {
    let Some(x) = n.as_f64() else { return };
    let bound = |k: &str| schema.get(k).and_then(Value::as_f64);
    let show = |b: f64| {
        if b.fract() == 0.0 {
            format!("{}", b as i64)
        } else {
            b.to_string()
        }
    };
    if let Some(min) = bound("minimum").filter(|m| x < *m) {
        out.push(Violation {
            field: at.to_string(),
            message: messages::below_minimum(at, show(min)),
        });
    }
    if let Some(max) = bound("maximum").filter(|m| x > *m) {
        out.push(Violation {
            field: at.to_string(),
            message: messages::above_maximum(at, show(max)),
        });
    }
    // `format: int32` is documentation only: kube-apiserver stores any integer, which is why
    // every int32 field of ours carries a `maximum`.
    // kube-apiserver reads schema bounds as float64: on an integer field a bound that is not
    // an int64 there (i64::MAX rounds up to 2^63) fails every object that has the field.
    if schema.get("type").and_then(Value::as_str) == Some("integer") {
        for (key, word) in [("minimum", "Minimum"), ("maximum", "Maximum")] {
            let Some(b) = bound(key) else { continue };
            if b.fract() != 0.0
                || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&b)
            {
                out.push(Violation {
                    field: "<nil>".to_string(),
                    message: format!(
                        "Invalid value: \"\": {word} boundary value must be of type integer with format int64 in {at}"
                    ),
                });
            }
        }
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, at: &str, out: &mut Vec<Violation>) {
    let num = |k: &str| schema.get(k).and_then(Value::as_u64);
    if let Some(max) = num("maxItems").filter(|m| items.len() as u64 > *m) {
        out.push(Violation {
            field: at.to_string(),
            message: messages::too_many(items.len(), max),
        });
    }
    if let Some(min) = num("minItems").filter(|m| (items.len() as u64) < *m) {
        out.push(Violation {
            field: at.to_string(),
            message: format!("Required value: must have at least {min} items"),
        });
    }
    let item_path = |i: usize| format!("{path}[{i}]");
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    out.push(Violation {
                        field: item_path(i),
                        message: messages::duplicate(item),
                    });
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: serde_json::Map<String, Value> = keys
                    .iter()
                    .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect();
                let key = Value::Object(key).to_string();
                if !seen.insert(key.clone()) {
                    out.push(Violation {
                        field: item_path(i),
                        message: messages::duplicate(key),
                    });
                }
            }
        }
        _ => {}
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(item_schema, item, &item_path(i), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 10, "format": "int32"},
                        "kind": {"type": "string", "enum": ["A", "B"]},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                        "items": {
                            "type": "array", "maxItems": 2,
                            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "properties": {"name": {"type": "string"}}}
                        },
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                }
            }
        })
    }

    fn fields(v: &[Violation]) -> Vec<(String, String)> {
        v.iter()
            .map(|v| (v.field.clone(), v.message.clone()))
            .collect()
    }

    #[test]
    fn accepts_a_valid_object() {
        let ok = json!({"spec": {"size": 10, "kind": "A", "name": "abc", "items": [{"name": "x"}], "labels": {"a": "b"}}});
        assert_eq!(structural(&schema(), &ok), vec![]);
    }

    #[test]
    fn reports_each_keyword_with_its_path() {
        let bad = json!({"spec": {"size": 5, "kind": "C", "name": "ABCDEFG",
            "items": [{"name": "x"}, {"name": "x"}, {"name": "y"}], "labels": {"a": 1}, "extra": true}});
        let got = fields(&structural(&schema(), &bad));
        let want = [
            (
                "spec.size",
                "spec.size in body should be greater than or equal to 10",
            ),
            (
                "spec.kind",
                "Unsupported value: \"C\": supported values: \"A\", \"B\"",
            ),
            ("spec.name", "Too long: may not be more than 5 bytes"),
            ("spec.name", "spec.name in body should match '^[a-z]+$'"),
            ("spec.items", "Too many: 3: must have at most 2 items"),
            ("spec.items[1]", "Duplicate value: {\"name\":\"x\"}"),
            (
                "spec.labels.a",
                "Invalid value: \"integer\": spec.labels.a in body must be of type string",
            ),
            ("spec.extra", "unknown field \"spec.extra\""),
        ];
        for (field, message) in want {
            assert!(
                got.contains(&(field.to_string(), message.to_string())),
                "missing {field}: {message} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
    }

    #[test]
    fn an_integer_bound_kube_apiserver_cannot_read_as_int64_fails_the_object() {
        // What kube-apiserver 1.37 answered for `maximum: i64::MAX` on an integer field.
        let schema = json!({"type": "object", "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": i64::MAX}}});
        let got = fields(&structural(&schema, &json!({"n": 3})));
        assert_eq!(
            got,
            vec![(
                "<nil>".to_string(),
                "Invalid value: \"\": Maximum boundary value must be of type integer with format int64 in n".to_string()
            )]
        );
    }

    #[test]
    fn reports_missing_required_fields() {
        let got = fields(&structural(&schema(), &json!({"spec": {}})));
        assert_eq!(
            got,
            vec![("spec.size".to_string(), "Required value".to_string())]
        );
    }
}
