//! The decision function as a table: every row of a workspace's life, including the
//! half-done states a crash leaves behind.

use std::collections::BTreeMap;

use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::naming;
use lustre_cloud::*;
use lustre_controller::plan::restore::SourceBackup;
use lustre_controller::plan::*;

const UID: &str = "5b1d8e2a-7c3f-4a9e-b6d0-1f2e3a4b5c6d";

use lustre_api::constants::tags as tag_keys;

fn class(extra: &str) -> LustreWorkspaceClass {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: workspaces.lustre.dev/v1alpha1
kind: LustreWorkspaceClass
metadata: {{name: standard}}
spec:
  subnetId: subnet-0123456789abcdef0
  securityGroup: {{clientSecurityGroupIds: [sg-0123456789abcdef0], clientCidrs: [10.0.0.0/16]}}
  allowedDataRepositories: ["s3://ml-datasets/", "s3://ml-results/"]
  allowedNamespaces: {{matchLabels: {{lustre: enabled}}}}
  tags: {{team: ml}}
{extra}"#
    ))
    .expect("class")
}

fn unmanaged_class() -> LustreWorkspaceClass {
    let mut c = class("  kmsKeyId: alias/fsx\n");
    c.spec.security_group.managed = false;
    c.spec.security_group.additional_security_group_ids = vec!["sg-0123456789abcdef1".into()];
    c
}

fn workspace(spec: &str) -> LustreWorkspace {
    let mut ws: LustreWorkspace = serde_yaml::from_str(&format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspace\nmetadata: {{name: train, namespace: ml}}\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    ))
    .expect("workspace");
    ws.metadata.uid = Some(UID.into());
    ws
}

const TWO_REPOS: &str = "deploymentType: PERSISTENT_2\nstorageCapacityGiB: 2400\nperUnitStorageThroughput: 250\nfinalBackupOnDelete: true\ndataRepositories:\n- {name: datasets, s3Path: s3://ml-datasets/imagenet/, fileSystemPath: /datasets, autoImport: [NEW]}\n- {name: results, s3Path: s3://ml-results/, fileSystemPath: /results}";

/// The standard class with a selector the namespace's labels do not match.
fn shut_out() -> LustreWorkspaceClass {
    let mut c = class("");
    c.spec.allowed_namespaces = Some(
        serde_json::from_value(serde_json::json!({"matchLabels": {"lustre": "disabled"}}))
            .expect("selector"),
    );
    c
}

/// A subnet of vpc-1.
fn subnet(id: &str, zone: &str) -> Subnet {
    Subnet {
        id: id.into(),
        vpc_id: "vpc-1".into(),
        availability_zone: zone.into(),
    }
}

fn labels() -> BTreeMap<String, String> {
    [("lustre".to_string(), "enabled".to_string())].into()
}

fn sg(rules: usize) -> SecurityGroup {
    let all = lustre_ingress(
        "sg-0000000000000000a",
        &[
            Peer::Group("sg-0123456789abcdef0".into()),
            Peer::Cidr("10.0.0.0/16".into()),
        ],
    );
    SecurityGroup {
        id: "sg-0000000000000000a".into(),
        name: naming::security_group_name(UID),
        vpc_id: "vpc-1".into(),
        tags: Tags::new(),
        ingress: all.into_iter().take(rules).collect(),
    }
}

fn fs(lifecycle: Lifecycle, capacity: i32) -> FileSystem {
    FileSystem {
        id: "fs-0123456789abcdef0".into(),
        arn: "arn:aws:fsx:us-east-1:1:file-system/fs-0123456789abcdef0".into(),
        lifecycle,
        failure_message: None,
        dns_name: Some("fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com".into()),
        mount_name: Some("abcdef12".into()),
        storage_capacity_gib: capacity,
        deployment_type: DeploymentType::Persistent2,
        per_unit_storage_throughput: Some(250),
        subnet_id: None,
        vpc_id: None,
        network_interface_ids: vec![],
        file_system_type_version: Some("2.15".into()),
        tags: naming::owner_tags(
            &naming::Owner {
                namespace: "ml".into(),
                name: "train".into(),
                uid: UID.into(),
                class: "standard".into(),
            },
            &Tags::new(),
            &Tags::new(),
        ),
        update_in_progress: false,
        settings: Default::default(),
    }
}

fn dra(
    id: &str,
    path: &str,
    s3: &str,
    import: Vec<S3Event>,
    lifecycle: Lifecycle,
) -> DataRepositoryAssociation {
    DataRepositoryAssociation {
        id: id.into(),
        file_system_id: "fs-0123456789abcdef0".into(),
        file_system_path: path.into(),
        data_repository_path: s3.into(),
        lifecycle,
        failure_message: None,
        auto_import: import,
        auto_export: vec![],
        tags: Tags::new(),
    }
}

fn both_dras(l: Lifecycle) -> Vec<DataRepositoryAssociation> {
    vec![
        dra(
            "dra-1",
            "/datasets",
            "s3://ml-datasets/imagenet/",
            vec![S3Event::New],
            l.clone(),
        ),
        dra("dra-2", "/results", "s3://ml-results/", vec![], l),
    ]
}

/// `TWO_REPOS` with the results link exported before deletion.
fn exporting(extra: &str) -> LustreWorkspace {
    workspace(&format!(
        "{}{extra}",
        TWO_REPOS.replace(
            "fileSystemPath: /results}",
            "fileSystemPath: /results, exportOnDelete: true}"
        )
    ))
}

/// The export before deletion as FSx shows it.
fn export_task(lifecycle: TaskLifecycle) -> Option<DataTask> {
    Some(DataTask {
        id: "task-0123456789abcdef0".into(),
        file_system_id: "fs-0123456789abcdef0".into(),
        task_type: Some(TaskType::Export),
        lifecycle,
        paths: vec!["results".into()],
        total: 10,
        succeeded: 7,
        failed: 3,
        report_path: None,
        failure_message: Some("3 files could not be written".into()),
        created_at: None,
        started_at: None,
        ended_at: None,
        tags: Tags::new(),
    })
}

/// `TWO_REPOS` with the results link imported when linked; `imported` as status records it.
fn importing(imported: bool) -> LustreWorkspace {
    let mut w = workspace(&TWO_REPOS.replace(
        "fileSystemPath: /results}",
        "fileSystemPath: /results, importMetadataOnCreate: true}",
    ));
    w.status = Some(lustre_api::LustreWorkspaceStatus {
        data_repositories: vec![lustre_api::DataRepositoryStatus {
            name: "results".into(),
            imported: imported.then_some(true),
            ..Default::default()
        }],
        ..Default::default()
    });
    w
}

/// The import on create as FSx shows it.
fn import_task(lifecycle: TaskLifecycle) -> Option<DataTask> {
    export_task(lifecycle).map(|t| DataTask {
        task_type: Some(TaskType::Import),
        paths: vec!["s3://ml-results/".into()],
        ..t
    })
}

/// A deletion row with the claim and volume gone.
fn export_row(name: &'static str, expect: fn(&Action) -> bool) -> Row {
    Row {
        delete: true,
        kube: KubeView::default(),
        ws: exporting(""),
        ..row(name, expect)
    }
}

fn bound() -> KubeView {
    KubeView {
        storage_class: true,
        volume: Some(VolumeView {
            zone: None,
            capacity_gib: 2400,
            file_system_id: "fs-0123456789abcdef0".into(),
            available: true,
            deleting: false,
        }),
        claim: Some(ClaimView {
            bound: true,
            deleting: false,
            ..ClaimView::default()
        }),
        claim_taken: false,
        ..KubeView::default()
    }
}

/// The workspace's claim deleted, held by pvc-protection.
fn held_claim() -> Option<ClaimView> {
    Some(ClaimView {
        bound: true,
        deleting: true,
        ..ClaimView::default()
    })
}

/// The workspace's volume deleted, held by pv-protection (the rest as bound).
fn deleting_volume() -> KubeView {
    KubeView {
        volume: bound().volume.map(|v| VolumeView {
            deleting: true,
            ..v
        }),
        ..bound()
    }
}

/// A row of a workspace adopting `fs-0123456789abcdef0` in a class whose policy admits file
/// systems tagged `lustre-adoptable: "true"`.
fn adopt(name: &'static str, expect: fn(&Action) -> bool) -> Row {
    Row {
        ws: workspace("storageCapacityGiB: 2400\nfileSystemId: fs-0123456789abcdef0"),
        class: Some(class(
            "  adoption: {fileSystemTags: {lustre-adoptable: \"true\"}}\n",
        )),
        sg: None,
        dras: vec![],
        ..row(name, expect)
    }
}

fn with_tag(fs: &FileSystem, key: &str, value: &str) -> FileSystem {
    let mut f = fs.clone();
    f.tags.insert(key.into(), value.into());
    f
}

/// One row: a description, the inputs, and a check of the action.
struct Row {
    name: &'static str,
    ws: LustreWorkspace,
    class: Option<LustreWorkspaceClass>,
    /// The subnets looked up (the class's, the file system's).
    subnets: Vec<Subnet>,
    sg: Option<SecurityGroup>,
    fs: Option<FileSystem>,
    dras: Vec<DataRepositoryAssociation>,
    kube: KubeView,
    delete: bool,
    /// This install's id.
    cluster: Option<&'static str>,
    /// The export before deletion: its task, overdue, FSx's refusal.
    export: (Option<DataTask>, bool, Option<&'static str>),
    /// The import on create's task.
    import: Option<DataTask>,
    /// Other tasks running on the file system (while deleting).
    running: Vec<String>,
    /// What the namespace's other workspaces use before this one.
    budget: Option<budget::NamespaceUse>,
    /// The pods that use the claim.
    pods: expiry::Pods,
    /// The backup `spec.source` names, as looked up.
    source: Option<SourceBackup>,
    expect: fn(&Action) -> bool,
}

/// The volume made, not yet seen by kube-controller-manager's binder; no claim yet.
fn volume_unseen_by_the_binder() -> KubeView {
    KubeView {
        volume: bound().volume.map(|v| VolumeView {
            available: false,
            ..v
        }),
        claim: None,
        ..bound()
    }
}

fn row(name: &'static str, expect: fn(&Action) -> bool) -> Row {
    Row {
        name,
        ws: workspace(TWO_REPOS),
        class: Some(class("")),
        subnets: vec![subnet("subnet-0123456789abcdef0", "us-east-1a")],
        sg: Some(sg(6)),
        fs: Some(fs(Lifecycle::Available, 2400)),
        dras: both_dras(Lifecycle::Available),
        kube: bound(),
        delete: false,
        cluster: None,
        export: (None, false, None),
        import: None,
        running: vec![],
        budget: None,
        pods: expiry::Pods::Unknown,
        source: None,
        expect,
    }
}

/// The row's inputs (labels are the fixed namespace labels).
fn inputs<'a>(
    r: &'a Row,
    labels: &'a BTreeMap<String, String>,
    budget: Option<&'a budget::Budget>,
) -> Inputs<'a> {
    Inputs {
        workspace: &r.ws,
        class: match &r.class {
            Some(c) => ClassLookup::Found(c),
            None => ClassLookup::Missing("standard"),
        },
        namespace_labels: labels,
        cluster_id: r.cluster,
        aws: AwsView {
            subnets: &r.subnets,
            security_group: r.sg.as_ref(),
            file_system: r.fs.as_ref(),
            associations: &r.dras,
            export: HookView {
                task: r.export.0.as_ref(),
                overdue: r.export.1,
                refused: r.export.2,
            },
            import: HookView {
                task: r.import.as_ref(),
                ..HookView::default()
            },
            running_tasks: &r.running,
            source: r.source.as_ref(),
        },
        kube: &r.kube,
        budget,
        pods: r.pods,
        now: NOW.parse().expect("time"),
    }
}

