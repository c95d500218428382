//! The reconciler: observe (Kubernetes, the poller's cache, AWS only where needed), decide
//! with [`crate::plan`], act, write status with server-side apply when it changed, publish
//! Events. Creation advances several steps in one reconcile when each step's result is
//! known locally (VPC → group → rules → file system); everything that waits on AWS is woken
//! by the poller.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use lustre_api::constants::{DEFAULT_CLASS_ANNOTATION, FIELD_MANAGER, FINALIZER, tags as tag_keys};
use lustre_api::{LustreWorkspace, LustreWorkspaceClass, LustreWorkspaceStatus, Phase};
use lustre_cloud::{
    Cloud, CloudError, ErrorKind, FileSystemDeletion, Lifecycle, SecurityGroup,
    SecurityGroupRequest, lustre_ingress, naming,
};

use crate::builders;
use crate::events::EventRecorder;
use crate::metrics::Metrics;
use crate::plan::{
    self, Action, AwsView, ClaimView, ClassLookup, Inputs, KubeView, VolumeView, Wait,
};
use crate::poller::{Observation, PollIntervals, Poller};
use crate::status::desired_status;

/// Gives the cloud of a region (`None`: the operator's own).
#[async_trait::async_trait]
pub trait CloudProvider: Send + Sync + std::fmt::Debug {
    async fn cloud(&self, region: Option<&str>) -> Arc<dyn Cloud>;
}

/// One cloud for every region (tests, the sandbox).
#[derive(Debug, Clone)]
pub struct SingleCloud(pub Arc<dyn Cloud>);

#[async_trait::async_trait]
impl CloudProvider for SingleCloud {
    async fn cloud(&self, _region: Option<&str>) -> Arc<dyn Cloud> {
        self.0.clone()
    }
}

/// Errors of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error("{0}")]
    Cloud(#[source] CloudError),
}

impl Error {
    /// Bounded label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kubernetes",
            Self::Cloud(e) => e.category(),
        }
    }
}

/// Settings of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    pub intervals: PollIntervals,
    /// Delay before the first retry of a failed reconcile; doubles up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How often to look again while a claim binds.
    pub claim_recheck: Duration,
    pub concurrency: u16,
    /// Namespaces whose workspaces this operator reconciles; empty: all. With exactly one,
    /// the watches are namespaced too.
    pub namespaces: Vec<String>,
    /// This install's id (`--cluster-id`), tagged on what it creates: a kept file system of
    /// another install is not adopted again here.
    pub cluster_id: Option<String>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            intervals: PollIntervals::default(),
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            claim_recheck: Duration::from_secs(2),
            concurrency: 16,
            namespaces: Vec::new(),
            cluster_id: None,
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub clouds: Arc<dyn CloudProvider>,
    pub poller: Poller,
    pub metrics: Arc<Metrics>,
    pub recorder: EventRecorder,
    pub config: ControllerConfig,
    vpcs: Mutex<HashMap<String, String>>,
    failures: Mutex<HashMap<String, u32>>,
    /// Security group and file system ids per workspace UID, as this process learnt them.
    /// The workspace a reconcile gets comes from the watch cache and may predate the status
    /// write that recorded an id; this keeps the next reconcile from creating (idempotently,
    /// but still a call) what it just created.
    known: Mutex<HashMap<String, KnownIds>>,
    /// The status this process last wrote per workspace UID, with the resourceVersion the
    /// write was based on. A reconcile that gets the workspace at that same version is looking
    /// at a cache that has not seen the write yet; it works from the written status instead
    /// (no second identical write, no second Ready Event). Dropped once the cache moves on.
    written: Mutex<HashMap<String, (Option<String>, LustreWorkspaceStatus)>>,
    /// Workspaces (by UID) whose cleanup finished in this process and whose finalizer is still
    /// to be removed.
    cleaned: Mutex<std::collections::HashSet<String>>,
    /// The namespaces as the controller's watch sees them (their labels decide the classes'
    /// `allowedNamespaces`); set once `run` starts watching.
    namespaces: std::sync::OnceLock<Store<Namespace>>,
}

/// A workspace's security group and file system ids, as far as this process knows them:
/// created by it, or described by it and carrying the workspace's UID tag (the file system id
/// may also be one from status that this process looked for and found gone; every describe of
/// a file system checks its tag anyway). Unlike the ids in status (which anyone allowed to
/// write `lustreworkspaces/status` can change), the group id is proof of ownership.
#[derive(Debug, Default)]
struct KnownIds {
    security_group: Option<String>,
    file_system: Option<String>,
    /// The security group had every Lustre rule the class asks for when last seen.
    rules_confirmed: bool,
}

