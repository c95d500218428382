//! Every name the operator writes into Kubernetes or AWS, in one place: condition types and
//! reasons, label / annotation / tag keys, the finalizer, the CSI driver name.
//!
//! Other crates and the generated documentation read these; never spell one of them as a
//! literal elsewhere.

/// API group of both custom resources.
pub const GROUP: &str = "workspaces.lustre.dev";
/// API version of both custom resources.
pub const VERSION: &str = "v1alpha1";

/// Finalizer the operator puts on every workspace so that AWS resources are cleaned up.
pub const FINALIZER: &str = "workspaces.lustre.dev/cleanup";
/// Finalizer on a data task while its FSx task runs, so deleting the object cancels it.
pub const TASK_FINALIZER: &str = "workspaces.lustre.dev/cancel-task";
/// Finalizer on a backup object while its FSx backup exists, so deleting the object deletes
/// the backup (unless its `deletionPolicy` is Retain).
pub const BACKUP_FINALIZER: &str = "workspaces.lustre.dev/delete-backup";
/// Finalizer on a grant while the share's volume exists, so deleting the grant removes it.
pub const SHARE_FINALIZER: &str = "workspaces.lustre.dev/release-share";
/// Annotation on the object of a workspace's final backup: the file system the deletion took
/// it of (where the operator looks for the backup tagged with the object's UID).
pub const FINAL_BACKUP_FILE_SYSTEM_ANNOTATION: &str = "workspaces.lustre.dev/file-system-id";
/// Annotation that marks a `LustreWorkspaceClass` as the default, like a StorageClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "workspaces.lustre.dev/is-default-class";
/// Annotation that asks for the export before deletion again after it failed: set it to a
/// new value (any) and the operator starts a new export task.
pub const RETRY_EXPORT_ANNOTATION: &str = "workspaces.lustre.dev/retry-export";
/// Annotation that asks for the import of newly linked data again after it failed: set it to
/// a new value (any) and the operator starts a new import task.
pub const RETRY_IMPORT_ANNOTATION: &str = "workspaces.lustre.dev/retry-import";
/// Prefix of the Namespace annotation that sets a namespace's own limits for one class
/// (`limits.workspaces.lustre.dev/<class>`: JSON with `maxWorkspaces`,
/// `maxStorageCapacityGiB`, `maxMonthlyCost`), in place of the class's `namespaceLimits`.
pub const NAMESPACE_LIMITS_ANNOTATION_PREFIX: &str = "limits.workspaces.lustre.dev/";
/// Field manager the operator uses for every server-side apply.
pub const FIELD_MANAGER: &str = "lustre-operator";

/// Labels the operator puts on every Kubernetes object it creates, so orphans can be found.
pub mod labels {
    /// `app.kubernetes.io/managed-by` value.
    pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
    /// Value of [`MANAGED_BY_KEY`].
    pub const MANAGED_BY_VALUE: &str = "lustre-operator";
    /// Name of the owning workspace.
    pub const WORKSPACE_NAME: &str = "workspaces.lustre.dev/workspace";
    /// Namespace of the owning workspace (on cluster-scoped objects such as PVs).
    pub const WORKSPACE_NAMESPACE: &str = "workspaces.lustre.dev/namespace";
    /// UID of the owning workspace.
    pub const WORKSPACE_UID: &str = "workspaces.lustre.dev/uid";
    /// Name of the `LustreWorkspaceClass` (on StorageClasses and PVs).
    pub const CLASS: &str = "workspaces.lustre.dev/class";
}

