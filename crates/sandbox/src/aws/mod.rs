//! A simulated AWS account served over HTTP with the real wire protocols: FSx (JSON 1.1, by
//! `X-Amz-Target`) and EC2 (query protocol, XML), on one endpoint, so the operator's real AWS
//! adapter talks to it with nothing but an endpoint override and dummy credentials.
//!
//! It behaves like AWS where the operator's correctness depends on it: lifecycles with
//! delays (CREATING → AVAILABLE, UPDATING, DELETING → gone), client-token idempotency,
//! `DependencyViolation` for a security group still held by a file system, duplicate rules,
//! FSx's capacity / throughput validation. It injects faults (throttling, 5xx, slowness) by
//! operation and rate from a seed, counts every call, and shows everything at
//! `GET /_sim/state`.
//!
//! Control endpoints: `GET /_sim/state`, `PUT|DELETE /_sim/faults`, `PUT /_sim/timing`,
//! `POST /_sim/file-systems/{id}/fail`, `POST /_sim/fail-next-create`, `POST /_sim/reset-counts`.

pub mod ec2_api;
pub mod faults;
pub mod fsx_api;
pub mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use faults::{FaultKind, FaultRule, Faults};
use fsx_api::{ApiError, Ctx};
use state::{Lifecycle, State, Timing};

/// How the simulated account starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub region: String,
    pub timing: Timing,
    pub faults: Vec<FaultRule>,
    pub seed: u64,
    /// Largest DescribeFileSystems page (FSx's own maximum is not documented).
    pub page_size: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            timing: Timing::default(),
            faults: Vec::new(),
            seed: 1,
            page_size: 1000,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: State,
    timing: Timing,
    faults: Faults,
    page_size: usize,
    /// Every HTTP request by operation, faulted ones included.
    calls: BTreeMap<String, u64>,
    /// Injected faults by operation.
    injected: BTreeMap<String, u64>,
    /// Errors answered (injected or not) by AWS error code.
    errors: BTreeMap<String, u64>,
    /// Every call in the order it came: when, the operation, whether it succeeded.
    log: Vec<Call>,
    requests: u64,
}

/// One call in the simulated AWS's log.
#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub operation: String,
    pub ok: bool,
}

impl Inner {
    fn advance(&mut self, now: Instant) {
        self.state.advance(now, &self.timing);
    }
}

/// The simulated account; cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct SimAws {
    inner: Arc<Mutex<Inner>>,
}

const FSX_TARGET_PREFIX: &str = "AWSSimbaAPIService_v20180301.";