impl Context {
    pub fn new(
        client: Client,
        clouds: Arc<dyn CloudProvider>,
        poller: Poller,
        metrics: Arc<Metrics>,
        config: ControllerConfig,
    ) -> Self {
        let recorder = EventRecorder::new(
            client.clone(),
            "lustre-operator",
            std::env::var("POD_NAME").ok(),
        );
        Self {
            client,
            clouds,
            poller,
            metrics,
            recorder,
            config,
            vpcs: Mutex::default(),
            failures: Mutex::default(),
            known: Mutex::default(),
            written: Mutex::default(),
            namespaces: std::sync::OnceLock::new(),
            cleaned: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("clouds", &self.clouds)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Locks a mutex, taking over one a panicked holder left poisoned.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// Everything observed for one workspace.
#[derive(Debug, Default)]
struct Observed {
    class: Option<LustreWorkspaceClass>,
    class_missing: Option<String>,
    labels: BTreeMap<String, String>,
    vpc: Option<String>,
    sg: Option<SecurityGroup>,
    fs: Option<lustre_cloud::FileSystem>,
    dras: Vec<lustre_cloud::DataRepositoryAssociation>,
    kube: KubeView,
    cluster_id: Option<String>,
}

impl Observed {
    fn inputs<'a>(&'a self, ws: &'a LustreWorkspace) -> Inputs<'a> {
        Inputs {
            workspace: ws,
            class: match (&self.class, &self.class_missing) {
                (Some(c), _) => ClassLookup::Found(c),
                (None, Some(n)) if !n.is_empty() => ClassLookup::Missing(n),
                _ => ClassLookup::NoDefault,
            },
            namespace_labels: &self.labels,
            cluster_id: self.cluster_id.as_deref(),
            aws: AwsView {
                vpc_id: self.vpc.as_deref(),
                security_group: self.sg.as_ref(),
                file_system: self.fs.as_ref(),
                associations: &self.dras,
            },
            kube: &self.kube,
        }
    }
}

async fn resolve_class(
    client: &Client,
    ws: &LustreWorkspace,
) -> Result<(Option<LustreWorkspaceClass>, Option<String>), Error> {
    let api: Api<LustreWorkspaceClass> = Api::all(client.clone());
    if let Some(name) = ws.spec.class_name.as_deref() {
        return Ok(match api.get_opt(name).await.map_err(Error::Kube)? {
            Some(c) => (Some(c), None),
            None => (None, Some(name.to_string())),
        });
    }
    let classes = api
        .list(&ListParams::default())
        .await
        .map_err(Error::Kube)?;
    let default = classes.items.into_iter().find(|c| {
        c.annotations()
            .get(DEFAULT_CLASS_ANNOTATION)
            .map(String::as_str)
            == Some("true")
    });
    Ok((default, Some(String::new())))
}

async fn observe(
    ctx: &Context,
    ws: &LustreWorkspace,
    cloud: &Arc<dyn Cloud>,
    deleting: bool,
) -> Result<Observed, Error> {
    let mut o = Observed {
        cluster_id: ctx.config.cluster_id.clone(),
        ..Observed::default()
    };
    let ns = ws.namespace().unwrap_or_default();
    // Independent reads go out together: a reconcile waits for one round trip, not two.
    // The namespace from the watch when it has it (its label changes wake the workspaces in
    // it), else from the API server.
    let watched = ctx
        .namespaces
        .get()
        .and_then(|s| s.get(&ObjectRef::new(&ns)));
    let ((class, missing), namespace) = tokio::try_join!(resolve_class(&ctx.client, ws), async {
        match watched {
            Some(n) => Ok(Some(n.labels().clone())),
            None => Api::<Namespace>::all(ctx.client.clone())
                .get_opt(&ns)
                .await
                .map(|n| n.map(|n| n.labels().clone()))
                .map_err(Error::Kube),
        }
    })?;
    o.class = class;
    o.class_missing = missing;
    if let Some(labels) = namespace {
        o.labels = labels;
    }
    // No AWS call for a workspace that cannot be provisioned (missing class, invalid spec).
    if !deleting {
        let Some(class) = &o.class else { return Ok(o) };
        if !ws.validate(None).is_empty() || !ws.validate_against_class(class, &o.labels).is_empty()
        {
            return Ok(o);
        }
        o.vpc = lock(&ctx.vpcs).get(&class.spec.subnet_id).cloned();
    }
    let uid = ws.uid().unwrap_or_default();
    let status = ws.status.clone().unwrap_or_default();
    let (known_sg, known_fs, rules_confirmed) = lock(&ctx.known)
        .get(&uid)
        .map(|k| {
            (
                k.security_group.clone(),
                k.file_system.clone(),
                k.rules_confirmed,
            )
        })
        .unwrap_or_default();
    // The ids in status are hints, never proof: every group and file system is used only once
    // it is known to this process or described with this workspace's UID tag.
    let ours = |tags: &lustre_cloud::Tags| naming::owner_uid(tags) == Some(uid.as_str());
    let managed = ws.spec.file_system_id.is_none()
        && o.class
            .as_ref()
            .is_none_or(|c| c.spec.security_group.managed);
    if managed {
        let hint = known_sg.clone().or(status.security_group_id.clone());
        // A group this process knows and no longer finds is gone: nothing to look for.
        let verified = hint.is_some() && hint == known_sg;
        o.sg = match (hint, o.class.as_ref()) {
            // Owned and with its rules, as this process saw it: no call in steady state.
            (Some(id), Some(class))
                if known_sg.as_ref() == Some(&id) && rules_confirmed && !deleting =>
            {
                Some(SecurityGroup {
                    id: id.clone(),
                    name: naming::security_group_name(&uid),
                    vpc_id: String::new(),
                    tags: Default::default(),
                    ingress: lustre_ingress(&id, &plan::client_peers(class)),
                })
            }
            (Some(id), _) => cloud
                .describe_security_groups(std::slice::from_ref(&id))
                .await
                .map_err(Error::Cloud)?
                .into_iter()
                .find(|g| ours(&g.tags)),
            (None, _) => None,
        };
        // Not recorded, recorded but lost (the status write after the create), or recorded
        // as a group that is not this workspace's: find its own by tag.
        if o.sg.is_none() && !verified {
            o.sg = cloud
                .find_security_groups_by_owner(&uid)
                .await
                .map_err(Error::Cloud)?
                .into_iter()
                .next();
        }
    }
    // The file system: the adopted one (the plan decides whether it may be adopted), or the
    // recorded one if it carries this workspace's UID tag. One that was created but not
    // recorded is found again by its client token when the create is retried.
    // A class that adopts nothing costs no look at the file system a workspace names (while
    // deleting, the look still happens: an earlier policy may have let it link and mark it).
    let adopted = ws
        .spec
        .file_system_id
        .clone()
        .filter(|_| deleting || o.class.as_ref().is_some_and(|c| c.spec.adoption.is_some()));
    // An adopting workspace's file system is the one its spec names, whatever status says.
    let recorded = if ws.spec.file_system_id.is_some() {
        None
    } else {
        known_fs.clone().or(status.file_system_id.clone())
    };
    if let Some(id) = adopted.clone().or(recorded.clone()) {
        let observation = match ctx.poller.cached(&id) {
            Some(obs) => Some(obs),
            None => {
                let fs = cloud
                    .describe_file_systems(std::slice::from_ref(&id))
                    .await
                    .map_err(Error::Cloud)?
                    .into_iter()
                    .next()
                    .filter(|fs| adopted.is_some() || ours(&fs.tags));
                match fs {
                    Some(fs) => {
                        let dras = cloud
                            .describe_data_repository_associations(std::slice::from_ref(&id))
                            .await
                            .map_err(Error::Cloud)?;
                        let obs = Observation {
                            file_system: Some(fs),
                            associations: dras,
                        };
                        ctx.poller.store(&id, obs.clone());
                        Some(obs)
                    }
                    None => None,
                }
            }
        }
        // The poller may hold another workspace's file system under this id.
        .filter(|obs| {
            adopted.is_some() || obs.file_system.as_ref().is_some_and(|fs| ours(&fs.tags))
        });
        if let Some(observation) = observation {
            o.fs = observation.file_system;
            o.dras = observation.associations;
        }
    }
    if o.fs.is_none() && recorded.is_some() && recorded != known_fs {
        // Recorded in status but gone, or not this workspace's (status changed outside the
        // operator): its own, if it has one, carries its UID tag. (One this process knew and
        // no longer finds is gone.)
        match cloud
            .find_file_systems_by_owner(&uid)
            .await
            .map_err(Error::Cloud)?
            .into_iter()
            .next()
        {
            Some(fs) => {
                o.dras = cloud
                    .describe_data_repository_associations(std::slice::from_ref(&fs.id))
                    .await
                    .map_err(Error::Cloud)?;
                o.fs = Some(fs);
            }
            // Looked once: it stays unused (every describe checks the tag), and later
            // reconciles need not look again.
            None => {
                lock(&ctx.known).entry(uid.clone()).or_default().file_system = recorded.clone();
            }
        }
    }
    // Kubernetes objects, read together.
    let storage_class = o
        .class
        .as_ref()
        .map(|c| builders::storage_class_name(&c.name_any()));
    let (volumes, claims, volume, claim) = (
        Api::<PersistentVolume>::all(ctx.client.clone()),
        Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns),
        builders::volume_name(ws),
        plan::claim_name(ws),
    );
    let (storage_class, pv, pvc) = tokio::try_join!(
        async {
            match &storage_class {
                Some(name) => Api::<StorageClass>::all(ctx.client.clone())
                    .get_opt(name)
                    .await
                    .map(|sc| sc.is_some()),
                None => Ok(false),
            }
        },
        volumes.get_opt(&volume),
        claims.get_opt(&claim),
    )
    .map_err(Error::Kube)?;
    o.kube.storage_class = storage_class;
    o.kube.volume = pv.map(|pv| {
        let spec = pv.spec.unwrap_or_default();
        VolumeView {
            capacity_gib: spec
                .capacity
                .as_ref()
                .and_then(|c| c.get("storage"))
                .and_then(builders::parse_gib)
                .unwrap_or(0),
            file_system_id: spec.csi.map(|c| c.volume_handle).unwrap_or_default(),
        }
    });
    // A claim of that name that is not the workspace's is never taken over.
    o.kube.claim_taken = pvc
        .as_ref()
        .is_some_and(|c| !c.owner_references().iter().any(|r| r.uid == uid));
    o.kube.claim = pvc
        .filter(|c| c.owner_references().iter().any(|r| r.uid == uid))
        .map(|c| ClaimView {
            bound: c.status.and_then(|s| s.phase).as_deref() == Some("Bound"),
            deleting: c.metadata.deletion_timestamp.is_some(),
        });
    Ok(o)
}

fn event_reason(action: &Action) -> &'static str {
    match action {
        Action::LookUpVpc { .. } | Action::CreateSecurityGroup { .. } => "CreatingSecurityGroup",
        Action::AuthorizeRules { .. } => "OpeningLustrePorts",
        Action::CreateFileSystem(_) => "CreatingFileSystem",
        Action::UpdateFileSystem { .. } => "UpdatingFileSystem",
        Action::CreateAssociations(_) => "LinkingDataRepositories",
        Action::DeleteAssociations(_) => "UnlinkingDataRepositories",
        Action::ApplyStorageClass | Action::ApplyVolume | Action::ApplyClaim => "CreatingVolume",
        Action::DeleteClaim | Action::DeleteVolume => "DeletingVolume",
        Action::DeleteFileSystem { .. } => "DeletingFileSystem",
        Action::DeleteSecurityGroup { .. } => "DeletingSecurityGroup",
        Action::TagRetained { .. } => "Retained",
        Action::TagAdopted { .. } => "AdoptingFileSystem",
        Action::UntagAdopted { .. } => "ReleasingFileSystem",
        _ => "Reconciled",
    }
}

async fn publish(
    ctx: &Context,
    ws: &LustreWorkspace,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &ws.object_ref(&())).await {
        tracing::debug!(
            error = &e as &dyn std::error::Error,
            "publishing an Event failed"
        );
    }
}

