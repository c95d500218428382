//! A real Kubernetes control plane for the end-to-end suites: etcd, kube-apiserver and (for the
//! newest release) kube-controller-manager, compiled from the Kubernetes Go modules by
//! `scripts/control-plane` and started on loopback; the project's own kubectl and helm.
#![allow(dead_code)] // each suite uses part of it

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::support::repo;

/// One control plane, stopped (by PID, through `scripts/control-plane down`) when dropped.
pub struct RealCluster {
    pub dir: PathBuf,
    /// `v1.37.2`, as the apiserver's /version reports it.
    pub version: String,
    pub server: String,
    pub audit_log: PathBuf,
    pub ca: PathBuf,
}

fn control_plane() -> std::process::Command {
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(repo().join("scripts/control-plane"));
    cmd
}

/// Where `scripts/control-plane build` put the binaries of `which` (new, old, helm).
pub fn bin_dir(which: &str) -> PathBuf {
    let out = control_plane()
        .args(["bin", which])
        .output()
        .expect("scripts/control-plane runs");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The project's kubectl (the newest release's, built from Go modules).
/// Asked of `scripts/control-plane` once per test process, not once per kubectl call.
pub fn kubectl_path() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| bin_dir("new").join("kubectl")).clone()
}

pub fn helm_path() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| bin_dir("helm").join("helm")).clone()
}

impl RealCluster {
    /// `scripts/control-plane up` of `which` (new or old) in a fresh directory.
    pub fn up(which: &str) -> Self {
        for tool in [kubectl_path(), bin_dir(which).join("kube-apiserver")] {
            assert!(
                tool.exists(),
                "{} is missing: run scripts/control-plane build (scripts/test does)",
                tool.display()
            );
        }
        let dir = std::env::temp_dir().join(format!("lustre-real-{}", uuid::Uuid::new_v4()));
        let out = control_plane()
            .args(["up", &dir.to_string_lossy(), which])
            .output()
            .expect("scripts/control-plane runs");
        assert!(
            out.status.success(),
            "control plane {which} did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env: BTreeMap<String, String> = std::fs::read_to_string(dir.join("env"))
            .expect("env file")
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RealCluster {
            version: env["LUSTRE_K8S_VERSION"].clone(),
            server: env["LUSTRE_K8S_SERVER"].clone(),
            audit_log: PathBuf::from(&env["LUSTRE_K8S_AUDIT_LOG"]),
            ca: PathBuf::from(&env["LUSTRE_K8S_CA"]),
            dir,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// A kubeconfig that authenticates with `token` (a ServiceAccount's, from TokenRequest).
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.kubeconfig"));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster: {{server: \"{}\", certificate-authority: \"{}\"}}\nusers:\n- name: {name}\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: local\n  context: {{cluster: local, user: {name}}}\ncurrent-context: local\n",
            self.server,
            self.ca.display()
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// A kubeconfig of the chart's ServiceAccount (a TokenRequest token, valid an hour).
    pub async fn operator_kubeconfig(&self) -> PathBuf {
        let token = self
            .ok(&[
                "create",
                "token",
                RELEASE,
                "-n",
                OPERATOR_NS,
                "--duration=1h",
            ])
            .await;
        self.token_kubeconfig("lustre-operator", token.trim())
    }

    /// Runs the project's kubectl as the cluster admin.
    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(kubectl_path());
        cmd.args(args)
            .arg("--cache-dir")
            .arg(self.dir.join("kube-cache"))
            .env("KUBECONFIG", self.kubeconfig());
        run(cmd, stdin, "kubectl").await
    }

    /// kubectl, expecting success; stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        expect_ok("kubectl", args, self.kubectl(args, None).await)
    }

    /// kubectl with `input` on stdin, expecting success; stdout.
    pub async fn ok_with_input(&self, args: &[&str], input: &str) -> String {
        expect_ok("kubectl", args, self.kubectl(args, Some(input)).await)
    }

    /// `kubectl get ... -o json`, parsed.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all).await).expect("kubectl printed JSON")
    }

