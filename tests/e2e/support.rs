//! The end-to-end harness shared by the user-story, bad-input, crash, fault and guide suites:
//! a Kubernetes API server, the simulated AWS in the test process, the `lustre-operator`
//! binary as child processes, and real `kubectl`.
//!
//! One harness, two clusters: `LUSTRE_E2E_CLUSTER=real` runs a story on a real control plane
//! (etcd, kube-apiserver, kube-controller-manager from `scripts/control-plane`) with the plain
//! manifests installed and the operator authenticated as their ServiceAccount; unset (or
//! `sandbox`) runs it on the sandbox API server. The simulated AWS is the same in both, and a
//! story's assertions go through the Kubernetes API, never a server's store.
#![allow(dead_code)] // each suite uses part of it

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use lustre_sandbox::World;
pub use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};
use lustre_sandbox::kube::KubeSandbox;
use lustre_sandbox::kube::store::AuditEntry;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::real_cluster::{OPERATOR_NS, OPERATOR_USER, RealCluster, SimOnLoopback};

/// The install id (`--cluster-id`) the suites' operators run with.
pub const CLUSTER_ID: &str = "e2e-cluster";

/// `(verb, resource[.group][/subresource])` pairs.
pub type Permissions = BTreeSet<(String, String)>;

pub const OPERATOR: &str = env!("CARGO_BIN_EXE_lustre-operator");

/// The namespace of the leader-election Lease in every story (the chart's).
pub const LEASE_NS: &str = OPERATOR_NS;

/// The repository root, read at run time (a test binary in a shared target directory may
/// outlive the clone it was built from).
pub fn repo() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    Path::new(&manifest).join("../..")
}

/// Which Kubernetes API server the stories run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// `crates/sandbox`, in the test process.
    Sandbox,
    /// etcd + kube-apiserver + kube-controller-manager (`scripts/control-plane up`).
    Real,
}