/// Tag keys the operator writes on every AWS resource it creates. A restarted operator finds
/// its resources again by these tags, and the IAM policy scopes its rights with them.
pub mod tags {
    /// Prefix reserved for operator tags; users and classes may not set tags under it.
    pub const PREFIX: &str = "workspaces.lustre.dev/";
    /// Marks a resource as created by this operator (value `"true"`).
    pub const MANAGED: &str = "workspaces.lustre.dev/managed";
    /// Namespace of the owning workspace.
    pub const NAMESPACE: &str = "workspaces.lustre.dev/namespace";
    /// Name of the owning workspace.
    pub const NAME: &str = "workspaces.lustre.dev/name";
    /// UID of the owning workspace: the identity that adoption and crash recovery check.
    pub const UID: &str = "workspaces.lustre.dev/uid";
    /// The install (`--cluster-id`, the chart's `clusterId`) that created the resource: the IAM
    /// policy lets a role change only what its own install created.
    pub const CLUSTER: &str = "workspaces.lustre.dev/cluster";
    /// Name of the class the workspace was provisioned with.
    pub const CLASS: &str = "workspaces.lustre.dev/class";
    /// Set to `"true"` when the workspace was deleted with `deletionPolicy: Retain`.
    pub const RETAINED: &str = "workspaces.lustre.dev/retained";
    /// On an adopted file system: the UID of the workspace that adopts it (one at a time),
    /// removed when that workspace is deleted.
    pub const ADOPTED_BY: &str = "workspaces.lustre.dev/adopted-by";
    /// On a data repository task the operator started for a workspace itself (not for a
    /// `LustreDataTask`): what it is for ([`PURPOSE_EXPORT_ON_DELETE`]).
    pub const PURPOSE: &str = "workspaces.lustre.dev/purpose";
    /// [`PURPOSE`] of the export before deletion.
    pub const PURPOSE_EXPORT_ON_DELETE: &str = "export-on-delete";
    /// [`PURPOSE`] of the import when links are made (`importMetadataOnCreate`).
    pub const PURPOSE_IMPORT_ON_CREATE: &str = "import-on-create";
    /// On the export before deletion and the import on create: which attempt it is (a hash
    /// of what it covers and of the retry annotation's value).
    pub const ATTEMPT: &str = "workspaces.lustre.dev/attempt";
    /// On a backup: the UID of the `LustreWorkspaceBackup` it was taken for (the object's
    /// proof that the backup is its own).
    pub const BACKUP_UID: &str = "workspaces.lustre.dev/backup-uid";
    /// On a final backup: `<namespace>/<name>` of the workspace whose deletion took it.
    pub const FINAL_BACKUP_OF: &str = "workspaces.lustre.dev/final-backup-of";
    /// The AWS console's display name.
    pub const AWS_NAME: &str = "Name";
    /// AWS reserves tag keys with this prefix.
    pub const AWS_RESERVED_PREFIX: &str = "aws:";
    /// AWS allows 50 tags per resource.
    pub const AWS_MAX_TAGS: usize = 50;
    /// How many tags the operator itself writes (managed, cluster, namespace, name, uid,
    /// class, Name, and retained on a kept file system).
    pub const OPERATOR_TAG_COUNT: usize = 8;
    /// Most tags a class may set.
    pub const MAX_CLASS_TAGS: usize = 24;
    /// Most tags a workspace may add.
    pub const MAX_WORKSPACE_TAGS: usize = 18;
    /// Most tags an adoption policy may require.
    pub const MAX_ADOPTION_TAGS: usize = 10;
    /// Longest tag key AWS accepts.
    pub const MAX_KEY_LENGTH: usize = 128;
    /// Longest tag value AWS accepts (also the schema's `maxLength` of a value, which keeps
    /// the CEL rules over values within kube-apiserver's cost budget).
    pub const MAX_VALUE_LENGTH: usize = 256;
    // The schema limits keep every resource within AWS's tag limit, whatever users write.
    const _: () = assert!(OPERATOR_TAG_COUNT + MAX_CLASS_TAGS + MAX_WORKSPACE_TAGS <= AWS_MAX_TAGS);
}

