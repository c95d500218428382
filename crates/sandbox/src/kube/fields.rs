//! Field ownership for server-side apply, kept in `metadata.managedFields` as kube-apiserver
//! keeps it (`fieldsType: FieldsV1`, `f:` keys), close enough for what clients rely on:
//!
//! - an apply that would change a field another manager owns fails with `409 Conflict`
//!   naming the field and the manager, unless forced (leader election on a Lease depends on
//!   this: two candidates applying `holderIdentity` must not both win);
//! - an apply takes ownership of what it sends; fields the manager applied before and no
//!   longer sends are removed when no other manager owns them;
//! - any other write (create, update, merge / JSON / strategic patch) gives its manager the
//!   fields it added or changed, taking them from other managers;
//! - ownership of a field that no longer exists disappears.
//!
//! Simplifications: lists are owned whole (no per-item keys), and only labels, annotations,
//! finalizers and ownerReferences of `metadata` are tracked.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// A field, as the keys from the object's root.
pub type Path = Vec<String>;

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: &'static str,
    pub subresource: String,
    pub fields: BTreeSet<Path>,
}

/// The leaf fields of an object (objects are walked; lists and scalars are leaves).
pub fn leaves(obj: &Value) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                for mk in ["labels", "annotations"] {
                    if let Some(m) = v.get(mk).and_then(Value::as_object) {
                        for (key, val) in m {
                            out.insert(
                                vec!["metadata".into(), mk.into(), key.clone()],
                                val.clone(),
                            );
                        }
                    }
                }
                for mk in ["finalizers", "ownerReferences"] {
                    if let Some(val) = v.get(mk).filter(|v| !v.is_null()) {
                        out.insert(vec!["metadata".into(), mk.into()], val.clone());
                    }
                }
            }
            _ => walk(&mut out, vec![k.clone()], v),
        }
    }
    out
}

fn walk(out: &mut BTreeMap<Path, Value>, path: Path, v: &Value) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(k.clone());
                walk(out, p, child);
            }
        }
        Value::Null => {}
        _ => {
            out.insert(path, v.clone());
        }
    }
}

/// The entries stored in an object.
pub fn read(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let mut fields = BTreeSet::new();
                    collect(&mut fields, vec![], &e["fieldsV1"]);
                    Entry {
                        manager: e["manager"].as_str().unwrap_or_default().to_string(),
                        operation: if e["operation"] == "Apply" {
                            "Apply"
                        } else {
                            "Update"
                        },
                        subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                        fields,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn collect(out: &mut BTreeSet<Path>, path: Path, v: &Value) {
    match v.as_object() {
        Some(m) if !m.is_empty() => {
            for (k, child) in m {
                if let Some(name) = k.strip_prefix("f:") {
                    let mut p = path.clone();
                    p.push(name.to_string());
                    collect(out, p, child);
                }
            }
        }
        _ if !path.is_empty() => {
            out.insert(path);
        }
        _ => {}
    }
}

/// Stores the entries in the object, dropping ownership of fields it no longer has.
pub fn write(obj: &mut Value, mut entries: Vec<Entry>, api_version: &str) {
    let present = leaves(obj);
    for e in &mut entries {
        e.fields.retain(|p| present.contains_key(p));
    }
    entries.retain(|e| !e.fields.is_empty());
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut tree = Map::new();
            for p in &e.fields {
                let mut node = &mut tree;
                for k in p {
                    node = node
                        .entry(format!("f:{k}"))
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .expect("tree nodes are objects");
                }
            }
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": api_version,
                "fieldsType": "FieldsV1", "fieldsV1": tree,
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if list.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(list);
    }
}

fn entry<'a>(
    entries: &'a mut Vec<Entry>,
    manager: &str,
    operation: &'static str,
    subresource: &str,
) -> &'a mut Entry {
    let i = match entries.iter().position(|e| {
        e.manager == manager && e.operation == operation && e.subresource == subresource
    }) {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: manager.into(),
                operation,
                subresource: subresource.into(),
                fields: BTreeSet::new(),
            });
            entries.len() - 1
        }
    };
    &mut entries[i]
}

/// Ownership after a non-apply write by `manager`: what it added or changed is its own.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
) {
    let before = old.map(leaves).unwrap_or_default();
    let after = leaves(new);
    let mut entries = old.map(read).unwrap_or_default();
    let changed: BTreeSet<Path> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    if !changed.is_empty() {
        for e in entries.iter_mut().filter(|e| e.manager != manager) {
            e.fields.retain(|p| !changed.contains(p));
        }
        entry(&mut entries, manager, "Update", subresource)
            .fields
            .extend(changed);
    }
    write(new, entries, api_version);
}

/// Fields another manager owns that an apply would change.
#[derive(Debug)]
pub struct Conflicts(pub Vec<(String, String)>);

impl Conflicts {
    /// kube-apiserver's wording.
    pub fn message(&self) -> String {
        let n = self.0.len();
        let list: Vec<String> = self
            .0
            .iter()
            .map(|(m, f)| format!("conflict with \"{m}\": {f}"))
            .collect();
        format!(
            "Apply failed with {n} conflict{}: {}",
            if n == 1 { "" } else { "s" },
            list.join("; ")
        )
    }
}

