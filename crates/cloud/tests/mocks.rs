//! The AWS adapter against `aws-smithy-mocks`: error mapping from real wire bodies, request
//! shapes (token, tags, version), batching and pagination, duplicate rules, SDK retries.

use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::authorize_security_group_ingress::AuthorizeSecurityGroupIngressOutput;
use aws_sdk_ec2::operation::delete_security_group::DeleteSecurityGroupOutput;
use aws_sdk_fsx::operation::create_file_system::CreateFileSystemOutput;
use aws_sdk_fsx::operation::describe_data_repository_associations::DescribeDataRepositoryAssociationsOutput;
use aws_sdk_fsx::operation::describe_file_systems::DescribeFileSystemsOutput;
use aws_sdk_fsx::types as fsx;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use lustre_cloud::aws::AwsCloud;
use lustre_cloud::naming::{self, Owner};
use lustre_cloud::*;

const UID: &str = "0b6a3c1e-8f2d-4c55-9e1a-7d3b2a1f0e9c";

fn owner() -> Owner {
    Owner {
        namespace: "ml".into(),
        name: "train".into(),
        uid: UID.into(),
        class: "standard".into(),
    }
}

fn ec2_unused() -> aws_sdk_ec2::Client {
    mock_client!(aws_sdk_ec2, [])
}

fn fsx_unused() -> aws_sdk_fsx::Client {
    mock_client!(aws_sdk_fsx, [])
}

fn fsx_error(status: u16, code: &str) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(format!(
            r#"{{"__type":"{code}","Message":"details from AWS about {code}"}}"#
        )),
    );
    r.headers_mut().insert("x-amzn-requestid", "req-fsx-1");
    r.headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    r
}

fn ec2_error(status: u16, code: &str) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(format!(
            "<Response><Errors><Error><Code>{code}</Code><Message>details about {code}</Message></Error></Errors><RequestID>req-ec2-1</RequestID></Response>"
        )),
    );
    r.headers_mut().insert("x-amzn-requestid", "req-ec2-1");
    r
}

fn file_system(id: &str) -> fsx::FileSystem {
    fsx::FileSystem::builder()
        .file_system_id(id)
        .lifecycle(fsx::FileSystemLifecycle::Available)
        .storage_capacity(1200)
        .dns_name(format!("{id}.fsx.us-east-1.amazonaws.com"))
        .lustre_configuration(
            fsx::LustreFileSystemConfiguration::builder()
                .mount_name("abcdef12")
                .deployment_type(fsx::LustreDeploymentType::Scratch2)
                .build(),
        )
        .build()
}

#[tokio::test]
async fn fsx_errors_map_to_domain_kinds_with_code_and_request_id() {
    let cases = [
        (400, "FileSystemNotFound", ErrorKind::NotFound),
        (400, "BadRequest", ErrorKind::InvalidRequest),
        (400, "InvalidNetworkSettings", ErrorKind::InvalidRequest),
        (400, "IncompatibleParameterError", ErrorKind::Conflict),
        (400, "ServiceLimitExceeded", ErrorKind::LimitExceeded),
        (400, "AccessDeniedException", ErrorKind::AccessDenied),
        (400, "ThrottlingException", ErrorKind::Throttled),
        (500, "InternalServerError", ErrorKind::Transient),
        (503, "SomethingNew", ErrorKind::Transient),
        (400, "SomethingElseNew", ErrorKind::InvalidRequest),
    ];
    for (status, code, kind) in cases {
        let rule = mock!(aws_sdk_fsx::Client::describe_file_systems)
            .then_http_response(move || fsx_error(status, code));
        let fsx = mock_client!(aws_sdk_fsx, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(RetryConfig::disabled()));
        let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
        let err = cloud.describe_file_systems(&[]).await.expect_err(code);
        assert_eq!(err.kind, kind, "{code}");
        assert_eq!(err.code.as_deref(), Some(code));
        assert_eq!(err.operation, "DescribeFileSystems");
        assert!(err.message.contains("details from AWS"), "{err}");
        assert_eq!(err.request_id.as_deref(), Some("req-fsx-1"), "{code}");
    }
}

#[tokio::test]
async fn ec2_errors_map_to_domain_kinds() {
    let cases = [
        (400, "DependencyViolation", ErrorKind::DependencyViolation),
        (400, "InvalidGroup.NotFound", ErrorKind::NotFound),
        (400, "InvalidGroup.Duplicate", ErrorKind::Conflict),
        (503, "RequestLimitExceeded", ErrorKind::Throttled),
        (403, "UnauthorizedOperation", ErrorKind::AccessDenied),
        (500, "InternalError", ErrorKind::Transient),
    ];
    for (status, code, kind) in cases {
        let rule = mock!(aws_sdk_ec2::Client::delete_security_group)
            .then_http_response(move || ec2_error(status, code));
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(RetryConfig::disabled()));
        let cloud = AwsCloud::from_clients(fsx_unused(), ec2, None);
        let err = cloud.delete_security_group("sg-1").await.expect_err(code);
        assert_eq!(err.kind, kind, "{code}");
        assert_eq!(err.code.as_deref(), Some(code));
        assert_eq!(err.request_id.as_deref(), Some("req-ec2-1"), "{code}");
    }
}

