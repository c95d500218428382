//! Reference documents generated from the API itself, so they cannot drift from it:
//! `docs/troubleshooting.md` (one entry per condition reason the operator writes) and
//! `docs/api-reference.md` (every field of both kinds, from the CRD schemas).
//! `cargo run -p lustre-api --bin docgen` writes them; a test fails when they are stale.

use serde_json::Value;

use crate::constants::reason;

/// What a reason means for the person reading it: (reason, kind, cause, what to do).
/// `kind` is `progress` (wait), `ok`, or `problem` (someone must act).
pub const GUIDE: [(&str, &str, &str, &str); 32] = [
    (
        reason::READY,
        "ok",
        "Everything the workspace asked for exists: the file system is AVAILABLE, its data repositories are linked, and the claim is Bound.",
        "Mount the claim named in `status.claimName` in your pods.",
    ),
    (
        reason::PENDING,
        "progress",
        "The operator has not acted on this generation of the spec yet (it was just created or edited).",
        "Wait a few seconds. If it stays Pending, check that the operator is running: `kubectl -n lustre-system get pods` and its logs.",
    ),
    (
        reason::CREATING,
        "progress",
        "AWS is creating the security group, the file system (usually 5-10 minutes) or a data repository association.",
        "Wait. `kubectl get lws -w` shows the phase change; the operator polls AWS in one batched call for all workspaces.",
    ),
    (
        reason::UPDATING,
        "progress",
        "AWS is applying a change: a larger storage capacity, a new throughput, or an association being created or removed.",
        "Wait. Capacity increases take from minutes to hours on the AWS side; the claim stays usable meanwhile.",
    ),
    (
        reason::DELETING,
        "progress",
        "The workspace was deleted and the operator is removing, in order, the claim and the volume (together), the data repository links, the file system and the security group.",
        "Wait. If it stays here, look at the other conditions: a pod may still use the claim (ClaimInUse).",
    ),
    (
        reason::CLAIM_IN_USE,
        "problem",
        "The workspace is being deleted but pods still name its claim; Kubernetes keeps the claim (the `kubernetes.io/pvc-protection` finalizer) while any scheduled pod names it, finished (Succeeded, Failed) or not, and the operator keeps the file system until they are gone. The volume's delete goes out right after the claim's; Kubernetes keeps the volume (`kubernetes.io/pv-protection`) while the claim is bound, and the reason stays until both are gone (one wait). The message says whether the operator counted pods on the claim; when it counted none, the claim and the volume wait for kube-controller-manager's pvc-protection and pv-protection controllers, which take minutes on a busy control plane.",
        "Delete the pods that name the claim, finished ones too: `kubectl get pods -n <namespace> -o wide` and look for the claim in their volumes (a Job's `ttlSecondsAfterFinished` deletes its pods by itself). Deletion then continues by itself.",
    ),
    (
        reason::CLASS_NOT_FOUND,
        "problem",
        "The workspace names a LustreWorkspaceClass that does not exist, or names none and no class is marked as the default.",
        "`kubectl get lwc` to list the classes; fix `spec.className`, or ask the platform team to create the class or mark one with the annotation `workspaces.lustre.dev/is-default-class: \"true\"`. The workspace is retried as soon as the class appears.",
    ),
    (
        reason::INVALID_SPEC,
        "problem",
        "The spec breaks a rule that needs the class to check (size above the class's limit, an S3 path outside the class's allowed prefixes or `autoExport` on one of its read-only prefixes, a tag the class sets, a namespace the class does not admit, a throughput on a deployment type taken from the class's defaults) or an immutable field changed. The message lists every violation with its field. No AWS call was made.",
        "Edit the workspace as the message says (`kubectl edit lws <name>`), or ask the platform team to change the class. Nothing is retried until the spec or the class changes.",
    ),
    (
        reason::FILE_SYSTEM_FAILED,
        "problem",
        "AWS reports the file system FAILED or MISCONFIGURED (the message is AWS's failure details: a subnet without free addresses, a disabled KMS key, security group rules FSx cannot use), or the file system recorded in status no longer exists in AWS (deleted outside the operator).",
        "Fix the cause AWS names (often in the class: subnet, KMS key, security groups), then delete the workspace and create it again. Deleting still cleans up whatever exists. The operator does not retry a failed file system on its own.",
    ),
    (
        reason::DATA_REPOSITORY_FAILED,
        "problem",
        "AWS reports a data repository association FAILED or MISCONFIGURED, usually because FSx cannot read or write the S3 bucket (bucket policy, KMS on the bucket, a missing bucket).",
        "Check the bucket named in the message: it must exist in the file system's region and allow the FSx service-linked role. Then remove the repository from the spec and add it again.",
    ),
    (
        reason::AWS_REJECTED,
        "problem",
        "AWS refused a request as invalid; the message is AWS's own words (for example a subnet in another availability zone than expected, or a combination of settings FSx does not support).",
        "Change what the message points at (in the workspace or its class). The operator retries after a change, not before.",
    ),
    (
        reason::AWS_RETRYING,
        "progress",
        "AWS throttled a call or failed transiently (5xx, timeout). The operator backs off, with jitter and a growing delay, and retries.",
        "Usually nothing. If it lasts, other tools may be using the account's FSx or EC2 API budget; the operator's metric `lustre_operator_aws_requests_total{outcome=\"throttled\"}` shows how often.",
    ),
    (
        reason::ACCESS_DENIED,
        "problem",
        "The operator's IAM role may not perform an action; the message names it.",
        "Attach `deploy/iam/policy.json` to the operator's role (IRSA or EKS Pod Identity), including the S3 statement for your buckets. The operator retries with a growing back-off (at most 5 minutes apart), so the workspace continues by itself once the permission is there. Resources created outside the operator lack its tag and are deliberately out of its reach.",
    ),
    (
        reason::LIMIT_EXCEEDED,
        "problem",
        "An AWS service quota was reached (file systems, total storage, security groups or rules per VPC).",
        "Delete unused workspaces or ask AWS for a higher quota (Service Quotas console, service Amazon FSx or Amazon VPC). The operator retries with a growing back-off (at most 5 minutes apart) and continues by itself once there is room.",
    ),
    (
        reason::ADOPTION_REFUSED,
        "problem",
        "`spec.fileSystemId` names a file system this workspace may not adopt. The operator gives one answer for every case, so that it tells nothing about file systems you cannot see: the class has no `adoption` policy; the file system does not exist in the class's region, or is in another VPC than the class's subnet; it is not a SCRATCH_2 / PERSISTENT_2 Lustre file system; it lacks a tag the policy requires; another workspace owns it or adopts it; or the operator kept it (`Retain`) from a workspace of another namespace.",
        "Ask the platform team which class admits adoption (`kubectl get lwc -o yaml`: `spec.adoption.fileSystemTags`) and have the file system's owner tag it so; a kept file system can be adopted again from the namespace it was kept from. Delete this workspace and create it again with the right `className` (it is immutable).",
    ),
    (
        reason::CLAIM_CONFLICT,
        "problem",
        "A PersistentVolumeClaim named like the workspace's claim (`spec.claimName`, or the workspace's name) already exists in the namespace and was not made for this workspace. The operator never takes over or deletes a claim it did not make, and makes no AWS change for the workspace while the name is taken.",
        "Delete or rename the other claim if it is unused, or create the workspace again with another `spec.claimName` (it cannot change on an existing workspace).",
    ),
    (
        reason::NAMESPACE_NOT_ALLOWED,
        "problem",
        "The workspace's class admits namespaces by label (`allowedNamespaces`), and this namespace's labels do not match (never did, or were changed). The operator makes no AWS change for the workspace while that is so: no file system is created, resized or linked. What exists is kept: the file system, its data and the claim stay, and pods that mount the claim keep running. Deleting the workspace still cleans up as its deletion policy says.",
        "Ask the platform team which label the class wants (`kubectl get lwc <class> -o jsonpath='{.spec.allowedNamespaces}'`) and have the namespace labelled so (`kubectl label namespace <ns> <key>=<value>`); the operator notices the label at once (it watches namespaces) and carries on. Or use a class that admits this namespace (a new workspace: `className` is immutable).",
    ),
    (
        reason::NOT_MANAGED,
        "ok",
        "The class does not ask the operator to manage a security group (`securityGroup.managed: false`); the file system uses the class's own groups.",
        "Nothing to do. The platform team is responsible for the Lustre ports (TCP 988 and 1018-1023) on those groups.",
    ),
    (
        reason::NONE_REQUESTED,
        "ok",
        "The workspace links no S3 data repository.",
        "Nothing to do. Add `spec.dataRepositories` to link S3 prefixes the class allows.",
    ),
    (
        reason::WAITING,
        "progress",
        "This part waits for an earlier one (the volume waits for the file system, associations wait for AVAILABLE).",
        "Wait; the condition of the earlier part says what is happening.",
    ),
    (
        reason::RETAINED,
        "ok",
        "`deletionPolicy: Retain`: the workspace is gone from Kubernetes, but its file system, data repository links and security group were kept on purpose and tagged `workspaces.lustre.dev/retained=true`. An Event names their ids.",
        "Adopt the file system in a new workspace with `spec.fileSystemId`, or delete it in AWS when it is no longer needed.",
    ),
    (
        reason::EXPORTING,
        "progress",
        "The workspace is being deleted and its `exportOnDelete` links are being exported to S3 by an FSx export task; nothing is unlinked or deleted until it ends. `status.lastExport` shows the task and its counts.",
        "Wait. It is canceled and counted as failed after `spec.deletionExport.timeoutMinutes` (default 1440).",
    ),
    (
        reason::EXPORTED,
        "ok",
        "The export before deletion finished: every file under the `exportOnDelete` links was written to S3. `status.lastExport` names the task and the report.",
        "Nothing to do: the deletion goes on.",
    ),
    (
        reason::EXPORT_FAILED,
        "problem",
        "The export before deletion failed (some files could not be written: the report under the link's S3 path lists them), was refused by FSx, ran longer than its timeout, or cannot run (the file system is MISCONFIGURED). With `failurePolicy: Block` (the default) the deletion stops and the file system is kept; with `Continue` it went on without the export.",
        "Fix the cause (often the bucket's policy or the link's prefix), then set annotation `workspaces.lustre.dev/retry-export` to a new value to export again; or set `spec.deletionExport.failurePolicy: Continue` to delete without the export.",
    ),
    (
        reason::IMPORTING,
        "progress",
        "A link with `importMetadataOnCreate` is AVAILABLE and an FSx import task is loading the listing of its S3 prefix; the workspace is Ready when it has finished.",
        "Wait: large prefixes take minutes. `kubectl get lws -o yaml` shows each link's `imported` once done.",
    ),
    (
        reason::IMPORT_FAILED,
        "problem",
        "The import of a newly linked prefix failed or was refused by FSx (the message carries FSx's words and the file counts); the link itself stays.",
        "Fix the cause (often the bucket's policy or an object FSx cannot read), then set annotation `workspaces.lustre.dev/retry-import` to a new value to import again; or remove `importMetadataOnCreate` from the link to have files appear lazily.",
    ),
    (
        reason::OVER_BUDGET,
        "problem",
        "The class's `namespaceLimits` (`maxWorkspaces`, `maxStorageCapacityGiB`, `maxMonthlyCost`) leave no room in this namespace for this workspace, or for its growth. The message names the limit, what the namespace uses and what this workspace asks. Nothing was created in AWS; a workspace already Ready keeps its file system at its current size.",
        "Delete a workspace of the namespace you no longer need (the waiting ones go ahead by themselves, oldest first), ask for less, or ask the platform team to raise the class's limits.",
    ),
    (
        reason::EXPIRY_SCHEDULED,
        "ok",
        "The workspace has an expiry (its own `spec.expiry`, or the class's default or longest lifetime for its deployment type) and it is further away than the class's `expiry.warnBefore`. `status.expiresAt` says when; the condition `Expiring` says why.",
        "Nothing, unless you need the workspace longer: change `spec.expiry` (the class's `maxLifetime` still caps it).",
    ),
    (
        reason::IN_USE,
        "ok",
        "Pods that have not finished use the claim, so the idle clock of `expiry.afterIdle` does not run (`status.idleSince` is empty).",
        "Nothing: the clock starts when the last of them ends.",
    ),
    (
        reason::EXPIRES_SOON,
        "problem",
        "The workspace expires within the class's `expiry.warnBefore` (default 1h); a Warning Event `ExpiresSoon` was published once. At `status.expiresAt` the operator deletes the workspace, and with it the file system unless `deletionPolicy` is Retain.",
        "To keep it: start a pod that uses the claim (resets an idle expiry), or move `spec.expiry.at` / `afterIdle` later, or remove `spec.expiry` (a class default or `maxLifetime` may still apply). Copy what you need to S3 before then, or use `action: ExportThenDelete`.",
    ),
    (
        reason::EXPIRED,
        "ok",
        "The expiry passed and the operator deleted the workspace (an Event `Expired` says which deadline). With `action: ExportThenDelete` its links are exported to S3 first; then the usual cleanup follows `deletionPolicy`.",
        "Nothing. Create a new workspace if you need one again; a Retained file system can be adopted with `spec.fileSystemId` where the class allows adoption.",
    ),
    (
        reason::PODS_NOT_WATCHED,
        "problem",
        "The workspace has an `afterIdle` expiry but this operator does not watch pods (installed with `expiry.watchPods: false`), so it cannot tell when the claim is idle. A time (`at`) and the class's `maxLifetime` still apply.",
        "Ask the platform team to install with `expiry.watchPods: true`, or use `expiry.at` instead.",
    ),
];