    /// Runs the project's helm (its own cache and config under the cluster's directory).
    pub async fn helm(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(helm_path());
        cmd.args(args)
            .current_dir(repo())
            .env("KUBECONFIG", self.kubeconfig())
            .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.join("helm/data"));
        run(cmd, None, "helm").await
    }

    pub async fn helm_ok(&self, args: &[&str]) -> String {
        expect_ok("helm", args, self.helm(args).await)
    }

    /// Audit events (one JSON object a line) of the requests made as `user`.
    pub fn audit_of(&self, user: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["user"]["username"] == user)
            .collect()
    }

    /// When `user` first did `verb` on `resource` (`persistentvolumeclaims`, or with its
    /// subresource: `persistentvolumeclaims/status`) `name` (or `namespace/name`) and
    /// succeeded: a create's request time (the object exists from then on for the asker),
    /// else when the API server answered.
    pub fn first(
        &self,
        user: &str,
        verb: &str,
        resource: &str,
        name: &str,
    ) -> Option<jiff::Timestamp> {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        let (namespace, name) = name.split_once('/').unwrap_or(("", name));
        let at = if verb == "create" {
            "requestReceivedTimestamp"
        } else {
            "stageTimestamp"
        };
        self.audit_of(user)
            .into_iter()
            .find(|a| {
                a["verb"] == verb
                    && a["objectRef"]["resource"] == resource
                    && (sub.is_empty() || a["objectRef"]["subresource"] == sub)
                    && a["objectRef"]["name"] == name
                    && (namespace.is_empty() || a["objectRef"]["namespace"] == namespace)
                    && a["responseStatus"]["code"]
                        .as_u64()
                        .is_some_and(|c| c < 300)
            })
            .and_then(|a| a[at].as_str()?.parse().ok())
    }

    /// Polls `f` until it holds, within `limit`; panics with `what` and the last value.
    pub async fn until<F, Fut, T>(&self, what: &str, limit: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let start = Instant::now();
        loop {
            match f().await {
                Ok(v) => return v,
                Err(last) if start.elapsed() > limit => {
                    panic!("{what}: not true within {limit:?}; last: {last}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

impl Drop for RealCluster {
    /// Stops the processes by PID; removes the directory unless the test failed or
    /// `LUSTRE_E2E_KEEP` is set (the logs and audit log are there).
    fn drop(&mut self) {
        let _ = control_plane()
            .args(["down", &self.dir.to_string_lossy(), "--now"])
            .output();
        if std::thread::panicking() || std::env::var_os("LUSTRE_E2E_KEEP").is_some() {
            eprintln!("control plane files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn run(mut cmd: Command, stdin: Option<&str>, what: &str) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what} starts: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).await.expect("write");
        drop(pipe);
    }
    tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} finished within 180 s"))
        .expect("ran")
}

fn expect_ok(what: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where `want` (a rendered manifest) differs from `live` (the object the server holds): every
/// field `want` sets must be in `live` with the same value; the server may add more (defaults,
/// status, metadata).
pub fn missing_from(live: &Value, want: &Value, path: &str) -> Vec<String> {
    match (live, want) {
        (Value::Object(l), Value::Object(w)) => w
            .iter()
            .flat_map(|(k, wv)| match l.get(k) {
                Some(lv) => missing_from(lv, wv, &format!("{path}.{k}")),
                None => vec![format!("{path}.{k}: missing")],
            })
            .collect(),
        (Value::Array(l), Value::Array(w)) if l.len() == w.len() => l
            .iter()
            .zip(w)
            .enumerate()
            .flat_map(|(i, (lv, wv))| missing_from(lv, wv, &format!("{path}[{i}]")))
            .collect(),
        (l, w) if l == w => vec![],
        // A number rendered as a string or the other way round is the same value.
        (l, w) if l.to_string().trim_matches('"') == w.to_string().trim_matches('"') => vec![],
        (l, w) => vec![format!("{path}: rendered {w}, live {l}")],
    }
}

/// The YAML documents of a multi-document manifest, as JSON (empty ones left out).
pub fn documents(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|d| Value::deserialize(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

/// The repository path of a file, as a string for command lines.
pub fn path_arg(rel: &str) -> String {
    repo().join(rel).to_string_lossy().into_owned()
}

/// The simulated AWS on loopback beside a real control plane; stops when dropped.
pub struct SimOnLoopback {
    pub sim: lustre_sandbox::aws::SimAws,
    pub url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn sim_aws() -> SimOnLoopback {
    sim_aws_with(crate::support::quick()).await
}

/// The simulated AWS with its operations taking `timing`.
pub async fn sim_aws_with(timing: crate::support::Timing) -> SimOnLoopback {
    let sim = lustre_sandbox::aws::SimAws::new(lustre_sandbox::aws::SimConfig {
        timing,
        ..Default::default()
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = sim
        .serve("127.0.0.1:0".parse().expect("addr"), async move {
            let _ = stopped.await;
        })
        .await
        .expect("simulated AWS");
    SimOnLoopback {
        sim,
        url: format!("http://{addr}"),
        _stop: stop,
    }
}

/// The chart's namespace, release name and ServiceAccount.
pub const OPERATOR_NS: &str = "lustre-system";
pub const RELEASE: &str = "lustre-operator";
pub const OPERATOR_USER: &str = "system:serviceaccount:lustre-system:lustre-operator";
/// kube-controller-manager's PersistentVolume binder.
pub const BINDER: &str = "system:serviceaccount:kube-system:persistent-volume-binder";

/// The operator with the args the installed Deployment gives it (its metrics address and poll
/// interval replaced for a test), authenticated as the chart's ServiceAccount with a
/// TokenRequest token, against `aws_url`. Killed when the child is dropped.
pub struct OperatorProcess {
    pub child: tokio::process::Child,
    pub log: PathBuf,
    /// Launched from the image: the operator is a grandchild of `child` (under buildah's
    /// chroot runtime), in `child`'s process group, which is killed on drop.
    group: bool,
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if let (true, Some(pid)) = (self.group, self.child.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
    }
}

/// What runs the operator: the binary the tests were built with, or the image's entry point
/// in a buildah working container (`scripts/image buildah run`, host network, the control
/// plane's directory mounted read-only for the kubeconfig and its CA), as its image's user.
pub enum Launch<'a> {
    Binary,
    Image {
        container: &'a str,
        entrypoint: &'a [String],
    },
}

impl OperatorProcess {
    pub async fn start(c: &RealCluster, aws_url: &str, n: usize) -> Self {
        Self::launch(c, aws_url, n, Launch::Binary).await
    }

    pub async fn launch(c: &RealCluster, aws_url: &str, n: usize, how: Launch<'_>) -> Self {
        let kubeconfig = c.operator_kubeconfig().await;
        let d = c
            .json(&["get", "deployment", RELEASE, "-n", OPERATOR_NS])
            .await;
        let args: Vec<String> = d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("container args")
            .iter()
            .filter_map(Value::as_str)
            .filter(|a| !a.starts_with("--metrics-addr") && !a.starts_with("--poll-interval"))
            .map(str::to_string)
            .chain([
                "--metrics-addr=127.0.0.1:0".into(),
                "--poll-interval-seconds=0.2".into(),
                "--aws-region=us-east-1".into(),
                format!("--aws-endpoint-url={aws_url}"),
            ])
            .collect();
        assert_eq!(args.first().map(String::as_str), Some("run"));
        let env = [
            ("KUBECONFIG", kubeconfig.to_string_lossy().into_owned()),
            ("POD_NAME", format!("lustre-operator-test-{n}")),
            ("POD_NAMESPACE", OPERATOR_NS.into()),
            ("AWS_ACCESS_KEY_ID", "AKIDSANDBOX".into()),
            ("AWS_SECRET_ACCESS_KEY", "sandbox".into()),
            ("NO_COLOR", "1".into()),
        ];
        let group = matches!(how, Launch::Image { .. });
        let mut cmd = match how {
            Launch::Binary => {
                let mut cmd = Command::new(crate::support::OPERATOR);
                cmd.args(&args).envs(env);
                cmd
            }
            Launch::Image {
                container,
                entrypoint,
            } => {
                let dir = c.dir.to_string_lossy();
                let mut cmd = Command::new("bash");
                cmd.arg(crate::support::repo().join("scripts/image"))
                    .args(["buildah", "run", "--network", "host"])
                    .args(["--volume", &format!("{dir}:{dir}:ro")]);
                for (k, v) in env {
                    cmd.args(["--env", &format!("{k}={v}")]);
                }
                cmd.args([container, "--"])
                    .args(entrypoint)
                    .args(&args)
                    .process_group(0);
                cmd
            }
        };
        let log = c.dir.join(format!("operator-{n}.log"));
        let file = std::fs::File::create(&log).expect("log");
        let child = cmd
            .stdout(Stdio::from(file.try_clone().expect("log")))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("start lustre-operator");
        OperatorProcess { child, log, group }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reaped.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `kubectl wait` with its own timeout; panics with the operator's log on failure.
pub async fn wait(c: &RealCluster, args: &[&str], operator: &OperatorProcess) {
    let mut all = vec!["wait"];
    all.extend(args);
    let out = c.kubectl(&all, None).await;
    assert!(
        out.status.success(),
        "kubectl {}: {}\n--- operator log ---\n{}",
        all.join(" "),
        String::from_utf8_lossy(&out.stderr),
        operator.log_text()
    );
}
