//! An in-memory Kubernetes API server, good enough that real `kubectl` and kube-rs cannot tell
//! the difference for what this operator and its users do: discovery, OpenAPI v3 for
//! `kubectl explain`, CRDs served as new kinds (with printer columns as server-side tables),
//! CRUD with resource versions and conflicts, label / field selectors, watch with resume and
//! `410 Gone`, the status subresource, merge / JSON / strategic-merge patches and server-side
//! apply (single-writer approximation), finalizers, owner garbage collection, PVC protection,
//! pre-bound PV/PVC binding, CEL admission of custom resources, and an audit log
//! (`GET /_sandbox/audit`).

pub mod fields;
pub mod http;
pub mod protobuf;
pub mod registry;
pub mod select;
pub mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};

use store::Store;

/// What `GET /version` answers.
pub static SERVER_VERSION: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-lustre-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"
    })
});

/// The API server; cheap to clone.
#[derive(Clone, Debug)]
pub struct KubeSandbox {
    store: Arc<Mutex<Store>>,
    address: Arc<OnceLock<String>>,
}

impl Default for KubeSandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl KubeSandbox {
    pub fn new() -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::new())),
            address: Arc::new(OnceLock::new()),
        }
    }

    /// The store, for tests and the control endpoints.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn address(&self) -> String {
        self.address.get().cloned().unwrap_or_default()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/_sandbox/audit", get(audit))
            .route("/_sandbox/compact", post(compact))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(|| async { "ok" }))
            .fallback(http::handle)
            .with_state(self.clone())
    }

    /// Serves on `addr` (port 0 picks one); returns the bound address and the task.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
        let (bound, task) = crate::serve_router(self.router(), addr, shutdown).await?;
        let _ = self.address.set(bound.to_string());
        Ok((bound, task))
    }
}

/// A kubeconfig for `server` (plain HTTP, no credentials), as kubectl and kube-rs read it.
pub fn kubeconfig(server: &str, namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lustre-sandbox\n  cluster:\n    server: {server}\ncontexts:\n- name: lustre-sandbox\n  context:\n    cluster: lustre-sandbox\n    user: sandbox-user\n    namespace: {namespace}\ncurrent-context: lustre-sandbox\nusers:\n- name: sandbox-user\n  user: {{}}\n"
    )
}

/// Writes [`kubeconfig`] to `path`.
pub fn write_kubeconfig(path: &Path, server: &str) -> std::io::Result<()> {
    std::fs::write(path, kubeconfig(server, "default"))
}

/// The value at an API field path (`spec.dataRepositories[0].s3Path`), rendered as
/// kube-apiserver quotes invalid values.
pub fn value_at(obj: &Value, field: &str) -> String {
    let mut v = obj;
    for part in field.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !name.is_empty() {
            v = &v[name];
        }
        if let Some(i) = index {
            v = &v[i];
        }
    }
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Null => "null".into(),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

async fn audit(axum::extract::State(sb): axum::extract::State<KubeSandbox>) -> axum::Json<Value> {
    axum::Json(serde_json::to_value(&sb.store().audit).unwrap_or_default())
}

async fn compact(axum::extract::State(sb): axum::extract::State<KubeSandbox>) -> &'static str {
    sb.store().compact();
    "compacted"
}