/// `docs/troubleshooting.md`.
pub fn troubleshooting() -> String {
    let mut out = String::from(
        "<!-- Generated by `cargo run -p lustre-api --bin docgen` from crates/api/src/docs.rs. Do not edit. -->\n\
         # Troubleshooting\n\n\
         Every reason the operator can write in a workspace's conditions, what caused it, and what to do.\n\
         See them with `kubectl describe lws <name>` (conditions and Events) or\n\
         `kubectl get lws <name> -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{\"\\n\"}{end}'`.\n\n\
         | Reason | Kind | |\n|---|---|---|\n",
    );
    for (r, kind, _, _) in GUIDE {
        out.push_str(&format!(
            "| `{r}` | {kind} | [what to do](#{}) |\n",
            r.to_lowercase()
        ));
    }
    for (r, kind, cause, fix) in GUIDE {
        out.push_str(&format!(
            "\n## {r}\n\n*{kind}*\n\n**Cause.** {cause}\n\n**What to do.** {fix}\n"
        ));
    }
    out
}

/// `docs/api-reference.md`: every field of both kinds with its type, description and rules.
pub fn api_reference() -> String {
    let mut out = String::from(
        "<!-- Generated by `cargo run -p lustre-api --bin docgen` from the CRD schemas. Do not edit. -->\n\
         # API reference: `workspaces.lustre.dev/v1alpha1`\n\n\
         The same text is what `kubectl explain` shows. Rules are checked when the object is\n\
         applied (the API server answers 422 with the rule's message).\n",
    );
    for crd in crate::crd::crds() {
        let names = &crd.spec.names;
        let scope = &crd.spec.scope;
        for version in &crd.spec.versions {
            let Some(schema) = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
            else {
                continue;
            };
            let schema = serde_json::to_value(schema).unwrap_or_default();
            out.push_str(&format!(
                "\n## {} ({scope}, short name{} {}{})\n\n",
                names.kind,
                if names.short_names.as_ref().is_some_and(|s| s.len() > 1) {
                    "s"
                } else {
                    ""
                },
                names
                    .short_names
                    .clone()
                    .unwrap_or_default()
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                names
                    .categories
                    .as_ref()
                    .map(|c| format!(", categories {}", c.join(", ")))
                    .unwrap_or_default()
            ));
            if let Some(d) = schema["description"].as_str() {
                out.push_str(&format!("{d}\n\n"));
            }
            out.push_str("| Field | Type | Description |\n|---|---|---|\n");
            for part in ["spec", "status"] {
                fields(&mut out, part, &schema["properties"][part], &schema);
            }
        }
    }
    out
}

