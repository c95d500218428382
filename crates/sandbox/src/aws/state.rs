//! The simulated AWS account's resources and their lifecycles. Transitions are computed from
//! the clock when the state is read ([`State::advance`]), so there is no background task and
//! a test's timing depends only on the configured delays.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// A subnet the simulated account has.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub id: String,
    pub vpc_id: String,
    pub availability_zone: String,
    pub cidr: String,
}

/// Who an ingress rule lets in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Peer {
    Group(String),
    Cidr(String),
}

/// One inbound rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peer: Peer,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub tags: BTreeMap<String, String>,
    pub ingress: BTreeSet<Rule>,
}

/// Lifecycle words shared by file systems and associations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lifecycle {
    Creating,
    Available,
    Updating,
    Deleting,
    Failed,
    Misconfigured,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Available => "AVAILABLE",
            Self::Updating => "UPDATING",
            Self::Deleting => "DELETING",
            Self::Failed => "FAILED",
            Self::Misconfigured => "MISCONFIGURED",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSystem {
    pub id: String,
    pub arn: String,
    #[serde(skip)]
    pub token: Option<String>,
    #[serde(skip)]
    pub fingerprint: String,
    pub deployment_type: String,
    pub storage_capacity: i64,
    pub per_unit_storage_throughput: Option<i64>,
    pub subnet_id: String,
    pub vpc_id: String,
    pub security_group_ids: Vec<String>,
    pub network_interface_ids: Vec<String>,
    pub kms_key_id: Option<String>,
    pub data_compression_type: String,
    pub file_system_type_version: String,
    pub weekly_maintenance_start_time: Option<String>,
    pub automatic_backup_retention_days: Option<i64>,
    /// `MetadataConfiguration` (PERSISTENT_2 created with one): mode and IOPS.
    pub metadata_configuration: Option<serde_json::Value>,
    /// When the metadata configuration last changed (epoch seconds): changes are 6 h apart.
    pub metadata_changed_at: Option<f64>,
    /// `RootSquashConfiguration`.
    pub root_squash_configuration: Option<serde_json::Value>,
    /// `LogConfiguration`.
    pub log_configuration: Option<serde_json::Value>,
    /// `EfaEnabled` (creation only).
    pub efa_enabled: bool,
    /// SSD or INTELLIGENT_TIERING.
    pub storage_type: String,
    /// Intelligent-Tiering: `ThroughputCapacity` (MB/s) and `DataReadCacheConfiguration`.
    pub throughput_capacity: Option<i64>,
    pub read_cache: Option<serde_json::Value>,
    /// Lustre settings an update applies when UPDATING ends (`LustreConfiguration` members).
    pub pending_lustre: Option<serde_json::Value>,
    /// When the update in progress was asked for (epoch seconds).
    pub update_requested_at: Option<f64>,
    /// Finished administrative actions, as DescribeFileSystems lists them (latest first).
    pub past_actions: Vec<serde_json::Value>,
    /// The backup it was restored from (CreateFileSystemFromBackup).
    pub restored_from: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    pub failure_message: Option<String>,
    pub dns_name: String,
    pub mount_name: String,
    pub creation_time: f64,
    /// When the current CREATING / UPDATING / DELETING phase ends.
    #[serde(skip)]
    pub until: Option<Instant>,
    /// Values an update applies when UPDATING ends.
    pub pending_capacity: Option<i64>,
    pub pending_throughput: Option<i64>,
    /// Whether this create was told to end FAILED.
    #[serde(skip)]
    pub fail_with: Option<String>,
    /// When CREATING ended with AVAILABLE (the benchmark measures from here).
    #[serde(skip)]
    pub available_at: Option<Instant>,
    /// When a DescribeFileSystems answer first showed it AVAILABLE.
    #[serde(skip)]
    pub seen_available_at: Option<Instant>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Association {
    pub id: String,
    pub arn: String,
    #[serde(skip)]
    pub token: Option<String>,
    #[serde(skip)]
    pub fingerprint: String,
    pub file_system_id: String,
    pub file_system_path: String,
    pub data_repository_path: String,
    pub auto_import: Vec<String>,
    pub auto_export: Vec<String>,
    pub batch_import_meta_data_on_create: bool,
    pub imported_file_chunk_size: i64,
    pub tags: BTreeMap<String, String>,
    pub lifecycle: Lifecycle,
    pub failure_message: Option<String>,
    pub creation_time: f64,
    #[serde(skip)]
    pub until: Option<Instant>,
}

/// Where a data repository task is: PENDING → EXECUTING → SUCCEEDED | FAILED, or after a
/// cancel CANCELING → CANCELED.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskLifecycle {
    Pending,
    Executing,
    Succeeded,
    Failed,
    Canceling,
    Canceled,
}