#[tokio::test]
async fn create_file_system_sends_token_tags_version_and_one_subnet() {
    let tags = naming::owner_tags(
        &owner(),
        &[("team".into(), "ml".into())].into(),
        &Default::default(),
    );
    let expected_tags = tags.clone();
    let rule = mock!(aws_sdk_fsx::Client::create_file_system)
        .match_requests(move |req| {
            let sent: Tags = req
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().into(),
                        t.value().unwrap_or_default().into(),
                    )
                })
                .collect();
            let lustre = req.lustre_configuration();
            req.client_request_token() == Some(naming::file_system_token(UID).as_str())
                && req.subnet_ids() == ["subnet-1"]
                && req.security_group_ids() == ["sg-1"]
                && req.file_system_type_version() == Some("2.15")
                && req.storage_capacity() == Some(2400)
                && req.file_system_type() == Some(&fsx::FileSystemType::Lustre)
                && lustre.and_then(|l| l.deployment_type())
                    == Some(&fsx::LustreDeploymentType::Persistent2)
                && lustre.and_then(|l| l.per_unit_storage_throughput()) == Some(250)
                && lustre.and_then(|l| l.data_compression_type())
                    == Some(&fsx::DataCompressionType::Lz4)
                && lustre
                    .and_then(|l| l.metadata_configuration())
                    .is_some_and(|m| {
                        m.mode() == Some(&fsx::MetadataConfigurationMode::Automatic)
                            && m.iops().is_none()
                    })
                && sent == expected_tags
        })
        .then_output(|| {
            CreateFileSystemOutput::builder()
                .file_system(file_system("fs-0123456789abcdef0"))
                .build()
        });
    let fsx = mock_client!(aws_sdk_fsx, [&rule]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let fs = cloud
        .create_file_system(&FileSystemRequest {
            client_token: naming::file_system_token(UID),
            deployment_type: DeploymentType::Persistent2,
            storage_capacity_gib: 2400,
            per_unit_storage_throughput: Some(250),
            subnet_id: "subnet-1".into(),
            security_group_ids: vec!["sg-1".into()],
            kms_key_id: None,
            lz4_compression: true,
            automatic_backup_retention_days: None,
            daily_automatic_backup_start_time: None,
            copy_tags_to_backups: false,
            backup_id: None,
            weekly_maintenance_start_time: None,
            file_system_type_version: "2.15".into(),
            metadata: Some(MetadataConfiguration::Automatic),
            root_squash: None,
            log: None,
            efa: false,
            tiering: None,
            tags,
        })
        .await
        .expect("create");
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(fs.id, "fs-0123456789abcdef0");
    assert_eq!(fs.mount_name.as_deref(), Some("abcdef12"));
    assert_eq!(fs.lifecycle, Lifecycle::Available);
}

#[tokio::test]
async fn describe_file_systems_follows_every_page() {
    let pages = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .match_requests(|req| req.file_system_ids().is_empty())
        .sequence()
        .output(|| {
            DescribeFileSystemsOutput::builder()
                .file_systems(file_system("fs-00000001"))
                .file_systems(file_system("fs-00000002"))
                .next_token("page-2")
                .build()
        })
        .output(|| {
            DescribeFileSystemsOutput::builder()
                .file_systems(file_system("fs-00000003"))
                .next_token("page-3")
                .build()
        })
        .output(|| {
            DescribeFileSystemsOutput::builder()
                .file_systems(file_system("fs-00000004"))
                .build()
        })
        .build();
    let fsx = mock_client!(aws_sdk_fsx, [&pages]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let all = cloud.describe_file_systems(&[]).await.expect("describe");
    let ids: Vec<&str> = all.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["fs-00000001", "fs-00000002", "fs-00000003", "fs-00000004"]
    );
    assert_eq!(pages.num_calls(), 3);
}

