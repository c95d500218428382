//! The workspace's security group: the VPC it goes in, its create (found again by tag when
//! a create's answer was lost), its Lustre rules, its delete.

use std::sync::Arc;

use kube::ResourceExt;
use lustre_api::{LustreWorkspace, LustreWorkspaceClass};
use lustre_cloud::{Cloud, ErrorKind, IngressRule, SecurityGroup, SecurityGroupRequest, naming};

use super::Outcome;
use crate::context::{Context, lock};
use crate::error::Cause;
use crate::plan;

pub(super) async fn look_up_subnet(
    ctx: &Context,
    cloud: &Arc<dyn Cloud>,
    subnet_id: &str,
) -> Result<Outcome, Cause> {
    let subnet = cloud.subnet(subnet_id).await?;
    lock(&ctx.subnets).insert(subnet_id.to_string(), subnet.clone());
    Ok(Outcome::Subnet(subnet))
}

pub(super) async fn create(
    ws: &LustreWorkspace,
    class: Option<&LustreWorkspaceClass>,
    cloud: &Arc<dyn Cloud>,
    vpc_id: &str,
) -> Result<Outcome, Cause> {
    let class = class.expect("decided with a class");
    let uid = ws.uid().unwrap_or_default();
    let request = SecurityGroupRequest {
        name: naming::security_group_name(&uid),
        description: format!(
            "Lustre (TCP 988, 1018-1023) for workspace {}/{}",
            ws.namespace().unwrap_or_default(),
            ws.name_any()
        ),
        vpc_id: vpc_id.to_string(),
        tags: plan::resource_tags(ws, class),
    };
    let id = match cloud.create_security_group(&request).await {
        Ok(id) => id,
        Err(e) if e.has_code("InvalidGroup.Duplicate") => cloud
            .find_security_groups_by_owner(&uid)
            .await?
            .into_iter()
            .next()
            .map(|g| g.id)
            .ok_or(e)?,
        Err(e) => return Err(e.into()),
    };
    Ok(Outcome::SecurityGroupCreated(SecurityGroup {
        id,
        name: request.name,
        vpc_id: request.vpc_id,
        tags: request.tags,
        ingress: vec![],
    }))
}

pub(super) async fn authorize(
    cloud: &Arc<dyn Cloud>,
    group_id: &str,
    rules: &[IngressRule],
) -> Result<Outcome, Cause> {
    cloud.authorize_ingress(group_id, rules).await?;
    Ok(Outcome::RulesAdded(rules.to_vec()))
}

/// DependencyViolation while the file system's network interfaces still hold it.
pub(super) async fn delete(cloud: &Arc<dyn Cloud>, id: &str) -> Result<Outcome, Cause> {
    match cloud.delete_security_group(id).await {
        Err(e) if e.kind != ErrorKind::NotFound => Err(e.into()),
        Ok(()) | Err(_) => Ok(Outcome::SecurityGroupDeleted),
    }
}
