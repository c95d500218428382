//! The Kubernetes API server a run of the operator uses: the sandbox (in this process) or a
//! real control plane (etcd, kube-apiserver, kube-controller-manager from
//! `scripts/control-plane`, as separate processes on the same cores). What the benchmark
//! observes of it goes through the API (watches), the same on both; only the operator's
//! requests are read from each server's own audit record.

use std::path::PathBuf;

use anyhow::Context as _;
use lustre_sandbox::World;
use lustre_sandbox::aws::{SimAws, SimConfig};
use lustre_sandbox::kube::KubeSandbox;
use lustre_sandbox::kube::store::AuditEntry;
use serde_json::Value;

/// Which API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Cluster {
    Sandbox,
    Real,
}

impl Cluster {
    pub fn name(self) -> &'static str {
        match self {
            Cluster::Sandbox => "sandbox",
            Cluster::Real => "real control plane",
        }
    }
}

/// The start of the operator's user agent on the Kubernetes API.
const OPERATOR_AGENT: &str = "lustre-operator/";

/// The user the real control plane's admin kubeconfig authenticates as (its client
/// certificate's CN, `scripts/control-plane`); the operator runs with that kubeconfig here.
const REAL_ADMIN: &str = "lustre-test-admin";

pub struct ApiServer {
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
    pub sim: SimAws,
    pub aws_url: String,
    sandbox: Option<(KubeSandbox, World)>,
    /// The real control plane's directory (pids, audit log), stopped on drop.
    real: Option<PathBuf>,
    _stop_aws: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A process of the real control plane: its name and PID.
pub struct Process {
    pub name: String,
    pub pid: u32,
}

impl ApiServer {
    pub async fn start(
        cluster: Cluster,
        config: SimConfig,
        dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let kubeconfig = dir.join("kubeconfig");
        match cluster {
            Cluster::Sandbox => {
                let world = World::start(config).await?;
                lustre_sandbox::kube::write_kubeconfig(&kubeconfig, &world.kube_url)?;
                let client = kube::Client::try_from(kube::Config::new(world.kube_url.parse()?))?;
                Ok(ApiServer {
                    kubeconfig,
                    client,
                    sim: world.sim.clone(),
                    aws_url: world.aws_url.clone(),
                    sandbox: Some((world.kube.clone(), world)),
                    real: None,
                    _stop_aws: None,
                })
            }
            Cluster::Real => {
                let real = dir.join("control-plane");
                let out = std::process::Command::new("bash")
                    .args(["scripts/control-plane", "up"])
                    .arg(&real)
                    .arg("new")
                    .output()
                    .context("scripts/control-plane up")?;
                anyhow::ensure!(
                    out.status.success(),
                    "the control plane did not start (run scripts/control-plane build first): {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                std::fs::copy(real.join("kubeconfig"), &kubeconfig)?;
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
                let client = kube::Client::try_from(
                    kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?,
                )?;
                let sim = SimAws::new(config);
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let (addr, _) = sim
                    .serve("127.0.0.1:0".parse()?, async move {
                        let _ = stopped.await;
                    })
                    .await?;
                Ok(ApiServer {
                    kubeconfig,
                    client,
                    sim,
                    aws_url: format!("http://{addr}"),
                    sandbox: None,
                    real: Some(real),
                    _stop_aws: Some(stop),
                })
            }
        }
    }

    /// The real control plane's processes (none for the sandbox, which is this process).
    pub fn processes(&self) -> Vec<Process> {
        let Some(dir) = &self.real else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(name, pid)| {
                Some(Process {
                    name: name.to_string(),
                    pid: pid.trim().parse().ok()?,
                })
            })
            .collect()
    }

    /// Where the operator's requests start in the server's audit record (an entry count or a
    /// byte offset).
    pub fn audit_mark(&self) -> usize {
        match (&self.sandbox, &self.real) {
            (Some((kube, _)), _) => kube.store().audit.len(),
            (None, Some(dir)) => std::fs::metadata(dir.join("audit.log"))
                .map(|m| m.len() as usize)
                .unwrap_or(0),
            (None, None) => 0,
        }
    }

    /// The operator's requests since `mark` (told by its user agent, `lustre-operator/…`):
    /// the sandbox's audit record, or the real control plane's audit log (a watch counted
    /// once, when its response starts; every other request when it completes).
    pub fn requests_since(&self, mark: usize) -> Vec<AuditEntry> {
        let ours = |a: &AuditEntry| a.user_agent.starts_with(OPERATOR_AGENT);
        match (&self.sandbox, &self.real) {
            (Some((kube, _)), _) => kube.store().audit[mark..]
                .iter()
                .filter(|a| ours(a))
                .cloned()
                .collect(),
            (None, Some(_)) => {
                let mut entries = Vec::new();
                self.each_operator_event(mark, |e| {
                    let stage = if e["verb"] == "watch" {
                        "ResponseStarted"
                    } else {
                        "ResponseComplete"
                    };
                    if e["stage"] == stage {
                        entries.extend(AuditEntry::from_apiserver(&e));
                    }
                });
                entries
            }
            (None, None) => Vec::new(),
        }
    }

    /// On the real control plane, the operator's applies of volumes since `mark` by volume
    /// name, from kube-apiserver's audit log: when the request was received and when its
    /// response was complete (the first of each name), as moments of this process's clock.
    /// Empty on the sandbox (its requests are served in this process).
    pub fn volume_applies_since(
        &self,
        mark: usize,
    ) -> std::collections::HashMap<String, (std::time::Instant, std::time::Instant)> {
        let mut applies = std::collections::HashMap::new();
        let (now, wall) = (std::time::Instant::now(), jiff::Timestamp::now());
        let instant = |v: &Value| -> Option<std::time::Instant> {
            let at: jiff::Timestamp = v.as_str()?.parse().ok()?;
            let ago = wall.duration_since(at);
            now.checked_sub(std::time::Duration::try_from(ago).ok()?)
        };
        self.each_operator_event(mark, |e| {
            if e["stage"] != "ResponseComplete"
                || e["verb"] != "patch"
                || e["objectRef"]["resource"] != "persistentvolumes"
            {
                return;
            }
            if let (Some(name), Some(received), Some(done)) = (
                e["objectRef"]["name"].as_str(),
                instant(&e["requestReceivedTimestamp"]),
                instant(&e["stageTimestamp"]),
            ) {
                applies.entry(name.to_string()).or_insert((received, done));
            }
        });
        applies
    }

    /// Each event of the real control plane's audit log after byte `mark` that the operator
    /// made (the admin user, the operator's user agent), parsed; none on the sandbox. The log
    /// is read once per call.
    fn each_operator_event(&self, mark: usize, mut each: impl FnMut(Value)) {
        let Some(dir) = &self.real else {
            return;
        };
        let text = std::fs::read(dir.join("audit.log")).unwrap_or_default();
        String::from_utf8_lossy(text.get(mark..).unwrap_or_default())
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| {
                e["user"]["username"] == REAL_ADMIN
                    && e["userAgent"]
                        .as_str()
                        .is_some_and(|a| a.starts_with(OPERATOR_AGENT))
            })
            .for_each(&mut each);
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(dir) = &self.real {
            let _ = std::process::Command::new("bash")
                .args(["scripts/control-plane", "down"])
                .arg(dir)
                .arg("--now")
                .output();
        }
    }
}