/// When every row is decided.
const NOW: &str = "2026-12-04T12:00:00Z";

/// An RFC 3339 time as status and metadata hold it.
fn time(s: &str) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(s.parse().expect("time"))
}

/// `TWO_REPOS` with an expiry, created at 08:00, Ready at 09:00, and idle since `idle` (as
/// status records them).
fn expiring(expiry: &str, idle: Option<&str>) -> LustreWorkspace {
    let mut w = workspace(&format!("{TWO_REPOS}\nexpiry: {expiry}"));
    w.metadata.creation_timestamp = Some(time("2026-12-04T08:00:00Z"));
    w.status = Some(lustre_api::LustreWorkspaceStatus {
        ready_time: Some(time("2026-12-04T09:00:00Z")),
        idle_since: idle.map(time),
        ..Default::default()
    });
    w
}

fn idle() -> expiry::Pods {
    expiry::Pods::Seen(lustre_controller::pods::ClaimUse::default())
}

fn in_use() -> expiry::Pods {
    expiry::Pods::Seen(lustre_controller::pods::ClaimUse {
        active: 1,
        last_active: None,
    })
}

/// The row's budget: what it says is used, against its class's limits.
fn budget_of(r: &Row) -> Option<budget::Budget> {
    r.budget.map(|used| budget::Budget {
        limits: r
            .class
            .as_ref()
            .and_then(|c| c.spec.namespace_limits.clone())
            .unwrap_or_default(),
        used,
    })
}

fn run(r: &Row) -> Action {
    let labels = labels();
    let budget = budget_of(r);
    let inputs = inputs(r, &labels, budget.as_ref());
    if r.delete {
        next_cleanup_action(&inputs)
    } else {
        next_action(&inputs)
    }
}