/// The aws-fsx-csi-driver that mounts the volumes.
pub mod csi {
    /// CSI driver and StorageClass provisioner name.
    pub const DRIVER: &str = "fsx.csi.aws.com";
    /// Volume attribute carrying the file system's DNS name.
    pub const ATTR_DNS_NAME: &str = "dnsname";
    /// Volume attribute carrying the Lustre mount name.
    pub const ATTR_MOUNT_NAME: &str = "mountname";
}

/// Status condition types. `Ready` is the one GitOps tools read; one more per owned part.
pub mod condition {
    /// Everything is provisioned and the claim is bound.
    pub const READY: &str = "Ready";
    /// The managed security group exists with its Lustre rules (or none is needed).
    pub const SECURITY_GROUP_READY: &str = "SecurityGroupReady";
    /// The file system is AVAILABLE with the asked-for capacity and throughput.
    pub const FILE_SYSTEM_READY: &str = "FileSystemReady";
    /// Every data repository association is AVAILABLE.
    pub const DATA_REPOSITORIES_READY: &str = "DataRepositoriesReady";
    /// The PersistentVolume and PersistentVolumeClaim exist and are bound.
    pub const VOLUME_READY: &str = "VolumeReady";
    /// While a workspace with `exportOnDelete` links is deleted: their export finished
    /// (or was given up with `failurePolicy: Continue`).
    pub const DATA_EXPORTED: &str = "DataExported";
    /// With an expiry: True from the warning before it on (and once expired), False while the
    /// time is still far or the claim is in use.
    pub const EXPIRING: &str = "Expiring";

    /// All condition types, `Ready` first.
    pub const ALL: [&str; 7] = [
        READY,
        SECURITY_GROUP_READY,
        FILE_SYSTEM_READY,
        DATA_REPOSITORIES_READY,
        VOLUME_READY,
        DATA_EXPORTED,
        EXPIRING,
    ];
}

/// Condition reasons (CamelCase, as Kubernetes expects). Each one has an entry in
/// `docs/troubleshooting.md`, generated from [`reason::ALL`].
pub mod reason {
    /// Everything asked for exists and is usable.
    pub const READY: &str = "Ready";
    /// The operator has not acted on this generation yet.
    pub const PENDING: &str = "Pending";
    /// An AWS resource is being created.
    pub const CREATING: &str = "Creating";
    /// AWS is changing the file system (capacity, throughput) or an association.
    pub const UPDATING: &str = "Updating";
    /// The operator is tearing the workspace down.
    pub const DELETING: &str = "Deleting";
    /// The claim is still used by pods; deletion waits for them.
    pub const CLAIM_IN_USE: &str = "ClaimInUse";
    /// The named class (or a default class) does not exist.
    pub const CLASS_NOT_FOUND: &str = "ClassNotFound";
    /// The spec breaks a rule of the API or of its class; the message lists every violation.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The file system is FAILED or MISCONFIGURED; the message carries AWS's failure details.
    pub const FILE_SYSTEM_FAILED: &str = "FileSystemFailed";
    /// A data repository association is FAILED or MISCONFIGURED.
    pub const DATA_REPOSITORY_FAILED: &str = "DataRepositoryFailed";
    /// AWS refused the request as invalid; the message carries AWS's words.
    pub const AWS_REJECTED: &str = "AwsRejected";
    /// AWS is throttling or failing transiently; the operator backs off and retries.
    pub const AWS_RETRYING: &str = "AwsRetrying";
    /// The operator lacks an IAM permission; the message names the denied action.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// An AWS service quota was reached.
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    /// The adopted file system (`spec.fileSystemId`) was not found or belongs to another workspace.
    pub const ADOPTION_REFUSED: &str = "AdoptionRefused";
    /// A claim of the workspace's claim name exists and is not the workspace's.
    pub const CLAIM_CONFLICT: &str = "ClaimConflict";
    /// The class's `allowedNamespaces` does not admit the workspace's namespace.
    pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";
    /// The class does not ask for a managed security group.
    pub const NOT_MANAGED: &str = "NotManaged";
    /// The workspace has no data repositories.
    pub const NONE_REQUESTED: &str = "NoneRequested";
    /// Waiting for an earlier part before this one can start.
    pub const WAITING: &str = "Waiting";
    /// `deletionPolicy: Retain`: AWS resources were kept on purpose.
    pub const RETAINED: &str = "Retained";