impl TaskLifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Executing => "EXECUTING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
        }
    }

    /// PENDING or EXECUTING: the file system is busy (no second task, no delete).
    pub fn running(self) -> bool {
        matches!(self, Self::Pending | Self::Executing)
    }
}

/// A data repository task (export, import, release). The simulation has no files: a task
/// counts 250 files per path it was given (or per linked path), done at an even pace.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub id: String,
    pub arn: String,
    #[serde(skip)]
    pub token: Option<String>,
    #[serde(skip)]
    pub fingerprint: String,
    pub file_system_id: String,
    pub task_type: String,
    pub paths: Vec<String>,
    pub report_enabled: bool,
    pub report_path: Option<String>,
    pub release_days: Option<i64>,
    pub tags: BTreeMap<String, String>,
    pub lifecycle: TaskLifecycle,
    pub creation_time: f64,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub failure_message: Option<String>,
    /// Why it fails once it runs (a path that is not valid, or a fault the test asked for).
    #[serde(skip)]
    pub fail_with: Option<String>,
    /// When EXECUTING began, and when the current phase ends.
    #[serde(skip)]
    pub started: Option<Instant>,
    #[serde(skip)]
    pub until: Option<Instant>,
    /// When it reached SUCCEEDED, FAILED or CANCELED.
    #[serde(skip)]
    pub ended_at: Option<Instant>,
}

impl Task {
    /// Moves the task on to `now`: counts grow while it executes.
    fn advance(&mut self, now: Instant, run: Duration) {
        if self.lifecycle == TaskLifecycle::Pending && self.until.is_some_and(|u| now >= u) {
            self.lifecycle = TaskLifecycle::Executing;
            self.start_time = Some(epoch_seconds());
            let start = self.until.unwrap_or(now);
            self.started = Some(start);
            self.until = Some(start + run);
        }
        let Some(until) = self.until else { return };
        match self.lifecycle {
            TaskLifecycle::Executing if now >= until => {
                self.until = None;
                self.end(until);
                match self.fail_with.take() {
                    Some(message) => {
                        self.lifecycle = TaskLifecycle::Failed;
                        self.failure_message = Some(message);
                        self.failed = self.total - self.succeeded;
                    }
                    None => {
                        self.lifecycle = TaskLifecycle::Succeeded;
                        self.succeeded = self.total;
                    }
                }
            }
            TaskLifecycle::Executing if self.fail_with.is_none() => {
                let started = self.started.unwrap_or(now);
                let span = until.saturating_duration_since(started).as_secs_f64();
                let done = now.saturating_duration_since(started).as_secs_f64();
                self.succeeded = ((self.total as f64) * (done / span.max(1e-6))) as i64;
            }
            TaskLifecycle::Canceling if now >= until => {
                self.until = None;
                self.lifecycle = TaskLifecycle::Canceled;
                self.end(until);
            }
            _ => {}
        }
    }

    fn end(&mut self, at: Instant) {
        self.end_time = Some(epoch_seconds());
        self.ended_at = Some(at);
    }
}

/// A backup: asked for (CreateBackup) or taken on delete (a final backup). It survives its
/// file system; its lifecycle moves with time: PENDING, CREATING, TRANSFERRING, AVAILABLE.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub id: String,
    pub arn: String,
    #[serde(skip)]
    pub token: Option<String>,
    #[serde(skip)]
    pub fingerprint: String,
    pub file_system_id: String,
    /// The file system's description when the backup was taken.
    pub file_system: serde_json::Value,
    /// The file system's capacity (a restore must ask for exactly this).
    pub storage_capacity: i64,
    pub tags: BTreeMap<String, String>,
    pub lifecycle: String,
    pub progress_percent: i64,
    pub size_in_bytes: i64,
    pub creation_time: f64,
    /// When it was asked for, and when it is AVAILABLE.
    #[serde(skip)]
    pub started: Option<Instant>,
    #[serde(skip)]
    pub until: Option<Instant>,
}

impl Backup {
    /// Moves the backup on to `now`: a tenth PENDING, two fifths CREATING, then TRANSFERRING
    /// until AVAILABLE.
    fn advance(&mut self, now: Instant) {
        let (Some(start), Some(until)) = (self.started, self.until) else {
            return;
        };
        let span = until
            .saturating_duration_since(start)
            .as_secs_f64()
            .max(1e-6);
        let done = (now.saturating_duration_since(start).as_secs_f64() / span).min(1.0);
        self.progress_percent = (done * 100.0) as i64;
        self.lifecycle = match done {
            d if d >= 1.0 => "AVAILABLE",
            d if d >= 0.5 => "TRANSFERRING",
            d if d >= 0.1 => "CREATING",
            _ => "PENDING",
        }
        .to_string();
        if done >= 1.0 {
            self.until = None;
        }
    }
}