#[tokio::test]
async fn a_few_ids_are_one_call_and_many_ids_list_the_region() {
    // 10 ids: exactly one call naming them.
    let by_id = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .match_requests(|req| req.file_system_ids().len() == 10)
        .then_compute_output(|req| {
            let mut out = DescribeFileSystemsOutput::builder();
            for id in req.file_system_ids() {
                out = out.file_systems(file_system(id));
            }
            out.build()
        });
    let fsx = mock_client!(aws_sdk_fsx, [&by_id]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let ids: Vec<String> = (0..10).map(|i| format!("fs-{i:08x}")).collect();
    assert_eq!(
        cloud
            .describe_file_systems(&ids)
            .await
            .expect("describe")
            .len(),
        10
    );
    assert_eq!(by_id.num_calls(), 1);

    // 120 ids: one listing of the region (not three calls of 50), filtered.
    let listing = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .match_requests(|req| req.file_system_ids().is_empty())
        .then_output(|| {
            let mut out = DescribeFileSystemsOutput::builder();
            for i in 0..200 {
                out = out.file_systems(file_system(&format!("fs-{i:08x}")));
            }
            out.build()
        });
    let fsx = mock_client!(aws_sdk_fsx, [&listing]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let ids: Vec<String> = (0..120).map(|i| format!("fs-{i:08x}")).collect();
    assert_eq!(
        cloud
            .describe_file_systems(&ids)
            .await
            .expect("describe")
            .len(),
        120
    );
    assert_eq!(listing.num_calls(), 1);
}

#[tokio::test]
async fn a_vanished_id_falls_back_to_listing() {
    let not_found = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .match_requests(|req| !req.file_system_ids().is_empty())
        .then_http_response(|| fsx_error(400, "FileSystemNotFound"));
    let listing = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .match_requests(|req| req.file_system_ids().is_empty())
        .then_output(|| {
            DescribeFileSystemsOutput::builder()
                .file_systems(file_system("fs-00000001"))
                .build()
        });
    let fsx = mock_client!(aws_sdk_fsx, RuleMode::MatchAny, [&not_found, &listing]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let found = cloud
        .describe_file_systems(&["fs-00000001".into(), "fs-0000dead".into()])
        .await
        .expect("describe");
    assert_eq!(found.len(), 1);
    // The one the listing lacks is described alone: FileSystemNotFound, gone.
    assert_eq!((not_found.num_calls(), listing.num_calls()), (2, 1));
}

#[tokio::test]
async fn one_the_listing_skipped_is_described_by_id_not_taken_for_gone() {
    // 60 ids: the region is listed, and its pages lack fs-00000007 (deleted neighbours moved
    // it across a page boundary) and list fs-00000001 twice.
    let listing = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .match_requests(|req| req.file_system_ids().is_empty())
        .sequence()
        .output(|| {
            let mut out = DescribeFileSystemsOutput::builder();
            for i in 0..7 {
                out = out.file_systems(file_system(&format!("fs-{i:08x}")));
            }
            out.next_token("page-2").build()
        })
        .output(|| {
            let mut out =
                DescribeFileSystemsOutput::builder().file_systems(file_system("fs-00000001"));
            for i in 8..60 {
                out = out.file_systems(file_system(&format!("fs-{i:08x}")));
            }
            out.build()
        })
        .build();
    let by_id = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .match_requests(|req| req.file_system_ids() == ["fs-00000007"])
        .then_output(|| {
            DescribeFileSystemsOutput::builder()
                .file_systems(file_system("fs-00000007"))
                .build()
        });
    let fsx = mock_client!(aws_sdk_fsx, RuleMode::MatchAny, [&listing, &by_id]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let ids: Vec<String> = (0..60).map(|i| format!("fs-{i:08x}")).collect();
    let mut found: Vec<String> = cloud
        .describe_file_systems(&ids)
        .await
        .expect("describe")
        .into_iter()
        .map(|f| f.id)
        .collect();
    found.sort();
    assert_eq!(found, ids, "each id once, the skipped one included");
    assert_eq!((listing.num_calls(), by_id.num_calls()), (2, 1));
}

#[tokio::test]
async fn associations_are_asked_twenty_file_systems_a_call() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let rule = mock!(aws_sdk_fsx::Client::describe_data_repository_associations)
        .then_compute_output(move |req| {
            let values = req.filters()[0].values().to_vec();
            record
                .lock()
                .expect("lock")
                .push((values.len(), req.max_results()));
            let mut out = DescribeDataRepositoryAssociationsOutput::builder();
            for fs in values {
                out = out.associations(
                    fsx::DataRepositoryAssociation::builder()
                        .association_id(format!("dra-{fs}"))
                        .file_system_id(fs)
                        .lifecycle(fsx::DataRepositoryLifecycle::Available)
                        .build(),
                );
            }
            out.build()
        });
    let fsx = mock_client!(aws_sdk_fsx, RuleMode::MatchAny, [&rule]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let ids: Vec<String> = (0..45).map(|i| format!("fs-{i:08x}")).collect();
    let found = cloud
        .describe_data_repository_associations(&ids)
        .await
        .expect("describe");
    assert_eq!(found.len(), 45);
    assert_eq!(
        *seen.lock().expect("lock"),
        [(20, Some(25)), (20, Some(25)), (5, Some(25))]
    );
}

#[tokio::test]
async fn duplicate_rules_count_as_authorized() {
    let batch = mock!(aws_sdk_ec2::Client::authorize_security_group_ingress)
        .match_requests(|req| req.ip_permissions().len() == 2)
        .then_http_response(|| ec2_error(400, "InvalidPermission.Duplicate"));
    let single = mock!(aws_sdk_ec2::Client::authorize_security_group_ingress)
        .match_requests(|req| req.ip_permissions().len() == 1)
        .sequence()
        .http_response(|| ec2_error(400, "InvalidPermission.Duplicate"))
        .output(|| {
            AuthorizeSecurityGroupIngressOutput::builder()
                .r#return(true)
                .build()
        })
        .repeatedly()
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&batch, &single]);
    let cloud = AwsCloud::from_clients(fsx_unused(), ec2, None);
    let rules = lustre_ingress("sg-self", &[Peer::Cidr("10.0.0.0/16".into())]);
    cloud
        .authorize_ingress("sg-self", &rules)
        .await
        .expect("duplicates are fine");
    assert_eq!(batch.num_calls(), 1);
    assert_eq!(single.num_calls(), rules.len());
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_within_its_attempts() {
    let retried = mock!(aws_sdk_ec2::Client::delete_security_group)
        .sequence()
        .http_response(|| ec2_error(503, "RequestLimitExceeded"))
        .times(2)
        .output(|| DeleteSecurityGroupOutput::builder().build())
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&retried], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(3)));
    let cloud = AwsCloud::from_clients(fsx_unused(), ec2, None);
    cloud
        .delete_security_group("sg-1")
        .await
        .expect("third attempt succeeds");
    assert_eq!(retried.num_calls(), 3);

    let exhausted = mock!(aws_sdk_ec2::Client::delete_security_group)
        .sequence()
        .http_response(|| ec2_error(503, "RequestLimitExceeded"))
        .repeatedly()
        .build();
    let ec2 = mock_client!(aws_sdk_ec2, RuleMode::Sequential, [&exhausted], |c| c
        .retry_config(RetryConfig::standard().with_max_attempts(2)));
    let cloud = AwsCloud::from_clients(fsx_unused(), ec2, None);
    let err = cloud
        .delete_security_group("sg-1")
        .await
        .expect_err("gives up");
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(exhausted.num_calls(), 2, "bounded by max attempts");
}

