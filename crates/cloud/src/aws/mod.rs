//! The [`Cloud`](crate::Cloud) implementation on aws-sdk-fsx and aws-sdk-ec2.
//!
//! Credentials come from the default chain (environment, IRSA web identity, EKS Pod Identity,
//! instance profile), so nothing here knows how the operator runs. Retries are the SDK's own
//! (standard or adaptive mode, bounded attempts, jittered back-off, a retry quota), with
//! operation and attempt timeouts.

mod backups;
mod ec2;
mod errors;
mod fsx;
mod lustre_shapes;
mod tasks;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region};
use aws_credential_types::Credentials;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::{CallObserver, Tags};

/// The SDK's retry strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetryMode {
    /// Exponential back-off with jitter and a retry quota.
    #[default]
    Standard,
    /// Standard plus client-side rate limiting when throttled.
    Adaptive,
}

/// How to reach AWS.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// Region; `None` takes the environment's (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint override for both FSx and EC2 (the simulated AWS, moto, a VPC endpoint).
    pub endpoint_url: Option<String>,
    /// Attempts per call, first included.
    pub max_attempts: u32,
    /// Retry strategy.
    pub retry_mode: RetryMode,
    /// Deadline for one call including retries.
    pub operation_timeout: Duration,
    /// Deadline for one attempt.
    pub attempt_timeout: Duration,
    /// Fixed credentials (tests and the sandbox); `None` uses the default chain.
    pub static_credentials: Option<(String, String)>,
    /// The install's id, tagged (`workspaces.lustre.dev/cluster`) on every resource created.
    pub cluster_id: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: 5,
            retry_mode: RetryMode::Standard,
            operation_timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(20),
            static_credentials: None,
            cluster_id: None,
        }
    }
}

/// Name in the user agent, so AWS-side logs (CloudTrail) show who called.
pub const APP_NAME: &str = "lustre-operator";

/// FSx and EC2 clients of one region.
#[derive(Clone, Debug)]
pub struct AwsCloud {
    fsx: aws_sdk_fsx::Client,
    ec2: aws_sdk_ec2::Client,
    observer: Option<Arc<dyn CallObserver>>,
    /// Tags every created resource carries besides the request's own.
    install_tags: Tags,
}