/// The step's name for logs and kill points: the action's variant name.
fn step_name(action: &Action) -> &'static str {
    match action {
        Action::LookUpVpc { .. } => "LookUpVpc",
        Action::CreateSecurityGroup { .. } => "CreateSecurityGroup",
        Action::AuthorizeRules { .. } => "AuthorizeRules",
        Action::CreateFileSystem(_) => "CreateFileSystem",
        Action::UpdateFileSystem { .. } => "UpdateFileSystem",
        Action::CreateAssociations(_) => "CreateAssociations",
        Action::DeleteAssociations(_) => "DeleteAssociations",
        Action::ApplyStorageClass => "ApplyStorageClass",
        Action::ApplyVolume => "ApplyVolume",
        Action::ApplyClaim => "ApplyClaim",
        Action::DeleteClaim => "DeleteClaim",
        Action::DeleteVolume => "DeleteVolume",
        Action::DeleteFileSystem { .. } => "DeleteFileSystem",
        Action::DeleteSecurityGroup { .. } => "DeleteSecurityGroup",
        Action::TagRetained { .. } => "TagRetained",
        Action::TagAdopted { .. } => "TagAdopted",
        Action::UntagAdopted { .. } => "UntagAdopted",
        _ => "other",
    }
}

/// Crash-test hook: with `LUSTRE_KILL_POINT=<step>` (a [`step_name`], or
/// `CreateAssociation#1` for "after the first of several association creates") the process
/// SIGKILLs itself right after that step succeeded, before anything else (status write,
/// next step) happens. Unset in production; the crash suite sets it.
pub fn kill_point(step: &str) {
    static POINT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("LUSTRE_KILL_POINT").ok());
    if point.as_deref() == Some(step) {
        tracing::warn!(step, "LUSTRE_KILL_POINT reached: killing this process");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

/// Whether the poller should describe this workspace's associations: it asks for some, or
/// some still exist.
fn links(ws: &LustreWorkspace, o: &Observed) -> bool {
    !ws.spec.data_repositories.is_empty() || !o.dras.is_empty()
}

/// Keeps the ids this reconcile knows of (see [`Context::known`]).
fn remember(ctx: &Context, ws: &LustreWorkspace, o: &Observed) {
    if o.sg.is_none() && o.fs.is_none() {
        return;
    }
    let mut known = lock(&ctx.known);
    let entry = known.entry(ws.uid().unwrap_or_default()).or_default();
    if let Some(sg) = &o.sg {
        entry.security_group = Some(sg.id.clone());
        entry.rules_confirmed = o.class.as_ref().is_some_and(|class| {
            lustre_ingress(&sg.id, &plan::client_peers(class))
                .iter()
                .all(|r| sg.ingress.contains(r))
        });
    }
    if let Some(fs) = &o.fs {
        entry.file_system = Some(fs.id.clone());
    }
}

/// Puts what this reconcile knows of the file system into the poller's cache, and has the
/// poller watch it until it settles.
fn track(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
    workspace: ObjectRef<LustreWorkspace>,
    cloud: &Arc<dyn Cloud>,
) {
    if let Some(fs) = &o.fs {
        ctx.poller.store(
            &fs.id,
            Observation {
                file_system: Some(fs.clone()),
                associations: o.dras.clone(),
            },
        );
        ctx.poller
            .watch(&fs.id, workspace, cloud.clone(), links(ws, o));
    }
}

/// Carries out one step, updating the local observation with its result.
async fn act(
    ctx: &Context,
    ws: &LustreWorkspace,
    cloud: &Arc<dyn Cloud>,
    o: &mut Observed,
    action: &Action,
) -> Result<(), Error> {
    let ns = ws.namespace().unwrap_or_default();
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let oref = ObjectRef::from_obj(ws);
    match action {
        Action::LookUpVpc { subnet_id } => {
            let vpc = cloud.subnet_vpc(subnet_id).await.map_err(Error::Cloud)?;
            lock(&ctx.vpcs).insert(subnet_id.clone(), vpc.clone());
            o.vpc = Some(vpc);
        }
        Action::CreateSecurityGroup { vpc_id } => {
            let class = o.class.as_ref().expect("decided with a class");
            let uid = ws.uid().unwrap_or_default();
            let request = SecurityGroupRequest {
                name: naming::security_group_name(&uid),
                description: format!(
                    "Lustre (TCP 988, 1018-1023) for workspace {ns}/{}",
                    ws.name_any()
                ),
                vpc_id: vpc_id.clone(),
                tags: plan::resource_tags(ws, class),
            };
            let id = match cloud.create_security_group(&request).await {
                Ok(id) => id,
                Err(e) if e.has_code("InvalidGroup.Duplicate") => cloud
                    .find_security_groups_by_owner(&uid)
                    .await
                    .map_err(Error::Cloud)?
                    .into_iter()
                    .next()
                    .map(|g| g.id)
                    .ok_or(Error::Cloud(e))?,
                Err(e) => return Err(Error::Cloud(e)),
            };
            o.sg = Some(SecurityGroup {
                id,
                name: request.name,
                vpc_id: vpc_id.clone(),
                tags: request.tags,
                ingress: vec![],
            });
        }
        Action::AuthorizeRules { group_id, rules } => {
            cloud
                .authorize_ingress(group_id, rules)
                .await
                .map_err(Error::Cloud)?;
            if let Some(sg) = &mut o.sg {
                sg.ingress.extend(rules.iter().cloned());
                sg.ingress.sort();
            }
        }
        Action::CreateFileSystem(request) => {
            let fs = cloud
                .create_file_system(request)
                .await
                .map_err(Error::Cloud)?;
            o.fs = Some(fs);
            track(ctx, ws, o, oref, cloud);
        }
        Action::UpdateFileSystem { id, update } => {
            let fs = cloud
                .update_file_system(id, update)
                .await
                .map_err(Error::Cloud)?;
            o.fs = Some(fs);
            track(ctx, ws, o, oref, cloud);
        }
        Action::CreateAssociations(requests) => {
            for (i, r) in requests.iter().enumerate() {
                let a = cloud
                    .create_data_repository_association(r)
                    .await
                    .map_err(Error::Cloud)?;
                o.dras.push(a);
                if i == 0 && requests.len() > 1 {
                    kill_point("CreateAssociation#1");
                }
            }
            track(ctx, ws, o, oref, cloud);
        }
        Action::DeleteAssociations(ids) => {
            for id in ids {
                match cloud.delete_data_repository_association(id).await {
                    Ok(()) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::Cloud(e)),
                }
                if let Some(a) = o.dras.iter_mut().find(|a| a.id == *id) {
                    a.lifecycle = Lifecycle::Deleting;
                }
            }
            track(ctx, ws, o, oref, cloud);
        }
        Action::ApplyStorageClass => {
            let sc = builders::storage_class(o.class.as_ref().expect("decided with a class"));
            let name = sc.name_any();
            Api::<StorageClass>::all(ctx.client.clone())
                .patch(&name, &pp, &Patch::Apply(&sc))
                .await
                .map_err(Error::Kube)?;
            o.kube.storage_class = true;
        }
        Action::ApplyVolume => {
            let fs = o.fs.as_ref().expect("decided with a file system");
            let pv = builders::persistent_volume(
                ws,
                o.class.as_ref().expect("decided with a class"),
                fs,
            );
            Api::<PersistentVolume>::all(ctx.client.clone())
                .patch(&pv.name_any(), &pp, &Patch::Apply(&pv))
                .await
                .map_err(Error::Kube)?;
            o.kube.volume = Some(VolumeView {
                capacity_gib: fs.storage_capacity_gib.into(),
                file_system_id: fs.id.clone(),
            });
        }
        Action::ApplyClaim => {
            let fs = o.fs.as_ref().expect("decided with a file system");
            let pvc = builders::persistent_volume_claim(
                ws,
                o.class.as_ref().expect("decided with a class"),
                fs.storage_capacity_gib.into(),
            );
            // Created, never applied with force: a claim someone else made in the meantime
            // stays theirs (the next look sees it as taken).
            let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns);
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PostParams::default()
            };
            let claim = match claims.create(&params, &pvc).await {
                Ok(c) => c,
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    claims.get(&pvc.name_any()).await.map_err(Error::Kube)?
                }
                Err(e) => return Err(Error::Kube(e)),
            };
            let uid = ws.uid().unwrap_or_default();
            let owned = claim.owner_references().iter().any(|r| r.uid == uid);
            o.kube.claim_taken = !owned;
            o.kube.claim = owned.then(|| ClaimView {
                bound: claim.status.and_then(|s| s.phase).as_deref() == Some("Bound"),
                deleting: false,
            });
        }
        Action::DeleteClaim => {
            // The claim may live on (pods still mount it: pvc-protection); look, don't assume.
            let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns);
            let name = plan::claim_name(ws);
            gone_is_deleted(claims.delete(&name, &DeleteParams::default()).await)?;
            o.kube.claim = claims
                .get_opt(&name)
                .await
                .map_err(Error::Kube)?
                .map(|c| ClaimView {
                    bound: c.status.and_then(|s| s.phase).as_deref() == Some("Bound"),
                    deleting: true,
                });
        }
        Action::DeleteVolume => {
            let volumes = Api::<PersistentVolume>::all(ctx.client.clone());
            let name = builders::volume_name(ws);
            // A deleted volume stays while a finalizer holds it (kube-controller-manager's
            // pv-protection, for a moment after the claim goes): it is looked at again shortly
            // (`requeue`), and its delete is sent once.
            let held = match volumes.get_opt(&name).await.map_err(Error::Kube)? {
                None => false,
                Some(v) if v.metadata.deletion_timestamp.is_some() => true,
                Some(_) => {
                    gone_is_deleted(volumes.delete(&name, &DeleteParams::default()).await)?;
                    volumes.get_opt(&name).await.map_err(Error::Kube)?.is_some()
                }
            };
            if !held {
                o.kube.volume = None;
            }
        }
        Action::TagRetained { arn } => {
            let tags = [(tag_keys::RETAINED.to_string(), "true".to_string())].into();
            cloud.tag_resource(arn, &tags).await.map_err(Error::Cloud)?;
            if let Some(fs) = &mut o.fs {
                fs.tags.extend(tags);
            }
            let ids = format!(
                "kept file system {} and security group {} (deletionPolicy: Retain)",
                o.fs.as_ref().map(|f| f.id.as_str()).unwrap_or("-"),
                o.sg.as_ref().map(|g| g.id.as_str()).unwrap_or("-")
            );
            publish(ctx, ws, EventType::Normal, "Retained", ids).await;
        }
        Action::TagAdopted { arn } => {
            let mark = [(
                tag_keys::ADOPTED_BY.to_string(),
                ws.uid().unwrap_or_default(),
            )]
            .into();
            cloud.tag_resource(arn, &mark).await.map_err(Error::Cloud)?;
            // Read the mark back: of two workspaces marking at once, the one whose mark
            // stayed adopts, the other is refused on this look.
            let id = o.fs.as_ref().map(|f| f.id.clone()).unwrap_or_default();
            o.fs = cloud
                .describe_file_systems(std::slice::from_ref(&id))
                .await
                .map_err(Error::Cloud)?
                .into_iter()
                .next();
            ctx.poller.forget(&id);
        }
        Action::UntagAdopted { arn } => {
            cloud
                .untag_resource(arn, &[tag_keys::ADOPTED_BY.to_string()])
                .await
                .map_err(Error::Cloud)?;
            if let Some(fs) = &mut o.fs {
                fs.tags.remove(tag_keys::ADOPTED_BY);
            }
            if let Some(fs) = &o.fs {
                ctx.poller.forget(&fs.id);
            }
        }
        Action::DeleteFileSystem { id, final_backup } => {
            let deletion = FileSystemDeletion {
                final_backup_tags: final_backup.then(|| {
                    [(
                        "workspaces.lustre.dev/final-backup-of".to_string(),
                        format!("{ns}/{}", ws.name_any()),
                    )]
                    .into()
                }),
            };
            match cloud.delete_file_system(id, &deletion).await {
                Ok(())
                | Err(CloudError {
                    kind: ErrorKind::NotFound,
                    ..
                }) => {}
                Err(e) => return Err(Error::Cloud(e)),
            }
            if let Some(fs) = &mut o.fs {
                fs.lifecycle = Lifecycle::Deleting;
            }
            track(ctx, ws, o, oref, cloud);
        }
        Action::DeleteSecurityGroup { id } => match cloud.delete_security_group(id).await {
            Ok(())
            | Err(CloudError {
                kind: ErrorKind::NotFound,
                ..
            }) => o.sg = None,
            Err(e) => return Err(Error::Cloud(e)),
        },
        _ => {}
    }
    Ok(())
}