#[derive(Debug, Default)]
struct Calls(Mutex<Vec<(&'static str, &'static str, &'static str)>>);

impl CallObserver for Calls {
    fn observe(&self, service: &'static str, operation: &'static str, outcome: &'static str) {
        self.0
            .lock()
            .expect("lock")
            .push((service, operation, outcome));
    }
}

#[tokio::test]
async fn every_call_is_reported_to_the_observer() {
    let ok = mock!(aws_sdk_fsx::Client::describe_file_systems)
        .sequence()
        .output(|| DescribeFileSystemsOutput::builder().build())
        .http_response(|| fsx_error(400, "BadRequest"))
        .build();
    let fsx = mock_client!(aws_sdk_fsx, [&ok]);
    let calls = Arc::new(Calls::default());
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), Some(calls.clone()));
    cloud.describe_file_systems(&[]).await.expect("ok");
    cloud
        .describe_file_systems(&[])
        .await
        .expect_err("bad request");
    assert_eq!(
        *calls.0.lock().expect("lock"),
        [
            ("fsx", "DescribeFileSystems", "ok"),
            ("fsx", "DescribeFileSystems", "invalid_request")
        ]
    );
}

fn fsx_json(body: &str) -> HttpResponse {
    let mut r = HttpResponse::new(
        StatusCode::try_from(200).expect("status"),
        SdkBody::from(body.to_string()),
    );
    r.headers_mut().insert("x-amzn-requestid", "req-fsx-2");
    r.headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    r
}

#[tokio::test]
async fn task_errors_map_to_kinds_the_controller_acts_on() {
    let cases = [
        (
            "DataRepositoryTaskExecuting",
            ErrorKind::DependencyViolation,
        ),
        ("DataRepositoryTaskEnded", ErrorKind::Conflict),
        ("DataRepositoryTaskNotFound", ErrorKind::NotFound),
    ];
    for (code, kind) in cases {
        let rule = mock!(aws_sdk_fsx::Client::cancel_data_repository_task)
            .then_http_response(move || fsx_error(400, code));
        let fsx = mock_client!(aws_sdk_fsx, RuleMode::MatchAny, [&rule], |c| c
            .retry_config(RetryConfig::disabled()));
        let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
        let err = cloud
            .cancel_data_repository_task("task-0123456789abcdef0")
            .await
            .expect_err(code);
        assert_eq!((err.kind, err.code.as_deref()), (kind, Some(code)));
        assert_eq!(kind.is_retryable(), code == "DataRepositoryTaskExecuting");
    }
}

