//! Label and field selectors, the JSONPath subset printer columns use, and the patch kinds
//! kubectl and kube-rs send.

use serde_json::{Map, Value};

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (`a=b,c!=d,e in (f,g),!h,i`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Req>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn set_values(s: &str) -> Result<Vec<String>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected (values) in {s:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(s) {
            let p = part.trim();
            if let Some(k) = p.strip_prefix('!') {
                reqs.push(Req::NotExists(k.trim().into()));
            } else if let Some((k, v)) = p.split_once("!=") {
                reqs.push(Req::NotEq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
            } else if let Some((k, v)) = p.split_once(" notin ") {
                reqs.push(Req::NotIn(k.trim().into(), set_values(v)?));
            } else if let Some((k, v)) = p.split_once(" in ") {
                reqs.push(Req::In(k.trim().into(), set_values(v)?));
            } else if !p.is_empty() {
                reqs.push(Req::Exists(p.into()));
            }
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k) == Some(v.as_str()),
            Req::NotEq(k, v) => get(k) != Some(v.as_str()),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A field selector: `metadata.name=x`, `metadata.namespace!=y`, and any other dotted path
/// compared as a string.
#[derive(Clone, Debug, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> Self {
        Self(
            s.split(',')
                .filter(|p| !p.trim().is_empty())
                .filter_map(|p| {
                    if let Some((k, v)) = p.split_once("!=") {
                        Some((k.trim().to_string(), false, v.trim().to_string()))
                    } else {
                        p.split_once("==")
                            .or_else(|| p.split_once('='))
                            .map(|(k, v)| (k.trim().to_string(), true, v.trim().to_string()))
                    }
                })
                .collect(),
        )
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut v = obj;
            for seg in path.split('.') {
                v = &v[seg];
            }
            let have = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (have == *want) == *eq
        })
    }
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[*].b`, escaped
/// dots (`.metadata.annotations.x\.y/z`), and filters `[?(@.type=="Ready")]`.
pub fn json_path(obj: &Value, path: &str) -> Vec<Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut current = vec![obj.clone()];
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    key.push(chars[i]);
                    i += 1;
                }
                current = current
                    .iter()
                    .filter_map(|v| v.get(&key).cloned())
                    .collect();
            }
            '[' => {
                let end = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .map(|p| p + i)
                    .unwrap_or(chars.len());
                let inner: String = chars[i + 1..end].iter().collect();
                i = end + 1;
                current = index(&current, inner.trim());
            }
            _ => i += 1,
        }
    }
    current
}

fn index(current: &[Value], inner: &str) -> Vec<Value> {
    let items = current.iter().filter_map(Value::as_array).flatten();
    if inner == "*" {
        return items.cloned().collect();
    }
    if let Ok(n) = inner.parse::<usize>() {
        return current.iter().filter_map(|v| v.get(n).cloned()).collect();
    }
    // ?(@.field=="value") or ?(@.field)
    let cond = inner
        .trim_start_matches('?')
        .trim_start_matches('(')
        .trim_end_matches(')');
    let cond = cond.trim_start_matches('@');
    let (field, want) = match cond.split_once("==") {
        Some((f, v)) => (
            f.trim(),
            Some(v.trim().trim_matches('"').trim_matches('\'').to_string()),
        ),
        None => (cond.trim(), None),
    };
    items
        .filter(|item| {
            let got = json_path(item, field);
            match &want {
                Some(w) => got.iter().any(|g| match g {
                    Value::String(s) => s == w,
                    other => other.to_string().as_str() == w.as_str(),
                }),
                None => !got.is_empty(),
            }
        })
        .cloned()
        .collect()
}

/// Renders JSONPath results as kubectl shows them in a table cell.
pub fn cell(values: &[Value]) -> Value {
    match values {
        [] => Value::String(String::new()),
        [Value::String(s)] => Value::String(s.clone()),
        [v @ (Value::Number(_) | Value::Bool(_))] => v.clone(),
        many => Value::String(
            many.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    }
}

/// A strategic merge patch, approximated: a JSON merge patch in which lists of objects that
/// carry a `name` (containers, volumes, env) merge by name, and `$patch` / `$setElementOrder`
/// directives are dropped.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                } else {
                    strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (Value::Array(t), Value::Array(p))
            if p.iter().all(|x| x.get("name").is_some()) && !p.is_empty() =>
        {
            for item in p {
                let name = item.get("name").cloned();
                match t.iter_mut().find(|x| x.get("name") == name.as_ref()) {
                    Some(existing) => strategic_merge(existing, item),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, p) => {
            let mut p = p.clone();
            strip_directives(&mut p);
            *t = p;
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// Server-side apply, approximated for a single writer per field set: maps merge
/// recursively, lists and scalars are replaced by the applied value.
pub fn apply_merge(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                apply_merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, a) => *t = a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "x", "tier": "db"});
        let l = labels.as_object().expect("map");
        for (sel, want) in [
            ("app=x", true),
            ("app==x,tier=db", true),
            ("app!=x", false),
            ("tier in (db, web)", true),
            ("tier notin (db)", false),
            ("app", true),
            ("!missing", true),
            ("missing", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).expect(sel).matches(l),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn json_paths_of_printer_columns() {
        let obj = json!({
            "metadata": {"annotations": {"workspaces.lustre.dev/is-default-class": "true"}},
            "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}], "phase": "Ready"},
            "spec": {"accessModes": ["ReadWriteMany"]}
        });
        assert_eq!(json_path(&obj, ".status.phase"), [json!("Ready")]);
        assert_eq!(
            json_path(&obj, r#".status.conditions[?(@.type=="Ready")].status"#),
            [json!("True")]
        );
        assert_eq!(
            json_path(
                &obj,
                r".metadata.annotations.workspaces\.lustre\.dev/is-default-class"
            ),
            [json!("true")]
        );
        assert_eq!(
            cell(&json_path(&obj, ".spec.accessModes")),
            json!("ReadWriteMany")
        );
        assert_eq!(json_path(&obj, ".status.missing"), Vec::<Value>::new());
    }

    #[test]
    fn strategic_merge_merges_named_lists() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}});
        strategic_merge(
            &mut pod,
            &json!({"spec": {"containers": [{"name": "b", "image": "2"}], "$setElementOrder/containers": []}}),
        );
        assert_eq!(pod["spec"]["containers"][1]["image"], "2");
        assert_eq!(pod["spec"]["containers"][0]["image"], "1");
        assert!(pod["spec"].get("$setElementOrder/containers").is_none());
    }
}
