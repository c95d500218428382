//! Admission: namespaces that must exist, custom resources checked against their CRD's
//! schema and CEL rules, CRDs checked and registered as served types.

use serde_json::{Value, json};

use super::*;
use crate::kube::registry::{self, ResourceType};

impl Store {
    pub(super) fn admit(
        &self,
        rt: &ResourceType,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<Value, ApiErr> {
        if rt.group == "apiextensions.k8s.io" {
            Self::admit_crd(obj)?;
        }
        let Some(schema) = rt.schema.as_ref().filter(|_| rt.custom) else {
            return Ok(obj.clone());
        };
        let defaulted = lustre_api::admission::apply_defaults(schema, obj);
        let violations = lustre_api::admission::admit(schema, &defaulted, old);
        if violations.is_empty() {
            return Ok(defaulted);
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        let causes: Vec<(String, String)> = violations
            .iter()
            .map(|v| {
                // A rule on the object itself: no value printed, as kube-apiserver does.
                if v.field == lustre_api::messages::ROOT_FIELD {
                    return (v.field.clone(), format!("Invalid value: {}", v.message));
                }
                let value = crate::kube::value_at(&defaulted, &v.field);
                (
                    v.field.clone(),
                    format!("Invalid value: {value}: {}", v.message),
                )
            })
            .collect();
        let listed: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let mut e = ApiErr::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {}",
                rt.qualified_kind(),
                if listed.len() == 1 {
                    listed[0].clone()
                } else {
                    format!("[{}]", listed.join(", "))
                }
            ),
        );
        e.causes = causes;
        e.details = Some(Box::new((name.into(), rt.group.clone(), rt.kind.clone())));
        Err(e)
    }

    pub(super) fn check_namespace(&self, rt: &ResourceType, ns: &str) -> Result<(), ApiErr> {
        if !rt.namespaced {
            return Ok(());
        }
        let nsrt = self
            .find_type("", "namespaces")
            .cloned()
            .ok_or_else(|| ApiErr::new(500, "InternalError", "no namespaces"))?;
        match self.objects.get(&Self::key(&nsrt, "", ns)) {
            None => Err(ApiErr::new(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
            )),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => Err(ApiErr::new(
                403,
                "Forbidden",
                format!(
                    "{} in namespace {ns} is forbidden: namespace {ns} is being terminated",
                    rt.plural
                ),
            )),
            _ => Ok(()),
        }
    }

    /// kube-apiserver refuses a CRD whose CEL rules could cost more than its budget; the
    /// sandbox has no cost estimator, so it refuses the unbounded shapes that cause it
    /// (`lustre_api::cel_bounds`): stricter than the real server, never laxer on those.
    pub(super) fn admit_crd(crd: &Value) -> Result<(), ApiErr> {
        let versions = crd["spec"]["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut causes = Vec::new();
        for (i, version) in versions.iter().enumerate() {
            let schema = &version["schema"]["openAPIV3Schema"];
            // Where kube-apiserver reports it: one version's schema as the CRD's validation.
            let at = if versions.len() == 1 {
                "spec.validation".to_string()
            } else {
                format!("spec.versions[{i}].schema")
            };
            for u in lustre_api::cel_bounds::unbounded_rules(schema) {
                causes.push((
                    format!("{at}.{}", u.field),
                    format!(
                        "Forbidden: estimated rule cost exceeds budget ({}; the sandbox does not estimate by how much) (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)",
                        u.reason
                    ),
                ));
            }
        }
        if causes.is_empty() {
            return Ok(());
        }
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        let listed: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let mut e = ApiErr::new(
            422,
            "Invalid",
            format!(
                "CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: [{}]",
                listed.join(", ")
            ),
        );
        e.causes = causes;
        e.details = Some(Box::new((
            name.into(),
            "apiextensions.k8s.io".into(),
            "CustomResourceDefinition".into(),
        )));
        Err(e)
    }

    pub(super) fn register_crd(&mut self, crd: &Value) {
        for t in registry::from_crd(crd) {
            self.types.retain(|x| {
                !(x.group == t.group && x.version == t.version && x.plural == t.plural)
            });
            self.types.push(t);
        }
        // Kubernetes reports the CRD as established.
        let rt = self
            .find_type("apiextensions.k8s.io", "customresourcedefinitions")
            .cloned();
        if let Some(rt) = rt {
            let name = crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let key = Self::key(&rt, "", &name);
            if let Some(obj) = self.objects.get_mut(&key) {
                obj["status"] = json!({
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now_rfc3339()},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now_rfc3339()}
                    ],
                    "acceptedNames": crd["spec"]["names"].clone(),
                    "storedVersions": crd["spec"]["versions"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect::<Vec<_>>(),
                });
            }
        }
    }
}