#[tokio::test]
async fn create_task_sends_type_token_paths_report_release_and_the_install_tag() {
    let rule = mock!(aws_sdk_fsx::Client::create_data_repository_task)
        .match_requests(|req| {
            let report = req.report();
            let release = req
                .release_configuration()
                .and_then(|r| r.duration_since_last_access());
            let tags: Tags = req
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().into(),
                        t.value().unwrap_or_default().into(),
                    )
                })
                .collect();
            req.r#type() == Some(&fsx::DataRepositoryTaskType::Eviction)
                && req.client_request_token() == Some("ldt-token")
                && req.file_system_id() == Some("fs-0123456789abcdef0")
                && req.paths() == ["datasets/old"]
                && report.and_then(|r| r.enabled()) == Some(true)
                && report.and_then(|r| r.path()) == Some("s3://ml-data/datasets/reports")
                && report.and_then(|r| r.format()) == Some(&fsx::ReportFormat::ReportCsv20191124)
                && report.and_then(|r| r.scope()) == Some(&fsx::ReportScope::FailedFilesOnly)
                && release.and_then(|d| d.value()) == Some(30)
                && release.and_then(|d| d.unit()) == Some(&fsx::Unit::Days)
                && tags
                    .get("workspaces.lustre.dev/cluster")
                    .map(String::as_str)
                    == Some("prod-a")
        })
        .then_http_response(|| {
            fsx_json(
                r#"{"DataRepositoryTask":{"TaskId":"task-0123456789abcdef01","Lifecycle":"PENDING",
                "Type":"RELEASE_DATA_FROM_FILESYSTEM","CreationTime":1796341029.5,
                "FileSystemId":"fs-0123456789abcdef0","Paths":["datasets/old"]}}"#,
            )
        });
    let disabled = mock!(aws_sdk_fsx::Client::create_data_repository_task)
        .match_requests(|req| {
            req.report().and_then(|r| r.enabled()) == Some(false)
                && req.report().and_then(|r| r.path()).is_none()
                && req.paths().is_empty()
                && req.release_configuration().is_none()
        })
        .then_http_response(|| {
            fsx_json(
                r#"{"DataRepositoryTask":{"TaskId":"task-0fedcba9876543210f","Lifecycle":"PENDING",
                "Type":"EXPORT_TO_REPOSITORY","CreationTime":1796341029}}"#,
            )
        });
    let fsx = mock_client!(aws_sdk_fsx, RuleMode::MatchAny, [&rule, &disabled]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None).with_cluster_id("prod-a");
    let release = cloud
        .create_data_repository_task(&DataTaskRequest {
            client_token: "ldt-token".into(),
            file_system_id: "fs-0123456789abcdef0".into(),
            task_type: TaskType::Release,
            paths: vec!["datasets/old".into()],
            release_older_than_days: Some(30),
            report_path: Some("s3://ml-data/datasets/reports".into()),
            tags: Default::default(),
        })
        .await
        .expect("release");
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(
        (release.task_type, release.lifecycle),
        (Some(TaskType::Release), TaskLifecycle::Pending)
    );
    let export = cloud
        .create_data_repository_task(&DataTaskRequest {
            client_token: "ldt-token-2".into(),
            file_system_id: "fs-0123456789abcdef0".into(),
            task_type: TaskType::Export,
            paths: vec![],
            release_older_than_days: None,
            report_path: None,
            tags: Default::default(),
        })
        .await
        .expect("export, no report");
    assert_eq!(disabled.num_calls(), 1);
    assert_eq!(export.task_type, Some(TaskType::Export));
}

/// A running task and a failed one as FSx sends them (epoch timestamps, counts, the report,
/// failure details), over two pages of a file-system filter.
#[tokio::test]
async fn tasks_are_read_from_the_wire_page_by_page() {
    let pages = mock!(aws_sdk_fsx::Client::describe_data_repository_tasks)
        .match_requests(|req| {
            req.filters().len() == 1
                && req.filters()[0].name() == Some(&fsx::DataRepositoryTaskFilterName::FileSystemId)
                && req.filters()[0].values() == ["fs-0123456789abcdef0"]
        })
        .sequence()
        .http_response(|| {
            fsx_json(
                r#"{"DataRepositoryTasks":[{"TaskId":"task-000000000000000001","Lifecycle":"EXECUTING",
                "Type":"EXPORT_TO_REPOSITORY","CreationTime":1796341000,"StartTime":1796341010.25,
                "FileSystemId":"fs-0123456789abcdef0","Paths":["datasets"],
                "Report":{"Enabled":true,"Path":"s3://ml-data/datasets/reports","Format":"REPORT_CSV_20191124","Scope":"FAILED_FILES_ONLY"},
                "Status":{"TotalCount":1000,"SucceededCount":400,"FailedCount":2,"LastUpdatedTime":1796341020}}],
                "NextToken":"page-2"}"#,
            )
        })
        .http_response(|| {
            fsx_json(
                r#"{"DataRepositoryTasks":[{"TaskId":"task-000000000000000002","Lifecycle":"FAILED",
                "Type":"IMPORT_METADATA_FROM_REPOSITORY","CreationTime":1796340000,"StartTime":1796340001,
                "EndTime":1796340100,"FileSystemId":"fs-0123456789abcdef0",
                "FailureDetails":{"Message":"Path s3://ml-data/missing is not valid"},
                "Report":{"Enabled":false},
                "Status":{"TotalCount":0,"SucceededCount":0,"FailedCount":0}}]}"#,
            )
        })
        .build();
    let fsx = mock_client!(aws_sdk_fsx, RuleMode::Sequential, [&pages]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let tasks = cloud
        .data_repository_tasks_of(&["fs-0123456789abcdef0".into()])
        .await
        .expect("tasks");
    assert_eq!(pages.num_calls(), 2);
    let [running, failed] = &tasks[..] else {
        panic!("two tasks: {tasks:?}")
    };
    assert_eq!(running.lifecycle, TaskLifecycle::Executing);
    assert_eq!(
        (running.total, running.succeeded, running.failed),
        (1000, 400, 2)
    );
    assert_eq!(
        running.report_path.as_deref(),
        Some("s3://ml-data/datasets/reports")
    );
    let started = running.started_at.expect("start time");
    let since_epoch = started
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch");
    assert_eq!(since_epoch.as_millis(), 1_796_341_010_250);
    assert!(running.ended_at.is_none());
    assert_eq!(failed.task_type, Some(TaskType::Import));
    assert!(failed.lifecycle.is_finished() && failed.report_path.is_none());
    assert_eq!(
        failed.failure_message.as_deref(),
        Some("Path s3://ml-data/missing is not valid")
    );
}