/// Steps that change something in AWS or Kubernetes (each gets a Normal Event).
fn is_change(action: &Action) -> bool {
    !matches!(
        action,
        Action::Wait(_)
            | Action::Ready
            | Action::Finished
            | Action::LookUpVpc { .. }
            | Action::ClassMissing(_)
            | Action::Invalid(_)
            | Action::NamespaceNotAllowed { .. }
            | Action::AdoptionRefused(_)
            | Action::ClaimConflict(_)
            | Action::FileSystemFailed(_)
            | Action::AssociationFailed { .. }
    )
}

/// Steps recorded as a Normal Event: what changes in AWS (plus, elsewhere, Ready and
/// Deleted). The Kubernetes objects the operator writes (StorageClass, volume, claim) are
/// visible themselves and in the conditions; an Event each would double the writes of a
/// workspace for no news. A step that fails is always recorded (Warning).
fn announced(action: &Action) -> bool {
    is_change(action)
        && !matches!(
            action,
            Action::ApplyStorageClass
                | Action::ApplyVolume
                | Action::ApplyClaim
                | Action::DeleteClaim
                | Action::DeleteVolume
        )
}

/// Steps that never wait and whose result is known locally: the reconcile goes on.
fn continues(action: &Action) -> bool {
    matches!(
        action,
        Action::LookUpVpc { .. }
            | Action::CreateSecurityGroup { .. }
            | Action::AuthorizeRules { .. }
            | Action::ApplyStorageClass
            | Action::ApplyVolume
            | Action::ApplyClaim
            | Action::DeleteClaim
            | Action::DeleteVolume
            | Action::TagRetained { .. }
            | Action::TagAdopted { .. }
            | Action::UntagAdopted { .. }
            | Action::DeleteSecurityGroup { .. }
    )
}

