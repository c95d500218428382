//! The end-to-end harness shared by the user-story and crash suites: the sandbox (Kubernetes
//! API + simulated AWS) in the test process, the `lustre-operator` binary as child processes,
//! and real `kubectl`.
#![allow(dead_code)] // each suite uses part of it

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use lustre_sandbox::World;
pub use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};
use lustre_sandbox::kube::KubeSandbox;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// `(verb, resource[.group][/subresource])` pairs.
/// The install id (`--cluster-id`) the suites' operators run with.
pub const CLUSTER_ID: &str = "e2e-cluster";

pub type Permissions = BTreeSet<(String, String)>;

pub const OPERATOR: &str = env!("CARGO_BIN_EXE_lustre-operator");

/// The repository root, read at run time (a test binary in a shared target directory may
/// outlive the clone it was built from).
pub fn repo() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    Path::new(&manifest).join("../..")
}

pub struct Operator {
    pub child: Option<Child>,
    pub log: PathBuf,
}

pub struct E2e {
    pub dir: PathBuf,
    pub sim: SimAws,
    /// The API server's audit answers which calls the operator made.
    pub kube: KubeSandbox,
    pub aws_url: String,
    pub operators: Vec<Operator>,
    _world: World,
}

impl E2e {
    /// Sandbox + simulated AWS on free ports, the CRDs, the example namespace and class
    /// applied with kubectl, and the operator running.
    pub async fn start(timing: Timing) -> Self {
        let dir = std::env::temp_dir().join(format!("lustre-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let world = World::start(SimConfig {
            timing,
            ..SimConfig::default()
        })
        .await
        .expect("sandbox API server and simulated AWS");
        lustre_sandbox::kube::write_kubeconfig(&dir.join("kubeconfig"), &world.kube_url)
            .expect("kubeconfig");
        let mut e = E2e {
            dir,
            sim: world.sim.clone(),
            kube: world.kube.clone(),
            aws_url: world.aws_url.clone(),
            operators: Vec::new(),
            _world: world,
        };
        let examples = repo().join("deploy/examples");
        e.ok(&["apply", "-f", &repo().join("deploy/crds").to_string_lossy()])
            .await;
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

    /// An object straight from the sandbox's store: `(group, plural, namespace, name)`.
    pub fn object(&self, group: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let store = self.kube.store();
        let rt = store.find_type(group, plural)?.clone();
        store.get(&rt, ns, name).ok()
    }

    /// How many objects of a kind exist (all namespaces).
    pub fn objects(&self, group: &str, plural: &str) -> usize {
        self.kube.store().count_kind(group, plural, "", |_| true)
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
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
            .env("AWS_SECRET_ACCESS_KEY", "sandbox")
            .env("RUST_LOG", "info")
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
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
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
                    "default",
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
            .expect("kubectl finished within 120 s")
            .expect("kubectl ran")
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
    /// from the sandbox's audit (kubectl's own requests left out). An apply that created
    /// its object needed `create` as well as `patch`, as kube-apiserver authorizes it.
    pub fn operator_needs(&self) -> Permissions {
        let mut needs = BTreeSet::new();
        for a in self
            .kube
            .store()
            .audit
            .iter()
            .filter(|a| !a.user_agent.starts_with("kubectl"))
        {
            let resource = if a.subresource.is_empty() {
                a.resource.clone()
            } else {
                format!("{}/{}", a.resource, a.subresource)
            };
            if a.verb == "patch" && a.code == 201 {
                needs.insert(("create".to_string(), resource.clone()));
            }
            needs.insert((a.verb.clone(), resource));
        }
        needs
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
        jitter: 0.1,
    }
}

pub fn workspace(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: workspaces.lustre.dev/v1alpha1\nkind: LustreWorkspace\nmetadata:\n  name: {name}\n  namespace: ml\nspec:\n{}",
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    )
}

pub const TIMEOUT: &str = "--timeout=60s";

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
