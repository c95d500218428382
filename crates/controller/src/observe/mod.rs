//! Observe: everything the plan looks at for one workspace, read from Kubernetes
//! ([`kube`]: class, namespace, StorageClass, volume, claim) and AWS ([`aws`]: security
//! group, file system, associations; the poller's cache first), with as few calls as the
//! workspace's state allows.

mod aws;
mod kube;
mod source;

use std::collections::BTreeMap;
use std::sync::Arc;

use ::kube::ResourceExt;
use ::kube::runtime::reflector::ObjectRef;
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::{Cloud, DataRepositoryAssociation, DataTask, FileSystem, SecurityGroup};

use crate::context::{Context, lock};
use crate::error::Error;
use crate::plan::{self, AwsView, ClassLookup, Hook, HookView, Inputs, KubeView};
use crate::poller::Follower;

pub(crate) use self::kube::{Class, claim_view, resolve_class};

/// Everything observed for one workspace.
#[derive(Debug)]
pub(crate) struct Observed {
    pub class: Class,
    pub labels: BTreeMap<String, String>,
    /// The class's subnets, and the file system's, as far as looked up (cached: subnets do
    /// not move).
    pub subnets: Vec<lustre_cloud::Subnet>,
    pub sg: Option<SecurityGroup>,
    pub fs: Option<FileSystem>,
    pub dras: Vec<DataRepositoryAssociation>,
    pub kube: KubeView,
    pub cluster_id: Option<String>,
    pub export: ObservedHook,
    pub import: ObservedHook,
    /// While deleting: other tasks still running on the file system.
    pub running_tasks: Vec<String>,
    /// What the namespace's other workspaces of the class use before this one.
    pub budget: Option<plan::budget::Budget>,
    /// The pods that use the claim.
    pub pods: plan::expiry::Pods,
    /// Before the file system is made: the backup `spec.source` names.
    pub source: Option<plan::restore::SourceBackup>,
    /// When it was observed.
    pub now: jiff::Timestamp,
}

/// A hook's task as observed (and as the last step left it).
#[derive(Debug, Default)]
pub(crate) struct ObservedHook {
    /// The current attempt's FSx task.
    pub task: Option<DataTask>,
    /// It has run longer than the timeout.
    pub overdue: bool,
    /// FSx refused to start it: its words.
    pub refused: Option<String>,
}

impl Observed {
    /// What the plan decides from.
    pub fn inputs<'a>(&'a self, ws: &'a LustreWorkspace) -> Inputs<'a> {
        Inputs {
            workspace: ws,
            class: self.class.lookup(),
            namespace_labels: &self.labels,
            cluster_id: self.cluster_id.as_deref(),
            aws: AwsView {
                subnets: &self.subnets,
                security_group: self.sg.as_ref(),
                file_system: self.fs.as_ref(),
                associations: &self.dras,
                export: self.export.view(),
                import: self.import.view(),
                running_tasks: &self.running_tasks,
                source: self.source.as_ref(),
            },
            kube: &self.kube,
            budget: self.budget.as_ref(),
            pods: self.pods,
            now: self.now,
        }
    }

    /// The workspace's class, when it has one.
    pub fn class(&self) -> Option<&LustreWorkspaceClass> {
        self.class.get()
    }

    /// How the poller follows this workspace's file system: in the class's region, with its
    /// associations when the workspace asks for some or some still exist.
    pub fn follower(&self, ws: &LustreWorkspace, cloud: &Arc<dyn Cloud>) -> Follower {
        Follower {
            workspace: ObjectRef::from_obj(ws),
            region: self.class().and_then(|c| c.spec.region.clone()),
            cloud: cloud.clone(),
            links: !ws.spec.data_repositories.is_empty() || !self.dras.is_empty(),
        }
    }
}

/// Observes one workspace. No AWS call for a workspace that cannot be provisioned (missing
/// class, namespace or spec refused) unless it is being deleted.
pub(crate) async fn observe(
    ctx: &Context,
    ws: &LustreWorkspace,
    class: Class,
    cloud: &Arc<dyn Cloud>,
    deleting: bool,
) -> Result<Observed, Error> {
    let mut o = Observed {
        class,
        labels: self::kube::namespace_labels(ctx, ws).await?,
        subnets: Vec::new(),
        sg: None,
        fs: None,
        dras: Vec::new(),
        kube: KubeView::default(),
        cluster_id: ctx.config.cluster_id.clone(),
        export: ObservedHook::default(),
        import: ObservedHook::default(),
        running_tasks: Vec::new(),
        budget: None,
        pods: pods_of(ctx, ws),
        source: None,
        now: jiff::Timestamp::now(),
    };
    if !deleting {
        let Some(class) = o.class() else {
            return Ok(o);
        };
        if !ws.validate(None).is_empty() || !ws.validate_against_class(class, &o.labels).is_empty()
        {
            return Ok(o);
        }
        // Over its namespace's budget with nothing made yet: no AWS call at all.
        let budget = self::kube::budget_use(ctx, ws, class, &o.labels);
        let nothing_made = ws.spec.file_system_id.is_none()
            && ws
                .status
                .as_ref()
                .is_none_or(|s| s.file_system_id.is_none());
        let held_back = nothing_made
            && budget.as_ref().is_some_and(|b| {
                plan::budget::refusal(ws, class, &b.limits, b.used, None).is_some()
            });
        o.budget = budget;
        if held_back {
            o.kube = self::kube::objects(ctx, ws, o.class()).await?;
            return Ok(o);
        }
    }
    let look = aws::Look {
        ctx,
        ws,
        class: o.class.get(),
        cloud,
        deleting,
    };
    let sg = aws::security_group(&look).await?;
    let seen = aws::file_system(&look).await?;
    o.sg = sg;
    if let Some(seen) = seen {
        o.fs = seen.file_system;
        o.dras = seen.associations;
    }
    o.subnets = cached_subnets(ctx, o.class.get(), o.fs.as_ref());
    o.kube = self::kube::objects(ctx, ws, o.class()).await?;
    if !deleting {
        o.kube.first_pod_zone = first_pod_zone(ctx, ws, &o).await?;
        o.source = restore_source(ctx, ws, &o, cloud).await?;
    }
    // While deleting, looked at even with the claim still there: the volume's delete goes on
    // to the unlinking within the same reconcile.
    if deleting {
        // Only a deletion waits for its shares' claims (a scan of the claims' cache).
        o.kube.shared = self::kube::shared_of(ctx, &ws.uid().unwrap_or_default());
        (o.export, o.running_tasks) = aws::deletion_tasks(&look, o.fs.as_ref(), &o.dras).await?;
    } else {
        o.import = aws::import(&look, o.fs.as_ref(), &o.dras).await?;
    }
    Ok(o)
}