async fn write_status(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
    action: &Action,
    error: Option<&CloudError>,
    deleting: bool,
) -> Result<(), Error> {
    let status = desired_status(&o.inputs(ws), action, error, deleting, &now());
    if ws.status.as_ref() == Some(&status) {
        return Ok(());
    }
    if status.phase == Some(Phase::Ready)
        && ws.status.as_ref().is_none_or(|s| s.ready_time.is_none())
        && let Some(created) = ws.metadata.creation_timestamp.as_ref()
    {
        let secs = (jiff::Timestamp::now().as_second() - created.0.as_second()).max(0) as f64;
        let kind = status
            .deployment_type
            .map(|d| d.as_str())
            .unwrap_or("unknown");
        ctx.metrics
            .time_to_ready
            .with_label_values(&[kind])
            .observe(secs);
    }
    ctx.metrics
        .set_phase(&ws.uid().unwrap_or_default(), status.phase);
    let api: Api<LustreWorkspace> =
        Api::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default());
    let patch = serde_json::json!({"apiVersion": "workspaces.lustre.dev/v1alpha1", "kind": "LustreWorkspace", "status": status});
    api.patch_status(
        &ws.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    lock(&ctx.written).insert(
        ws.uid().unwrap_or_default(),
        (ws.resource_version(), status),
    );
    Ok(())
}

