//! The image platform teams run (`scripts/image build`: the Dockerfile's runtime stage on a
//! local Debian 12 base, the release binary built with `cargo auditable`): what it holds, who
//! it runs as, and the example workspace taken to Ready on the real control plane by the
//! operator running inside it; the SBOM and the binary's embedded dependency list against
//! Cargo.lock.
//!
//! `scripts/test` builds the image first; `LUSTRE_IMAGE` names it (by default
//! `localhost/lustre-operator:<version>`), `LUSTRE_SBOM` its SBOM (by default beside the
//! image store, where `scripts/image build` writes it).

mod real_cluster;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use real_cluster::{Launch, OperatorProcess, RealCluster, path_arg, sim_aws, wait};
use serde_json::Value;
use support::repo;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const ENTRYPOINT: &str = "/usr/local/bin/lustre-operator";

fn image() -> String {
    std::env::var("LUSTRE_IMAGE").unwrap_or_else(|_| format!("localhost/lustre-operator:{VERSION}"))
}

fn cache() -> PathBuf {
    std::env::var_os("LUSTRE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/lustre-operator")
        })
}

/// buildah on the project's image store; stdout, or the failure's output when `ok` is false.
fn buildah(args: &[&str]) -> (bool, String) {
    buildah_out(args, false)
}

/// `buildah`, its standard error kept after a success too when `stderr`.
fn buildah_out(args: &[&str], stderr: bool) -> (bool, String) {
    let out = Command::new("bash")
        .arg(repo().join("scripts/image"))
        .arg("buildah")
        .args(args)
        .output()
        .expect("scripts/image buildah");
    let text = if out.status.success() && !stderr {
        out.stdout
    } else {
        [out.stdout, out.stderr].concat()
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&text).into_owned(),
    )
}

fn buildah_ok(args: &[&str]) -> String {
    let (ok, out) = buildah(args);
    assert!(ok, "buildah {}: {out}", args.join(" "));
    out
}

/// A working container of the image, removed when dropped; `root` is its file system.
struct Container {
    name: String,
    root: PathBuf,
}

impl Container {
    fn new(image: &str) -> Self {
        let name = buildah_ok(&["from", "--quiet", "--pull=never", image])
            .trim()
            .to_string();
        let root = PathBuf::from(buildah_ok(&["mount", &name]).trim());
        Container { name, root }
    }

    /// A command run inside, as the image's user; (succeeded, output).
    fn run(&self, command: &[&str]) -> (bool, String) {
        let mut args = vec!["run", "--network", "host", &self.name, "--"];
        args.extend(command);
        buildah(&args)
    }

    /// `run` with environment variables (`NAME=value`), its standard error kept.
    fn run_with(&self, env: &[&str], command: &[&str]) -> (bool, String) {
        let mut args = vec!["run", "--network", "host"];
        for e in env {
            args.extend(["--env", e]);
        }
        args.extend([self.name.as_str(), "--"]);
        args.extend(command);
        buildah_out(&args, true)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = buildah(&["rm", &self.name]);
    }
}

/// The runtime stage's instructions as the Dockerfile writes them (`USER`, `ENTRYPOINT`, ...).
fn runtime_stage() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let stage = text.split("\nFROM ").last().expect("stages");
    assert!(
        stage.contains(" AS runtime"),
        "the last stage is the runtime stage"
    );
    stage
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| ["USER", "ENTRYPOINT", "CMD", "EXPOSE"].contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The built image's configuration says what the Dockerfile's runtime stage says.
fn config_matches_the_dockerfile(config: &Value) {
    let stage = runtime_stage();
    assert_eq!(config["User"].as_str(), Some(stage["USER"].as_str()));
    for key in ["ENTRYPOINT", "CMD"] {
        let said: Value = serde_json::from_str(&stage[key]).expect("exec form");
        let field = if key == "CMD" { "Cmd" } else { "Entrypoint" };
        assert_eq!(config[field], said, "{key}");
    }
    let port = format!("{}/tcp", stage["EXPOSE"]);
    assert!(config["ExposedPorts"].get(&port).is_some(), "{config}");
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"].as_str(),
        Some(VERSION)
    );
    assert!(labels["org.opencontainers.image.source"].is_string());
}

/// A file of the OCI archive `scripts/image build --out` wrote, parsed.
fn archived(archive: &Path, member: &str) -> Value {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .expect("tar");
    assert!(out.status.success(), "{member} in {}", archive.display());
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The OCI archive holds this image (the same configuration) under its name; returns the
/// compressed size of its layers (what a registry stores and a node pulls).
fn archive_holds(config: &Value, image: &str) -> u64 {
    let archive = std::env::var_os("LUSTRE_OCI_ARCHIVE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("image/lustre-operator.oci.tar"));
    let index = archived(&archive, "index.json");
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"].as_str(),
        Some(image)
    );
    let blob = |digest: &Value| {
        let digest = digest.as_str().expect("digest").replace(':', "/");
        archived(&archive, &format!("blobs/{digest}"))
    };
    let manifest = blob(&entry["digest"]);
    assert_eq!(blob(&manifest["config"]["digest"])["config"], *config);
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["size"].as_u64())
        .sum()
}

