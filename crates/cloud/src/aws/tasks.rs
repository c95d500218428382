//! FSx data repository tasks, and the conversion of their shapes.

use std::time::SystemTime;

use aws_sdk_fsx::types as fsx;

use super::errors::carried;
use super::fsx::{tags_from, tags_to};
use super::{AwsCloud, all_pages, in_chunks};
use crate::error::CloudResult;
use crate::tasks::*;

const SERVICE: &str = "fsx";
/// DescribeDataRepositoryTasks takes at most 50 task ids, and a filter at most 20 values.
const MAX_TASK_IDS: usize = 50;
const MAX_FILTER_VALUES: usize = 20;

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(*t).ok())
}

pub(crate) fn task_from(t: &fsx::DataRepositoryTask) -> DataTask {
    let status = t.status();
    let report = t.report().filter(|r| r.enabled().unwrap_or(false));
    DataTask {
        id: t.task_id().unwrap_or_default().to_string(),
        file_system_id: t.file_system_id().unwrap_or_default().to_string(),
        task_type: t.r#type().and_then(|k| TaskType::parse(k.as_str())),
        lifecycle: TaskLifecycle::parse(t.lifecycle().map(|l| l.as_str()).unwrap_or("")),
        paths: t.paths().to_vec(),
        total: status.and_then(|s| s.total_count()).unwrap_or(0),
        succeeded: status.and_then(|s| s.succeeded_count()).unwrap_or(0),
        failed: status.and_then(|s| s.failed_count()).unwrap_or(0),
        report_path: report.and_then(|r| r.path()).map(str::to_string),
        failure_message: t
            .failure_details()
            .and_then(|d| d.message())
            .map(str::to_string),
        created_at: time(t.creation_time()),
        started_at: time(t.start_time()),
        ended_at: time(t.end_time()),
        tags: tags_from(t.tags()),
    }
}

#[async_trait::async_trait]
impl crate::DataTasks for AwsCloud {
    async fn create_data_repository_task(&self, r: &DataTaskRequest) -> CloudResult<DataTask> {
        const OP: &str = "CreateDataRepositoryTask";
        // The report is required: disabled, or under a linked S3 path in the one format.
        let report = match &r.report_path {
            Some(path) => fsx::CompletionReport::builder()
                .enabled(true)
                .path(path)
                .format(fsx::ReportFormat::ReportCsv20191124)
                .scope(fsx::ReportScope::FailedFilesOnly),
            None => fsx::CompletionReport::builder().enabled(false),
        };
        let report = report.build();
        let release = r.release_older_than_days.map(|days| {
            fsx::ReleaseConfiguration::builder()
                .duration_since_last_access(
                    fsx::DurationSinceLastAccess::builder()
                        .unit(fsx::Unit::Days)
                        .value(days)
                        .build(),
                )
                .build()
        });
        let sent = self
            .fsx
            .create_data_repository_task()
            .client_request_token(&r.client_token)
            .file_system_id(&r.file_system_id)
            .r#type(fsx::DataRepositoryTaskType::from(r.task_type.as_str()))
            .set_paths((!r.paths.is_empty()).then(|| r.paths.clone()))
            .report(report)
            .set_release_configuration(release)
            .set_tags(Some(tags_to(&self.tagged(&r.tags))))
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            carried(OP, "task", out.data_repository_task(), task_from)
        })
    }

    /// 50 ids a call (a chunk holding an id that no longer exists is asked again id by id).
    async fn describe_data_repository_tasks(&self, ids: &[String]) -> CloudResult<Vec<DataTask>> {
        in_chunks(ids, MAX_TASK_IDS, |chunk| self.describe_tasks(chunk, None)).await
    }

    /// 20 file systems a call (a chunk holding a file system that no longer exists is asked
    /// again one file system at a time).
    async fn data_repository_tasks_of(
        &self,
        file_system_ids: &[String],
    ) -> CloudResult<Vec<DataTask>> {
        in_chunks(file_system_ids, MAX_FILTER_VALUES, |chunk| {
            self.describe_tasks(&[], Some(chunk))
        })
        .await
    }

    async fn cancel_data_repository_task(&self, id: &str) -> CloudResult<TaskLifecycle> {
        const OP: &str = "CancelDataRepositoryTask";
        let sent = self
            .fsx
            .cancel_data_repository_task()
            .task_id(id)
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            Ok(TaskLifecycle::parse(
                out.lifecycle().map(|l| l.as_str()).unwrap_or(""),
            ))
        })
    }
}

impl AwsCloud {
    /// One DescribeDataRepositoryTasks, by ids or by a file-system-id filter, page by page.
    async fn describe_tasks(
        &self,
        ids: &[String],
        file_systems: Option<&[String]>,
    ) -> CloudResult<Vec<DataTask>> {
        const OP: &str = "DescribeDataRepositoryTasks";
        let filter = file_systems.map(|values| {
            fsx::DataRepositoryTaskFilter::builder()
                .name(fsx::DataRepositoryTaskFilterName::FileSystemId)
                .set_values(Some(values.to_vec()))
                .build()
        });
        all_pages(|token| {
            let filter = filter.clone();
            async move {
                let sent = self
                    .fsx
                    .describe_data_repository_tasks()
                    .set_task_ids((!ids.is_empty()).then(|| ids.to_vec()))
                    .set_filters(filter.map(|f| vec![f]))
                    .set_next_token(token)
                    .send()
                    .await;
                let out = self.answer(SERVICE, OP, sent, Ok)?;
                let next = out.next_token().map(str::to_string);
                Ok((
                    out.data_repository_tasks().iter().map(task_from).collect(),
                    next,
                ))
            }
        })
        .await
    }
}
