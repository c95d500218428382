//! An in-memory [`Cloud`] for tests (cargo feature `testing`): the semantics the simulated AWS
//! has (client tokens, duplicate group names, groups held by file systems, lifecycles, the
//! error codes and kinds the adapter would return), without HTTP or timers. Lifecycles move
//! only when a test calls [`MemoryCloud::advance`]; faults are injected per operation with
//! [`MemoryCloud::fail_next`]; every call is counted. The [`Cloud`] calls are in `api.rs`.

mod api;
mod backups;
mod tasks;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::error::{CloudError, CloudResult, classify_code};
use crate::tasks::*;
use crate::types::*;

/// What the in-memory account holds.
#[derive(Debug, Default)]
struct Account {
    /// Subnet → (VPC, zone).
    subnets: BTreeMap<String, (String, String)>,
    groups: BTreeMap<String, SecurityGroup>,
    file_systems: BTreeMap<String, FileSystem>,
    /// Capacity or throughput an update will reach when it completes.
    pending_updates: HashMap<String, FileSystemUpdate>,
    associations: BTreeMap<String, DataRepositoryAssociation>,
    /// Client token → (request, id) of file systems and associations.
    fs_tokens: HashMap<String, (FileSystemRequest, String)>,
    dra_tokens: HashMap<String, (DataRepositoryRequest, String)>,
    tasks: BTreeMap<String, DataTask>,
    task_tokens: HashMap<String, (DataTaskRequest, String)>,
    /// Backups: taken, and the final ones of deletes.
    backups: BTreeMap<String, crate::backups::Backup>,
    backup_tokens: HashMap<String, (crate::backups::BackupRequest, String)>,
    next_id: u64,
    calls: BTreeMap<&'static str, usize>,
    called_at: HashMap<&'static str, Vec<tokio::time::Instant>>,
    latency: HashMap<&'static str, std::time::Duration>,
    /// File systems per page of a listing (`None`: one answer, as `describe_file_systems`).
    page_size: Option<usize>,
    faults: HashMap<&'static str, VecDeque<CloudError>>,
}

impl Account {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:017x}", self.next_id)
    }
}

/// The in-memory account of one region.
#[derive(Debug, Default)]
pub struct MemoryCloud {
    account: Mutex<Account>,
}

/// An error as the adapter maps AWS's answer with this code.
pub fn aws_error(operation: &'static str, code: &str, message: impl Into<String>) -> CloudError {
    CloudError {
        kind: classify_code(code).unwrap_or(crate::ErrorKind::InvalidRequest),
        operation,
        code: Some(code.to_string()),
        message: message.into(),
        request_id: None,
    }
}

impl MemoryCloud {
    /// An account with one subnet in one VPC (in zone us-east-1a).
    pub fn with_subnet(subnet_id: &str, vpc_id: &str) -> Self {
        let cloud = Self::default();
        cloud.add_subnet(subnet_id, vpc_id, "us-east-1a");
        cloud
    }

    /// Another subnet.
    pub fn add_subnet(&self, subnet_id: &str, vpc_id: &str, zone: &str) {
        self.lock().subnets.insert(
            subnet_id.to_string(),
            (vpc_id.to_string(), zone.to_string()),
        );
    }

    fn lock(&self) -> MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the call, waits the latency set for the operation, and returns the fault
    /// injected for it, if any.
    async fn gate(&self, operation: &'static str) -> CloudResult<MutexGuard<'_, Account>> {
        let latency = {
            let mut account = self.lock();
            *account.calls.entry(operation).or_default() += 1;
            let now = tokio::time::Instant::now();
            account.called_at.entry(operation).or_default().push(now);
            account.latency.get(operation).copied()
        };
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        let mut account = self.lock();
        match account
            .faults
            .get_mut(operation)
            .and_then(VecDeque::pop_front)
        {
            Some(fault) => Err(fault),
            None => Ok(account),
        }
    }

    /// The next call of `operation` fails with `error` (queued: several calls, several
    /// faults).
    pub fn fail_next(&self, operation: &'static str, error: CloudError) {
        self.lock()
            .faults
            .entry(operation)
            .or_default()
            .push_back(error);
    }

    /// Every later call of `operation` takes `latency` (tokio's clock: paused time works).
    pub fn set_latency(&self, operation: &'static str, latency: std::time::Duration) {
        self.lock().latency.insert(operation, latency);
    }

    /// Hands `describe_file_systems_each`'s file systems out `n` per page, each page a call
    /// of its own (counted, with the operation's latency and faults), as the adapter's
    /// listing of a region does.
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = Some(n.max(1));
    }

    /// When each call of `operation` came in (tokio's clock).
    pub fn called_at(&self, operation: &'static str) -> Vec<tokio::time::Instant> {
        self.lock()
            .called_at
            .get(operation)
            .cloned()
            .unwrap_or_default()
    }