impl Cluster {
    /// `LUSTRE_E2E_CLUSTER`: `real`, or `sandbox` (the default).
    pub fn chosen() -> Self {
        match std::env::var("LUSTRE_E2E_CLUSTER").as_deref() {
            Ok("real") => Cluster::Real,
            Ok("sandbox") | Ok("") | Err(_) => Cluster::Sandbox,
            Ok(other) => panic!("LUSTRE_E2E_CLUSTER={other}: expected sandbox or real"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cluster::Sandbox => "sandbox",
            Cluster::Real => "real",
        }
    }
}

pub struct Operator {
    pub child: Option<Child>,
    pub log: PathBuf,
}

enum Server {
    Sandbox {
        kube: KubeSandbox,
        _world: World,
    },
    Real {
        cluster: RealCluster,
        _aws: SimOnLoopback,
    },
}

pub struct E2e {
    pub dir: PathBuf,
    pub sim: SimAws,
    pub aws_url: String,
    pub operators: Vec<Operator>,
    pub cluster: Cluster,
    /// What the operator authenticates with: on the real control plane a TokenRequest token
    /// of the chart's ServiceAccount (bound to the chart's roles), on the sandbox the admin's.
    operator_kubeconfig: PathBuf,
    /// The admin's client, for the stories' reads.
    client: kube::Client,
    server: Server,
}

impl E2e {
    /// A cluster (the one `LUSTRE_E2E_CLUSTER` picks) and the simulated AWS on free ports,
    /// the CRDs, the example namespace and class applied with kubectl, and the operator
    /// running.
    pub async fn start(timing: Timing) -> Self {
        let dir = std::env::temp_dir().join(format!("lustre-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cluster = Cluster::chosen();
        let kubeconfig = dir.join("kubeconfig");
        let (server, sim, aws_url) = match cluster {
            Cluster::Sandbox => {
                let world = World::start(SimConfig {
                    timing,
                    ..SimConfig::default()
                })
                .await
                .expect("sandbox API server and simulated AWS");
                lustre_sandbox::kube::write_kubeconfig(&kubeconfig, &world.kube_url)
                    .expect("kubeconfig");
                let (sim, url) = (world.sim.clone(), world.aws_url.clone());
                let kube = world.kube.clone();
                (
                    Server::Sandbox {
                        kube,
                        _world: world,
                    },
                    sim,
                    url,
                )
            }
            Cluster::Real => {
                let real = tokio::task::spawn_blocking(|| RealCluster::up("new"))
                    .await
                    .expect("control plane");
                std::fs::copy(real.kubeconfig(), &kubeconfig).expect("admin kubeconfig");
                let aws = crate::real_cluster::sim_aws_with(timing).await;
                let (sim, url) = (aws.sim.clone(), aws.url.clone());
                (
                    Server::Real {
                        cluster: real,
                        _aws: aws,
                    },
                    sim,
                    url,
                )
            }
        };
        let client = kube_client(&kubeconfig).await;
        let mut e = E2e {
            operator_kubeconfig: kubeconfig.clone(),
            dir,
            sim,
            aws_url,
            operators: Vec::new(),
            cluster,
            client,
            server,
        };
        let examples = repo().join("deploy/examples");
        match e.cluster {
            Cluster::Sandbox => {
                e.ok(&["apply", "-f", &repo().join("deploy/crds").to_string_lossy()])
                    .await;
                e.ok(&[
                    "apply",
                    "-f",
                    &repo()
                        .join("deploy/manifests/namespace.yaml")
                        .to_string_lossy(),
                ])
                .await;
            }
            Cluster::Real => {
                // What a platform team installs: CRDs, RBAC, admission policy, Deployment
                // (no kubelet runs its pod; the operator runs here as its ServiceAccount).
                e.ok(&[
                    "apply",
                    "--server-side",
                    "-k",
                    &repo().join("deploy").to_string_lossy(),
                ])
                .await;
                e.operator_kubeconfig = e.real().operator_kubeconfig().await;
            }
        }
        e.ok(&[
            "apply",
            "-f",
            &examples.join("namespace-ml.yaml").to_string_lossy(),
            "-f",
            &examples.join("class-standard.yaml").to_string_lossy(),
        ])
        .await;
        e.start_operator();
        e
    }

    /// The sandbox API server (its store, audit and fault injection); panics on a real
    /// control plane.
    pub fn sandbox(&self) -> &KubeSandbox {
        match &self.server {
            Server::Sandbox { kube, .. } => kube,
            Server::Real { .. } => panic!("this story needs the sandbox's own controls"),
        }
    }

    /// The real control plane; panics on the sandbox.
    pub fn real(&self) -> &RealCluster {
        match &self.server {
            Server::Real { cluster, .. } => cluster,
            Server::Sandbox { .. } => panic!("this story needs the real control plane"),
        }
    }

    pub fn start_operator(&mut self) {
        self.spawn_operator(&[]);
    }

    /// Starts an operator process with extra flags; returns its index in `operators`.
    pub fn spawn_operator(&mut self, extra: &[&str]) -> usize {
        self.spawn_operator_env(extra, &[])
    }

    /// Whether operator `i` is still running (reaps it when it exited).
    pub fn running(&mut self, i: usize) -> bool {
        match self.operators[i].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// An object as the API server returns it (`None` once it is gone): `api` is `api/v1` or
    /// `apis/<group>/<version>`, `ns` empty for a cluster-scoped kind.
    pub async fn object(&self, api: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let request = kube::core::Request::new(collection(api, plural, ns))
            .get(name, &Default::default())
            .expect("a GET request");
        match self.client.request::<Value>(request).await {
            Ok(v) => Some(v),
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(e) => panic!("GET {plural} {ns}/{name}: {e}"),
        }
    }

    /// A workspace of namespace `ml`, as the API server returns it.
    pub async fn workspace(&self, name: &str) -> Option<Value> {
        self.object(
            "apis/workspaces.lustre.dev/v1alpha1",
            "lustreworkspaces",
            "ml",
            name,
        )
        .await
    }

    /// The Events of namespace `ml` a field selector picks, one `TYPE REASON: MESSAGE` line
    /// each.
    pub async fn events(&self, selector: &str) -> String {
        self.ok(&[
            "get",
            "events",
            "-n",
            "ml",
            "--field-selector",
            selector,
            "-o",
            "jsonpath={range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
        ])
        .await
    }

    /// Merges `patch` (JSON) into class `standard`.
    pub async fn patch_class(&self, patch: &str) {
        self.ok(&["patch", "lwc", "standard", "--type=merge", "-p", patch])
            .await;
    }

    /// The admin's client.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// How many objects of a kind exist (all namespaces), listed through the API.
    pub async fn objects(&self, api: &str, plural: &str) -> usize {
        self.listed(api, plural).await.len()
    }

    /// The objects of a kind in every namespace, as the API server lists them.
    pub async fn listed(&self, api: &str, plural: &str) -> Vec<Value> {
        let request = kube::core::Request::new(collection(api, plural, ""))
            .list(&Default::default())
            .expect("a LIST request");
        let mut list = self
            .client
            .request::<Value>(request)
            .await
            .unwrap_or_else(|e| panic!("LIST {plural}: {e}"));
        match list["items"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        }
    }

    /// Starts an operator process with extra flags and environment (this install's id is
    /// [`CLUSTER_ID`]).
    pub fn spawn_operator_env(&mut self, extra: &[&str], env: &[(&str, &str)]) -> usize {
        let n = self.operators.len() + 1;
        let log_path = self.dir.join(format!("operator-{n}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(OPERATOR)
            .args([
                "run",
                "--metrics-addr",
                "127.0.0.1:0",
                "--aws-endpoint-url",
                &self.aws_url,
                "--aws-region",
                "us-east-1",
                "--poll-interval-seconds",
                "0.2",
                "--cluster-id",
                CLUSTER_ID,
            ])
            .args(extra)
            .env("KUBECONFIG", &self.operator_kubeconfig)
            .env("POD_NAMESPACE", LEASE_NS)
            .env("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
            .env("AWS_SECRET_ACCESS_KEY", "sandbox")
            // LUSTRE_E2E_LOG=debug (or any RUST_LOG filter) for a closer look at a failure.
            .env(
                "RUST_LOG",
                std::env::var("LUSTRE_E2E_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("start lustre-operator");
        self.operators.push(Operator {
            child: Some(child),
            log: log_path,
        });
        self.operators.len() - 1
    }

    /// Runs an operator that is expected to stop at start-up; returns its exit status and
    /// output. `region` false leaves the AWS region unset everywhere.
    pub async fn operator_exits(&self, region: bool) -> (std::process::ExitStatus, String) {
        let mut cmd = Command::new(OPERATOR);
        cmd.args([
            "run",
            "--metrics-addr",
            "127.0.0.1:0",
            "--aws-endpoint-url",
            &self.aws_url,
        ]);
        if region {
            cmd.args(["--aws-region", "us-east-1"]);
        }
        let out = cmd
            .env("KUBECONFIG", &self.operator_kubeconfig)
            .env("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
            .env("AWS_SECRET_ACCESS_KEY", "sandbox")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env("AWS_CONFIG_FILE", self.dir.join("no-aws-config"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out)
            .await
            .expect("the operator stopped within 30 s")
            .expect("ran");
        (
            out.status,
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// SIGKILL of the newest operator: no chance to finish anything or write status.
    pub async fn kill_operator(&mut self) {
        let i = self.operators.len() - 1;
        self.kill(i).await;
    }

    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.operators[i].child.take() {
            child.kill().await.expect("kill");
        }
    }

    /// SIGTERM, then the exit status (bounded).
    pub async fn terminate(&mut self, i: usize) -> (std::process::ExitStatus, Duration) {
        let mut child = self.operators[i].child.take().expect("running");
        let pid = child.id().expect("pid").to_string();
        let start = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill -TERM");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("exited within 30 s after SIGTERM")
            .expect("wait");
        (status, start.elapsed())
    }

    /// `kubectl wait --for=<condition> <what> -n ml --timeout=60s`, expecting success.
    pub async fn wait_for(&self, condition: &str, what: &str) {
        let cond = format!("--for={condition}");
        self.ok(&["wait", &cond, what, "-n", "ml", TIMEOUT]).await;
    }

    /// Who holds the leader-election Lease (empty when released, `<no lease>` before the
    /// first replica created it).
    pub async fn lease_holder(&self) -> String {
        let out = self
            .kubectl(
                &[
                    "get",
                    "lease",
                    "lustre-operator",
                    "-n",
                    LEASE_NS,
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ],
                None,
            )
            .await;
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            "<no lease>".into()
        }
    }

    /// The address the operator's /metrics server listens on, from its log.
    pub async fn metrics_addr(&self, i: usize) -> String {
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.operators[i].log).unwrap_or_default();
            if let Some(addr) = log
                .lines()
                .find(|l| l.contains("serving /metrics"))
                .and_then(|l| l.split("addr=").nth(1))
                .and_then(|a| a.split_whitespace().next())
            {
                return addr.to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no metrics address in the log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .arg("--cache-dir")
            .arg(self.dir.join("kube-cache"))
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("kubectl is installed");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).await.expect("write");
            drop(pipe);
        }
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {} still running after 120 s", args.join(" ")))
            .expect("kubectl ran")
    }

    /// Deletes pod `name` of namespace `ml` at once, as one does a pod whose node is gone: no
    /// kubelet confirms a graceful deletion on either cluster.
    pub async fn delete_pod(&self, name: &str) {
        self.ok(&[
            "delete",
            "pod",
            name,
            "-n",
            "ml",
            "--grace-period=0",
            "--force",
        ])
        .await;
    }

    /// Runs kubectl, expects success, returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args, None).await;
        self.expect_ok(args, out)
    }

    /// `kubectl apply -f -` of a manifest, expects success.
    pub async fn apply(&self, yaml: &str) -> String {
        self.ok_with_input(&["apply", "-f", "-"], yaml).await
    }

    /// kubectl with `input` on stdin, expects success.
    pub async fn ok_with_input(&self, args: &[&str], input: &str) -> String {
        let out = self.kubectl(args, Some(input)).await;
        self.expect_ok(args, out)
    }

    pub fn expect_ok(&self, args: &[&str], out: Output) -> String {
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.operator_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub async fn jsonpath(&self, what: &str, path: &str) -> String {
        self.ok(&["get", what, "-n", "ml", "-o", &format!("jsonpath={path}")])
            .await
    }

    /// Polls the simulated AWS until `f` holds, within `limit`.
    pub async fn aws_until(
        &self,
        what: &str,
        limit: Duration,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let state = self.sim.snapshot();
            if f(&state) {
                return state;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what} in the simulated AWS: {state:#}\n{}",
                self.operator_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The permissions the operator's requests needed, as `(verb, resource[.group][/sub])`,
    /// and how many of its requests were refused 403: from the API server's audit (the
    /// sandbox's record, or kube-apiserver's audit log of the operator's ServiceAccount;
    /// kubectl's own requests left out). An apply that created its object needed `create` as
    /// well as `patch`, as kube-apiserver authorizes it.
    /// Every request the operator made (the sandbox: every one not from kubectl; a real
    /// control plane: its ServiceAccount's), in order.
    pub fn operator_requests(&self) -> Vec<AuditEntry> {
        match &self.server {
            Server::Sandbox { kube, .. } => kube
                .store()
                .audit
                .iter()
                .filter(|a| !a.user_agent.starts_with("kubectl"))
                .cloned()
                .collect(),
            Server::Real { cluster, .. } => cluster
                .audit_of(OPERATOR_USER)
                .iter()
                .filter_map(AuditEntry::from_apiserver)
                .collect(),
        }
    }

    /// The operator's requests since `mark` (an index into [`E2e::operator_requests`]) by
    /// `verb resource[/subresource]`, watches and the leader lease (timed) and Events (counted
    /// apart) left out. Every write must be about an object named in `names` (a create names
    /// its object in its body, not its path); reads are counted whatever they name.
    pub fn requests_about(&self, mark: usize, names: &[&str]) -> BTreeMap<String, usize> {
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for a in &self.operator_requests()[mark..] {
            let timed = a.verb == "watch" || a.resource == "leases.coordination.k8s.io";
            if timed || a.resource.starts_with("events") {
                continue;
            }
            let read = a.verb == "get" || a.verb == "list";
            let named =
                names.contains(&a.name.as_str()) || (a.verb == "create" && a.name.is_empty());
            assert!(read || named, "a request about another object: {a:?}");
            *by_kind.entry(a.request()).or_default() += 1;
        }
        by_kind
    }

    pub fn operator_needs(&self) -> (Permissions, usize) {
        // (verb, resource, subresource, code) of each request.
        let requests: Vec<(String, String, String, u64)> = self
            .operator_requests()
            .into_iter()
            .map(|a| (a.verb, a.resource, a.subresource, u64::from(a.code)))
            .collect();
        let mut needs = BTreeSet::new();
        let mut forbidden = 0;
        for (verb, resource, subresource, code) in requests {
            let resource = if subresource.is_empty() {
                resource
            } else {
                format!("{resource}/{subresource}")
            };
            if verb == "patch" && code == 201 {
                needs.insert(("create".to_string(), resource.clone()));
            }
            forbidden += usize::from(code == 403);
            needs.insert((verb, resource));
        }
        (needs, forbidden)
    }

    pub fn operator_log(&self) -> String {
        self.operators
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let text = std::fs::read_to_string(&op.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                format!(
                    "--- operator {} (last lines) ---\n{}",
                    i + 1,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The path of a collection: `/api/v1/pods`, `/apis/<group>/<version>/namespaces/<ns>/<plural>`.
fn collection(api: &str, plural: &str, ns: &str) -> String {
    match ns {
        "" => format!("/{api}/{plural}"),
        ns => format!("/{api}/namespaces/{ns}/{plural}"),
    }
}

/// A client of the kubeconfig at `path` (its current context).
async fn kube_client(path: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

/// A plain HTTP/1.0 GET on loopback: (status line, body).
pub async fn http_get(addr: &str, path: &str) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect within 5 s")
            .expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text))
        .await
        .expect("response within 5 s")
        .expect("read");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

impl Drop for E2e {
    /// Removes the scenario's directory (kubeconfig, operator logs) unless the test failed
    /// or `LUSTRE_E2E_KEEP` is set.
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("LUSTRE_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn count(state: &Value, key: &str) -> usize {
    state[key].as_array().map(Vec::len).unwrap_or(0)
}

pub fn quick() -> Timing {
    Timing {
        create_ms: 600,
        update_ms: 400,
        delete_ms: 300,
        association_create_ms: 200,
        association_delete_ms: 200,
        association_update_ms: 200,
        task_pending_ms: 150,
        task_run_ms: 800,
        task_cancel_ms: 150,
        backup_ms: 600,
        jitter: 0.1,
    }
}

/// A `LustreDataTask` of namespace `ml`.
pub fn data_task(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreDataTask\nmetadata:\n  name: {name}\n  namespace: ml\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    )
}

pub fn workspace(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspace\nmetadata:\n  name: {name}\n  namespace: ml\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    )
}

pub const TIMEOUT: &str = "--timeout=60s";

/// The example pod (`deploy/examples/pod-mounting-workspace.yaml`) naming `claim`, bound to a
/// node as the scheduler would bind it: pvc-protection counts only a scheduled pod as using
/// its claims (no kubelet runs it on either cluster; the sandbox marks it Running).
pub fn pod_using(claim: &str) -> String {
    let pod = std::fs::read_to_string(repo().join("deploy/examples/pod-mounting-workspace.yaml"))
        .expect("example pod");
    assert!(pod.contains("\nspec:\n") && pod.contains("claimName: train-data"));
    pod.replace("claimName: train-data", &format!("claimName: {claim}"))
        .replace("\nspec:\n", "\nspec:\n  nodeName: node-1\n")
}

/// A fixture of `tests/fixtures/<kind>`: its YAML documents (an update fixture's stored object
/// first, then the one judged) and its `# expect: path: fragment` lines.
pub struct Fixture {
    pub name: String,
    pub docs: Vec<String>,
    pub expect: Vec<(String, String)>,
}

/// Every fixture of `tests/fixtures/<kind>` (`valid` or `invalid`), by name.
pub fn fixtures(kind: &str) -> Vec<Fixture> {
    let dir = repo().join("tests/fixtures").join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("fixture");
            Fixture {
                name: p
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                docs: text
                    .split("\n---\n")
                    .filter(|d| d.contains("kind:"))
                    .map(str::to_string)
                    .collect(),
                expect: text
                    .lines()
                    .filter_map(|l| l.strip_prefix("# expect: "))
                    .filter_map(|l| l.split_once(": "))
                    .map(|(path, fragment)| (path.trim().to_string(), fragment.trim().to_string()))
                    .collect(),
            }
        })
        .collect()
}