/// The workspace as this process last left it: the watch cache's copy, or, when that copy
/// is the very version our last status write was based on, the same with the status we wrote.
fn freshen(ctx: &Context, ws: Arc<LustreWorkspace>) -> Arc<LustreWorkspace> {
    let uid = ws.uid().unwrap_or_default();
    let mut written = lock(&ctx.written);
    match written.get(&uid) {
        Some((rv, status)) if *rv == ws.resource_version() => {
            let mut fresh = (*ws).clone();
            fresh.status = Some(status.clone());
            Arc::new(fresh)
        }
        Some(_) => {
            written.remove(&uid);
            ws
        }
        None => ws,
    }
}

/// A delete of an object someone (a finalizer's controller, a person) removed first is done.
fn gone_is_deleted<T>(result: Result<T, kube::Error>) -> Result<(), Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::Kube(e)),
    }
}

/// What to do after a reconcile that ended on `action`.
fn requeue(ctx: &Context, action: &Action) -> Requeue {
    match action {
        Action::Wait(Wait::ClaimBinding) => Requeue::requeue(ctx.config.claim_recheck),
        // The volume was deleted but a finalizer still holds it (pv-protection); nothing the
        // operator watches changes when it goes.
        Action::DeleteVolume => Requeue::requeue(ctx.config.claim_recheck),
        Action::Wait(Wait::ClaimInUse) => Requeue::requeue(ctx.config.claim_recheck * 5),
        // Everything else is woken by a watch (spec, class, claim) or by the poller.
        _ => Requeue::await_change(),
    }
}

async fn run_steps(
    ctx: &Context,
    ws: &LustreWorkspace,
    deleting: bool,
) -> Result<(Action, Observed), Error> {
    let (class, _) = resolve_class(&ctx.client, ws).await?;
    let cloud = ctx
        .clouds
        .cloud(class.as_ref().and_then(|c| c.spec.region.as_deref()))
        .await;
    let mut o = observe(ctx, ws, &cloud, deleting).await?;
    let mut last = Action::Finished;
    let mut finalized = ws.finalizers().iter().any(|f| f == FINALIZER);
    for _ in 0..12 {
        let inputs = o.inputs(ws);
        let action = if deleting {
            plan::next_cleanup_action(&inputs)
        } else {
            plan::next_action(&inputs)
        };
        // A step that did not move anything (e.g. a volume still held) waits for a watch.
        if action == last {
            break;
        }
        tracing::debug!(
            workspace.namespace = ws.namespace().unwrap_or_default(),
            workspace.name = ws.name_any(),
            step = plan::describe(&action),
            "next step"
        );
        if !deleting && !finalized && is_change(&action) {
            let api: Api<LustreWorkspace> =
                Api::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default());
            set_finalizer(&api, ws, true).await?;
            finalized = true;
        }
        let acted = act(ctx, ws, &cloud, &mut o, &action).await;
        remember(ctx, ws, &o);
        if acted.is_ok() {
            kill_point(step_name(&action));
        }
        if let Err(e) = acted {
            if let Error::Cloud(ce) = &e {
                write_status(ctx, ws, &o, &action, Some(ce), deleting).await?;
                publish(
                    ctx,
                    ws,
                    EventType::Warning,
                    event_reason(&action),
                    format!("{}: {}", plan::describe(&action), ce.for_tenants()),
                )
                .await;
            }
            return Err(e);
        }
        if announced(&action) {
            publish(
                ctx,
                ws,
                EventType::Normal,
                event_reason(&action),
                plan::describe(&action),
            )
            .await;
        }
        let more = continues(&action);
        last = action;
        if !more {
            break;
        }
    }
    Ok((last, o))
}