impl AwsCloud {
    /// Loads the shared configuration (credentials, region) and builds both clients.
    pub async fn new(settings: &AwsSettings, observer: Option<Arc<dyn CallObserver>>) -> Self {
        let retry = match settings.retry_mode {
            RetryMode::Standard => RetryConfig::standard(),
            RetryMode::Adaptive => RetryConfig::adaptive(),
        }
        .with_max_attempts(settings.max_attempts.max(1));
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(settings.operation_timeout)
            .operation_attempt_timeout(settings.attempt_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Ok(name) = AppName::new(APP_NAME) {
            loader = loader.app_name(name);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some((key, secret)) = &settings.static_credentials {
            loader =
                loader.credentials_provider(Credentials::new(key, secret, None, None, "static"));
        }
        let shared = loader.load().await;
        let cloud = Self::from_clients(
            aws_sdk_fsx::Client::new(&shared),
            aws_sdk_ec2::Client::new(&shared),
            observer,
        );
        match &settings.cluster_id {
            Some(id) => cloud.with_cluster_id(id),
            None => cloud,
        }
    }

    /// Tags every resource this client creates with the install's id (what the IAM policy's
    /// `${aws:PrincipalTag/workspaces.lustre.dev/cluster}` conditions compare).
    pub fn with_cluster_id(mut self, id: &str) -> Self {
        self.install_tags
            .insert(lustre_api::constants::tags::CLUSTER.into(), id.into());
        self
    }

    /// A request's tags plus the install's (which win: a class cannot impersonate another
    /// install; `validate()` refuses the operator's prefix in class and workspace tags anyway).
    fn tagged(&self, tags: &Tags) -> Tags {
        let mut all = tags.clone();
        all.extend(self.install_tags.clone());
        all
    }

    /// Wraps existing clients (tests build them with mocked HTTP).
    pub fn from_clients(
        fsx: aws_sdk_fsx::Client,
        ec2: aws_sdk_ec2::Client,
        observer: Option<Arc<dyn CallObserver>>,
    ) -> Self {
        Self {
            fsx,
            ec2,
            observer,
            install_tags: Tags::new(),
        }
    }

    /// Start-up check: a region is set, credentials resolve, and the identity may read FSx
    /// and EC2 (one small call each). The error says what is missing and how to fix it.
    pub async fn preflight(&self) -> Result<(), String> {
        let Some(region) = self.fsx.config().region().map(|r| r.to_string()) else {
            return Err("no AWS region: pass --aws-region or set AWS_REGION (IRSA and EKS Pod Identity set it in the pod)".into());
        };
        let fsx = self
            .fsx
            .describe_file_systems()
            .max_results(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| errors::from_sdk("DescribeFileSystems", e));
        let ec2 = self
            .ec2
            .describe_subnets()
            .max_results(5)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| errors::from_sdk("DescribeSubnets", e));
        for (action, result) in [
            ("fsx:DescribeFileSystems", fsx),
            ("ec2:DescribeSubnets", ec2),
        ] {
            match result {
                Ok(()) => {}
                Err(e) if e.kind == crate::ErrorKind::AccessDenied => {
                    return Err(format!(
                        "AWS denied {action} in {region} to the operator's identity: attach deploy/iam/policy.json to its role ({e})"
                    ));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot call {action} in {region} (credentials from the default chain: environment, IRSA, EKS Pod Identity, instance profile): {e}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn observe(&self, service: &'static str, operation: &'static str, outcome: &'static str) {
        if let Some(o) = &self.observer {
            o.observe(service, operation, outcome);
        }
    }

    /// Where every SDK call ends: its answer read by `read` into a domain result (a failed
    /// call becomes the domain's error), recorded and logged by `record`.
    fn answer<O, E, T>(
        &self,
        service: &'static str,
        operation: &'static str,
        sent: Result<O, SdkError<E, HttpResponse>>,
        read: impl FnOnce(O) -> crate::CloudResult<T>,
    ) -> crate::CloudResult<T>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let result = sent
            .map_err(|e| errors::from_sdk(operation, e))
            .and_then(read);
        self.record(service, operation, result)
    }

    /// Records the outcome of a call, logs failures with the AWS request id, and passes the
    /// result on.
    fn record<T>(
        &self,
        service: &'static str,
        operation: &'static str,
        result: crate::CloudResult<T>,
    ) -> crate::CloudResult<T> {
        match &result {
            Ok(_) => self.observe(service, operation, "ok"),
            Err(e) => {
                self.observe(service, operation, e.category());
                tracing::debug!(
                    aws.service = service,
                    aws.operation = operation,
                    aws.error_code = e.code.as_deref().unwrap_or(""),
                    aws.request_id = e.request_id.as_deref().unwrap_or(""),
                    error = %e,
                    "AWS call failed"
                );
            }
        }
        result
    }
}

/// Every page of a paginated call: `page(token)` sends one request and returns its items and
/// the next token (none, or empty: that was the last page).
pub(crate) async fn all_pages<T, F, Fut>(mut page: F) -> crate::CloudResult<Vec<T>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = crate::CloudResult<(Vec<T>, Option<String>)>>,
{
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token.take()).await?;
        all.extend(items);
        match next {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(all),
        }
    }
}

/// Asks `call` for `items` in chunks of `size`. FSx fails a whole call when one id it names
/// no longer exists, so such a chunk is asked again item by item, leaving the missing out.
pub(crate) async fn in_chunks<'a, T, F, Fut>(
    items: &'a [String],
    size: usize,
    call: F,
) -> crate::CloudResult<Vec<T>>
where
    F: Fn(&'a [String]) -> Fut,
    Fut: std::future::Future<Output = crate::CloudResult<Vec<T>>>,
{
    let mut all = Vec::new();
    for chunk in items.chunks(size) {
        match call(chunk).await {
            Ok(found) => all.extend(found),
            Err(e) if e.kind == crate::ErrorKind::NotFound && chunk.len() > 1 => {
                for item in chunk {
                    match call(std::slice::from_ref(item)).await {
                        Ok(found) => all.extend(found),
                        Err(e) if e.kind == crate::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) if e.kind == crate::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(all)
}