impl SimAws {
    pub fn new(config: SimConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                state: State::new(&config.region),
                timing: config.timing,
                faults: Faults::new(config.seed, config.faults),
                page_size: config.page_size.max(1),
                calls: BTreeMap::new(),
                injected: BTreeMap::new(),
                errors: BTreeMap::new(),
                log: Vec::new(),
                requests: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough data for a simulator.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The HTTP routes: the AWS endpoint at `/` and the control endpoints under `/_sim`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(aws_call))
            .route("/_sim/state", get(sim_state))
            .route("/_sim/faults", put(set_faults).delete(clear_faults))
            .route("/_sim/timing", put(set_timing))
            .route("/_sim/file-systems/{id}/fail", post(fail_file_system))
            .route("/_sim/fail-next-create", post(fail_next_create))
            .route("/_sim/reset-counts", post(reset_counts))
            .with_state(self.clone())
    }

    /// Serves on `addr` (port 0 picks a free one); returns the bound address and the task.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        crate::serve_router(self.router(), addr, shutdown).await
    }

    /// Everything in the account and the call counts, as `GET /_sim/state` shows it.
    pub fn snapshot(&self) -> Value {
        let mut inner = self.lock();
        inner.advance(Instant::now());
        let s = &inner.state;
        json!({
            "region": s.region,
            "securityGroups": s.security_groups.values().collect::<Vec<_>>(),
            "fileSystems": s.file_systems.values().collect::<Vec<_>>(),
            "dataRepositoryAssociations": s.associations.values().collect::<Vec<_>>(),
            "dataRepositoryTasks": s.tasks.values().collect::<Vec<_>>(),
            "backups": s.backups.values().map(fsx_api::backup_json).collect::<Vec<_>>(),
            "calls": inner.calls,
            "totalCalls": inner.calls.values().sum::<u64>(),
            "faultsInjected": inner.injected,
            "errors": inner.errors,
            "faults": inner.faults,
            "timing": inner.timing,
        })
    }

    /// Calls of one operation so far.
    pub fn calls(&self, operation: &str) -> u64 {
        self.lock().calls.get(operation).copied().unwrap_or(0)
    }

    /// All calls so far by operation.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// Replaces the fault rules.
    pub fn set_faults(&self, seed: u64, rules: Vec<FaultRule>) {
        self.lock().faults = Faults::new(seed, rules);
    }

    /// Changes the lifecycle delays for what happens from now on.
    pub fn set_timing(&self, timing: Timing) {
        self.lock().timing = timing;
    }

    /// The lifecycle delays in effect.
    pub fn timing(&self) -> Timing {
        self.lock().timing.clone()
    }

    /// Makes the next file system create end FAILED with `message`.
    pub fn fail_next_create(&self, message: &str) {
        self.lock()
            .state
            .fail_next_creates
            .push(message.to_string());
    }

    /// Makes the next data repository task end FAILED with `message` (its files failing).
    pub fn fail_next_task(&self, message: &str) {
        self.lock().state.fail_next_tasks.push(message.to_string());
    }

    /// Every call so far, in order.
    pub fn call_log(&self) -> Vec<Call> {
        self.lock().log.clone()
    }

    /// Every data repository task, moved on to now.
    pub fn tasks(&self) -> Vec<state::Task> {
        let mut inner = self.lock();
        inner.advance(Instant::now());
        inner.state.tasks.values().cloned().collect()
    }

    /// Puts a file system into FAILED now.
    pub fn fail_file_system(&self, id: &str, message: &str) -> bool {
        let mut inner = self.lock();
        match inner.state.file_systems.get_mut(id) {
            Some(fs) => {
                fs.lifecycle = Lifecycle::Failed;
                fs.failure_message = Some(message.to_string());
                fs.until = None;
                true
            }
            None => false,
        }
    }

    /// When each file system became AVAILABLE (those that did).
    pub fn available_times(&self) -> BTreeMap<String, Instant> {
        let mut inner = self.lock();
        inner.advance(Instant::now());
        inner
            .state
            .file_systems
            .values()
            .filter_map(|f| f.available_at.map(|t| (f.id.clone(), t)))
            .collect()
    }

    /// When a DescribeFileSystems answer first showed each file system AVAILABLE (those
    /// that were).
    pub fn seen_available_times(&self) -> BTreeMap<String, Instant> {
        self.lock()
            .state
            .file_systems
            .values()
            .filter_map(|f| f.seen_available_at.map(|t| (f.id.clone(), t)))
            .collect()
    }

    /// Adds a subnet (and its VPC).
    pub fn add_subnet(&self, id: &str, vpc: &str) {
        self.lock().state.add_subnet(id, vpc, "a", "10.1.0.0/20");
    }

    fn handle(
        &self,
        service: &'static str,
        operation: &str,
        run: impl FnOnce(&mut Inner, &str) -> Result<String, ApiError>,
    ) -> (
        Option<std::time::Duration>,
        Result<String, ApiError>,
        String,
    ) {
        let mut inner = self.lock();
        inner.requests += 1;
        let request_id = format!("sim-{:08x}-{:04x}", inner.requests, inner.requests % 0xffff);
        *inner.calls.entry(operation.to_string()).or_default() += 1;
        let (delay, fault) = inner.faults.pick(service, operation);
        let result = match fault {
            Some(kind) => {
                *inner.injected.entry(operation.to_string()).or_default() += 1;
                Err(fault_error(service, &kind))
            }
            None => {
                let now = Instant::now();
                inner.advance(now);
                run(&mut inner, &request_id)
            }
        };
        if let Err(e) = &result {
            *inner.errors.entry(e.code.clone()).or_default() += 1;
        }
        inner.log.push(Call {
            at: Instant::now(),
            operation: operation.to_string(),
            ok: result.is_ok(),
        });
        (delay, result, request_id)
    }
}