#[tokio::test]
async fn tasks_are_asked_fifty_ids_a_call_and_a_vanished_one_alone() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let batches = mock!(aws_sdk_fsx::Client::describe_data_repository_tasks)
        .match_requests(|req| !req.task_ids().contains(&"task-gone".to_string()))
        .then_compute_output(move |req| {
            record.lock().expect("lock").push(req.task_ids().len());
            let mut out = aws_sdk_fsx::operation::describe_data_repository_tasks::DescribeDataRepositoryTasksOutput::builder();
            for id in req.task_ids() {
                out = out.data_repository_tasks(
                    fsx::DataRepositoryTask::builder()
                        .task_id(id)
                        .lifecycle(fsx::DataRepositoryTaskLifecycle::Succeeded)
                        .r#type(fsx::DataRepositoryTaskType::Export)
                        .creation_time(aws_smithy_types::DateTime::from_secs(1_796_341_000))
                        .build(),
                );
            }
            out.build()
        });
    let gone = mock!(aws_sdk_fsx::Client::describe_data_repository_tasks)
        .match_requests(|req| req.task_ids().contains(&"task-gone".to_string()))
        .then_http_response(|| fsx_error(400, "DataRepositoryTaskNotFound"));
    let fsx = mock_client!(aws_sdk_fsx, RuleMode::MatchAny, [&gone, &batches], |c| c
        .retry_config(RetryConfig::disabled()));
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let mut ids: Vec<String> = (0..110).map(|i| format!("task-{i:018x}")).collect();
    ids.insert(105, "task-gone".into());
    let found = cloud
        .describe_data_repository_tasks(&ids)
        .await
        .expect("tasks");
    assert_eq!(found.len(), 110);
    // 50, 50, then the last 11 fail on the vanished id and are asked one by one (10 found).
    assert_eq!(
        *seen.lock().expect("lock"),
        [&[50, 50][..], &[1; 10]].concat()
    );
    assert_eq!(gone.num_calls(), 2);
}

#[tokio::test]
async fn an_association_update_sends_only_what_changes() {
    let rule = mock!(aws_sdk_fsx::Client::update_data_repository_association)
        .match_requests(|req| {
            let s3 = req.s3();
            req.association_id() == Some("dra-0123456789abcdef0")
                && s3.and_then(|s| s.auto_import_policy()).is_none()
                && s3
                    .and_then(|s| s.auto_export_policy())
                    .is_some_and(|p| p.events() == [fsx::EventType::New])
        })
        .then_http_response(|| {
            fsx_json(
                r#"{"Association":{"AssociationId":"dra-0123456789abcdef0","FileSystemId":"fs-0123456789abcdef0",
                "Lifecycle":"UPDATING","FileSystemPath":"/datasets","DataRepositoryPath":"s3://ml-data/datasets/",
                "S3":{"AutoImportPolicy":{"Events":["NEW","CHANGED"]},"AutoExportPolicy":{"Events":["NEW"]}}}}"#,
            )
        });
    let fsx = mock_client!(aws_sdk_fsx, [&rule]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let a = cloud
        .update_data_repository_association(
            "dra-0123456789abcdef0",
            &AssociationUpdate {
                auto_import: None,
                auto_export: Some(vec![S3Event::New]),
            },
        )
        .await
        .expect("update");
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(a.lifecycle, Lifecycle::Updating);
    assert_eq!(a.auto_export, [S3Event::New]);
    assert_eq!(a.auto_import.len(), 2);
}