/// The backup `spec.source` names, looked up only while nothing is made or recorded.
async fn restore_source(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
    cloud: &Arc<dyn Cloud>,
) -> Result<Option<plan::restore::SourceBackup>, Error> {
    let recorded = ws.status.as_ref().and_then(|s| s.file_system_id.as_ref());
    match (&o.fs, recorded, o.class.get()) {
        (None, None, Some(class)) => source::look(ctx, ws, class, cloud).await,
        _ => Ok(None),
    }
}

/// The zone of the node the scheduler picked for a first-pod claim (`placement: MatchPods`,
/// while the workspace has no file system): one read of that Node.
async fn first_pod_zone(
    ctx: &Context,
    ws: &LustreWorkspace,
    o: &Observed,
) -> Result<Option<String>, Error> {
    let node = o
        .kube
        .claim
        .as_ref()
        .and_then(|c| c.selected_node.as_deref());
    match (o.class.get(), node) {
        (Some(class), Some(node)) if plan::first_pod(ws, class, o.fs.as_ref()) => {
            self::kube::node_zone(ctx, node).await
        }
        _ => Ok(None),
    }
}

/// The class's subnets and the file system's, as far as this process looked them up.
fn cached_subnets(
    ctx: &Context,
    class: Option<&LustreWorkspaceClass>,
    fs: Option<&FileSystem>,
) -> Vec<lustre_cloud::Subnet> {
    let Some(class) = class else {
        return Vec::new();
    };
    let fs_subnet = fs.and_then(|f| f.subnet_id.clone());
    let cached = lock(&ctx.subnets);
    class
        .spec
        .subnets()
        .into_iter()
        .chain(fs_subnet)
        .filter_map(|id| cached.get(&id).cloned())
        .collect()
}

/// How the workspace's claim is used: from the claim's own `Unused` condition where
/// kube-controller-manager writes it (Kubernetes 1.37 on, feature
/// PersistentVolumeClaimUnusedSinceTime), else as the pod watch counted.
fn pods_of(ctx: &Context, ws: &LustreWorkspace) -> plan::expiry::Pods {
    use plan::expiry::Pods;
    let ns = ws.namespace().unwrap_or_default();
    let claim = plan::claim_name(ws);
    let cached = ctx
        .caches
        .managed_claims
        .get(&ObjectRef::new(&claim).within(&ns));
    if let Some(u) =
        cached.and_then(|c| crate::pods::unused_condition(c.status.conditions.as_deref()?))
    {
        return Pods::Seen(u);
    }
    let Some(pods) = &ctx.pods else {
        return Pods::NotWatched;
    };
    match pods.of(&ns, &claim) {
        Some(u) => Pods::Seen(u),
        None => Pods::Unknown,
    }
}

/// Keeps the ids this reconcile knows of (see [`crate::context::KnownIds`]).
pub(crate) fn remember(ctx: &Context, ws: &LustreWorkspace, o: &Observed) {
    if o.sg.is_none() && o.fs.is_none() {
        return;
    }
    ctx.memory.remember(&ws.uid().unwrap_or_default(), |known| {
        if let Some(sg) = &o.sg {
            known.security_group = Some(sg.id.clone());
            known.rules_confirmed = o.class().is_some_and(|class| {
                plan::wanted_ingress(ws, class, &sg.id)
                    .iter()
                    .all(|r| sg.ingress.contains(r))
            });
        }
        if let Some(fs) = &o.fs {
            known.file_system = Some(fs.id.clone());
        }
    });
}

impl Observed {
    /// The observation of a hook's task.
    pub fn hook_mut(&mut self, hook: Hook) -> &mut ObservedHook {
        match hook {
            Hook::ExportOnDelete => &mut self.export,
            Hook::ImportOnCreate => &mut self.import,
        }
    }
}

impl ObservedHook {
    fn view(&self) -> HookView<'_> {
        HookView {
            task: self.task.as_ref(),
            overdue: self.overdue,
            refused: self.refused.as_deref(),
        }
    }
}

impl Class {
    fn lookup(&self) -> ClassLookup<'_> {
        match self {
            Self::Found(c) => ClassLookup::Found(c),
            Self::Missing(name) => ClassLookup::Missing(name),
            Self::NoDefault => ClassLookup::NoDefault,
        }
    }

    pub fn get(&self) -> Option<&LustreWorkspaceClass> {
        self.lookup().found()
    }
}
