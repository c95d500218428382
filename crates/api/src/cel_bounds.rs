//! A cheap stand-in for kube-apiserver's CEL cost estimator, for the sandbox and the CRD tests.
//!
//! kube-apiserver refuses a CustomResourceDefinition whose `x-kubernetes-validations` rules
//! could cost more than its budget, estimating each rule from the schema's bounds: a list or
//! map without `maxItems` / `maxProperties`, or a string without `maxLength`, is assumed as
//! large as a whole request. Only the real apiserver computes that budget (the real-install
//! test applies every CRD to one); this check refuses the shapes that make a rule unbounded,
//! which is what put both CRDs over the budget once:
//!
//! - a macro (`all`, `exists`, `exists_one`, `map`, `filter`) over a list or map of the
//!   schema that has no `maxItems` / `maxProperties`;
//! - `matches()` on a string without `maxLength`, on a list item or map value without one, or
//!   on a map key (no schema keyword bounds a key's length).
//!
//! It is stricter than the real estimator, which may still accept such a rule where the
//! other numbers are small: a CRD that passes here has every iteration and regex bounded.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// One rule whose cost has no bound: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbounded {
    /// `openAPIV3Schema.properties[spec].properties[tags].x-kubernetes-validations[2].rule`
    pub field: String,
    /// What is unbounded.
    pub reason: String,
}

/// What a name in a rule stands for.
#[derive(Clone, Copy)]
enum Binding<'a> {
    /// A value of this schema (`self`, `self.a.b`, a list item, a map value).
    Schema(&'a Value),
    /// A key of a map: a string no schema keyword bounds.
    MapKey,
}

static MACRO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z_][\w.\[\]]*)\.(all|exists_one|exists|map|filter)\(\s*([A-Za-z_]\w*)\s*,")
        .unwrap_or_else(|e| panic!("macro pattern: {e}"))
});
static MATCHES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z_][\w.\[\]]*)\.matches\(")
        .unwrap_or_else(|e| panic!("matches pattern: {e}"))
});

/// Every unbounded rule of a CRD version's `openAPIV3Schema`.
pub fn unbounded_rules(schema: &Value) -> Vec<Unbounded> {
    let mut out = Vec::new();
    walk(schema, "openAPIV3Schema", &mut out);
    out
}

fn walk(node: &Value, path: &str, out: &mut Vec<Unbounded>) {
    for (i, rule) in node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let text = rule["rule"].as_str().unwrap_or_default();
        for reason in rule_reasons(node, text) {
            out.push(Unbounded {
                field: format!("{path}.x-kubernetes-validations[{i}].rule"),
                reason,
            });
        }
    }
    if let Some(props) = node["properties"].as_object() {
        for (name, child) in props {
            walk(child, &format!("{path}.properties[{name}]"), out);
        }
    }
    if node["items"].is_object() {
        walk(&node["items"], &format!("{path}.items"), out);
    }
    if node["additionalProperties"].is_object() {
        walk(
            &node["additionalProperties"],
            &format!("{path}.additionalProperties"),
            out,
        );
    }
}

fn rule_reasons(node: &Value, rule: &str) -> Vec<String> {
    let mut vars: HashMap<String, Binding> = HashMap::new();
    vars.insert("self".into(), Binding::Schema(node));
    let mut reasons = Vec::new();
    // Macros bind their variable to an item (list) or key (map) of their target; a target may
    // be an earlier macro's variable, so bind in the order the rule names them.
    for m in MACRO.captures_iter(rule) {
        let (target, var) = (&m[1], &m[3]);
        match resolve(&vars, target) {
            Some(Binding::Schema(s)) if is_list(s) => {
                if s.get("maxItems").is_none() {
                    reasons.push(format!("{target} is a list without maxItems"));
                }
                vars.insert(var.into(), Binding::Schema(&s["items"]));
            }
            Some(Binding::Schema(s)) if is_map(s) => {
                if s.get("maxProperties").is_none() {
                    reasons.push(format!("{target} is a map without maxProperties"));
                }
                vars.insert(var.into(), Binding::MapKey);
            }
            _ => {}
        }
    }
    for m in MATCHES.captures_iter(rule) {
        let target = &m[1];
        match resolve(&vars, target) {
            Some(Binding::MapKey) => reasons.push(format!(
                "{target}.matches() runs over a map key, whose length no schema keyword bounds"
            )),
            Some(Binding::Schema(s)) if s.get("maxLength").is_none() => {
                reasons.push(format!(
                    "{target}.matches() runs over a string without maxLength"
                ));
            }
            _ => {}
        }
    }
    reasons
}

