//! EC2 calls: the subnet's VPC and the workspace's security group.

use aws_sdk_ec2::types as ec2;

use super::errors::{carried, from_sdk};
use super::{AwsCloud, all_pages};
use crate::error::{CloudError, CloudResult, ErrorKind};
use crate::types::*;
use lustre_api::constants::tags as keys;

const SERVICE: &str = "ec2";

fn tags_from(tags: &[ec2::Tag]) -> Tags {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn security_group_from(g: &ec2::SecurityGroup) -> SecurityGroup {
    let mut ingress = Vec::new();
    for p in g.ip_permissions() {
        let (protocol, from, to) = match (p.ip_protocol(), p.from_port(), p.to_port()) {
            (Some("tcp" | "6"), Some(from), Some(to)) => (Protocol::Tcp, from, to),
            (Some("-1"), _, _) => (Protocol::All, -1, -1),
            _ => continue,
        };
        let groups = p
            .user_id_group_pairs()
            .iter()
            .filter_map(|pair| pair.group_id())
            .map(|id| Peer::Group(id.to_string()));
        let cidrs = p
            .ip_ranges()
            .iter()
            .filter_map(|r| r.cidr_ip())
            .map(|c| Peer::Cidr(c.to_string()));
        ingress.extend(groups.chain(cidrs).map(|peer| IngressRule {
            protocol,
            from_port: from,
            to_port: to,
            peer,
        }));
    }
    ingress.sort();
    SecurityGroup {
        id: g.group_id().unwrap_or_default().to_string(),
        name: g.group_name().unwrap_or_default().to_string(),
        vpc_id: g.vpc_id().unwrap_or_default().to_string(),
        tags: tags_from(g.tags()),
        ingress,
    }
}

/// One IpPermission per protocol and port range, with all its peers (all traffic is `-1`,
/// without ports).
fn permissions(rules: &[IngressRule]) -> Vec<ec2::IpPermission> {
    let mut ranges: Vec<(Protocol, i32, i32)> = rules
        .iter()
        .map(|r| (r.protocol, r.from_port, r.to_port))
        .collect();
    ranges.sort();
    ranges.dedup();
    ranges
        .into_iter()
        .map(|(protocol, from, to)| {
            let mut p = match protocol {
                Protocol::Tcp => ec2::IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(from)
                    .to_port(to),
                Protocol::All => ec2::IpPermission::builder().ip_protocol("-1"),
            };
            for r in rules
                .iter()
                .filter(|r| (r.protocol, r.from_port, r.to_port) == (protocol, from, to))
            {
                p = match &r.peer {
                    Peer::Group(id) => {
                        p.user_id_group_pairs(ec2::UserIdGroupPair::builder().group_id(id).build())
                    }
                    Peer::Cidr(c) => p.ip_ranges(ec2::IpRange::builder().cidr_ip(c).build()),
                };
            }
            p.build()
        })
        .collect()
}

#[async_trait::async_trait]
impl crate::Networking for AwsCloud {
    async fn subnet(&self, subnet_id: &str) -> CloudResult<Subnet> {
        const OP: &str = "DescribeSubnets";
        let sent = self
            .ec2
            .describe_subnets()
            .subnet_ids(subnet_id)
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            out.subnets()
                .first()
                .and_then(|s| {
                    Some(Subnet {
                        id: subnet_id.to_string(),
                        vpc_id: s.vpc_id()?.to_string(),
                        availability_zone: s.availability_zone()?.to_string(),
                    })
                })
                .ok_or_else(|| {
                    CloudError::new(
                        ErrorKind::NotFound,
                        OP,
                        format!("subnet {subnet_id} not found"),
                    )
                })
        })
    }

    async fn create_security_group(&self, r: &SecurityGroupRequest) -> CloudResult<String> {
        const OP: &str = "CreateSecurityGroup";
        let mut spec =
            ec2::TagSpecification::builder().resource_type(ec2::ResourceType::SecurityGroup);
        for (k, v) in &self.tagged(&r.tags) {
            spec = spec.tags(ec2::Tag::builder().key(k).value(v).build());
        }
        let sent = self
            .ec2
            .create_security_group()
            .group_name(&r.name)
            .description(&r.description)
            .vpc_id(&r.vpc_id)
            .tag_specifications(spec.build())
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |out| {
            carried(OP, "group id", out.group_id(), str::to_string)
        })
    }

    /// EC2 fails the whole call when one id is unknown; then each id is asked alone.
    async fn describe_security_groups(&self, ids: &[String]) -> CloudResult<Vec<SecurityGroup>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match self.describe_groups(ids, None).await {
            Err(e) if e.kind == ErrorKind::NotFound && ids.len() > 1 => {
                let mut found = Vec::new();
                for id in ids {
                    match self.describe_groups(std::slice::from_ref(id), None).await {
                        Ok(g) => found.extend(g),
                        Err(e) if e.kind == ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(found)
            }
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
            other => other,
        }
    }

    async fn find_security_groups_by_owner(&self, uid: &str) -> CloudResult<Vec<SecurityGroup>> {
        let filter = ec2::Filter::builder()
            .name(format!("tag:{}", keys::UID))
            .values(uid)
            .build();
        self.describe_groups(&[], Some(filter)).await
    }

    async fn authorize_ingress(&self, group_id: &str, rules: &[IngressRule]) -> CloudResult<()> {
        const OP: &str = "AuthorizeSecurityGroupIngress";
        if rules.is_empty() {
            return Ok(());
        }
        let result = self
            .ec2
            .authorize_security_group_ingress()
            .group_id(group_id)
            .set_ip_permissions(Some(permissions(rules)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| from_sdk(OP, e));
        // A rule that exists already is what we asked for.
        let result = match result {
            Err(e) if e.has_code("InvalidPermission.Duplicate") => {
                self.observe(SERVICE, OP, "ok");
                return self.authorize_one_by_one(group_id, rules).await;
            }
            other => other,
        };
        self.record(SERVICE, OP, result)
    }

    async fn delete_security_group(&self, group_id: &str) -> CloudResult<()> {
        const OP: &str = "DeleteSecurityGroup";
        let sent = self
            .ec2
            .delete_security_group()
            .group_id(group_id)
            .send()
            .await;
        self.answer(SERVICE, OP, sent, |_| Ok(()))
    }
}

impl AwsCloud {
    async fn describe_groups(
        &self,
        ids: &[String],
        filter: Option<ec2::Filter>,
    ) -> CloudResult<Vec<SecurityGroup>> {
        const OP: &str = "DescribeSecurityGroups";
        all_pages(|token| {
            let filter = filter.clone();
            async move {
                let mut call = self.ec2.describe_security_groups().set_next_token(token);
                if !ids.is_empty() {
                    call = call.set_group_ids(Some(ids.to_vec()));
                }
                if let Some(f) = filter {
                    call = call.filters(f).max_results(1000);
                }
                let out = self.answer(SERVICE, OP, call.send().await, Ok)?;
                let next = out.next_token().map(str::to_string);
                Ok((
                    out.security_groups()
                        .iter()
                        .map(security_group_from)
                        .collect(),
                    next,
                ))
            }
        })
        .await
    }

    /// EC2 refuses the whole batch when one rule exists; add the rest one at a time.
    async fn authorize_one_by_one(&self, group_id: &str, rules: &[IngressRule]) -> CloudResult<()> {
        const OP: &str = "AuthorizeSecurityGroupIngress";
        for rule in rules {
            let result = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(permissions(std::slice::from_ref(rule))))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| from_sdk(OP, e));
            match result {
                Err(e) if e.has_code("InvalidPermission.Duplicate") => {
                    self.observe(SERVICE, OP, "ok")
                }
                other => self.record(SERVICE, OP, other)?,
            }
        }
        Ok(())
    }
}
