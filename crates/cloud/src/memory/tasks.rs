//! The data repository tasks of the in-memory account: one running task per file system, a
//! linked repository required, cancel only while running. A task covers 100 files per path
//! (or per linked path); [`MemoryCloud::advance`] finishes it.

use async_trait::async_trait;

use super::api::not_found;
use super::{MemoryCloud, aws_error, replayed};
use crate::DataTasks;
use crate::error::CloudResult;
use crate::tasks::*;
use crate::types::Lifecycle;

#[async_trait]
impl DataTasks for MemoryCloud {
    async fn create_data_repository_task(&self, r: &DataTaskRequest) -> CloudResult<DataTask> {
        let op = "CreateDataRepositoryTask";
        let mut a = self.gate(op).await?;
        if let Some(id) = replayed(&a.task_tokens, &r.client_token, r, op)?
            && let Some(t) = a.tasks.get(&id)
        {
            return Ok(t.clone());
        }
        let fs_id = &r.file_system_id;
        if !a.file_systems.contains_key(fs_id) {
            return Err(not_found(op, "FileSystemNotFound", fs_id));
        }
        let links = a
            .associations
            .values()
            .filter(|d| d.file_system_id == *fs_id && d.lifecycle != Lifecycle::Deleting)
            .count();
        if links == 0 {
            let message = format!("{fs_id} has no linked data repository");
            return Err(aws_error(op, "BadRequest", message));
        }
        if let Some(t) = a.tasks.values().find(|t| {
            t.file_system_id == *fs_id
                && matches!(
                    t.lifecycle,
                    TaskLifecycle::Pending | TaskLifecycle::Executing
                )
        }) {
            let message = format!("task {} is running on {fs_id}", t.id);
            return Err(aws_error(op, "DataRepositoryTaskExecuting", message));
        }
        let id = a.id("task");
        let covered = if r.paths.is_empty() {
            links
        } else {
            r.paths.len()
        };
        let task = DataTask {
            id: id.clone(),
            file_system_id: fs_id.clone(),
            task_type: Some(r.task_type),
            lifecycle: TaskLifecycle::Pending,
            paths: r.paths.clone(),
            total: 100 * covered as i64,
            succeeded: 0,
            failed: 0,
            report_path: r.report_path.clone(),
            failure_message: None,
            created_at: Some(std::time::SystemTime::now()),
            started_at: None,
            ended_at: None,
            tags: r.tags.clone(),
        };
        a.task_tokens
            .insert(r.client_token.clone(), (r.clone(), id.clone()));
        a.tasks.insert(id, task.clone());
        Ok(task)
    }

    async fn describe_data_repository_tasks(&self, ids: &[String]) -> CloudResult<Vec<DataTask>> {
        let a = self.gate("DescribeDataRepositoryTasks").await?;
        Ok(ids
            .iter()
            .filter_map(|id| a.tasks.get(id).cloned())
            .collect())
    }

    async fn data_repository_tasks_of(
        &self,
        file_system_ids: &[String],
    ) -> CloudResult<Vec<DataTask>> {
        let a = self.gate("DescribeDataRepositoryTasks").await?;
        Ok(a.tasks
            .values()
            .filter(|t| file_system_ids.contains(&t.file_system_id))
            .cloned()
            .collect())
    }

    async fn cancel_data_repository_task(&self, id: &str) -> CloudResult<TaskLifecycle> {
        let op = "CancelDataRepositoryTask";
        let mut a = self.gate(op).await?;
        let t = a
            .tasks
            .get_mut(id)
            .ok_or_else(|| not_found(op, "DataRepositoryTaskNotFound", id))?;
        if !matches!(
            t.lifecycle,
            TaskLifecycle::Pending | TaskLifecycle::Executing
        ) {
            let message = format!("{id} is {}", t.lifecycle.as_str());
            return Err(aws_error(op, "DataRepositoryTaskEnded", message));
        }
        t.lifecycle = TaskLifecycle::Canceling;
        Ok(TaskLifecycle::Canceling)
    }
}