async fn apply(ws: Arc<LustreWorkspace>, ctx: &Context) -> Result<Requeue, Error> {
    let (action, o) = run_steps(ctx, &ws, false).await?;
    if let Some(fs) = &o.fs {
        let cloud = ctx
            .clouds
            .cloud(o.class.as_ref().and_then(|c| c.spec.region.as_deref()))
            .await;
        match &action {
            // Ready, or failed in a way only a person can fix: drift checks only, no polling
            // every interval.
            Action::Ready | Action::FileSystemFailed(_) | Action::AssociationFailed { .. } => ctx
                .poller
                .settle(&fs.id, ObjectRef::from_obj(&*ws), cloud, links(&ws, &o)),
            Action::Wait(
                Wait::FileSystemCreating | Wait::FileSystemUpdating | Wait::Associations,
            ) => ctx
                .poller
                .watch(&fs.id, ObjectRef::from_obj(&*ws), cloud, links(&ws, &o)),
            _ => {}
        }
    }
    write_status(ctx, &ws, &o, &action, None, false).await?;
    if matches!(action, Action::Ready)
        && ws
            .status
            .as_ref()
            .is_none_or(|s| s.phase != Some(Phase::Ready))
    {
        publish(
            ctx,
            &ws,
            EventType::Normal,
            "Ready",
            format!(
                "claim {} is bound: mount it in your pods",
                plan::claim_name(&ws)
            ),
        )
        .await;
    }
    // A step that needs a person is a Warning named by the Ready condition's reason, so that
    // `kubectl get events --field-selector reason=NamespaceNotAllowed` finds them.
    if let Some(why) = crate::status::stopped_reason(&action) {
        let was = ws
            .status
            .as_ref()
            .and_then(|s| s.conditions.first())
            .map(|c| c.message.clone());
        let now = plan::describe(&action);
        if was.as_deref() != Some(now.as_str()) {
            publish(ctx, &ws, EventType::Warning, why, now).await;
        }
    }
    Ok(requeue(ctx, &action))
}

/// Returns whether nothing is left (the finalizer may go) and when to look again.
async fn cleanup(ws: Arc<LustreWorkspace>, ctx: &Context) -> Result<(bool, Requeue), Error> {
    let (action, o) = run_steps(ctx, &ws, true).await?;
    if matches!(action, Action::Finished) {
        if let Some(id) = ws
            .spec
            .file_system_id
            .clone()
            .or(ws.status.as_ref().and_then(|s| s.file_system_id.clone()))
        {
            ctx.poller.forget(&id);
        }
        lock(&ctx.known).remove(&ws.uid().unwrap_or_default());
        lock(&ctx.written).remove(&ws.uid().unwrap_or_default());
        ctx.metrics.set_phase(&ws.uid().unwrap_or_default(), None);
        publish(
            ctx,
            &ws,
            EventType::Normal,
            "Deleted",
            "cleanup finished".into(),
        )
        .await;
        return Ok((true, Requeue::await_change()));
    }
    write_status(ctx, &ws, &o, &action, None, true).await?;
    if let Action::Wait(Wait::FileSystemDeleting | Wait::FileSystemCreating | Wait::Associations) =
        action
        && let Some(fs) = &o.fs
    {
        let cloud = ctx
            .clouds
            .cloud(o.class.as_ref().and_then(|c| c.spec.region.as_deref()))
            .await;
        ctx.poller
            .watch(&fs.id, ObjectRef::from_obj(&*ws), cloud, links(&ws, &o));
    }
    Ok((false, requeue(ctx, &action)))
}

/// Adds or removes the cleanup finalizer with a JSON patch guarded by a `test`, so a
/// concurrent writer makes the patch fail (and the reconcile retry) instead of being lost.
async fn set_finalizer(
    api: &Api<LustreWorkspace>,
    ws: &LustreWorkspace,
    present: bool,
) -> Result<(), Error> {
    let current: Vec<String> = ws.finalizers().to_vec();
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        wanted.push(FINALIZER.to_string());
    }
    if wanted == current {
        return Ok(());
    }
    let test = if ws.metadata.finalizers.is_some() {
        serde_json::json!(current)
    } else {
        serde_json::Value::Null
    };
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/finalizers", "value": test},
        {"op": "add", "path": "/metadata/finalizers", "value": wanted},
    ]))
    .expect("static patch shape");
    api.patch::<LustreWorkspace>(&ws.name_any(), &PatchParams::default(), &Patch::Json(patch))
        .await
        .map_err(Error::Kube)?;
    Ok(())
}

/// The top-level reconcile: span, duration metric, finalizer, then apply or cleanup. The
/// finalizer is removed only when cleanup reports nothing left (kube-runtime's helper
/// removes it on any successful cleanup pass, which would drop the wait for pods).
pub async fn reconcile(ws: Arc<LustreWorkspace>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let ns = ws.namespace().unwrap_or_default();
    if !ctx.config.namespaces.is_empty() && !ctx.config.namespaces.contains(&ns) {
        // Another operator's (or nobody's) namespace: leave it alone entirely.
        return Ok(Requeue::await_change());
    }
    let started = Instant::now();
    let ws = freshen(&ctx, ws);
    let api: Api<LustreWorkspace> =
        Api::namespaced(ctx.client.clone(), &ws.namespace().unwrap_or_default());
    let result = async {
        if ws.metadata.deletion_timestamp.is_some() {
            if !ws.finalizers().iter().any(|f| f == FINALIZER) {
                return Ok(Requeue::await_change());
            }
            // Cleanup this process saw finish needs no second look at AWS: only the finalizer
            // is left (its patch may have been refused, e.g. by a conflict).
            let uid = ws.uid().unwrap_or_default();
            let finished = lock(&ctx.cleaned).contains(&uid);
            let (done, requeue) = if finished {
                (true, Requeue::await_change())
            } else {
                cleanup(ws.clone(), &ctx).await?
            };
            if done {
                lock(&ctx.cleaned).insert(uid.clone());
                set_finalizer(&api, &ws, false).await?;
                lock(&ctx.cleaned).remove(&uid);
            }
            Ok(requeue)
        } else {
            // The finalizer goes on just before the first step that creates something (see
            // run_steps): a workspace refused before that (invalid spec, missing class)
            // deletes at once, with no AWS call.
            apply(ws.clone(), &ctx).await
        }
    }
    .await;
    ctx.metrics
        .reconcile_duration
        .with_label_values(&["workspace"])
        .observe(started.elapsed().as_secs_f64());
    let key = ws.uid().unwrap_or_default();
    match &result {
        Ok(_) => {
            ctx.metrics.reconciles.with_label_values(&["ok"]).inc();
            lock(&ctx.failures).remove(&key);
        }
        Err(e) => {
            ctx.metrics.reconciles.with_label_values(&["error"]).inc();
            ctx.metrics
                .failures
                .with_label_values(&[e.category()])
                .inc();
        }
    }
    result
}

