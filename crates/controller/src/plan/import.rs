//! The import when links are made (`importMetadataOnCreate`): once a marked link's
//! association is AVAILABLE, one FSx import task loads the listing of its S3 prefix, and
//! `Ready` waits for it. The operator runs the task itself rather than asking FSx for
//! `BatchImportMetaDataOnCreate`: its own task can be followed to its end and its failure
//! shown, where the association says neither. A link is imported once: status records it
//! (`dataRepositories[].imported`), and a status that lost it costs one look at the file
//! system's tasks, never a second import.

use std::ops::ControlFlow::{self, Break, Continue};

use lustre_api::constants::RETRY_IMPORT_ANNOTATION;
use lustre_api::{DataRepository, LustreWorkspace};
use lustre_cloud::naming;
use lustre_cloud::{DataTask, DataTaskRequest, Lifecycle, TaskLifecycle, TaskType};

use super::{Action, AwsView, Hook, Inputs, Wait};

/// Whether status records the link as imported.
pub fn imported(ws: &LustreWorkspace, name: &str) -> bool {
    ws.status.as_ref().is_some_and(|s| {
        s.data_repositories
            .iter()
            .any(|d| d.name == name && d.imported == Some(true))
    })
}

/// The links still to import: marked, linked (AVAILABLE), not imported yet.
pub fn pending<'a>(ws: &'a LustreWorkspace, aws: &AwsView<'_>) -> Vec<&'a DataRepository> {
    ws.spec
        .data_repositories
        .iter()
        .filter(|r| r.import_metadata_on_create == Some(true) && !imported(ws, &r.name))
        .filter(|r| {
            aws.association_for(r)
                .is_some_and(|a| a.lifecycle == Lifecycle::Available)
        })
        .collect()
}

/// The attempt covering these links (with the retry annotation's value).
pub fn attempt(ws: &LustreWorkspace, links: &[&DataRepository]) -> String {
    let paths: Vec<&str> = links.iter().map(|r| r.s3_path.as_str()).collect();
    let retry = ws
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RETRY_IMPORT_ANNOTATION));
    naming::import_attempt(&paths, retry.map(String::as_str))
}

/// The FSx request: the links' S3 prefixes, no report (a prefix may be read-only).
fn request(i: &Inputs, links: &[&DataRepository], fs: &str) -> DataTaskRequest {
    let ws = i.workspace;
    let uid = ws.metadata.uid.as_deref().unwrap_or_default();
    let attempt = attempt(ws, links);
    let tags = Hook::ImportOnCreate.tags(i, &attempt);
    DataTaskRequest {
        client_token: naming::import_token(uid, &attempt),
        file_system_id: fs.to_string(),
        task_type: TaskType::Import,
        paths: links.iter().map(|r| r.s3_path.clone()).collect(),
        release_older_than_days: None,
        report_path: None,
        tags,
    }
}

/// The step of the import: start it, wait for it, or stop on its failure.
pub(super) fn plan(i: &Inputs, fs: &str) -> ControlFlow<Action> {
    let links = pending(i.workspace, &i.aws);
    if links.is_empty() {
        return Continue(());
    }
    let view = i.aws.import;
    if let Some(words) = view.refused {
        return Break(Action::ImportFailed(format!(
            "FSx refused the import: {words}"
        )));
    }
    match view.task {
        None => Break(Action::StartImport(Box::new(request(i, &links, fs)))),
        Some(t) if t.lifecycle == TaskLifecycle::Succeeded => Continue(()),
        Some(t) if t.lifecycle.is_finished() => Break(Action::ImportFailed(outcome(t))),
        Some(_) => Break(Action::Wait(Wait::Importing)),
    }
}

/// One line on what the import did.
pub fn outcome(task: &DataTask) -> String {
    Hook::ImportOnCreate.outcome(task)
}

/// What a failed import says: what happened and how to go on.
pub fn failure(what: &str) -> String {
    format!(
        "{what}. The links stay; fix the cause, then set annotation {RETRY_IMPORT_ANNOTATION} to a new value to import again"
    )
}

/// Whether the link was imported by the task observed now.
pub fn imported_now(i: &Inputs, link: &DataRepository) -> bool {
    i.aws
        .import
        .task
        .is_some_and(|t| t.lifecycle == TaskLifecycle::Succeeded && t.paths.contains(&link.s3_path))
}