/// Server-side apply of `applied` by `manager` onto `current` (the stored object, or `None`
/// when the apply creates it). Returns the object to store.
pub fn apply(
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: &str,
    api_version: &str,
) -> Result<Value, Conflicts> {
    let mut applied = applied.clone();
    if let Some(m) = applied["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    let scope = |p: &Path| match subresource {
        "status" => p.first().is_some_and(|k| k == "status"),
        _ => true,
    };
    let wanted: BTreeMap<Path, Value> = leaves(&applied)
        .into_iter()
        .filter(|(p, _)| scope(p))
        .collect();
    let Some(current) = current else {
        let mut obj = applied;
        let fields = wanted.into_keys().collect();
        write(
            &mut obj,
            vec![Entry {
                manager: manager.into(),
                operation: "Apply",
                subresource: subresource.into(),
                fields,
            }],
            api_version,
        );
        return Ok(obj);
    };
    let have = leaves(current);
    let mut entries = read(current);
    let mut conflicts = Vec::new();
    for (p, v) in &wanted {
        if have.get(p) == Some(v) {
            continue;
        }
        for e in entries.iter().filter(|e| e.manager != manager) {
            if e.fields.contains(p) {
                conflicts.push((e.manager.clone(), format!(".{}", p.join("."))));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            return Err(Conflicts(conflicts));
        }
        for e in entries.iter_mut().filter(|e| e.manager != manager) {
            e.fields
                .retain(|p| !(wanted.contains_key(p) && have.get(p) != wanted.get(p)));
        }
    }
    let mut obj = current.clone();
    if subresource == "status" {
        super::select::apply_merge(&mut obj["status"], &applied["status"]);
    } else {
        super::select::apply_merge(&mut obj, &applied);
    }
    // What this manager applied before and no longer applies goes, unless someone else owns it.
    let mine = entry(&mut entries, manager, "Apply", subresource);
    let dropped: Vec<Path> = mine
        .fields
        .iter()
        .filter(|p| !wanted.contains_key(*p))
        .cloned()
        .collect();
    mine.fields = wanted.keys().cloned().collect();
    for p in dropped {
        let shared = entries
            .iter()
            .any(|e| e.manager != manager && e.fields.contains(&p));
        if !shared {
            remove(&mut obj, &p);
        }
    }
    write(&mut obj, entries, api_version);
    Ok(obj)
}

/// Removes a field, and the objects it leaves empty.
fn remove(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if let Some(parent) = parents
        .iter()
        .try_fold(&mut *obj, |node, k| node.get_mut(k))
        && let Some(m) = parent.as_object_mut()
    {
        m.remove(last);
        if m.is_empty() && !parents.is_empty() {
            remove(obj, parents);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
    }

    #[test]
    fn a_second_applier_of_a_different_value_conflicts_unless_forced() {
        let base = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}});
        let a =
            apply(Some(&base), &lease("a"), "mgr-a", false, "", "v1").expect("first applier wins");
        let err = apply(Some(&a), &lease("b"), "mgr-b", false, "", "v1").expect_err("conflict");
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"mgr-a\": .spec.holderIdentity"
        );
        // Same value: shared ownership, no conflict.
        let shared = apply(Some(&a), &lease("a"), "mgr-b", false, "", "v1").expect("same value");
        assert_eq!(read(&shared).len(), 2);
        let forced = apply(Some(&a), &lease("b"), "mgr-b", true, "", "v1").expect("forced");
        assert_eq!(forced["spec"]["holderIdentity"], "b");
        let owners = read(&forced);
        let a_entry = owners
            .iter()
            .find(|e| e.manager == "mgr-a")
            .expect("a keeps the rest");
        assert!(
            !a_entry
                .fields
                .contains(&vec!["spec".to_string(), "holderIdentity".to_string()])
        );
    }

    #[test]
    fn an_update_that_clears_a_field_frees_it_for_the_next_applier() {
        let base = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}});
        let a = apply(Some(&base), &lease("a"), "mgr-a", false, "", "v1").expect("a");
        let mut released = a.clone();
        released["spec"] = json!({});
        record_update(Some(&a), &mut released, "mgr-b", "", "v1");
        let holder = vec!["spec".to_string(), "holderIdentity".to_string()];
        assert!(
            read(&released).iter().all(|e| !e.fields.contains(&holder)),
            "{released:#}"
        );
        apply(Some(&released), &lease("b"), "mgr-b", false, "", "v1").expect("free to take");
    }

    #[test]
    fn fields_an_applier_stops_sending_are_removed() {
        let first = apply(
            None,
            &json!({"spec": {"a": 1, "b": 2}}),
            "m",
            false,
            "",
            "v1",
        )
        .expect("create");
        let second = apply(
            Some(&first),
            &json!({"spec": {"a": 1}}),
            "m",
            false,
            "",
            "v1",
        )
        .expect("apply");
        assert_eq!(second["spec"], json!({"a": 1}));
        assert_eq!(
            second["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:a": {}}})
        );
    }
}