fn cloud_error(e: &Error) -> Option<&CloudError> {
    match e {
        Error::Cloud(c) => Some(c),
        _ => None,
    }
}

/// Terminal AWS errors wait for a change; everything else backs off per object, growing
/// and jittered, capped.
pub fn error_policy(ws: Arc<LustreWorkspace>, error: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(
        workspace.namespace = ws.namespace().unwrap_or_default(),
        workspace.name = ws.name_any(),
        error = error as &dyn std::error::Error,
        "reconcile failed"
    );
    match ctx.retry_delay(&ws.uid().unwrap_or_default(), error) {
        Some(delay) => Requeue::requeue(delay),
        None => Requeue::await_change(),
    }
}

impl Context {
    /// When to retry a workspace whose reconcile failed with `error`; `None`: not until
    /// something changes.
    pub fn retry_delay(&self, uid: &str, error: &Error) -> Option<Duration> {
        // ±20 % jitter from the clock's sub-second digits (no shared RNG needed).
        let jitter =
            0.8 + 0.4 * f64::from(jiff::Timestamp::now().subsec_nanosecond() % 1000) / 1000.0;
        // A request AWS calls invalid only changes with the spec or class. A denied action or
        // a reached quota is fixed outside Kubernetes (IAM, Service Quotas): keep retrying,
        // with the growing back-off below (capped at max_backoff).
        if let Some(c) = cloud_error(error)
            && c.kind == ErrorKind::InvalidRequest
            && !c.has_code("InvalidNetworkSettings")
        {
            return None;
        }
        // A 409 from the API server says the object moved on since the watch cache showed
        // it: the next reconcile reads the newer version, and waiting longer does not make
        // that likelier. Retry at the base delay without counting an attempt, so conflicts
        // (frequent when other writers are busy) do not push the AWS back-off towards its cap.
        if let Error::Kube(kube::Error::Api(status)) = error
            && status.is_conflict()
        {
            return Some(self.config.base_backoff.mul_f64(jitter));
        }
        let attempts = {
            let mut f = lock(&self.failures);
            let n = f.entry(uid.to_owned()).or_insert(0);
            *n += 1;
            *n
        };
        let base = self.config.base_backoff.as_secs_f64() * 2f64.powi(attempts.min(16) as i32 - 1);
        let capped = base.min(self.config.max_backoff.as_secs_f64());
        Some(Duration::from_secs_f64(capped * jitter))
    }
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    wake: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<LustreWorkspace>>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (workspaces, claims): (
        Api<LustreWorkspace>,
        Api<kube::core::PartialObjectMeta<PersistentVolumeClaim>>,
    ) = match ctx.config.namespaces.as_slice() {
        [only] => (
            Api::namespaced(ctx.client.clone(), only),
            Api::namespaced(ctx.client.clone(), only),
        ),
        _ => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
    };
    let classes: Api<LustreWorkspaceClass> = Api::all(ctx.client.clone());
    let poller = ctx.poller.clone();
    let intervals = ctx.config.intervals;
    let poll_task = tokio::spawn(poller.run(intervals));
    let wake_stream =
        futures::stream::unfold(
            wake,
            |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
        );
    let controller = Controller::new(workspaces, watcher::Config::default());
    // A namespace whose labels change (a class's allowedNamespaces may admit it or shut it
    // out) re-checks the workspaces in it.
    let namespaces_api: Api<Namespace> = Api::all(ctx.client.clone());
    let namespaces_config = match ctx.config.namespaces.as_slice() {
        [only] => watcher::Config::default().fields(&format!("metadata.name={only}")),
        _ => watcher::Config::default(),
    };
    let (namespaces, writer) = reflector::store();
    let _ = ctx.namespaces.set(namespaces);
    let namespace_changes =
        reflector::reflector(writer, watcher(namespaces_api, namespaces_config))
            .touched_objects()
            .predicate_filter(predicates::labels, Default::default());
    let in_namespace = controller.store();
    // A class change re-checks the workspaces that name it, or that use the default.
    let store = controller.store();
    let controller = controller
        // Claims by owner reference, whatever their labels (a tenant may strip the operator's
        // label from its claim); metadata only, the owner reference is all the mapping needs.
        .owns_stream(watcher(claims, watcher::Config::default()).touched_objects())
        .watches(classes, watcher::Config::default(), move |class| {
            let name = class.name_any();
            let is_default = class
                .annotations()
                .get(DEFAULT_CLASS_ANNOTATION)
                .map(String::as_str)
                == Some("true");
            store
                .state()
                .iter()
                .filter(|ws| match ws.spec.class_name.as_deref() {
                    Some(n) => n == name,
                    None => {
                        is_default
                            || ws.status.as_ref().and_then(|s| s.class_name.as_deref())
                                == Some(name.as_str())
                    }
                })
                .map(|ws| ObjectRef::from_obj(&**ws))
                .collect::<Vec<_>>()
        })
        .watches_stream(namespace_changes, move |ns: Namespace| {
            let name = ns.name_any();
            in_namespace
                .state()
                .iter()
                .filter(|ws| ws.metadata.namespace.as_deref() == Some(name.as_str()))
                .map(|ws| ObjectRef::from_obj(&**ws))
                .collect::<Vec<_>>()
        })
        .reconcile_on(wake_stream)
        .with_config(
            kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency),
        )
        .graceful_shutdown_on(shutdown);
    controller
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| {
            let metrics = ctx.metrics.clone();
            async move {
                match result {
                    Ok((obj, _)) => tracing::trace!(workspace = %obj, "reconciled"),
                    // A wake-up for a workspace deleted meanwhile: nothing to do.
                    Err(kube::runtime::controller::Error::ObjectNotFound(obj)) => {
                        tracing::debug!(workspace = %obj, "woken after deletion")
                    }
                    Err(e) => {
                        metrics.failures.with_label_values(&["controller"]).inc();
                        tracing::warn!(
                            error = &e as &dyn std::error::Error,
                            "controller stream error"
                        );
                    }
                }
            }
        })
        .await;
    poll_task.abort();
}