/// How long things take, with jitter.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Timing {
    pub create_ms: u64,
    pub update_ms: u64,
    pub delete_ms: u64,
    pub association_create_ms: u64,
    pub association_delete_ms: u64,
    pub association_update_ms: u64,
    /// A data repository task: PENDING, then EXECUTING, and CANCELING after a cancel.
    pub task_pending_ms: u64,
    pub task_run_ms: u64,
    pub task_cancel_ms: u64,
    /// A backup, from PENDING to AVAILABLE.
    pub backup_ms: u64,
    /// Each delay is stretched by up to this fraction at random (0.2 = ±20 %).
    pub jitter: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            create_ms: 2_000,
            update_ms: 1_000,
            delete_ms: 1_000,
            association_create_ms: 500,
            association_delete_ms: 500,
            association_update_ms: 500,
            task_pending_ms: 200,
            task_run_ms: 2_000,
            task_cancel_ms: 300,
            backup_ms: 3_000,
            jitter: 0.2,
        }
    }
}

/// Everything in the simulated account.
#[derive(Debug, Default)]
pub struct State {
    pub region: String,
    pub account_id: String,
    pub subnets: BTreeMap<String, Subnet>,
    pub vpcs: BTreeSet<String>,
    pub security_groups: BTreeMap<String, SecurityGroup>,
    pub file_systems: BTreeMap<String, FileSystem>,
    pub associations: BTreeMap<String, Association>,
    pub tasks: BTreeMap<String, Task>,
    pub backups: BTreeMap<String, Backup>,
    /// Client tokens of file systems and associations, to the resource id.
    pub tokens: BTreeMap<String, String>,
    /// The next `n` file system creates end FAILED with this message.
    pub fail_next_creates: Vec<String>,
    /// The next `n` data repository tasks end FAILED with this message.
    pub fail_next_tasks: Vec<String>,
    next_id: u64,
}

/// Seconds since the epoch, as FSx timestamps are sent.
pub fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl State {
    /// A new account in `region` with the default VPC and subnets.
    pub fn new(region: &str) -> Self {
        let mut s = Self {
            region: region.to_string(),
            account_id: "123456789012".to_string(),
            ..Self::default()
        };
        s.add_subnet(
            "subnet-0123456789abcdef0",
            "vpc-0123456789abcdef0",
            "a",
            "10.0.0.0/20",
        );
        s.add_subnet(
            "subnet-0fedcba9876543210",
            "vpc-0123456789abcdef0",
            "b",
            "10.0.16.0/20",
        );
        // The example node group's security group, so classes can name it as a client.
        s.security_groups.insert(
            "sg-0123456789abcdef0".into(),
            SecurityGroup {
                id: "sg-0123456789abcdef0".into(),
                name: "eks-nodes".into(),
                description: "EKS node group".into(),
                vpc_id: "vpc-0123456789abcdef0".into(),
                tags: BTreeMap::new(),
                ingress: BTreeSet::new(),
            },
        );
        s
    }

    pub fn add_subnet(&mut self, id: &str, vpc: &str, az_suffix: &str, cidr: &str) {
        self.vpcs.insert(vpc.to_string());
        self.subnets.insert(
            id.to_string(),
            Subnet {
                id: id.to_string(),
                vpc_id: vpc.to_string(),
                availability_zone: format!("{}{az_suffix}", self.region),
                cidr: cidr.to_string(),
            },
        );
    }

    /// A fresh resource id: `prefix-` and 17 hex digits.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        // Spread the digits so ids do not look sequential, yet stay deterministic.
        let n = self.next_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 4;
        format!("{prefix}-{n:017x}")
    }

    /// A mount name: 8 lower-case alphanumerics.
    pub fn new_mount_name(&mut self) -> String {
        self.next_id += 1;
        let mut n = self.next_id.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        (0..8)
            .map(|_| {
                let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(n % 36) as usize];
                n /= 36;
                c as char
            })
            .collect()
    }

    pub fn arn(&self, kind: &str, id: &str) -> String {
        format!(
            "arn:aws:fsx:{}:{}:{kind}/{id}",
            self.region, self.account_id
        )
    }

    /// Moves every resource whose current phase has ended to its next lifecycle.
    pub fn advance(&mut self, now: Instant, timing: &Timing) {
        let run = Duration::from_millis(timing.task_run_ms);
        for t in self.tasks.values_mut() {
            t.advance(now, run);
        }
        for b in self.backups.values_mut() {
            b.advance(now);
        }
        let mut gone = Vec::new();
        for fs in self.file_systems.values_mut() {
            let Some(until) = fs.until.filter(|u| now >= *u) else {
                continue;
            };
            fs.until = None;
            match fs.lifecycle {
                Lifecycle::Creating => match fs.fail_with.take() {
                    Some(message) => {
                        fs.lifecycle = Lifecycle::Failed;
                        fs.failure_message = Some(message);
                    }
                    None => {
                        fs.lifecycle = Lifecycle::Available;
                        fs.available_at = Some(until);
                    }
                },
                Lifecycle::Updating => {
                    fs.finish_update();
                    fs.lifecycle = Lifecycle::Available;
                }
                Lifecycle::Deleting => gone.push(fs.id.clone()),
                _ => {}
            }
        }
        for id in gone {
            self.file_systems.remove(&id);
            self.associations.retain(|_, a| a.file_system_id != id);
            self.tasks.retain(|_, t| t.file_system_id != id);
        }
        let mut gone = Vec::new();
        for a in self.associations.values_mut() {
            if a.until.is_some_and(|u| now >= u) {
                a.until = None;
                match a.lifecycle {
                    Lifecycle::Creating | Lifecycle::Updating => a.lifecycle = Lifecycle::Available,
                    Lifecycle::Deleting => gone.push(a.id.clone()),
                    _ => {}
                }
            }
        }
        for id in gone {
            self.associations.remove(&id);
        }
    }

    /// File systems whose network interfaces hold this security group.
    pub fn file_systems_using(&self, group_id: &str) -> Vec<&FileSystem> {
        self.file_systems
            .values()
            .filter(|fs| fs.security_group_ids.iter().any(|g| g == group_id))
            .collect()
    }
}