    /// The export before deletion is running; the file system waits for it.
    pub const EXPORTING: &str = "Exporting";
    /// The export before deletion finished: every file was written to S3.
    pub const EXPORTED: &str = "Exported";
    /// The export before deletion failed, was refused or ran out of time.
    pub const EXPORT_FAILED: &str = "ExportFailed";
    /// The listing of newly linked S3 prefixes is being imported (`importMetadataOnCreate`).
    pub const IMPORTING: &str = "Importing";
    /// That import failed or was refused.
    pub const IMPORT_FAILED: &str = "ImportFailed";
    /// The class's `namespaceLimits` leave no room for this workspace (or its growth).
    pub const OVER_BUDGET: &str = "OverBudget";
    /// The workspace has an expiry, still further away than the warning.
    pub const EXPIRY_SCHEDULED: &str = "ExpiryScheduled";
    /// Pods use the claim: the idle clock does not run.
    pub const IN_USE: &str = "InUse";
    /// The expiry is closer than the class's `warnBefore`.
    pub const EXPIRES_SOON: &str = "ExpiresSoon";
    /// The expiry passed: the operator deleted the workspace.
    pub const EXPIRED: &str = "Expired";
    /// `afterIdle` is set but the operator does not watch pods (chart value
    /// `expiry.watchPods: false`): only a time or the class's longest lifetime applies.
    pub const PODS_NOT_WATCHED: &str = "PodsNotWatched";

    /// Every reason the operator can write.
    pub const ALL: [&str; 32] = [
        READY,
        PENDING,
        CREATING,
        UPDATING,
        DELETING,
        CLAIM_IN_USE,
        CLASS_NOT_FOUND,
        INVALID_SPEC,
        FILE_SYSTEM_FAILED,
        DATA_REPOSITORY_FAILED,
        AWS_REJECTED,
        AWS_RETRYING,
        ACCESS_DENIED,
        LIMIT_EXCEEDED,
        ADOPTION_REFUSED,
        CLAIM_CONFLICT,
        NAMESPACE_NOT_ALLOWED,
        NOT_MANAGED,
        NONE_REQUESTED,
        WAITING,
        RETAINED,
        EXPORTING,
        EXPORTED,
        EXPORT_FAILED,
        IMPORTING,
        IMPORT_FAILED,
        OVER_BUDGET,
        EXPIRY_SCHEDULED,
        IN_USE,
        EXPIRES_SOON,
        EXPIRED,
        PODS_NOT_WATCHED,
    ];
}

/// FSx for Lustre limits the API enforces (see `FSX_FACTS.md`).
pub mod limits {
    /// Smallest SCRATCH_2 / PERSISTENT_2 file system.
    pub const MIN_CAPACITY_GIB: i32 = 1200;
    /// Capacities above the minimum come in steps of this size.
    pub const CAPACITY_STEP_GIB: i32 = 2400;
    /// Data repository associations per file system.
    pub const MAX_DATA_REPOSITORIES: usize = 8;
    /// Valid PERSISTENT_2 throughputs, MB/s per TiB.
    pub const PERSISTENT_2_THROUGHPUTS: [i32; 4] = [125, 250, 500, 1000];
    /// Longest `s3Path` (and allowed S3 prefix) the API takes: well under FSx's 4357
    /// characters for a data repository path, and a bound that keeps the CEL rules over S3
    /// paths within kube-apiserver's cost budget.
    pub const MAX_S3_PATH_LENGTH: usize = 1024;
    /// Largest `importedFileChunkSizeMiB`.
    pub const MAX_IMPORTED_FILE_CHUNK_MIB: i32 = 512_000;
}