#[tokio::test]
async fn a_settings_update_sends_metadata_root_squash_and_logging_and_reads_them_back() {
    let rule = mock!(aws_sdk_fsx::Client::update_file_system)
        .match_requests(|req| {
            let l = req.lustre_configuration();
            req.file_system_id() == Some("fs-0123456789abcdef0")
                && req.storage_capacity().is_none()
                && l.and_then(|l| l.per_unit_storage_throughput()).is_none()
                && l.and_then(|l| l.metadata_configuration()).is_some_and(|m| {
                    m.mode() == Some(&fsx::MetadataConfigurationMode::UserProvisioned)
                        && m.iops() == Some(24000)
                })
                && l.and_then(|l| l.root_squash_configuration()).is_some_and(|r| {
                    r.root_squash() == Some("65534:65534") && r.no_squash_nids() == ["10.0.1.6@tcp"]
                })
                && l.and_then(|l| l.log_configuration()).is_some_and(|g| {
                    g.level() == Some(&fsx::LustreAccessAuditLogLevel::WarnError)
                        && g.destination().is_none()
                })
        })
        // What FSx answers: the new values are the administrative action's target until it
        // completes; the completed metadata raise of an hour before is listed with its time.
        .then_http_response(|| {
            fsx_json(
                r#"{"FileSystem":{"FileSystemId":"fs-0123456789abcdef0","Lifecycle":"AVAILABLE",
                "StorageCapacity":2400,"FileSystemType":"LUSTRE",
                "LustreConfiguration":{"DeploymentType":"PERSISTENT_2","PerUnitStorageThroughput":250,
                  "MetadataConfiguration":{"Mode":"AUTOMATIC","Iops":3000},
                  "RootSquashConfiguration":{"RootSquash":"0:0"},
                  "LogConfiguration":{"Level":"DISABLED"}},
                "AdministrativeActions":[
                  {"AdministrativeActionType":"FILE_SYSTEM_UPDATE","Status":"IN_PROGRESS","RequestTime":1796344600,
                   "TargetFileSystemValues":{"LustreConfiguration":{"MetadataConfiguration":{"Mode":"USER_PROVISIONED","Iops":24000}}}},
                  {"AdministrativeActionType":"FILE_SYSTEM_UPDATE","Status":"COMPLETED","RequestTime":1796341000,
                   "TargetFileSystemValues":{"LustreConfiguration":{"MetadataConfiguration":{"Mode":"USER_PROVISIONED","Iops":12000}}}},
                  {"AdministrativeActionType":"FILE_SYSTEM_UPDATE","Status":"FAILED","RequestTime":1796344000,
                   "TargetFileSystemValues":{"LustreConfiguration":{"MetadataConfiguration":{"Mode":"USER_PROVISIONED","Iops":36000}}}},
                  {"AdministrativeActionType":"FILE_SYSTEM_UPDATE","Status":"COMPLETED","RequestTime":1796349999,
                   "TargetFileSystemValues":{"StorageCapacity":2400}}]}}"#,
            )
        });
    let fsx = mock_client!(aws_sdk_fsx, [&rule]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let fs = cloud
        .update_file_system(
            "fs-0123456789abcdef0",
            &FileSystemUpdate {
                metadata: Some(MetadataConfiguration::UserProvisioned(24000)),
                root_squash: Some(RootSquash {
                    uid_gid: "65534:65534".into(),
                    no_squash_nids: vec!["10.0.1.6@tcp".into()],
                }),
                log: Some(LogSettings {
                    level: LogLevel::WarnError,
                    destination: None,
                }),
                ..FileSystemUpdate::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(rule.num_calls(), 1);
    let s = &fs.settings;
    assert_eq!(s.metadata, Some(MetadataConfiguration::Automatic));
    assert_eq!(s.metadata_iops, Some(3000));
    // The latest metadata change that did not fail; the later capacity change is not one.
    assert_eq!(s.metadata_changed_at, Some(1796344600));
    assert_eq!(
        s.root_squash.as_ref().map(|r| r.uid_gid.as_str()),
        Some("0:0")
    );
    assert_eq!(s.log.as_ref().map(|l| l.level), Some(LogLevel::Disabled));
    assert!(fs.update_in_progress);
}

#[tokio::test]
async fn an_intelligent_tiering_efa_create_sends_no_capacity_and_reads_the_storage_back() {
    let rule = mock!(aws_sdk_fsx::Client::create_file_system)
        .match_requests(|req| {
            let l = req.lustre_configuration();
            req.storage_type() == Some(&fsx::StorageType::IntelligentTiering)
                && req.storage_capacity().is_none()
                && l.and_then(|l| l.throughput_capacity()) == Some(8000)
                && l.and_then(|l| l.per_unit_storage_throughput()).is_none()
                && l.and_then(|l| l.efa_enabled()) == Some(true)
                && l.and_then(|l| l.data_read_cache_configuration()).is_some_and(|c| {
                    c.sizing_mode()
                        == Some(&fsx::LustreReadCacheSizingMode::ProportionalToThroughputCapacity)
                        && c.size_gib().is_none()
                })
        })
        .then_http_response(|| {
            fsx_json(
                r#"{"FileSystem":{"FileSystemId":"fs-0123456789abcdef0","Lifecycle":"CREATING",
                "FileSystemType":"LUSTRE","StorageType":"INTELLIGENT_TIERING",
                "LustreConfiguration":{"DeploymentType":"PERSISTENT_2","ThroughputCapacity":8000,"EfaEnabled":true,
                  "MetadataConfiguration":{"Mode":"USER_PROVISIONED","Iops":6000},
                  "DataReadCacheConfiguration":{"SizingMode":"PROPORTIONAL_TO_THROUGHPUT_CAPACITY"}}}}"#,
            )
        });
    let fsx = mock_client!(aws_sdk_fsx, [&rule]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let fs = cloud
        .create_file_system(&FileSystemRequest {
            deployment_type: DeploymentType::Persistent2,
            metadata: Some(MetadataConfiguration::UserProvisioned(6000)),
            efa: true,
            tiering: Some(Tiering {
                throughput_capacity: 8000,
                read_cache: ReadCache {
                    sizing_mode: ReadCacheSizing::ProportionalToThroughputCapacity,
                    size_gib: None,
                },
            }),
            ..FileSystemRequest::scratch(naming::file_system_token(UID), "subnet-1", Tags::new())
        })
        .await
        .expect("create");
    assert_eq!(rule.num_calls(), 1);
    let s = &fs.settings;
    assert!(s.intelligent_tiering && s.efa);
    assert_eq!(s.throughput_capacity, Some(8000));
    assert_eq!(fs.storage_capacity_gib, 0);
}

#[tokio::test]
async fn a_restore_is_create_from_backup_with_the_backups_id_capacity_and_settings() {
    let rule = mock!(aws_sdk_fsx::Client::create_file_system_from_backup)
        .match_requests(|req| {
            let l = req.lustre_configuration();
            req.backup_id() == Some("backup-0123456789abcdef0")
                && req.client_request_token() == Some(naming::file_system_token(UID).as_str())
                && req.storage_capacity() == Some(2400)
                && req.subnet_ids() == ["subnet-1"]
                && l.and_then(|l| l.per_unit_storage_throughput()) == Some(250)
                && l.and_then(|l| l.daily_automatic_backup_start_time()) == Some("03:30")
                && l.and_then(|l| l.copy_tags_to_backups()) == Some(true)
        })
        .then_http_response(|| {
            fsx_json(
                r#"{"FileSystem":{"FileSystemId":"fs-0123456789abcdef0","Lifecycle":"CREATING",
                "FileSystemType":"LUSTRE","StorageCapacity":2400,
                "LustreConfiguration":{"DeploymentType":"PERSISTENT_2","PerUnitStorageThroughput":250}}}"#,
            )
        });
    let fsx = mock_client!(aws_sdk_fsx, [&rule]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let fs = cloud
        .create_file_system(&FileSystemRequest {
            deployment_type: DeploymentType::Persistent2,
            storage_capacity_gib: 2400,
            per_unit_storage_throughput: Some(250),
            daily_automatic_backup_start_time: Some("03:30".into()),
            copy_tags_to_backups: true,
            backup_id: Some("backup-0123456789abcdef0".into()),
            ..FileSystemRequest::scratch(naming::file_system_token(UID), "subnet-1", Tags::new())
        })
        .await
        .expect("restore");
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(fs.storage_capacity_gib, 2400);
}