fn is_list(s: &Value) -> bool {
    s["type"] == "array"
}

fn is_map(s: &Value) -> bool {
    s["type"] == "object" && s["additionalProperties"].is_object()
}

/// `self`, `self.a.b`, `x`, `x.a`, `self[k]` (a map value) to what they stand for.
fn resolve<'a>(vars: &HashMap<String, Binding<'a>>, expr: &str) -> Option<Binding<'a>> {
    let mut parts = expr.split('.');
    let first = parts.next()?;
    let (name, index) = match first.split_once('[') {
        Some((name, rest)) => (name, Some(rest)),
        None => (first, None),
    };
    let mut at = *vars.get(name)?;
    if index.is_some() {
        at = match at {
            Binding::Schema(s) if is_map(s) => Binding::Schema(&s["additionalProperties"]),
            Binding::Schema(s) if is_list(s) => Binding::Schema(&s["items"]),
            _ => return None,
        };
    }
    for field in parts {
        at = match at {
            Binding::Schema(s) => Binding::Schema(s["properties"].get(field)?),
            Binding::MapKey => return None,
        };
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reasons(schema: Value) -> Vec<String> {
        let mut out: Vec<String> = unbounded_rules(&schema)
            .into_iter()
            .map(|u| format!("{}: {}", u.field, u.reason))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_regex_over_map_keys_is_unbounded_even_with_max_properties() {
        let schema = json!({"type": "object", "properties": {"tags": {
        "type": "object", "maxProperties": 20,
        "additionalProperties": {"type": "string", "maxLength": 256},
        "x-kubernetes-validations": [
            {"rule": "self.all(k, self[k].matches('^a*$'))"},
            {"rule": "self.all(k, k.matches('^a*$'))"},
        ]}}});
        assert_eq!(
            reasons(schema),
            vec![
                "openAPIV3Schema.properties[tags].x-kubernetes-validations[1].rule: k.matches() runs over a map key, whose length no schema keyword bounds"
            ]
        );
    }

    #[test]
    fn lists_and_maps_need_their_bounds() {
        let schema = json!({"type": "object", "properties": {
            "prefixes": {"type": "array", "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(p, p.matches('^s3://'))"}]},
            "labels": {"type": "object", "additionalProperties": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(k, size(self[k]) < 9)"}]},
            "repos": {"type": "array", "maxItems": 8, "items": {"type": "object", "properties": {
                "path": {"type": "string", "maxLength": 64}}},
                "x-kubernetes-validations": [
                    {"rule": "self.all(a, self.all(b, a.path == b.path || !b.path.startsWith(a.path)))"},
                    {"rule": "self.all(a, a.path.matches('^/'))"}]},
        }});
        assert_eq!(
            reasons(schema),
            vec![
                "openAPIV3Schema.properties[labels].x-kubernetes-validations[0].rule: self is a map without maxProperties",
                "openAPIV3Schema.properties[prefixes].x-kubernetes-validations[0].rule: p.matches() runs over a string without maxLength",
                "openAPIV3Schema.properties[prefixes].x-kubernetes-validations[0].rule: self is a list without maxItems",
            ]
        );
    }

    #[test]
    fn a_string_rule_needs_max_length() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string", "x-kubernetes-validations": [{"rule": "self.matches('^x$')"}]},
            "b": {"type": "string", "maxLength": 10, "x-kubernetes-validations": [{"rule": "self.matches('^x$')"}]},
        }});
        assert_eq!(
            reasons(schema),
            vec![
                "openAPIV3Schema.properties[a].x-kubernetes-validations[0].rule: self.matches() runs over a string without maxLength"
            ]
        );
    }
}