/// No program in the image but the operator: no shell, no package manager, no coreutils.
fn programs(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                found.push(format!("/{dir}/{}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Cargo.lock's version of each package (the one version of those the tests name).
fn locked() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(repo().join("Cargo.lock")).expect("Cargo.lock");
    let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in text.split("[[package]]").skip(1) {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if let (Some(n), Some(v)) = (field("name"), field("version")) {
            versions.entry(n).or_default().push(v);
        }
    }
    versions
}

/// The SBOM's crates, (name, version), and the embedded dependency list's.
fn sbom_crates() -> Vec<(String, String)> {
    let path = std::env::var_os("LUSTRE_SBOM")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join(format!("image/lustre-operator-{VERSION}.cdx.json")));
    let sbom: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (scripts/image build writes it)", path.display())),
    )
    .expect("SBOM JSON");
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["metadata"]["component"]["name"], "lustre-operator");
    sbom["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().expect("name and version").to_string();
            (s("name"), s("version"))
        })
        .collect()
}

fn audit_crates(binary: &Path) -> Vec<(String, String)> {
    let out = Command::new("rust-audit-info")
        .arg(binary)
        .output()
        .expect("rust-audit-info (scripts/image installs it)");
    assert!(
        out.status.success(),
        "rust-audit-info: no dependency list in the binary: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("audit JSON");
    info["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().expect("name and version").to_string();
            (s("name"), s("version"))
        })
        .collect()
}

/// Both lists name the operator's key dependencies at Cargo.lock's versions, and the SBOM
/// lists exactly the crates compiled into the binary. Returns the SBOM's crate count.
fn supply_chain(binary: &Path) -> usize {
    let lock = locked();
    let sbom = sbom_crates();
    let audit = audit_crates(binary);
    for name in ["aws-sdk-fsx", "aws-sdk-ec2", "kube", "tokio"] {
        let version = &lock[name];
        assert_eq!(version.len(), 1, "one {name} in Cargo.lock");
        for (what, list) in [("SBOM", &sbom), ("embedded list", &audit)] {
            assert!(
                list.contains(&(name.to_string(), version[0].clone())),
                "the {what} names {name} {}",
                version[0]
            );
        }
    }
    for (name, version) in &sbom {
        assert!(
            lock.get(name).is_some_and(|v| v.contains(version)),
            "SBOM: {name} {version} is not in Cargo.lock"
        );
    }
    // The SBOM describes what ships: exactly the crates compiled into the binary (its own
    // package apart, the SBOM's subject).
    let shipped: BTreeSet<_> = audit
        .into_iter()
        .filter(|(n, _)| n != "lustre-operator")
        .collect();
    let listed: BTreeSet<_> = sbom.iter().cloned().collect();
    assert_eq!(listed.len(), sbom.len(), "each crate listed once");
    let only_binary: Vec<_> = shipped.difference(&listed).collect();
    let only_sbom: Vec<_> = listed.difference(&shipped).collect();
    assert!(
        only_binary.is_empty() && only_sbom.is_empty(),
        "in the binary only: {only_binary:?}; in the SBOM only: {only_sbom:?}"
    );
    sbom.len()
}

/// The process of `parent`'s tree whose command line starts with `program`.
fn descendant(parent: u32, program: &str) -> Option<u32> {
    let ppid = |pid: u32| -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()
    };
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        if !cmdline.starts_with(program.as_bytes()) {
            return None;
        }
        let mut p = pid;
        for _ in 0..8 {
            p = ppid(p)?;
            if p == parent {
                return Some(pid);
            }
        }
        None
    })
}

