//! Conformance: the same scenarios through the real adapter against moto's server mode and
//! against the simulated AWS, where moto models the behaviour (EC2 security groups; FSx
//! create / describe / delete wire shapes). Each scenario writes a transcript with ids
//! replaced by placeholders; the two transcripts must be equal.
//!
//! moto is found at `$LUSTRE_MOTO_SERVER`, in the project's virtualenv, or on `PATH`;
//! `scripts/test` installs it and sets `LUSTRE_REQUIRE_MOTO=1` so that a missing moto fails
//! instead of skipping.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lustre_cloud::aws::{AwsCloud, AwsSettings};
use lustre_cloud::naming::{self, Owner};
use lustre_cloud::*;
use lustre_sandbox::aws::state::Timing;
use lustre_sandbox::aws::{SimAws, SimConfig};

/// moto's server, killed (by PID) when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("LUSTRE_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = std::env::var("LUSTRE_VENV")
        .unwrap_or_else(|_| format!("{home}/.cache/lustre-operator/venv"));
    let candidate = PathBuf::from(venv).join("bin/moto_server");
    if candidate.exists() {
        return Some(candidate);
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join("moto_server"))
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_moto() -> Option<Moto> {
    let Some(bin) = moto_binary() else {
        assert!(
            std::env::var("LUSTRE_REQUIRE_MOTO").is_err(),
            "moto_server not found: scripts/test installs it into the project's virtualenv"
        );
        eprintln!("SKIPPED: moto_server not installed (run scripts/test to install it)");
        return None;
    };
    let port = free_port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let started = Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(moto)
}

async fn start_sim() -> (SimAws, String, tokio::sync::oneshot::Sender<()>) {
    let sim = SimAws::new(SimConfig {
        timing: Timing {
            create_ms: 100,
            update_ms: 100,
            delete_ms: 100,
            association_create_ms: 50,
            association_delete_ms: 50,
            jitter: 0.0,
            ..Timing::default()
        },
        ..SimConfig::default()
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, _) = sim
        .serve("127.0.0.1:0".parse().expect("addr"), async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    (sim, format!("http://{addr}"), tx)
}

async fn adapter(url: &str) -> AwsCloud {
    AwsCloud::new(
        &AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(url.into()),
            max_attempts: 2,
            static_credentials: Some(("testing".into(), "testing".into())),
            ..AwsSettings::default()
        },
        None,
    )
    .await
}

/// A subnet and a node security group in the account under test.
struct Network {
    subnet: String,
    nodes_sg: String,
}

/// moto starts empty: make a VPC, a subnet and a node group with the raw SDK.
async fn moto_network(url: &str) -> Network {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("vpc");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc_id)
        .cidr_block("10.0.0.0/20")
        .send()
        .await
        .expect("subnet");
    let nodes = ec2
        .create_security_group()
        .group_name("eks-nodes")
        .description("EKS node group")
        .vpc_id(&vpc_id)
        .send()
        .await
        .expect("nodes sg");
    Network {
        subnet: subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .expect("subnet id")
            .to_string(),
        nodes_sg: nodes.group_id().expect("group id").to_string(),
    }
}

fn sim_network() -> Network {
    Network {
        subnet: "subnet-0123456789abcdef0".into(),
        nodes_sg: "sg-0123456789abcdef0".into(),
    }
}

/// Replaces resource ids with stable placeholders in order of appearance.
#[derive(Default)]
struct Ids(BTreeMap<String, String>);

impl Ids {
    fn name(&mut self, id: &str) -> String {
        let n = self.0.len() + 1;
        let kind = id.split('-').next().unwrap_or("id").to_string();
        self.0
            .entry(id.to_string())
            .or_insert_with(|| format!("<{kind}#{n}>"))
            .clone()
    }
}

fn outcome<T>(r: &CloudResult<T>, ok: impl FnOnce(&T) -> String) -> String {
    match r {
        Ok(v) => format!("ok {}", ok(v)),
        Err(e) => format!("err {} {}", e.category(), e.code.as_deref().unwrap_or("-")),
    }
}

fn owner() -> Owner {
    Owner {
        namespace: "ml".into(),
        name: "conformance".into(),
        uid: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
        class: "standard".into(),
    }
}