fn type_of(s: &Value) -> String {
    let base = s["type"].as_str().unwrap_or("object").to_string();
    let mut t = match base.as_str() {
        "array" => format!("[]{}", type_of(&s["items"])),
        "object" if s["additionalProperties"].is_object() => {
            format!("map[string]{}", type_of(&s["additionalProperties"]))
        }
        "integer" => "integer".into(),
        _ => base,
    };
    if let Some(e) = s["enum"].as_array() {
        t = format!(
            "{t}: {}",
            e.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" \\| ")
        );
    }
    t
}

fn fields(out: &mut String, path: &str, s: &Value, parent: &Value) {
    if s.is_null() {
        return;
    }
    let name = path.rsplit('.').next().unwrap_or(path);
    let required = parent["required"]
        .as_array()
        .is_some_and(|r| r.iter().any(|v| v == name));
    let mut desc = s["description"]
        .as_str()
        .unwrap_or_default()
        .replace('\n', " ")
        .replace('|', "\\|");
    let mut rules: Vec<String> = Vec::new();
    for (k, label) in [
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("maxItems", "max items"),
        ("pattern", "pattern"),
        ("default", "default"),
    ] {
        let shown = match &s[k] {
            Value::Null => continue,
            Value::String(x) => x.clone(),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
                _ => n.to_string(),
            },
            other => other.to_string(),
        };
        rules.push(format!("{label} `{shown}`"));
    }
    for v in s["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(m) = v["message"].as_str() {
            rules.push(m.replace('|', "\\|"));
        }
    }
    if !rules.is_empty() {
        desc.push_str(&format!(" *Rules:* {}.", rules.join("; ")));
    }
    out.push_str(&format!(
        "| `{path}`{} | {} | {desc} |\n",
        if required { " (required)" } else { "" },
        type_of(s)
    ));
    let (props, holder) = if s["type"] == "array" {
        (&s["items"]["properties"], &s["items"])
    } else {
        (&s["properties"], s)
    };
    if let Some(m) = props.as_object() {
        let suffix = if s["type"] == "array" { "[]" } else { "" };
        for (k, child) in m {
            fields(out, &format!("{path}{suffix}.{k}"), child, holder);
        }
    }
}