/// A delay stretched by a random fraction of `jitter` (`unit` in 0..1).
pub fn jittered(ms: u64, jitter: f64, unit: f64) -> Duration {
    let factor = 1.0 + jitter * (2.0 * unit - 1.0);
    Duration::from_secs_f64((ms as f64 * factor.max(0.0)) / 1000.0)
}

impl FileSystem {
    /// What an update changes, as an administrative action's `TargetFileSystemValues`.
    pub fn update_target(&self) -> serde_json::Value {
        let mut target = serde_json::json!({});
        if let Some(c) = self.pending_capacity {
            target["StorageCapacity"] = serde_json::json!(c);
        }
        let mut lustre = self.pending_lustre.clone().unwrap_or(serde_json::json!({}));
        if let Some(t) = self.pending_throughput {
            lustre["PerUnitStorageThroughput"] = serde_json::json!(t);
        }
        if lustre.as_object().is_some_and(|o| !o.is_empty()) {
            target["LustreConfiguration"] = lustre;
        }
        target
    }

    /// The update's values take effect; it is listed as a COMPLETED administrative action.
    fn finish_update(&mut self) {
        let target = self.update_target();
        self.past_actions.insert(
            0,
            serde_json::json!({
                "AdministrativeActionType": "FILE_SYSTEM_UPDATE",
                "Status": "COMPLETED",
                "RequestTime": self.update_requested_at.take().unwrap_or_else(epoch_seconds),
                "TargetFileSystemValues": target,
            }),
        );
        self.past_actions.truncate(10);
        if let Some(c) = self.pending_capacity.take() {
            self.storage_capacity = c;
            // AUTOMATIC metadata IOPS follow the capacity.
            if let Some(m) = self.metadata_configuration.as_mut()
                && m["Mode"] == "AUTOMATIC"
            {
                let gib = i32::try_from(c).unwrap_or(i32::MAX);
                m["Iops"] =
                    serde_json::json!(lustre_api::lustre_settings::automatic_metadata_iops(gib));
            }
        }
        if let Some(t) = self.pending_throughput.take() {
            self.per_unit_storage_throughput = Some(t);
        }
        if let Some(lustre) = self.pending_lustre.take() {
            if let Some(t) = lustre.get("ThroughputCapacity").and_then(|t| t.as_i64()) {
                self.throughput_capacity = Some(t);
            }
            for (key, field) in [
                ("MetadataConfiguration", &mut self.metadata_configuration),
                (
                    "RootSquashConfiguration",
                    &mut self.root_squash_configuration,
                ),
                ("LogConfiguration", &mut self.log_configuration),
            ] {
                if let Some(v) = lustre.get(key) {
                    *field = Some(v.clone());
                }
            }
        }
    }
}