    /// Calls per operation so far.
    pub fn calls(&self) -> BTreeMap<&'static str, usize> {
        self.lock().calls.clone()
    }

    /// Every file system in the account.
    pub fn file_systems(&self) -> Vec<FileSystem> {
        self.lock().file_systems.values().cloned().collect()
    }

    /// Every security group in the account.
    pub fn security_groups(&self) -> Vec<SecurityGroup> {
        self.lock().groups.values().cloned().collect()
    }

    /// Every backup in the account (final backups included).
    pub fn backups(&self) -> Vec<crate::backups::Backup> {
        self.lock().backups.values().cloned().collect()
    }

    /// Sets a file system's lifecycle (a failure, a change outside the operator).
    pub fn set_lifecycle(&self, file_system_id: &str, lifecycle: Lifecycle, message: &str) {
        if let Some(fs) = self.lock().file_systems.get_mut(file_system_id) {
            fs.lifecycle = lifecycle;
            fs.failure_message = (!message.is_empty()).then(|| message.to_string());
        }
    }

    /// Completes every change in progress: creates become AVAILABLE, updates reach their
    /// target, deletes remove the resource (and free the groups a file system held).
    pub fn advance(&self) {
        let mut a = self.lock();
        let a = &mut *a;
        a.file_systems
            .retain(|_, fs| fs.lifecycle != Lifecycle::Deleting);
        for fs in a.file_systems.values_mut() {
            if matches!(fs.lifecycle, Lifecycle::Creating | Lifecycle::Updating) {
                fs.lifecycle = Lifecycle::Available;
            }
            if let Some(update) = a.pending_updates.remove(&fs.id) {
                if let Some(gib) = update.storage_capacity_gib {
                    fs.storage_capacity_gib = gib;
                }
                if update.per_unit_storage_throughput.is_some() {
                    fs.per_unit_storage_throughput = update.per_unit_storage_throughput;
                }
                if let Some(MetadataConfiguration::UserProvisioned(iops)) = update.metadata {
                    fs.settings.metadata = update.metadata;
                    fs.settings.metadata_iops = Some(iops);
                }
                if update.throughput_capacity.is_some() {
                    fs.settings.throughput_capacity = update.throughput_capacity;
                }
                if update.root_squash.is_some() {
                    fs.settings.root_squash = update.root_squash;
                }
                if update.log.is_some() {
                    fs.settings.log = update.log;
                }
                fs.update_in_progress = false;
            }
        }
        let live = &a.file_systems;
        a.associations.retain(|_, d| {
            d.lifecycle != Lifecycle::Deleting && live.contains_key(&d.file_system_id)
        });
        for d in a.associations.values_mut() {
            if matches!(d.lifecycle, Lifecycle::Creating | Lifecycle::Updating) {
                d.lifecycle = Lifecycle::Available;
            }
        }
        for b in a.backups.values_mut() {
            if !b.lifecycle.is_finished() {
                b.lifecycle = crate::backups::BackupLifecycle::Available;
                b.progress_percent = Some(100);
            }
        }
        for t in a.tasks.values_mut() {
            t.lifecycle = match t.lifecycle {
                TaskLifecycle::Pending | TaskLifecycle::Executing => {
                    t.succeeded = t.total - t.failed;
                    if t.failed > 0 {
                        TaskLifecycle::Failed
                    } else {
                        TaskLifecycle::Succeeded
                    }
                }
                TaskLifecycle::Canceling => TaskLifecycle::Canceled,
                ref other => other.clone(),
            };
        }
    }

    /// Every data repository task in the account.
    pub fn tasks(&self) -> Vec<DataTask> {
        self.lock().tasks.values().cloned().collect()
    }

    /// The running tasks will end FAILED, `failed` of their files failing with `message`.
    pub fn fail_running_tasks(&self, failed: i64, message: &str) {
        for t in self.lock().tasks.values_mut() {
            if matches!(
                t.lifecycle,
                TaskLifecycle::Pending | TaskLifecycle::Executing
            ) {
                t.failed = failed.min(t.total);
                t.failure_message = Some(message.to_string());
            }
        }
    }
}

/// The id a client token already made, when the request is the same; a token used with
/// other parameters is refused (FSx's idempotency).
fn replayed<R: PartialEq>(
    tokens: &HashMap<String, (R, String)>,
    token: &str,
    request: &R,
    operation: &'static str,
) -> CloudResult<Option<String>> {
    match tokens.get(token) {
        None => Ok(None),
        Some((earlier, id)) if earlier == request => Ok(Some(id.clone())),
        Some(_) => Err(aws_error(
            operation,
            "IncompatibleParameterError",
            "the client token was used with other parameters",
        )),
    }
}

/// The security groups a file system was created with.
fn fs_groups(tokens: &HashMap<String, (FileSystemRequest, String)>, id: &str) -> Vec<String> {
    tokens
        .values()
        .find(|(_, fs)| fs == id)
        .map(|(r, _)| r.security_group_ids.clone())
        .unwrap_or_default()
}

/// Whether two file system paths overlap (one is the other or under it).
fn overlaps(a: &str, b: &str) -> bool {
    let under =
        |x: &str, y: &str| x == y || x.starts_with(&format!("{}/", y.trim_end_matches('/')));
    under(a, b) || under(b, a)
}