fn fault_error(service: &str, kind: &FaultKind) -> ApiError {
    match (service, kind) {
        ("ec2", FaultKind::Throttle) => {
            ApiError::new(503, "RequestLimitExceeded", "Request limit exceeded.")
        }
        (_, FaultKind::Throttle) => ApiError::new(400, "ThrottlingException", "Rate exceeded"),
        ("ec2", FaultKind::ServerError) => {
            ApiError::new(500, "InternalError", "An internal error has occurred")
        }
        (_, FaultKind::ServerError) => ApiError::new(
            500,
            "InternalServerError",
            "An internal error occurred (simulated).",
        ),
        (
            _,
            FaultKind::Error {
                status,
                code,
                message,
            },
        ) => ApiError::new(*status, code, message.clone()),
        (_, FaultKind::Delay { .. }) => ApiError::new(500, "InternalError", "unreachable"),
    }
}

fn fsx_dispatch(inner: &mut Inner, operation: &str, body: &Value) -> Result<Value, ApiError> {
    let timing = inner.timing.clone();
    let page_size = inner.page_size;
    let faults = &mut inner.faults;
    let mut unit = || faults.unit();
    let mut ctx = Ctx {
        now: Instant::now(),
        timing: &timing,
        unit: &mut unit,
        page_size,
    };
    let s = &mut inner.state;
    match operation {
        "CreateFileSystem" => fsx_api::create_file_system(s, &mut ctx, body),
        "DescribeFileSystems" => fsx_api::describe_file_systems(s, &mut ctx, body),
        "UpdateFileSystem" => fsx_api::update_file_system(s, &mut ctx, body),
        "DeleteFileSystem" => fsx_api::delete_file_system(s, &mut ctx, body),
        "TagResource" => fsx_api::tag_resource(s, &mut ctx, body),
        "UntagResource" => fsx_api::untag_resource(s, &mut ctx, body),
        "CreateDataRepositoryAssociation" => fsx_api::create_association(s, &mut ctx, body),
        "DescribeDataRepositoryAssociations" => fsx_api::describe_associations(s, &mut ctx, body),
        "DeleteDataRepositoryAssociation" => fsx_api::delete_association(s, &mut ctx, body),
        "UpdateDataRepositoryAssociation" => fsx_api::update_association(s, &mut ctx, body),
        "CreateDataRepositoryTask" => fsx_api::create_task(s, &mut ctx, body),
        "DescribeDataRepositoryTasks" => fsx_api::describe_tasks(s, &mut ctx, body),
        "CancelDataRepositoryTask" => fsx_api::cancel_task(s, &mut ctx, body),
        "CreateBackup" => fsx_api::create_backup(s, &mut ctx, body),
        "DescribeBackups" => fsx_api::describe_backups(s, &mut ctx, body),
        "DeleteBackup" => fsx_api::delete_backup(s, &mut ctx, body),
        "CreateFileSystemFromBackup" => fsx_api::create_file_system_from_backup(s, &mut ctx, body),
        other => Err(ApiError::new(
            400,
            "UnknownOperationException",
            format!("The simulated FSx does not implement {other}"),
        )),
    }
}

fn ec2_dispatch(
    inner: &mut Inner,
    action: &str,
    params: &ec2_api::Params,
    rid: &str,
) -> Result<String, ApiError> {
    let s = &mut inner.state;
    match action {
        "DescribeSubnets" => ec2_api::describe_subnets(s, params, rid),
        "CreateSecurityGroup" => ec2_api::create_security_group(s, params, rid),
        "AuthorizeSecurityGroupIngress" => ec2_api::authorize_ingress(s, params, rid),
        "DescribeSecurityGroups" => ec2_api::describe_security_groups(s, params, rid),
        "DeleteSecurityGroup" => ec2_api::delete_security_group(s, params, rid),
        other => Err(ApiError::new(
            400,
            "InvalidAction",
            format!("The simulated EC2 does not implement {other}"),
        )),
    }
}