async fn ec2_transcript(cloud: &AwsCloud, net: &Network) -> Vec<String> {
    let mut ids = Ids::default();
    ids.name(&net.nodes_sg);
    let o = owner();
    let tags = naming::owner_tags(&o, &Default::default(), &Default::default());
    let mut t = Vec::new();
    let subnet = cloud.subnet(&net.subnet).await;
    t.push(format!(
        "subnet {}",
        outcome(&subnet, |s| (s.vpc_id.starts_with("vpc-")
            && s.availability_zone.starts_with("us-east-1"))
        .to_string())
    ));
    let vpc = subnet.expect("subnet").vpc_id;
    let unknown = cloud.subnet("subnet-0000000000000dead").await;
    t.push(format!(
        "subnet(unknown) {}",
        outcome(&unknown, |s| s.id.clone())
    ));

    let request = SecurityGroupRequest {
        name: naming::security_group_name(&o.uid),
        description: "Lustre ports for ml/conformance".into(),
        vpc_id: vpc,
        tags,
    };
    let sg = cloud.create_security_group(&request).await;
    t.push(format!("create_sg {}", outcome(&sg, |id| ids.name(id))));
    let sg = sg.expect("sg");
    let again = cloud.create_security_group(&request).await;
    t.push(format!(
        "create_sg(same name) {}",
        outcome(&again, |id| id.clone())
    ));

    let rules = lustre_ingress(
        &sg,
        &[
            Peer::Group(net.nodes_sg.clone()),
            Peer::Cidr("10.0.0.0/16".into()),
        ],
    );
    let auth = cloud.authorize_ingress(&sg, &rules).await;
    t.push(format!("authorize {}", outcome(&auth, |_| String::new())));
    let auth = cloud.authorize_ingress(&sg, &rules).await;
    t.push(format!(
        "authorize(again) {}",
        outcome(&auth, |_| String::new())
    ));

    let seen = cloud
        .describe_security_groups(std::slice::from_ref(&sg))
        .await;
    t.push(format!(
        "describe_sg {}",
        outcome(&seen, |groups| {
            let g = &groups[0];
            let mut rules: Vec<String> = g
                .ingress
                .iter()
                .map(|r| {
                    let peer = match &r.peer {
                        Peer::Group(id) => ids.0.get(id).cloned().unwrap_or_else(|| id.clone()),
                        Peer::Cidr(c) => c.clone(),
                    };
                    format!("{}-{} {peer}", r.from_port, r.to_port)
                })
                .collect();
            rules.sort();
            format!(
                "name={} uid-tag={} rules={rules:?}",
                g.name == request.name,
                naming::owner_uid(&g.tags) == Some(o.uid.as_str())
            )
        })
    ));
    let found = cloud.find_security_groups_by_owner(&o.uid).await;
    t.push(format!(
        "find_sg_by_owner {}",
        outcome(&found, |g| format!(
            "{:?}",
            g.iter().map(|g| ids.name(&g.id)).collect::<Vec<_>>()
        ))
    ));
    let missing = cloud
        .describe_security_groups(&["sg-0000000000000dead".into()])
        .await;
    t.push(format!(
        "describe_sg(unknown) {}",
        outcome(&missing, |g| g.len().to_string())
    ));
    let del = cloud.delete_security_group(&sg).await;
    t.push(format!("delete_sg {}", outcome(&del, |_| String::new())));
    let del = cloud.delete_security_group(&sg).await;
    t.push(format!(
        "delete_sg(again) {}",
        outcome(&del, |_| String::new())
    ));
    t
}

async fn fsx_transcript(cloud: &AwsCloud, net: &Network) -> Vec<String> {
    let mut ids = Ids::default();
    let o = owner();
    let tags = naming::owner_tags(
        &o,
        &[("team".to_string(), "ml".to_string())].into(),
        &Default::default(),
    );
    let mut t = Vec::new();
    let request = FileSystemRequest {
        client_token: naming::file_system_token(&o.uid),
        deployment_type: DeploymentType::Scratch2,
        storage_capacity_gib: 1200,
        per_unit_storage_throughput: None,
        subnet_id: net.subnet.clone(),
        security_group_ids: vec![net.nodes_sg.clone()],
        kms_key_id: None,
        lz4_compression: true,
        automatic_backup_retention_days: None,
        daily_automatic_backup_start_time: None,
        copy_tags_to_backups: false,
        backup_id: None,
        weekly_maintenance_start_time: None,
        file_system_type_version: "2.15".into(),
        metadata: None,
        root_squash: None,
        log: None,
        efa: false,
        tiering: None,
        tags: tags.clone(),
    };
    let describe = |fs: &FileSystem, ids: &mut Ids| {
        format!(
            "{} capacity={} type={:?} tags-match={} dns-has-id={} subnet-match={}",
            ids.name(&fs.id),
            fs.storage_capacity_gib,
            fs.deployment_type,
            fs.tags == tags,
            fs.dns_name
                .as_deref()
                .is_some_and(|d| d.starts_with(&fs.id)),
            fs.subnet_id.as_deref() == Some(net.subnet.as_str()),
        )
    };
    let created = cloud.create_file_system(&request).await;
    t.push(format!(
        "create_fs {}",
        outcome(&created, |fs| describe(fs, &mut ids))
    ));
    let fs = created.expect("fs");
    let by_id = cloud
        .describe_file_systems(std::slice::from_ref(&fs.id))
        .await;
    t.push(format!(
        "describe_fs {}",
        outcome(&by_id, |v| v
            .iter()
            .map(|f| describe(f, &mut ids))
            .collect::<Vec<_>>()
            .join(","))
    ));
    let all = cloud.describe_file_systems(&[]).await;
    t.push(format!(
        "describe_fs(all) {}",
        outcome(&all, |v| v.len().to_string())
    ));
    let owned = cloud.find_file_systems_by_owner(&o.uid).await;
    t.push(format!(
        "find_fs_by_owner {}",
        outcome(&owned, |v| v.len().to_string())
    ));
    // The simulated AWS, like FSx, refuses to delete a CREATING file system; moto has no
    // lifecycle. Wait for either to leave CREATING.
    let started = Instant::now();
    while cloud
        .describe_file_systems(std::slice::from_ref(&fs.id))
        .await
        .is_ok_and(|v| {
            v.first()
                .is_some_and(|f| f.lifecycle == Lifecycle::Creating)
        })
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "file system stuck CREATING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let del = cloud
        .delete_file_system(&fs.id, &FileSystemDeletion::default())
        .await;
    t.push(format!("delete_fs {}", outcome(&del, |_| String::new())));
    t
}