#[tokio::test]
async fn backups_are_read_from_the_wire_with_the_file_systems_capacity() {
    let create = mock!(aws_sdk_fsx::Client::create_backup)
        .match_requests(|req| {
            req.client_request_token() == Some("lwb-1")
                && req.file_system_id() == Some("fs-0123456789abcdef0")
                && req.tags().iter().any(|t| {
                    t.key() == Some("workspaces.lustre.dev/backup-uid") && t.value() == Some("u-1")
                })
        })
        .then_http_response(|| {
            fsx_json(
                r#"{"Backup":{"BackupId":"backup-0123456789abcdef0","Lifecycle":"TRANSFERRING",
                "Type":"USER_INITIATED","ProgressPercent":60,"CreationTime":1764800000,
                "SizeInBytes":1048576,
                "Tags":[{"Key":"workspaces.lustre.dev/backup-uid","Value":"u-1"}],
                "FileSystem":{"FileSystemId":"fs-0123456789abcdef0","StorageCapacity":2400,
                  "LustreConfiguration":{"DeploymentType":"PERSISTENT_2"}}}}"#,
            )
        });
    let busy = mock!(aws_sdk_fsx::Client::create_backup)
        .then_http_response(|| fsx_error(400, "BackupInProgress"));
    let fsx = mock_client!(aws_sdk_fsx, RuleMode::Sequential, [&create, &busy]);
    let cloud = AwsCloud::from_clients(fsx, ec2_unused(), None);
    let request = BackupRequest {
        client_token: "lwb-1".into(),
        file_system_id: "fs-0123456789abcdef0".into(),
        tags: [(
            "workspaces.lustre.dev/backup-uid".to_string(),
            "u-1".to_string(),
        )]
        .into(),
    };
    let b = cloud.create_backup(&request).await.expect("backup");
    assert_eq!(b.lifecycle, BackupLifecycle::Transferring);
    assert_eq!(b.progress_percent, Some(60));
    assert_eq!(b.storage_capacity_gib, 2400);
    assert_eq!(b.deployment_type, DeploymentType::Persistent2);
    assert_eq!(b.size_bytes, Some(1_048_576));
    assert_eq!(b.file_system_id, "fs-0123456789abcdef0");
    assert!(b.created_at.is_some());
    let e = cloud.create_backup(&request).await.expect_err("busy");
    assert_eq!(e.kind, ErrorKind::DependencyViolation);
    assert_eq!(e.code.as_deref(), Some("BackupInProgress"));
}