fn fsx_error_response(e: &ApiError, rid: &str) -> Response {
    let mut body = json!({"__type": e.code, "Message": e.message});
    for (k, v) in &e.extra {
        body[k] = v.clone();
    }
    (
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        [
            (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
            (header::HeaderName::from_static("x-amzn-requestid"), rid),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn aws_call(AxState(sim): AxState<SimAws>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let operation = target
            .strip_prefix(FSX_TARGET_PREFIX)
            .unwrap_or(target)
            .to_string();
        let request: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
        let (delay, result, rid) = sim.handle("fsx", &operation, |inner, _| {
            fsx_dispatch(inner, &operation, &request).map(|v| v.to_string())
        });
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        return match result {
            Ok(body) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/x-amz-json-1.1"),
                    (
                        header::HeaderName::from_static("x-amzn-requestid"),
                        rid.as_str(),
                    ),
                ],
                body,
            )
                .into_response(),
            Err(e) => fsx_error_response(&e, &rid),
        };
    }
    let params: ec2_api::Params = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    let (delay, result, rid) = sim.handle("ec2", &action, |inner, rid| {
        ec2_dispatch(inner, &action, &params, rid)
    });
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let (status, xml) = match result {
        Ok(xml) => (StatusCode::OK, xml),
        Err(e) => (
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            ec2_api::error_xml(&e, &rid),
        ),
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml;charset=UTF-8"),
            (
                header::HeaderName::from_static("x-amzn-requestid"),
                rid.as_str(),
            ),
        ],
        xml,
    )
        .into_response()
}

async fn sim_state(AxState(sim): AxState<SimAws>) -> Response {
    axum::Json(sim.snapshot()).into_response()
}

#[derive(Deserialize)]
struct FaultsBody {
    #[serde(default = "one")]
    seed: u64,
    #[serde(default)]
    rules: Vec<FaultRule>,
}

fn one() -> u64 {
    1
}

async fn set_faults(
    AxState(sim): AxState<SimAws>,
    axum::Json(body): axum::Json<FaultsBody>,
) -> StatusCode {
    sim.set_faults(body.seed, body.rules);
    StatusCode::NO_CONTENT
}

async fn clear_faults(AxState(sim): AxState<SimAws>) -> StatusCode {
    sim.set_faults(1, Vec::new());
    StatusCode::NO_CONTENT
}

async fn set_timing(
    AxState(sim): AxState<SimAws>,
    axum::Json(timing): axum::Json<Timing>,
) -> StatusCode {
    sim.set_timing(timing);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize, Serialize, Default)]
struct FailBody {
    #[serde(default)]
    message: Option<String>,
}

const DEFAULT_FAILURE: &str =
    "The file system failed (simulated): the subnet ran out of IP addresses.";

async fn fail_file_system(
    AxState(sim): AxState<SimAws>,
    Path(id): Path<String>,
    body: Option<axum::Json<FailBody>>,
) -> StatusCode {
    let message = body
        .and_then(|b| b.0.message)
        .unwrap_or_else(|| DEFAULT_FAILURE.into());
    if sim.fail_file_system(&id, &message) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn fail_next_create(
    AxState(sim): AxState<SimAws>,
    body: Option<axum::Json<FailBody>>,
) -> StatusCode {
    let message = body
        .and_then(|b| b.0.message)
        .unwrap_or_else(|| DEFAULT_FAILURE.into());
    sim.fail_next_create(&message);
    StatusCode::NO_CONTENT
}

async fn reset_counts(AxState(sim): AxState<SimAws>) -> StatusCode {
    let mut inner = sim.lock();
    inner.calls.clear();
    inner.injected.clear();
    inner.errors.clear();
    inner.log.clear();
    StatusCode::NO_CONTENT
}