/// A backup of a persistent file system: taken with its tags, described by id, deleted, and
/// not described after. moto models no backup lifecycle (no progress, CREATING forever), so a
/// backup is waited for only while it reports progress; moto answers a second delete with
/// `ResourceNotFoundException` where FSx's model says `BackupNotFound`, so that is left out.
async fn backup_transcript(cloud: &AwsCloud, net: &Network) -> Vec<String> {
    let o = owner();
    let tags = naming::owner_tags(&o, &Default::default(), &Default::default());
    let mut t = Vec::new();
    let fs = cloud
        .create_file_system(&FileSystemRequest {
            deployment_type: DeploymentType::Persistent2,
            per_unit_storage_throughput: Some(125),
            ..FileSystemRequest::scratch("conformance-backup", net.subnet.clone(), tags.clone())
        })
        .await
        .expect("persistent file system");
    let started = Instant::now();
    while cloud
        .describe_file_systems(std::slice::from_ref(&fs.id))
        .await
        .is_ok_and(|v| {
            v.first()
                .is_some_and(|f| f.lifecycle == Lifecycle::Creating)
        })
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "stuck CREATING"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let request = BackupRequest {
        client_token: "lwb-conformance".into(),
        file_system_id: fs.id.clone(),
        tags: tags.clone(),
    };
    let created = cloud.create_backup(&request).await;
    t.push(format!(
        "create_backup {}",
        outcome(&created, |b| format!(
            "id-shape={} tags-match={}",
            b.id.starts_with("backup-"),
            b.tags == tags
        ))
    ));
    let id = created.expect("backup").id;
    let started = Instant::now();
    while cloud
        .describe_backups(std::slice::from_ref(&id))
        .await
        .is_ok_and(|v| {
            v.first()
                .is_some_and(|b| b.progress_percent.is_some() && !b.lifecycle.is_finished())
        })
    {
        assert!(started.elapsed() < Duration::from_secs(20), "backup stuck");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = cloud.describe_backups(std::slice::from_ref(&id)).await;
    t.push(format!(
        "describe_backups {}",
        outcome(&found, |v| format!(
            "{} tags-match={}",
            v.len(),
            v.iter().all(|b| b.tags == tags)
        ))
    ));
    let deleted = cloud.delete_backup(&id).await;
    t.push(format!(
        "delete_backup {}",
        outcome(&deleted, |_| String::new())
    ));
    let gone = cloud.describe_backups(std::slice::from_ref(&id)).await;
    t.push(format!(
        "describe_backups(deleted) {}",
        outcome(&gone, |v| v.len().to_string())
    ));
    t
}

#[tokio::test]
async fn simulated_aws_agrees_with_moto() {
    let Some(moto) = start_moto() else { return };
    let (_sim, sim_url, _stop) = start_sim().await;

    let moto_cloud = adapter(&moto.url).await;
    let sim_cloud = adapter(&sim_url).await;
    let moto_net = moto_network(&moto.url).await;
    let sim_net = sim_network();

    let (from_moto, from_sim) = (
        ec2_transcript(&moto_cloud, &moto_net).await,
        ec2_transcript(&sim_cloud, &sim_net).await,
    );
    assert_eq!(from_sim, from_moto, "EC2: simulated AWS vs moto");
    let (fsx_moto, fsx_sim) = (
        fsx_transcript(&moto_cloud, &moto_net).await,
        fsx_transcript(&sim_cloud, &sim_net).await,
    );
    assert_eq!(fsx_sim, fsx_moto, "FSx: simulated AWS vs moto");
    let (backups_moto, backups_sim) = (
        backup_transcript(&moto_cloud, &moto_net).await,
        backup_transcript(&sim_cloud, &sim_net).await,
    );
    assert_eq!(
        backups_sim, backups_moto,
        "FSx backups: simulated AWS vs moto"
    );
    println!(
        "conformance with moto: {} EC2, {} FSx and {} backup steps agree",
        from_sim.len(),
        fsx_sim.len(),
        backups_sim.len()
    );
    for line in from_sim.iter().chain(&fsx_sim).chain(&backups_sim) {
        println!("  {line}");
    }
}