#[test]
fn the_lifecycle_table() {
    let failed_fs = {
        let mut f = fs(Lifecycle::Failed, 2400);
        f.failure_message = Some("The subnet has no free IP addresses".into());
        f
    };
    let foreign_fs = {
        let mut f = fs(Lifecycle::Available, 2400);
        f.tags.insert(
            lustre_api::constants::tags::UID.into(),
            "someone-else".into(),
        );
        f
    };
    let foreign_vpc1 = FileSystem {
        vpc_id: Some("vpc-1".into()),
        ..foreign_fs.clone()
    };
    // Made outside the operator, tagged as the adoption policy asks.
    let adoptable = FileSystem {
        vpc_id: Some("vpc-1".into()),
        tags: [("lustre-adoptable".to_string(), "true".to_string())].into(),
        ..fs(Lifecycle::Available, 2400)
    };
    let refused = |a: &Action| matches!(a, Action::AdoptionRefused(m) if m.contains("cannot be adopted by this workspace"));
    let vanished = {
        let mut w = workspace(TWO_REPOS);
        w.status = Some(lustre_api::LustreWorkspaceStatus {
            file_system_id: Some("fs-0123456789abcdef0".into()),
            ..Default::default()
        });
        w
    };
    let rows: Vec<Row> = vec![
        Row {
            ws: vanished,
            fs: None,
            dras: vec![],
            ..row(
                "recorded file system vanished: terminal, never a silent new one",
                |a| matches!(a, Action::FileSystemFailed(m) if m.contains("fs-0123456789abcdef0 no longer exists")),
            )
        },
        // Create.
        Row {
            class: None,
            ..row(
                "class missing",
                |a| matches!(a, Action::ClassMissing(n) if n == "standard"),
            )
        },
        Row {
            ws: workspace("storageCapacityGiB: 3600"),
            ..row(
                "invalid size: no AWS step",
                |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.storageCapacityGiB"),
            )
        },
        Row {
            ws: workspace(
                "storageCapacityGiB: 1200\ndataRepositories: [{name: x, s3Path: s3://elsewhere/, fileSystemPath: /x}]",
            ),
            ..row(
                "S3 outside the allow-list",
                |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.dataRepositories[0].s3Path"),
            )
        },
        Row {
            class: Some(shut_out()),
            fs: Some(fs(Lifecycle::Available, 1200)),
            ..row(
                "namespace shut out by the class: no AWS step, even a pending resize",
                |a| matches!(a, Action::NamespaceNotAllowed { class, namespace } if class == "standard" && namespace == "ml"),
            )
        },
        Row {
            class: Some(shut_out()),
            ws: workspace("storageCapacityGiB: 3600"),
            ..row(
                "namespace shut out comes before an invalid spec (one reason, the gate)",
                |a| matches!(a, Action::NamespaceNotAllowed { .. }),
            )
        },
        Row {
            sg: None,
            subnets: vec![],
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "fresh: look up the VPC",
                |a| matches!(a, Action::LookUpSubnet { subnet_id } if subnet_id == "subnet-0123456789abcdef0"),
            )
        },
        Row {
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "VPC known: create the group",
                |a| matches!(a, Action::CreateSecurityGroup { vpc_id } if vpc_id == "vpc-1"),
            )
        },
        Row {
            sg: Some(sg(0)),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "group without rules",
                |a| matches!(a, Action::AuthorizeRules { rules, .. } if rules.len() == 6),
            )
        },
        Row {
            sg: Some(sg(4)),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "crash between rules: only the missing ones",
                |a| matches!(a, Action::AuthorizeRules { rules, .. } if rules.len() == 2),
            )
        },
        Row {
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row("group ready: create the file system", |a| {
                matches!(a, Action::CreateFileSystem(r)
            if r.client_token == naming::file_system_token(UID)
            && r.security_group_ids == ["sg-0000000000000000a"]
            && r.file_system_type_version == "2.15"
            && r.per_unit_storage_throughput == Some(250)
            && r.tags.get("team").map(String::as_str) == Some("ml")
            && naming::owner_uid(&r.tags) == Some(UID))
            })
        },
        Row {
            class: Some(unmanaged_class()),
            sg: None,
            subnets: vec![],
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "unmanaged group: the subnet's zone first (for the volume)",
                |a| matches!(a, Action::LookUpSubnet { subnet_id } if subnet_id == "subnet-0123456789abcdef0"),
            )
        },
        Row {
            class: Some(unmanaged_class()),
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "unmanaged group: straight to the file system",
                |a| matches!(a, Action::CreateFileSystem(r) if r.security_group_ids == ["sg-0123456789abcdef1"] && r.kms_key_id.as_deref() == Some("alias/fsx")),
            )
        },
        Row {
            fs: Some(fs(Lifecycle::Creating, 2400)),
            dras: vec![],
            kube: KubeView::default(),
            ..row("creating: wait for the poller", |a| {
                *a == Action::Wait(Wait::FileSystemCreating)
            })
        },
        Row {
            fs: Some(failed_fs),
            dras: vec![],
            ..row(
                "FAILED: terminal with AWS's words",
                |a| matches!(a, Action::FileSystemFailed(m) if m.contains("no free IP")),
            )
        },
        Row {
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "available: link the first repository",
                |a| matches!(a, Action::CreateAssociations(r) if r.len() == 1 && r[0].file_system_path == "/datasets" && r[0].auto_import == [S3Event::New]),
            )
        },
        Row {
            dras: both_dras(Lifecycle::Creating).into_iter().take(1).collect(),
            kube: KubeView::default(),
            ..row("the second waits for the first", |a| {
                *a == Action::Wait(Wait::Associations)
            })
        },
        Row {
            dras: both_dras(Lifecycle::Available)
                .into_iter()
                .take(1)
                .collect(),
            kube: KubeView::default(),
            ..row(
                "crash mid-linking: only the missing one",
                |a| matches!(a, Action::CreateAssociations(r) if r.len() == 1 && r[0].file_system_path == "/results"),
            )
        },
        Row {
            dras: both_dras(Lifecycle::Creating),
            kube: KubeView::default(),
            ..row("associations creating", |a| {
                *a == Action::Wait(Wait::Associations)
            })
        },
        Row {
            dras: both_dras(Lifecycle::Failed),
            ..row(
                "association failed",
                |a| matches!(a, Action::AssociationFailed { name, .. } if name == "datasets"),
            )
        },
        Row {
            kube: KubeView::default(),
            ..row("AWS done: StorageClass", |a| {
                *a == Action::ApplyStorageClass
            })
        },
        Row {
            kube: KubeView {
                storage_class: true,
                ..KubeView::default()
            },
            ..row("then the volume", |a| *a == Action::ApplyVolume)
        },
        Row {
            kube: KubeView {
                volume: Some(VolumeView {
                    zone: None,
                    capacity_gib: 1200,
                    file_system_id: "fs-0123456789abcdef0".into(),
                    available: true,
                    deleting: false,
                }),
                ..bound()
            },
            ..row("volume with the old size", |a| *a == Action::ApplyVolume)
        },
        Row {
            kube: KubeView {
                claim: None,
                ..bound()
            },
            ..row("crash between PV and PVC: the claim", |a| {
                *a == Action::ApplyClaim
            })
        },
        Row {
            kube: volume_unseen_by_the_binder(),
            ..row(
                "the claim once the binder has seen the volume (Available)",
                |a| *a == Action::Wait(Wait::VolumeAvailable),
            )
        },
        Row {
            kube: KubeView {
                claim: Some(ClaimView {
                    bound: false,
                    deleting: false,
                    ..ClaimView::default()
                }),
                ..bound()
            },
            ..row("claim not bound yet", |a| {
                *a == Action::Wait(Wait::ClaimBinding)
            })
        },
        row("everything in place", |a| *a == Action::Ready),
        // Update.
        Row {
            ws: workspace(&TWO_REPOS.replace("2400", "4800")),
            ..row(
                "scale up",
                |a| matches!(a, Action::UpdateFileSystem { update, .. } if update.storage_capacity_gib == Some(4800) && update.per_unit_storage_throughput.is_none()),
            )
        },
        Row {
            ws: workspace(&TWO_REPOS.replace("250", "500")),
            ..row(
                "throughput change",
                |a| matches!(a, Action::UpdateFileSystem { update, .. } if update.per_unit_storage_throughput == Some(500)),
            )
        },
        Row {
            ws: workspace(&TWO_REPOS.replace("2400", "4800")),
            fs: Some(fs(Lifecycle::Updating, 2400)),
            ..row("updating: wait", |a| {
                *a == Action::Wait(Wait::FileSystemUpdating)
            })
        },
        Row {
            ws: workspace(&TWO_REPOS.replace("2400", "1200")),
            ..row(
                "spec below the file system: refused",
                |a| matches!(a, Action::Invalid(v) if v[0].message.contains("may only grow")),
            )
        },
        Row {
            ws: workspace(
                TWO_REPOS
                    .split("\n- {name: results")
                    .next()
                    .unwrap_or_default(),
            ),
            ..row("repository removed: unlink it", |a| {
                *a == Action::DeleteAssociations(vec!["dra-2".into()])
            })
        },
        Row {
            ws: workspace(&TWO_REPOS.replace("s3://ml-results/", "s3://ml-results/v2/")),
            ..row("repository moved: unlink before relinking", |a| {
                *a == Action::DeleteAssociations(vec!["dra-2".into()])
            })
        },
        Row {
            ws: workspace(&TWO_REPOS.replace("autoImport: [NEW]", "autoImport: [NEW, CHANGED]")),
            ..row("automatic import changed: updated in place", |a| {
                *a == Action::UpdateAssociation {
                    id: "dra-1".into(),
                    update: AssociationUpdate {
                        auto_import: Some(vec![S3Event::New, S3Event::Changed]),
                        auto_export: None,
                    },
                }
            })
        },
        Row {
            ws: workspace(&TWO_REPOS.replace(
                "fileSystemPath: /results}",
                "fileSystemPath: /results, autoExport: [NEW]}",
            )),
            dras: {
                let mut d = both_dras(Lifecycle::Available);
                d[1].lifecycle = Lifecycle::Updating;
                d[1].auto_export = vec![S3Event::New];
                d
            },
            ..row("updated, UPDATING: wait, no second update", |a| {
                *a == Action::Wait(Wait::Associations)
            })
        },
        // A claim of that name that is not the workspace's: no AWS change, no takeover.
        Row {
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView {
                claim_taken: true,
                ..KubeView::default()
            },
            ..row("claim name taken by another claim: nothing created", |a| {
                *a == Action::ClaimConflict("train".into())
            })
        },
        // Adopt.
        Row {
            class: Some(class("")),
            fs: Some(adoptable.clone()),
            ..adopt("adopt: the class has no adoption policy", refused)
        },
        Row {
            fs: None,
            ..adopt("adopt: not found", refused)
        },
        Row {
            fs: Some(foreign_fs),
            ..adopt("adopt: another workspace's", refused)
        },
        Row {
            fs: Some(FileSystem {
                vpc_id: Some("vpc-2".into()),
                ..adoptable.clone()
            }),
            ..adopt("adopt: in another VPC", refused)
        },
        Row {
            fs: Some(FileSystem {
                subnet_id: Some("subnet-0fedcba9876543210".into()),
                ..adoptable.clone()
            }),
            subnets: vec![
                subnet("subnet-0123456789abcdef0", "us-east-1a"),
                subnet("subnet-0fedcba9876543210", "us-east-1b"),
            ],
            ..adopt(
                "adopt: in the VPC but not in a subnet of the class",
                refused,
            )
        },
        Row {
            fs: Some(FileSystem {
                subnet_id: Some("subnet-0000000000000dead".into()),
                ..adoptable.clone()
            }),
            ..adopt(
                "adopt: a subnet outside the class is refused without a look at it",
                refused,
            )
        },
        Row {
            fs: Some(FileSystem {
                tags: [("lustre-adoptable".to_string(), "false".to_string())].into(),
                ..adoptable.clone()
            }),
            ..adopt("adopt: tags the policy does not name", refused)
        },
        Row {
            fs: Some(with_tag(&adoptable, tag_keys::ADOPTED_BY, "someone-else")),
            ..adopt("adopt: another workspace adopts it", refused)
        },
        Row {
            fs: Some(FileSystem {
                deployment_type: DeploymentType::Other,
                ..adoptable.clone()
            }),
            ..adopt(
                "adopt: not a SCRATCH_2 / PERSISTENT_2 Lustre file system",
                refused,
            )
        },
        Row {
            fs: Some(with_tag(
                &with_tag(&foreign_vpc1, tag_keys::RETAINED, "true"),
                tag_keys::NAMESPACE,
                "other-team",
            )),
            ..adopt("adopt: kept from another namespace", refused)
        },
        Row {
            fs: Some(with_tag(&foreign_vpc1, tag_keys::RETAINED, "true")),
            ..adopt("adopt: kept from its own namespace: marked", |a| {
                matches!(a, Action::TagAdopted { .. })
            })
        },
        Row {
            cluster: Some("prod-a"),
            fs: Some(with_tag(
                &with_tag(&foreign_vpc1, tag_keys::RETAINED, "true"),
                tag_keys::CLUSTER,
                "prod-b",
            )),
            ..adopt(
                "adopt: kept by another install's namespace of the same name",
                refused,
            )
        },
        Row {
            cluster: Some("prod-a"),
            fs: Some(with_tag(
                &with_tag(&foreign_vpc1, tag_keys::RETAINED, "true"),
                tag_keys::CLUSTER,
                "prod-a",
            )),
            ..adopt("adopt: kept by this install: marked", |a| {
                matches!(a, Action::TagAdopted { .. })
            })
        },
        Row {
            fs: Some(adoptable.clone()),
            ..adopt("adopt: admitted: marked first", |a| {
                *a == Action::TagAdopted {
                    arn: "arn:aws:fsx:us-east-1:1:file-system/fs-0123456789abcdef0".into(),
                }
            })
        },
        Row {
            subnets: vec![],
            fs: Some(adoptable.clone()),
            ..adopt("adopt: the class's VPC first", |a| {
                matches!(a, Action::LookUpSubnet { .. })
            })
        },
        Row {
            fs: Some(with_tag(&adoptable, tag_keys::ADOPTED_BY, UID)),
            kube: KubeView::default(),
            ..adopt("adopt: marked: no group, no create", |a| {
                *a == Action::ApplyStorageClass
            })
        },
        // Delete.
        Row {
            delete: true,
            ..row("delete: claim first", |a| *a == Action::DeleteClaim)
        },
        Row {
            delete: true,
            class: Some(shut_out()),
            ..row("delete in a shut-out namespace still cleans up", |a| {
                *a == Action::DeleteClaim
            })
        },
        Row {
            delete: true,
            kube: KubeView {
                claim: held_claim(),
                ..bound()
            },
            ..row(
                "the claim deleted: the volume's delete goes right after",
                |a| *a == Action::DeleteVolume,
            )
        },
        Row {
            delete: true,
            kube: KubeView {
                claim: held_claim(),
                ..deleting_volume()
            },
            ..row("pods still mount it", |a| {
                *a == Action::Wait(Wait::ClaimInUse)
            })
        },
        Row {
            delete: true,
            kube: KubeView {
                claim: None,
                ..bound()
            },
            ..row("then the volume", |a| *a == Action::DeleteVolume)
        },
        Row {
            delete: true,
            kube: KubeView {
                claim: None,
                ..deleting_volume()
            },
            ..row("the volume held by pv-protection: its delete stands", |a| {
                *a == Action::DeleteVolume
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            ..row("then the associations", |a| {
                *a == Action::DeleteAssociations(vec!["dra-1".into(), "dra-2".into()])
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            dras: both_dras(Lifecycle::Deleting),
            ..row("associations going", |a| {
                *a == Action::Wait(Wait::Associations)
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            dras: vec![],
            ..row("then the file system with a final backup", |a| {
                matches!(
                    a,
                    Action::DeleteFileSystem {
                        final_backup: true,
                        ..
                    }
                )
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            dras: vec![],
            fs: Some(fs(Lifecycle::Creating, 2400)),
            ..row("deleted while creating: wait", |a| {
                *a == Action::Wait(Wait::FileSystemCreating)
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            dras: vec![],
            fs: Some(fs(Lifecycle::Deleting, 2400)),
            ..row("file system going", |a| {
                *a == Action::Wait(Wait::FileSystemDeleting)
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            dras: vec![],
            fs: None,
            ..row(
                "then the group",
                |a| matches!(a, Action::DeleteSecurityGroup { id } if id == "sg-0000000000000000a"),
            )
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            dras: vec![],
            fs: None,
            sg: None,
            ..row("nothing left", |a| *a == Action::Finished)
        },
        Row {
            delete: true,
            class: None,
            kube: KubeView::default(),
            dras: vec![],
            ..row("class deleted meanwhile: still cleans up", |a| {
                matches!(a, Action::DeleteFileSystem { .. })
            })
        },
        // The class's namespace limits.
        Row {
            class: Some(class("  namespaceLimits: {maxWorkspaces: 3}\n")),
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            budget: Some(budget::NamespaceUse {
                workspaces: 3,
                capacity_gib: 3600,
                ..Default::default()
            }),
            ..row(
                "budget: no room for a fourth: nothing made",
                |a| matches!(a, Action::OverBudget(m) if m.contains("namespace ml may have 3 workspace(s) of class standard") && m.contains("3 hold a file system or wait")),
            )
        },
        Row {
            class: Some(class("  namespaceLimits: {maxWorkspaces: 3}\n")),
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            budget: Some(budget::NamespaceUse {
                workspaces: 2,
                capacity_gib: 2400,
                ..Default::default()
            }),
            ..row("budget: room for a third: made", |a| {
                matches!(a, Action::CreateSecurityGroup { .. })
            })
        },
        Row {
            class: Some(class("  namespaceLimits: {maxStorageCapacityGiB: 4800}\n")),
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            budget: Some(budget::NamespaceUse {
                workspaces: 2,
                capacity_gib: 3600,
                ..Default::default()
            }),
            ..row(
                "budget: capacity over the namespace's limit",
                |a| matches!(a, Action::OverBudget(m) if m.contains("the others use 3600 GiB and this workspace asks 2400 GiB")),
            )
        },
        Row {
            class: Some(class(
                "  namespaceLimits: {maxWorkspaces: 1, maxStorageCapacityGiB: 4800}\n",
            )),
            fs: Some(fs(Lifecycle::Available, 1200)),
            budget: Some(budget::NamespaceUse {
                workspaces: 5,
                capacity_gib: 3600,
                ..Default::default()
            }),
            ..row(
                "budget: growth past the limit refused, the file system kept",
                |a| matches!(a, Action::OverBudget(m) if m.contains("growing: it keeps its current size")),
            )
        },
        Row {
            class: Some(class(
                "  namespaceLimits: {maxWorkspaces: 1, maxStorageCapacityGiB: 6000}\n",
            )),
            fs: Some(fs(Lifecycle::Available, 1200)),
            budget: Some(budget::NamespaceUse {
                workspaces: 5,
                capacity_gib: 3600,
                ..Default::default()
            }),
            ..row(
                "budget: growth within the limit; a holder never counts against itself",
                |a| matches!(a, Action::UpdateFileSystem { .. }),
            )
        },
        Row {
            class: Some(class(
                "  namespaceLimits: {maxWorkspaces: 1, maxStorageCapacityGiB: 100}\n",
            )),
            budget: Some(budget::NamespaceUse {
                workspaces: 5,
                capacity_gib: 9600,
                ..Default::default()
            }),
            ..row(
                "budget: limits lowered under a Ready workspace: it stays Ready",
                |a| *a == Action::Ready,
            )
        },
        Row {
            class: Some(class(
                "  namespaceLimits: {maxMonthlyCost: \"500\"}\n  prices: {perGiBMonth: [{deploymentType: PERSISTENT_2, throughput: 250, price: \"0.210\"}]}\n",
            )),
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            budget: Some(budget::NamespaceUse::default()),
            ..row(
                "budget: the cost over the namespace's monthly limit",
                |a| matches!(a, Action::OverBudget(m) if m.contains("may spend 500.00 a month on class standard") && m.contains("the others cost 0.00 and this workspace 504.00")),
            )
        },
        Row {
            class: Some(class("  namespaceLimits: {maxMonthlyCost: \"5000\"}\n")),
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            budget: Some(budget::NamespaceUse::default()),
            ..row(
                "budget: a cost limit with no price to check it against",
                |a| matches!(a, Action::OverBudget(m) if m.contains("has no price for this workspace's tier")),
            )
        },
        // Expiry (the rows are decided at 12:00; created 08:00, Ready 09:00).
        Row {
            ws: expiring("{at: 2026-12-04T11:59:59Z}", None),
            ..row(
                "expiry: its time passed: the workspace is deleted",
                |a| matches!(a, Action::Expire(m) if m.contains("spec.expiry.at")),
            )
        },
        Row {
            ws: expiring("{at: 2026-12-04T12:00:01Z}", None),
            ..row("expiry: its time is still ahead: Ready", |a| {
                *a == Action::Ready
            })
        },
        Row {
            ws: expiring("{afterIdle: 2h}", Some("2026-12-04T10:00:00Z")),
            pods: idle(),
            ..row(
                "expiry: idle for afterIdle: deleted",
                |a| matches!(a, Action::Expire(m) if m.contains("idle for 2h")),
            )
        },
        Row {
            ws: expiring("{afterIdle: 2h}", Some("2026-12-04T10:00:00Z")),
            pods: in_use(),
            ..row(
                "expiry: a pod uses the claim again: the idle clock stops",
                |a| *a == Action::Ready,
            )
        },
        Row {
            ws: expiring("{afterIdle: 2h}", Some("2026-12-04T10:00:00Z")),
            pods: expiry::Pods::Unknown,
            ..row(
                "expiry: after a restart, before the pod watch has listed: no idle expiry yet",
                |a| *a == Action::Ready,
            )
        },
        Row {
            ws: expiring(
                "{afterIdle: 2h, at: 2026-12-04T11:00:00Z}",
                Some("2026-12-04T11:30:00Z"),
            ),
            pods: expiry::Pods::Unknown,
            ..row(
                "expiry: after a restart, a time that passed is acted on without the pods",
                |a| matches!(a, Action::Expire(m) if m.contains("spec.expiry.at")),
            )
        },
        Row {
            ws: expiring("{afterIdle: 2h}", Some("2026-12-04T10:00:00Z")),
            pods: expiry::Pods::NotWatched,
            ..row("expiry: pods not watched: afterIdle is not acted on", |a| {
                *a == Action::Ready
            })
        },
        Row {
            ws: expiring("{at: 2026-12-31T00:00:00Z}", None),
            class: Some(class(
                "  expiry: {deploymentTypes: [{deploymentType: PERSISTENT_2, maxLifetime: 4h}]}\n",
            )),
            ..row(
                "expiry: the class's maxLifetime caps a later time",
                |a| matches!(a, Action::Expire(m) if m.contains("maxLifetime of 4h")),
            )
        },
        Row {
            ws: {
                let mut w = expiring("{at: 2026-12-31T00:00:00Z}", None);
                w.spec.expiry = None;
                w.status.as_mut().expect("status").idle_since = Some(time("2026-12-04T11:00:00Z"));
                w
            },
            class: Some(class(
                "  expiry: {deploymentTypes: [{deploymentType: PERSISTENT_2, defaultExpiry: {afterIdle: 30m}}]}\n",
            )),
            pods: idle(),
            ..row(
                "expiry: the class's default applies to a workspace without one",
                |a| matches!(a, Action::Expire(m) if m.contains("idle for 30m")),
            )
        },
        Row {
            ws: expiring("{at: 2026-12-04T11:00:00Z}", None),
            kube: KubeView::default(),
            fs: None,
            sg: None,
            dras: vec![],
            class: None,
            ..row(
                "expiry: a workspace that never got anything (its class missing) expires too",
                |a| matches!(a, Action::Expire(_)),
            )
        },
        Row {
            ws: {
                let mut w = expiring("{at: 2026-12-04T11:00:00Z, action: ExportThenDelete}", None);
                // The operator deleted it at the deadline, then restarted.
                w.metadata.deletion_timestamp = Some(time("2026-12-04T11:00:02Z"));
                w
            },
            delete: true,
            kube: KubeView::default(),
            ..row(
                "expiry: ExportThenDelete: deleted at the deadline (before a restart): every link is exported",
                |a| matches!(a, Action::StartExport(r) if r.paths == ["datasets", "results"]),
            )
        },
        Row {
            ws: {
                let mut w = expiring("{at: 2026-12-04T11:00:00Z, action: ExportThenDelete}", None);
                // Someone deleted it before the deadline: an ordinary deletion.
                w.metadata.deletion_timestamp = Some(time("2026-12-04T10:00:00Z"));
                w
            },
            delete: true,
            kube: KubeView::default(),
            ..row(
                "expiry: ExportThenDelete: deleted by a person before the deadline: no export",
                |a| matches!(a, Action::DeleteAssociations(_)),
            )
        },
        // The import on create.
        Row {
            ws: importing(false),
            kube: KubeView::default(),
            ..row("import: started once the link is AVAILABLE", |a| {
                matches!(a, Action::StartImport(r) if r.paths == ["s3://ml-results/"]
                    && r.task_type == TaskType::Import
                    && r.report_path.is_none()
                    && r.tags.get(tag_keys::PURPOSE).map(String::as_str) == Some(tag_keys::PURPOSE_IMPORT_ON_CREATE))
            })
        },
        Row {
            ws: importing(false),
            dras: both_dras(Lifecycle::Creating),
            kube: KubeView::default(),
            ..row("import: not before the link is AVAILABLE", |a| {
                *a == Action::Wait(Wait::Associations)
            })
        },
        Row {
            ws: importing(false),
            import: import_task(TaskLifecycle::Executing),
            kube: KubeView::default(),
            ..row("import: running: Ready waits", |a| {
                *a == Action::Wait(Wait::Importing)
            })
        },
        Row {
            ws: importing(false),
            import: import_task(TaskLifecycle::Succeeded),
            kube: KubeView::default(),
            ..row("import: done: then the volume", |a| {
                *a == Action::ApplyStorageClass
            })
        },
        Row {
            ws: importing(false),
            import: import_task(TaskLifecycle::Failed),
            ..row(
                "import: failed: stop with FSx's words",
                |a| matches!(a, Action::ImportFailed(m) if m.contains("3 files could not be written")),
            )
        },
        Row {
            ws: importing(true),
            ..row("import: recorded as done: never again", |a| {
                *a == Action::Ready
            })
        },
        // The export before deletion.
        Row {
            kube: KubeView {
                claim: None,
                ..bound()
            },
            ..export_row("export: the volume goes first", |a| {
                *a == Action::DeleteVolume
            })
        },
        Row {
            running: vec!["task-0000000000000000a".into()],
            ..export_row("a data task still runs: the export waits for it", |a| {
                *a == Action::Wait(Wait::TasksRunning)
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            running: vec!["task-0000000000000000a".into()],
            ..row("a data task still runs: nothing is unlinked", |a| {
                *a == Action::Wait(Wait::TasksRunning)
            })
        },
        export_row("export: started before any unlink", |a| {
            matches!(a, Action::StartExport(r) if r.paths == ["results"]
                && r.task_type == TaskType::Export
                && r.report_path.as_deref() == Some("s3://ml-results/lustre-export-reports")
                && r.tags.get(tag_keys::PURPOSE).map(String::as_str) == Some(tag_keys::PURPOSE_EXPORT_ON_DELETE)
                && r.tags.get(tag_keys::ATTEMPT).map(String::as_str) == Some("0")
                && naming::owner_uid(&r.tags) == Some(UID))
        }),
        Row {
            export: (export_task(TaskLifecycle::Executing), false, None),
            ..export_row("export: running: wait", |a| {
                *a == Action::Wait(Wait::Exporting)
            })
        },
        Row {
            export: (export_task(TaskLifecycle::Canceling), true, None),
            ..export_row("export: being canceled: wait", |a| {
                *a == Action::Wait(Wait::Exporting)
            })
        },
        Row {
            export: (export_task(TaskLifecycle::Executing), true, None),
            ..export_row(
                "export: overdue: canceled",
                |a| matches!(a, Action::CancelExport { id, minutes: 1440 } if id == "task-0123456789abcdef0"),
            )
        },
        Row {
            export: (export_task(TaskLifecycle::Succeeded), false, None),
            ..export_row("export: done: then the associations", |a| {
                matches!(a, Action::DeleteAssociations(_))
            })
        },
        Row {
            export: (export_task(TaskLifecycle::Failed), false, None),
            ..export_row(
                "export: failed with Block: stop",
                |a| matches!(a, Action::ExportFailed(m) if m.contains("7 of 10 files exported, 3 failed")),
            )
        },
        Row {
            export: (export_task(TaskLifecycle::Canceled), false, None),
            ws: exporting("\ndeletionExport: {failurePolicy: Continue}"),
            ..export_row("export: canceled with Continue: go on", |a| {
                matches!(a, Action::DeleteAssociations(_))
            })
        },
        Row {
            export: (None, false, Some("auto-export is on")),
            ..export_row(
                "export: refused with Block: stop",
                |a| matches!(a, Action::ExportFailed(m) if m.contains("auto-export is on")),
            )
        },
        Row {
            fs: Some(fs(Lifecycle::Failed, 2400)),
            ..export_row("export: FAILED file system: nothing to export", |a| {
                matches!(a, Action::DeleteAssociations(_))
            })
        },
        Row {
            fs: Some(fs(Lifecycle::Misconfigured, 2400)),
            ..export_row(
                "export: MISCONFIGURED file system with Block: stop",
                |a| matches!(a, Action::ExportFailed(m) if m.contains("until it is repaired")),
            )
        },
        Row {
            dras: both_dras(Lifecycle::Deleting),
            ..export_row("export: links already going: nothing to export", |a| {
                *a == Action::Wait(Wait::Associations)
            })
        },
        Row {
            ws: exporting("\ndeletionPolicy: Retain"),
            ..export_row("export: Retain keeps the data: no export", |a| {
                matches!(a, Action::TagRetained { .. })
            })
        },
        Row {
            delete: true,
            sg: None,
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ws: workspace("storageCapacityGiB: 1200"),
            ..row("create never got far", |a| *a == Action::Finished)
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            ws: workspace(&format!("{TWO_REPOS}\ndeletionPolicy: Retain")),
            ..row("Retain: tag and keep", |a| {
                matches!(a, Action::TagRetained { .. })
            })
        },
        Row {
            // The class's default was Retain when the workspace was made (recorded in status);
            // the class now says Delete: the workspace is still kept.
            delete: true,
            kube: KubeView::default(),
            ws: {
                let mut w = workspace(
                    TWO_REPOS
                        .replace("finalBackupOnDelete: true\n", "")
                        .as_str(),
                );
                w.status = Some(lustre_api::LustreWorkspaceStatus {
                    deletion_policy: Some(lustre_api::DeletionPolicy::Retain),
                    ..Default::default()
                });
                w
            },
            ..row("Retain recorded at creation outlives a class change", |a| {
                matches!(a, Action::TagRetained { .. })
            })
        },
        Row {
            // The engineer's own spec still decides.
            delete: true,
            kube: KubeView::default(),
            ws: {
                let mut w = workspace(&format!("{TWO_REPOS}\ndeletionPolicy: Delete"));
                w.status = Some(lustre_api::LustreWorkspaceStatus {
                    deletion_policy: Some(lustre_api::DeletionPolicy::Retain),
                    ..Default::default()
                });
                w
            },
            ..row("the spec's policy beats the recorded one", |a| {
                matches!(a, Action::DeleteAssociations(_))
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            ws: workspace("storageCapacityGiB: 2400\nfileSystemId: fs-0123456789abcdef0"),
            sg: None,
            dras: vec![
                {
                    let mut d = dra("dra-9", "/other", "s3://x/", vec![], Lifecycle::Available);
                    d.tags = fs(Lifecycle::Available, 1).tags;
                    d
                },
                dra(
                    "dra-foreign",
                    "/theirs",
                    "s3://y/",
                    vec![],
                    Lifecycle::Available,
                ),
            ],
            ..row(
                "adopted: unlink only ours, never delete the file system",
                |a| *a == Action::DeleteAssociations(vec!["dra-9".into()]),
            )
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            ws: workspace("storageCapacityGiB: 2400\nfileSystemId: fs-0123456789abcdef0"),
            sg: None,
            fs: Some(with_tag(&adoptable, tag_keys::ADOPTED_BY, UID)),
            dras: vec![],
            ..row("adopted: its adopter mark comes off", |a| {
                matches!(a, Action::UntagAdopted { .. })
            })
        },
        Row {
            delete: true,
            kube: KubeView::default(),
            ws: workspace("storageCapacityGiB: 2400\nfileSystemId: fs-0123456789abcdef0"),
            sg: None,
            dras: vec![],
            ..row("adopted: done without touching it", |a| {
                *a == Action::Finished
            })
        },
    ];
    let mut failures = Vec::new();
    let mut refusals = std::collections::BTreeSet::new();
    for r in &rows {
        let action = run(r);
        if !(r.expect)(&action) {
            failures.push(format!("{}: got {action:?}", r.name));
        }
        if let Action::AdoptionRefused(m) = &action {
            refusals.insert(m.clone());
        }
    }
    // One answer for every refused adoption: it tells a tenant nothing about file systems it
    // cannot see.
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(
        failures.is_empty(),
        "{} of {} rows wrong:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    println!("plan table: {} rows", rows.len());
}

fn status_for(
    r: &Row,
    error: Option<&CloudError>,
    at: &str,
) -> (Action, lustre_api::LustreWorkspaceStatus) {
    let labels = labels();
    let budget = budget_of(r);
    let inputs = inputs(r, &labels, budget.as_ref());
    let action = if r.delete {
        next_cleanup_action(&inputs)
    } else {
        next_action(&inputs)
    };
    let now = time(at);
    let status = lustre_controller::status::desired_status(&inputs, &action, error, r.delete, &now);
    (action, status)
}

fn cond<'a>(
    s: &'a lustre_api::LustreWorkspaceStatus,
    kind: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == kind)
        .unwrap_or_else(|| panic!("{kind} missing"))
}

#[test]
fn status_when_ready_names_everything_a_pod_and_gitops_need() {
    let mut r = row("ready", |_| true);
    r.ws.metadata.generation = Some(3);
    let (_, s) = status_for(&r, None, "2026-11-25T10:00:00Z");
    assert_eq!(s.phase, Some(lustre_api::Phase::Ready));
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.conditions.len(), 5);
    assert!(
        s.conditions
            .iter()
            .all(|c| c.status == "True" && c.observed_generation == Some(3)),
        "{:#?}",
        s.conditions
    );
    assert_eq!(s.conditions[0].type_, "Ready");
    assert_eq!(s.file_system_id.as_deref(), Some("fs-0123456789abcdef0"));
    assert_eq!(s.mount_name.as_deref(), Some("abcdef12"));
    assert_eq!(s.claim_name.as_deref(), Some("train"));
    assert_eq!(s.security_group_id.as_deref(), Some("sg-0000000000000000a"));
    assert_eq!(
        s.data_repositories[0].association_id.as_deref(),
        Some("dra-1")
    );
    assert!(s.ready_time.is_some());

    // Recomputed later with nothing changed: transition times stay.
    r.ws.status = Some(s.clone());
    let (_, again) = status_for(&r, None, "2026-11-25T11:00:00Z");
    assert_eq!(again, s, "no change, nothing to write");
}

#[test]
fn status_names_the_claim_once_its_volume_exists_but_not_one_gone_while_deleting() {
    let unseen = |delete| Row {
        kube: volume_unseen_by_the_binder(),
        delete,
        ..row("volume, no claim", |_| true)
    };
    // Waiting on the binder: the claim follows the volume in the same wait.
    let (action, s) = status_for(&unseen(false), None, "2026-11-25T10:00:00Z");
    assert_eq!(action, Action::Wait(Wait::VolumeAvailable));
    assert_eq!(s.claim_name.as_deref(), Some("train"));
    // Deleting, the claim gone and the volume still held: no claim is named.
    let (action, s) = status_for(&unseen(true), None, "2026-11-25T10:00:00Z");
    assert_ne!(action, Action::Wait(Wait::VolumeAvailable));
    assert_eq!(s.claim_name, None);
    // Taken by someone else's claim: not named as the workspace's.
    let taken = Row {
        kube: KubeView {
            claim_taken: true,
            ..unseen(false).kube
        },
        ..unseen(false)
    };
    assert_eq!(
        status_for(&taken, None, "2026-11-25T10:00:00Z")
            .1
            .claim_name,
        None
    );
}

#[test]
fn status_while_creating_and_after_a_failure() {
    let r = Row {
        fs: Some(fs(Lifecycle::Creating, 2400)),
        dras: vec![],
        kube: KubeView::default(),
        ..row("creating", |_| true)
    };
    let (_, s) = status_for(&r, None, "2026-11-25T10:00:00Z");
    assert_eq!(s.phase, Some(lustre_api::Phase::Provisioning));
    let ready = cond(&s, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Creating")
    );
    assert!(ready.message.contains("CREATING"), "{}", ready.message);
    assert_eq!(cond(&s, "SecurityGroupReady").status, "True");

    let mut failed = fs(Lifecycle::Failed, 2400);
    failed.failure_message = Some("The KMS key is disabled".into());
    let r = Row {
        fs: Some(failed),
        dras: vec![],
        ..row("failed", |_| true)
    };
    let (_, s) = status_for(&r, None, "2026-11-25T10:00:00Z");
    assert_eq!(s.phase, Some(lustre_api::Phase::Failed));
    let ready = cond(&s, "Ready");
    assert_eq!(
        (ready.reason.as_str(), ready.message.as_str()),
        ("FileSystemFailed", "The KMS key is disabled")
    );
    assert_eq!(cond(&s, "FileSystemReady").reason, "FileSystemFailed");
}

#[test]
fn status_for_invalid_specs_and_aws_errors() {
    let r = Row {
        ws: workspace("storageCapacityGiB: 3600\ntags: {\"aws:x\": y}"),
        ..row("invalid", |_| true)
    };
    let (_, s) = status_for(&r, None, "2026-11-25T10:00:00Z");
    let ready = cond(&s, "Ready");
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("spec.storageCapacityGiB") && ready.message.contains("spec.tags"),
        "every violation: {}",
        ready.message
    );
    assert_eq!(s.phase, Some(lustre_api::Phase::Failed));

    let throttled = CloudError::new(ErrorKind::Throttled, "CreateFileSystem", "Rate exceeded");
    let r = Row {
        fs: None,
        dras: vec![],
        kube: KubeView::default(),
        ..row("throttled", |_| true)
    };
    let (_, s) = status_for(&r, Some(&throttled), "2026-11-25T10:00:00Z");
    assert_eq!(
        (cond(&s, "Ready").reason.as_str(), s.phase),
        ("AwsRetrying", Some(lustre_api::Phase::Provisioning))
    );
    let mut rejected = CloudError::new(
        ErrorKind::InvalidRequest,
        "CreateFileSystem",
        "Security group sg-1 does not exist",
    );
    rejected.code = Some("InvalidNetworkSettings".into());
    let (_, s) = status_for(&r, Some(&rejected), "2026-11-25T10:00:00Z");
    let ready = cond(&s, "Ready");
    assert_eq!(ready.reason, "AwsRejected");
    assert!(
        ready
            .message
            .contains("InvalidNetworkSettings: Security group sg-1 does not exist"),
        "{}",
        ready.message
    );
}

#[test]
fn status_while_pods_hold_the_claim() {
    let held = |pods| Row {
        pods,
        delete: true,
        kube: KubeView {
            claim: held_claim(),
            ..deleting_volume()
        },
        ..row("in use", |_| true)
    };
    let (_, s) = status_for(&held(in_use()), None, "2026-11-25T10:00:00Z");
    assert_eq!(s.phase, Some(lustre_api::Phase::Deleting));
    let ready = cond(&s, "Ready");
    assert_eq!(ready.reason, "ClaimInUse");
    assert!(
        ready.message.contains("still used by pods"),
        "{}",
        ready.message
    );
    // No pod counted on it (or the pods not known): the claim waits for pvc-protection, and
    // the message does not say pods use it.
    for pods in [idle(), expiry::Pods::Unknown, expiry::Pods::NotWatched] {
        let (_, s) = status_for(&held(pods), None, "2026-11-25T10:00:00Z");
        let ready = cond(&s, "Ready");
        assert_eq!(ready.reason, "ClaimInUse");
        assert!(
            ready.message.contains("pvc-protection holds the claim")
                && !ready.message.contains("still used"),
            "{pods:?}: {}",
            ready.message
        );
    }
    // The claim's release and then the volume's are one wait: the same status for both
    // (one write), whether the claim's delete is out and the volume's next, both are held,
    // or only the volume is left.
    let steps = [
        Row {
            kube: KubeView {
                claim: held_claim(),
                ..bound()
            },
            ..held(idle())
        },
        held(idle()),
        Row {
            kube: KubeView {
                claim: None,
                ..deleting_volume()
            },
            ..held(idle())
        },
    ];
    let statuses: Vec<_> = steps
        .iter()
        .map(|r| status_for(r, None, "2026-11-25T10:00:00Z"))
        .collect();
    let actions: Vec<_> = statuses.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(
        actions,
        [
            Action::DeleteVolume,
            Action::Wait(Wait::ClaimInUse),
            Action::DeleteVolume
        ]
    );
    for (_, s) in &statuses[1..] {
        assert_eq!(s, &statuses[0].1);
    }
}

#[test]
fn the_deletion_policy_is_recorded_once_and_kept_through_class_changes() {
    use lustre_api::DeletionPolicy;
    let retaining = class("  defaults: {deletionPolicy: Retain}\n");
    let r = Row {
        class: Some(retaining),
        ws: workspace("storageCapacityGiB: 2400"),
        ..row("first write", |_| true)
    };
    let (_, s) = status_for(&r, None, "2026-11-25T10:00:00Z");
    assert_eq!(s.deletion_policy, Some(DeletionPolicy::Retain));
    // The platform team changes the class's default afterwards.
    let mut ws = workspace("storageCapacityGiB: 2400");
    ws.status = Some(s);
    let r = Row {
        class: Some(class("  defaults: {deletionPolicy: Delete}\n")),
        ws,
        ..row("after the class changed", |_| true)
    };
    let (_, s) = status_for(&r, None, "2026-11-25T10:05:00Z");
    assert_eq!(s.deletion_policy, Some(DeletionPolicy::Retain));
}

#[test]
fn a_ready_workspace_made_invalid_keeps_its_parts_as_last_seen() {
    // First Ready, with everything observed.
    let ready = row("ready", |_| true);
    let (_, before) = status_for(&ready, None, "2026-11-25T10:00:00Z");
    assert_eq!(cond(&before, "FileSystemReady").status, "True");
    // Then the spec breaks a rule: no AWS look this time (nothing observed), and the parts
    // still say what was last seen instead of "waiting".
    let mut ws = workspace("storageCapacityGiB: 3600");
    ws.status = Some(before.clone());
    let r = Row {
        ws,
        fs: None,
        sg: None,
        dras: vec![],
        ..row("made invalid", |_| true)
    };
    let (_, after) = status_for(&r, None, "2026-11-25T10:05:00Z");
    assert_eq!(cond(&after, "Ready").reason, "InvalidSpec");
    for part in [
        "SecurityGroupReady",
        "FileSystemReady",
        "DataRepositoriesReady",
    ] {
        assert_eq!(
            (
                cond(&after, part).status.as_str(),
                cond(&after, part).message.as_str()
            ),
            (
                cond(&before, part).status.as_str(),
                cond(&before, part).message.as_str()
            ),
            "{part}"
        );
    }
}

#[test]
fn status_shows_the_idle_clock_and_the_deadline_and_keeps_them_across_a_restart() {
    let expiring_cond = |s: &lustre_api::LustreWorkspaceStatus| {
        let c = cond(s, "Expiring");
        (c.status.clone(), c.reason.clone(), c.message.clone())
    };
    // Ready, no pod yet: the idle clock starts now (12:00), the deadline is 2h later.
    let r = Row {
        ws: expiring("{afterIdle: 2h}", None),
        pods: idle(),
        ..row("idle", |_| true)
    };
    let (action, s) = status_for(&r, None, NOW);
    assert_eq!(action, Action::Ready);
    assert_eq!(s.idle_since, Some(time(NOW)));
    // Looked at again at the warning (13:00), a second past it.
    let labels = labels();
    let next = |r: &Row| expiry::next_look(&inputs(r, &labels, None)).map(|d| d.as_secs());
    assert_eq!(next(&r), Some(3601));
    assert_eq!(s.expires_at, Some(time("2026-12-04T14:00:00Z")));
    let (status, reason, message) = expiring_cond(&s);
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ExpiryScheduled")
    );
    assert!(
        message.contains("2026-12-04T14:00:00Z") && message.contains("idle for 2h"),
        "{message}"
    );

    // The clock is in status: the next look (a restarted process, the pods counted again)
    // finds the same deadline, and writes nothing new.
    let again = Row {
        ws: {
            let mut w = r.ws.clone();
            w.status = Some(s.clone());
            w
        },
        pods: idle(),
        ..row("idle, looked at again", |_| true)
    };
    let (_, s2) = status_for(&again, None, NOW);
    assert_eq!(s2, s, "the same status: nothing to write");

    // After a restart, a passed idle deadline waits for the pods to be read, looking again
    // shortly (the first list wakes nothing).
    let restarted = Row {
        ws: expiring("{afterIdle: 2h}", Some("2026-12-04T09:30:00Z")),
        pods: expiry::Pods::Unknown,
        ..row("restarted", |_| true)
    };
    assert_eq!(run(&restarted), Action::Ready);
    assert_eq!(next(&restarted), Some(2));

    // A pod uses the claim: no idle clock, no deadline.
    let used = Row {
        pods: in_use(),
        ..again
    };
    let (action, s) = status_for(&used, None, NOW);
    assert_eq!(action, Action::Ready);
    assert_eq!((s.idle_since.clone(), s.expires_at.clone()), (None, None));
    assert_eq!(expiring_cond(&s).1, "InUse");

    // Within the warning (1h by default): True, ExpiresSoon.
    let soon = Row {
        ws: expiring("{afterIdle: 2h}", Some("2026-12-04T10:30:00Z")),
        pods: idle(),
        ..row("soon", |_| true)
    };
    let (action, s) = status_for(&soon, None, NOW);
    assert_eq!(action, Action::Ready);
    assert_eq!(s.expires_at, Some(time("2026-12-04T12:30:00Z")));
    assert_eq!(expiring_cond(&s).0, "True");
    assert_eq!(expiring_cond(&s).1, "ExpiresSoon");

    // Expired: Ready=False Expired, phase Deleting, the condition says which deadline.
    let past = Row {
        ws: expiring("{afterIdle: 2h}", Some("2026-12-04T09:30:00Z")),
        pods: idle(),
        ..row("past", |_| true)
    };
    let (action, s) = status_for(&past, None, NOW);
    assert!(matches!(action, Action::Expire(_)), "{action:?}");
    assert_eq!(s.phase, Some(lustre_api::Phase::Deleting));
    assert_eq!(s.conditions[0].reason, "Expired");
    assert_eq!(expiring_cond(&s).1, "Expired");
    assert!(expiring_cond(&s).2.contains("idle for 2h"));
}

/// Every row decides what it expects (all wrong ones named).
fn assert_rows(rows: &[Row]) {
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let action = run(r);
            (!(r.expect)(&action)).then(|| format!("{}: got {action:?}", r.name))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `TWO_REPOS` with `metadata: {mode: UserProvisioned, iops}`.
fn provisioned(iops: i32) -> LustreWorkspace {
    workspace(&format!(
        "{TWO_REPOS}\nmetadata: {{mode: UserProvisioned, iops: {iops}}}"
    ))
}

/// The row's file system with a metadata configuration, its IOPS, and the time of the last
/// metadata change FSx lists (`changed`, RFC 3339).
fn with_metadata(mode: MetadataConfiguration, iops: i32, changed: Option<&str>) -> FileSystem {
    let mut f = fs(Lifecycle::Available, 2400);
    f.settings.metadata = Some(mode);
    f.settings.metadata_iops = Some(iops);
    f.settings.metadata_changed_at =
        changed.map(|t| t.parse::<jiff::Timestamp>().expect("time").as_second());
    f
}

const GUARDED: &str = "  rootSquash: {uidGid: '65534:65534', noSquashNids: ['10.0.1.6@tcp']}\n  logging: {level: WARN_ERROR}\n";

fn guarded_fs(uid_gid: &str, level: LogLevel) -> FileSystem {
    let mut f = fs(Lifecycle::Available, 2400);
    f.settings.root_squash = Some(RootSquash {
        uid_gid: uid_gid.into(),
        no_squash_nids: vec!["10.0.1.6@tcp".into()],
    });
    f.settings.log = Some(LogSettings {
        level,
        destination: Some("arn:aws:logs:us-east-1:1:log-group:/aws/fsx/lustre".into()),
    });
    f
}

#[test]
fn metadata_iops_efa_and_the_class_guard_rails() {
    let auto = MetadataConfiguration::Automatic;
    let rows = vec![
        Row {
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ws: provisioned(12000),
            class: Some(class(GUARDED)),
            ..row(
                "create: the spec's IOPS, the class's root squash and logging",
                |a| {
                    matches!(a, Action::CreateFileSystem(r)
                    if r.metadata == Some(MetadataConfiguration::UserProvisioned(12000))
                    && r.root_squash.as_ref().is_some_and(|s| s.uid_gid == "65534:65534" && s.no_squash_nids == ["10.0.1.6@tcp"])
                    && r.log.as_ref().is_some_and(|l| l.level == LogLevel::WarnError && l.destination.is_none()))
                },
            )
        },
        Row {
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "create: PERSISTENT_2 without metadata is AUTOMATIC",
                |a| matches!(a, Action::CreateFileSystem(r) if r.metadata == Some(MetadataConfiguration::Automatic) && r.root_squash.is_none() && r.log.is_none()),
            )
        },
        Row {
            ws: provisioned(12000),
            fs: Some(with_metadata(auto, 3000, None)),
            ..row("AUTOMATIC 3000 raised to 12000", |a| {
                matches!(a, Action::UpdateFileSystem { update, .. }
                    if update.metadata == Some(MetadataConfiguration::UserProvisioned(12000))
                    && update.storage_capacity_gib.is_none() && update.root_squash.is_none())
            })
        },
        Row {
            ws: provisioned(24000),
            fs: Some(with_metadata(
                MetadataConfiguration::UserProvisioned(12000),
                12000,
                Some("2026-12-04T05:00:01Z"),
            )),
            ..row(
                "a raise 7 hours after the last goes in",
                |a| matches!(a, Action::UpdateFileSystem { update, .. } if update.metadata == Some(MetadataConfiguration::UserProvisioned(24000))),
            )
        },
        Row {
            ws: provisioned(24000),
            fs: Some(with_metadata(
                MetadataConfiguration::UserProvisioned(12000),
                12000,
                Some("2026-12-04T11:00:00Z"),
            )),
            ..row(
                "a raise 1 hour after the last waits (the workspace stays Ready)",
                |a| *a == Action::Ready,
            )
        },
        Row {
            ws: provisioned(24000),
            fs: Some(with_metadata(
                MetadataConfiguration::UserProvisioned(24000),
                24000,
                Some("2026-12-04T11:00:00Z"),
            )),
            ..row("the IOPS asked for are there", |a| *a == Action::Ready)
        },
        Row {
            ws: provisioned(3000),
            fs: Some(with_metadata(auto, 6000, None)),
            ..row(
                "fewer than AUTOMATIC gave: refused",
                |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.metadata.iops" && v[0].message.contains("below the 6000")),
            )
        },
        Row {
            ws: provisioned(12000),
            ..row(
                "a file system made without metadata cannot get it",
                |a| matches!(a, Action::Invalid(v) if v[0].message.contains("created without a metadata configuration")),
            )
        },
        Row {
            ws: workspace(&format!("{TWO_REPOS}\nmetadata: {{mode: Automatic}}")),
            ..row("Automatic on an old file system: nothing to do", |a| {
                *a == Action::Ready
            })
        },
        Row {
            class: Some(class(GUARDED)),
            fs: Some(guarded_fs("0:0", LogLevel::WarnError)),
            ..row("the class turned root squash on: updated", |a| {
                matches!(a, Action::UpdateFileSystem { update, .. }
                    if update.root_squash.as_ref().is_some_and(|s| s.uid_gid == "65534:65534") && update.log.is_none() && update.metadata.is_none())
            })
        },
        Row {
            class: Some(class(GUARDED)),
            fs: Some(guarded_fs("65534:65534", LogLevel::Disabled)),
            ..row("the class changed the log level: updated", |a| {
                matches!(a, Action::UpdateFileSystem { update, .. }
                    if update.log.as_ref().is_some_and(|l| l.level == LogLevel::WarnError) && update.root_squash.is_none())
            })
        },
        Row {
            class: Some(class(GUARDED)),
            fs: Some(guarded_fs("65534:65534", LogLevel::WarnError)),
            ..row("guard rails in place (FSx's default log group)", |a| {
                *a == Action::Ready
            })
        },
        Row {
            class: Some(class(
                "  rootSquash: {uidGid: '65534:65534'}\n  adoption: {fileSystemTags: {lustre-adoptable: 'true'}}\n",
            )),
            ws: workspace("storageCapacityGiB: 2400\nfileSystemId: fs-0123456789abcdef0"),
            fs: Some(with_tag(
                &with_tag(&fs(Lifecycle::Available, 2400), "lustre-adoptable", "true"),
                tag_keys::ADOPTED_BY,
                UID,
            )),
            sg: None,
            dras: vec![],
            ..row("an adopted file system is taken as it is", |a| {
                !matches!(a, Action::UpdateFileSystem { .. } | Action::Invalid(_))
            })
        },
    ];
    let efa = || workspace(&format!("{TWO_REPOS}\nefa: true"));
    let allows = "  efa: {allowed: true}\n";
    let open_to_all = {
        let mut g = sg(6);
        g.ingress.extend(efa_ingress(
            &g.id,
            &[
                Peer::Group("sg-0123456789abcdef0".into()),
                Peer::Cidr("10.0.0.0/16".into()),
            ],
        ));
        g
    };
    let efa_rows = vec![
        Row {
            ws: efa(),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "EFA in a class that does not allow it: refused before AWS",
                |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.efa" && v[0].message.contains("does not allow EFA")),
            )
        },
        Row {
            ws: efa(),
            class: Some(class(allows)),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row("EFA: all traffic from itself and the clients first", |a| {
                matches!(a, Action::AuthorizeRules { rules, .. }
                    if rules.len() == 3 && rules.iter().all(|r| r.protocol == Protocol::All))
            })
        },
        Row {
            ws: efa(),
            class: Some(class(allows)),
            sg: Some(open_to_all.clone()),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "EFA: then the file system, EFA-enabled",
                |a| matches!(a, Action::CreateFileSystem(r) if r.efa && r.metadata.is_some()),
            )
        },
        Row {
            class: Some(class(allows)),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "no EFA asked: Lustre ports only, no EFA",
                |a| matches!(a, Action::CreateFileSystem(r) if !r.efa),
            )
        },
    ];
    assert_rows(&rows);
    assert_rows(&efa_rows);
    println!("settings table: {} rows", rows.len() + efa_rows.len());
}

#[test]
fn a_deferred_metadata_raise_is_shown_and_looked_at_again_when_fsx_takes_it() {
    let r = Row {
        ws: provisioned(24000),
        fs: Some(with_metadata(
            MetadataConfiguration::UserProvisioned(12000),
            12000,
            Some("2026-12-04T11:00:00Z"),
        )),
        ..row("deferred", |_| true)
    };
    let (action, s) = status_for(&r, None, NOW);
    assert_eq!(action, Action::Ready);
    assert_eq!(s.metadata_iops, Some(12000));
    let fs_ready = cond(&s, "FileSystemReady");
    assert_eq!(fs_ready.status, "True");
    assert!(
        fs_ready
            .message
            .contains("the raise to 24000 metadata IOPS goes in at 2026-12-04T17:00:00Z"),
        "{}",
        fs_ready.message
    );
    let labels = labels();
    let look = settings::next_look(&inputs(&r, &labels, None)).expect("a look is scheduled");
    assert_eq!(look.as_secs(), 5 * 3600 + 1);
}

#[test]
fn zones_pick_the_subnet_and_keep_pods_in_the_file_systems_zone() {
    let two = || {
        let mut c = class("");
        c.spec.subnet_id = None;
        c.spec.subnet_ids = vec![
            "subnet-0123456789abcdef0".into(),
            "subnet-0fedcba9876543210".into(),
        ];
        c
    };
    let both = || {
        vec![
            subnet("subnet-0123456789abcdef0", "us-east-1a"),
            subnet("subnet-0fedcba9876543210", "us-east-1b"),
        ]
    };
    let in_zone = |zone: &str| workspace(&format!("{TWO_REPOS}\navailabilityZone: {zone}"));
    let in_b = || {
        let mut f = fs(Lifecycle::Available, 2400);
        f.subnet_id = Some("subnet-0fedcba9876543210".into());
        f
    };
    let volume_in = |zone: Option<&str>| KubeView {
        volume: Some(VolumeView {
            capacity_gib: 2400,
            file_system_id: "fs-0123456789abcdef0".into(),
            zone: zone.map(str::to_string),
            available: true,
            deleting: false,
        }),
        ..bound()
    };
    let fresh = |name, ws, expect| Row {
        ws,
        class: Some(two()),
        subnets: both(),
        fs: None,
        dras: vec![],
        kube: KubeView::default(),
        ..row(name, expect)
    };
    let rows = [
        Row {
            subnets: vec![subnet("subnet-0123456789abcdef0", "us-east-1a")],
            ..fresh(
                "every subnet of the class is looked up first",
                in_zone("us-east-1b"),
                |a| matches!(a, Action::LookUpSubnet { subnet_id } if subnet_id == "subnet-0fedcba9876543210"),
            )
        },
        fresh(
            "availabilityZone b: subnet b",
            in_zone("us-east-1b"),
            |a| matches!(a, Action::CreateFileSystem(r) if r.subnet_id == "subnet-0fedcba9876543210"),
        ),
        fresh(
            "no zone: the class's first subnet",
            workspace(TWO_REPOS),
            |a| matches!(a, Action::CreateFileSystem(r) if r.subnet_id == "subnet-0123456789abcdef0"),
        ),
        fresh(
            "a zone the class has no subnet in: refused, nothing made",
            in_zone("us-east-1c"),
            |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.availabilityZone" && v[0].message.contains("its zones are us-east-1a, us-east-1b")),
        ),
        Row {
            subnets: vec![
                subnet("subnet-0123456789abcdef0", "us-east-1a"),
                Subnet {
                    vpc_id: "vpc-2".into(),
                    ..subnet("subnet-0fedcba9876543210", "us-east-1b")
                },
            ],
            ..fresh(
                "subnets in two VPCs: refused",
                workspace(TWO_REPOS),
                |a| matches!(a, Action::Invalid(v) if v[0].message.contains("more than one VPC")),
            )
        },
        Row {
            ws: in_zone("us-east-1b"),
            class: Some(two()),
            subnets: both(),
            fs: Some(in_b()),
            kube: volume_in(None),
            ..row("a volume without the zone gets its node affinity", |a| {
                *a == Action::ApplyVolume
            })
        },
        Row {
            ws: in_zone("us-east-1b"),
            class: Some(two()),
            subnets: both(),
            fs: Some(in_b()),
            kube: volume_in(Some("us-east-1b")),
            ..row("file system and volume in zone b", |a| *a == Action::Ready)
        },
        Row {
            ws: in_zone("us-east-1b"),
            class: Some(two()),
            subnets: vec![subnet("subnet-0123456789abcdef0", "us-east-1a")],
            fs: Some(in_b()),
            ..row(
                "the file system's own subnet is looked up too",
                |a| matches!(a, Action::LookUpSubnet { subnet_id } if subnet_id == "subnet-0fedcba9876543210"),
            )
        },
    ];
    assert_rows(&rows);
    let r = Row {
        ws: in_zone("us-east-1b"),
        class: Some(two()),
        subnets: both(),
        fs: Some(in_b()),
        kube: volume_in(Some("us-east-1b")),
        ..row("status", |_| true)
    };
    let (_, status) = status_for(&r, None, NOW);
    assert_eq!(status.availability_zone.as_deref(), Some("us-east-1b"));
}

#[test]
fn intelligent_tiering_is_created_by_throughput_and_grows_by_throughput() {
    let tiering = |t: i32| {
        workspace(&format!(
            "deploymentType: PERSISTENT_2\nstorageType: INTELLIGENT_TIERING\nthroughputCapacity: {t}"
        ))
    };
    let tiered_fs = |t: i32| {
        let mut f = fs(Lifecycle::Available, 0);
        f.settings.intelligent_tiering = true;
        f.settings.throughput_capacity = Some(t);
        f.settings.metadata = Some(MetadataConfiguration::UserProvisioned(6000));
        f.settings.metadata_iops = Some(6000);
        f
    };
    let nominal_volume = KubeView {
        volume: Some(VolumeView {
            capacity_gib: 1,
            file_system_id: "fs-0123456789abcdef0".into(),
            zone: None,
            available: true,
            deleting: false,
        }),
        ..bound()
    };
    let rows = [
        Row {
            ws: tiering(4000),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "create: throughput, proportional read cache, 6000 metadata IOPS, no capacity",
                |a| {
                    matches!(a, Action::CreateFileSystem(r)
                    if r.tiering.as_ref().is_some_and(|t| t.throughput_capacity == 4000
                        && t.read_cache.sizing_mode == ReadCacheSizing::ProportionalToThroughputCapacity)
                    && r.metadata == Some(MetadataConfiguration::UserProvisioned(6000))
                    && r.storage_capacity_gib == 0)
                },
            )
        },
        Row {
            ws: tiering(8000),
            fs: Some(tiered_fs(4000)),
            dras: vec![],
            kube: nominal_volume.clone(),
            ..row("throughput raised in place", |a| {
                matches!(a, Action::UpdateFileSystem { update, .. }
                    if update.throughput_capacity == Some(8000) && update.storage_capacity_gib.is_none())
            })
        },
        Row {
            ws: tiering(4000),
            fs: Some(tiered_fs(4000)),
            dras: vec![],
            kube: nominal_volume.clone(),
            ..row("ready with a nominal 1 GiB volume", |a| *a == Action::Ready)
        },
        Row {
            ws: tiering(4000),
            class: Some(class("  namespaceLimits: {maxStorageCapacityGiB: 24000}\n")),
            fs: None,
            dras: vec![],
            kube: KubeView::default(),
            ..row(
                "a class that budgets capacity refuses elastic storage",
                |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.storageType" && v[0].message.contains("cannot be counted")),
            )
        },
    ];
    assert_rows(&rows);
    let r = Row {
        ws: tiering(4000),
        fs: Some(tiered_fs(4000)),
        dras: vec![],
        kube: nominal_volume,
        ..row("status", |_| true)
    };
    let (_, status) = status_for(&r, None, NOW);
    let cost = status.estimated_monthly_cost.expect("cost status");
    assert!(
        cost.basis.contains("billed by the data it holds"),
        "{}",
        cost.basis
    );
}

#[test]
fn match_pods_makes_the_claim_first_and_follows_the_first_pods_zone() {
    let matching = || {
        let mut c = class("  placement: MatchPods\n");
        c.spec.subnet_id = None;
        c.spec.subnet_ids = vec![
            "subnet-0123456789abcdef0".into(),
            "subnet-0fedcba9876543210".into(),
        ];
        c
    };
    let both = vec![
        subnet("subnet-0123456789abcdef0", "us-east-1a"),
        subnet("subnet-0fedcba9876543210", "us-east-1b"),
    ];
    let unbound = || {
        Some(ClaimView {
            storage_class: Some("lustre-standard-first-pod".into()),
            ..ClaimView::default()
        })
    };
    let kube = |first_pod_sc: bool, claim: Option<ClaimView>, zone: Option<&str>| KubeView {
        storage_class: first_pod_sc,
        first_pod_storage_class: first_pod_sc,
        claim,
        first_pod_zone: zone.map(str::to_string),
        ..KubeView::default()
    };
    let waiting = |name, kube, expect| Row {
        ws: workspace(TWO_REPOS),
        class: Some(matching()),
        subnets: both.clone(),
        fs: None,
        dras: vec![],
        kube,
        ..row(name, expect)
    };
    let rows = [
        waiting("both storage classes first", kube(false, None, None), |a| {
            *a == Action::ApplyStorageClass
        }),
        waiting(
            "then the claim, before any file system",
            kube(true, None, None),
            |a| *a == Action::ApplyClaim,
        ),
        waiting(
            "then the first pod's node",
            kube(true, unbound(), None),
            |a| *a == Action::Wait(Wait::FirstPod),
        ),
        waiting(
            "its node in zone b: the file system in subnet b",
            kube(true, unbound(), Some("us-east-1b")),
            |a| matches!(a, Action::CreateFileSystem(r) if r.subnet_id == "subnet-0fedcba9876543210"),
        ),
        waiting(
            "its node in a zone the class lacks: refused",
            kube(true, unbound(), Some("us-east-1c")),
            |a| matches!(a, Action::Invalid(v) if v[0].message.contains("scheduled in us-east-1c")),
        ),
        Row {
            ws: workspace(&format!("{TWO_REPOS}\navailabilityZone: us-east-1b")),
            ..waiting(
                "a zone asked: no waiting",
                KubeView::default(),
                |a| matches!(a, Action::CreateFileSystem(r) if r.subnet_id == "subnet-0fedcba9876543210"),
            )
        },
    ];
    assert_rows(&rows);
}

#[test]
fn a_restore_creates_from_the_proven_backup_at_its_capacity() {
    let restoring = |gib: i32| {
        workspace(&format!(
            "deploymentType: PERSISTENT_2\nstorageCapacityGiB: {gib}\nperUnitStorageThroughput: 250\nsource: {{backupName: nightly}}"
        ))
    };
    let backup = |lifecycle: BackupLifecycle, gib: i32| Backup {
        id: "backup-0123456789abcdef0".into(),
        file_system_id: "fs-0fedcba9876543210".into(),
        lifecycle,
        progress_percent: Some(40),
        size_bytes: None,
        storage_capacity_gib: gib,
        deployment_type: DeploymentType::Persistent2,
        backup_type: "USER_INITIATED".into(),
        created_at: None,
        failure_message: None,
        tags: Default::default(),
    };
    let before = |name, ws, source, expect| Row {
        ws,
        fs: None,
        dras: vec![],
        kube: KubeView::default(),
        source,
        ..row(name, expect)
    };
    let rows = [
        before(
            "an AVAILABLE backup of the same size: CreateFileSystemFromBackup",
            restoring(2400),
            Some(SourceBackup::Found(backup(
                BackupLifecycle::Available,
                2400,
            ))),
            |a| matches!(a, Action::CreateFileSystem(r) if r.backup_id.as_deref() == Some("backup-0123456789abcdef0") && r.storage_capacity_gib == 2400),
        ),
        before(
            "a backup still TRANSFERRING: wait",
            restoring(2400),
            Some(SourceBackup::Found(backup(
                BackupLifecycle::Transferring,
                2400,
            ))),
            |a| *a == Action::Wait(Wait::SourceBackup),
        ),
        before(
            "another size: refused with the backup's size, nothing made",
            restoring(1200),
            Some(SourceBackup::Found(backup(
                BackupLifecycle::Available,
                2400,
            ))),
            |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.storageCapacityGiB" && v[0].message.contains("2400 GiB")),
        ),
        before(
            "an object not there yet: wait",
            restoring(2400),
            Some(SourceBackup::Waiting(
                "waiting for LustreWorkspaceBackup ml/nightly".into(),
            )),
            |a| *a == Action::Wait(Wait::SourceBackup),
        ),
        before(
            "refused by the class: invalid, nothing made",
            restoring(2400),
            Some(SourceBackup::Refused("class standard does not let".into())),
            |a| matches!(a, Action::Invalid(v) if v[0].field == "spec.source"),
        ),
    ];
    assert_rows(&rows);
}