fn uid_of(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("Uid")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The operator from inside the image, as the chart's ServiceAccount on the real control
/// plane, takes the example scratch workspace to Ready; its uid is read from /proc while it
/// runs. Returns that uid.
async fn example_ready_from_the_image(container: &Container, entrypoint: &[String]) -> String {
    let c = tokio::task::spawn_blocking(|| RealCluster::up("new"))
        .await
        .expect("control plane");
    c.ok(&[
        "apply",
        "--server-side",
        "-k",
        &path_arg(&repo().join("deploy").to_string_lossy()),
    ])
    .await;
    let aws = sim_aws().await;
    let how = Launch::Image {
        container: &container.name,
        entrypoint,
    };
    let mut operator = OperatorProcess::launch(&c, &aws.url, 1, how).await;
    let examples = repo().join("deploy/examples");
    let files = [
        "namespace-ml.yaml",
        "class-standard.yaml",
        "workspace-scratch.yaml",
    ];
    let mut apply = vec!["apply".to_string()];
    for f in files {
        apply.extend(["-f".into(), path_arg(&examples.join(f).to_string_lossy())]);
    }
    c.ok(&apply.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    let ready = [
        "--for=condition=Ready",
        "lws/scratch",
        "-n",
        "ml",
        "--timeout=120s",
    ];
    wait(&c, &ready, &operator).await;
    let parent = operator.child.id().expect("buildah run's pid");
    let pid = descendant(parent, ENTRYPOINT).expect("the operator runs under buildah run");
    let uid = uid_of(pid);
    // Its executable is the image's file (buildah runs it in a bind mount of the container's
    // root, so the path differs; the inode does not).
    let running = std::fs::metadata(format!("/proc/{pid}/exe")).expect("its executable");
    let shipped = std::fs::metadata(container.root.join(&ENTRYPOINT[1..])).expect("the image's");
    assert_eq!(
        (running.dev(), running.ino()),
        (shipped.dev(), shipped.ino()),
        "the operator runs the image's binary"
    );
    // A SIGTERM to the operator ends it, and buildah run with it.
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(30), operator.child.wait())
        .await
        .expect("buildah run ended within 30 s of the operator's SIGTERM")
        .expect("wait");
    assert!(
        status.success(),
        "{status}\n--- operator log ---\n{}",
        operator.log_text()
    );
    uid
}

#[tokio::test]
async fn the_image_runs_the_example_as_65532_without_a_shell() {
    let image = image();
    let inspect: Value = serde_json::from_str(&buildah_ok(&["inspect", "--type", "image", &image]))
        .expect("inspect JSON");
    let config = &inspect["OCIv1"]["config"];
    config_matches_the_dockerfile(config);
    let entrypoint: Vec<String> =
        serde_json::from_value(config["Entrypoint"].clone()).expect("entry point");

    let compressed_mb = archive_holds(config, &image) as f64 / 1e6;

    let container = Container::new(&image);
    let size_mb = du(&container.root) as f64 / 1e6;
    assert!(size_mb < 60.0, "the image is {size_mb:.1} MB (target < 60)");
    assert_eq!(
        programs(&container.root),
        [ENTRYPOINT],
        "programs in the image"
    );
    let bundle = std::fs::read_to_string(container.root.join("etc/ssl/certs/ca-certificates.crt"))
        .expect("the CA bundle");
    let certificates = bundle.matches("BEGIN CERTIFICATE").count();
    assert!(certificates > 100, "{certificates} CA certificates");
    let (shell, out) = container.run(&["/bin/sh", "-c", "true"]);
    assert!(!shell, "a shell ran in the image: {out}");

    // ldd without a shell: the dynamic loader lists what the binary needs, resolved against
    // the image's own files.
    let (ok, libs) = container.run(&["/lib64/ld-linux-x86-64.so.2", "--list", ENTRYPOINT]);
    assert!(ok && !libs.contains("not found"), "{libs}");
    assert!(libs.contains("libc.so.6 =>"), "{libs}");

    let (ok, version) = container.run(&[ENTRYPOINT, "--version"]);
    assert!(ok && version.contains(VERSION), "--version: {version}");
    // The allocator's settings are compiled in (.cargo/config.toml), not left to the
    // environment of whoever runs the image.
    let (ok, conf) = container.run_with(
        &["_RJEM_MALLOC_CONF=confirm_conf:true"],
        &[ENTRYPOINT, "--version"],
    );
    assert!(
        ok && conf.contains("--with-malloc-conf): \"narenas:1,dirty_decay_ms:0,muzzy_decay_ms:0\""),
        "jemalloc's compiled-in settings: {conf}"
    );

    let crates = supply_chain(&container.root.join(&ENTRYPOINT[1..]));
    let uid = example_ready_from_the_image(&container, &entrypoint).await;
    assert_eq!(uid, "65532 65532 65532 65532", "the operator's uids");
    let libraries = libs.lines().filter(|l| l.contains("=>")).count();
    println!(
        "image: built ({size_mb:.1} MB of files, {compressed_mb:.1} MB compressed), runs as 65532, no shell, libraries present ({libraries}), \
         --version ok, example Ready from inside the image; SBOM lists {crates} crates; \
         auditable data present (the same {crates} crates)"
    );
}

/// Bytes of the regular files under `root` (the image's unpacked size).
fn du(root: &Path) -> u64 {
    let mut total = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                dirs.push(e.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}
