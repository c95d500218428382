//! The rules of a data task's spec on its own (what the CRD schema and its CEL rules check),
//! and the rules that need its workspace and class: paths under linked paths, no export into a
//! read-only S3 prefix, a workspace with a link at all.

use super::{Checker, PATTERNS, Violation, s3_under};
use crate::class::LustreWorkspaceClass;
use crate::data_task::{DataTaskType, LustreDataTask, LustreDataTaskSpec};
use crate::rules;
use crate::rules::patterns;
use crate::workspace::{DataRepository, LustreWorkspaceSpec};

impl LustreDataTask {
    /// Every violation of the API's own rules, comparing with `old` for the update rule.
    pub fn validate(&self, old: Option<&LustreDataTask>) -> Vec<Violation> {
        validate_data_task_spec(&self.spec, old.map(|o| &o.spec))
    }
}

/// The spec-level rules of [`LustreDataTask::validate`].
pub fn validate_data_task_spec(
    spec: &LustreDataTaskSpec,
    old: Option<&LustreDataTaskSpec>,
) -> Vec<Violation> {
    let p = &*PATTERNS;
    let mut c = Checker::default();
    c.length("spec.workspace", &spec.workspace, 1, 63);
    c.pattern(
        "spec.workspace",
        &spec.workspace,
        &p.dns_label,
        patterns::DNS_LABEL,
    );
    c.max_items("spec.paths", spec.paths.len(), 100);
    for (i, path) in spec.paths.iter().enumerate() {
        let field = format!("spec.paths[{i}]");
        c.length(&field, path, 1, 1024);
        c.pattern(&field, path, &p.fs_path, rules::FS_PATH_RE);
    }
    if let Some(release) = &spec.release {
        c.range(
            "spec.release.olderThanDays",
            release.older_than_days,
            Some(0),
            Some(3650),
        );
        if spec.task_type != DataTaskType::Release {
            c.push("spec.release", rules::TASK_RELEASE_ONLY_MSG);
        }
    }
    if old.is_some_and(|o| o != spec) {
        c.push("spec", rules::TASK_IMMUTABLE_MSG);
    }
    c.out
}

/// One of the workspace's links a task path falls under: the link, and the path inside it
/// relative to the link's `fileSystemPath` (empty for the link itself).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkedPath<'a> {
    /// The `dataRepositories` entry.
    pub link: &'a DataRepository,
    /// The path below the link's `fileSystemPath` (no leading `/`).
    pub rest: String,
}

impl LinkedPath<'_> {
    /// The path relative to the file system's root, as FSx takes export and release paths.
    pub fn relative(&self) -> String {
        let base = self.link.file_system_path.trim_matches('/');
        match (base.is_empty(), self.rest.is_empty()) {
            (true, _) => self.rest.clone(),
            (false, true) => base.to_string(),
            (false, false) => format!("{base}/{}", self.rest),
        }
    }

    /// The S3 path it corresponds to, as FSx takes import paths.
    pub fn s3(&self) -> String {
        format!("{}{}", self.link.s3_path, self.rest)
    }
}

/// Where each of a task's paths lies among the workspace's links (every link when the task
/// names no path), or the violations: a path outside every link, no link at all, an export
/// into a prefix the class made read-only.
pub fn task_paths<'a>(
    spec: &LustreDataTaskSpec,
    workspace: &'a LustreWorkspaceSpec,
    class: &LustreWorkspaceClass,
    namespace: &str,
) -> Result<Vec<LinkedPath<'a>>, Vec<Violation>> {
    let links = &workspace.data_repositories;
    if links.is_empty() {
        return Err(vec![Violation::new(
            "spec.workspace",
            format!(
                "workspace {} links no S3 data (spec.dataRepositories): a data task needs a linked repository",
                spec.workspace
            ),
        )]);
    }
    let mut found = Vec::new();
    let mut bad = Vec::new();
    if spec.paths.is_empty() {
        found.extend(links.iter().map(|link| LinkedPath {
            link,
            rest: String::new(),
        }));
    }
    for (i, path) in spec.paths.iter().enumerate() {
        match links.iter().find_map(|link| inside(path, link)) {
            Some(p) => found.push(p),
            None => bad.push(Violation::new(
                format!("spec.paths[{i}]"),
                format!(
                    "{path} is not at or under a linked fileSystemPath of workspace {} ({})",
                    spec.workspace,
                    links
                        .iter()
                        .map(|l| l.file_system_path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    if spec.task_type == DataTaskType::Export {
        for p in &found {
            if is_read_only(&p.link.s3_path, class, namespace) {
                bad.push(Violation::new(
                    "spec.type",
                    format!(
                        "{} is read-only in class {} (readOnlyDataRepositories): Export cannot write to {}",
                        p.link.file_system_path,
                        class.metadata.name.as_deref().unwrap_or_default(),
                        p.link.s3_path
                    ),
                ));
            }
        }
    }
    if bad.is_empty() { Ok(found) } else { Err(bad) }
}

/// The link `path` lies at or under, with the rest of the path.
fn inside<'a>(path: &str, link: &'a DataRepository) -> Option<LinkedPath<'a>> {
    let base = link.file_system_path.trim_end_matches('/');
    let rest = if base.is_empty() {
        path.trim_start_matches('/')
    } else if path == base {
        ""
    } else {
        path.strip_prefix(base)?.strip_prefix('/')?
    };
    Some(LinkedPath {
        link,
        rest: rest.to_string(),
    })
}

/// Whether the class lets workspaces of `namespace` only read this S3 path (read-only wins
/// over allowed, as for links).
pub fn is_read_only(s3_path: &str, class: &LustreWorkspaceClass, namespace: &str) -> bool {
    class
        .spec
        .read_only_data_repositories
        .iter()
        .any(|prefix| s3_under(s3_path, prefix, namespace))
}
