//! Where a workspace's file system goes, or is: the class's subnets (looked up once per
//! process), the workspace's zone, or (`placement: MatchPods`) the zone of its first pod.

use std::ops::ControlFlow::{self, Break, Continue};

use kube::ResourceExt;
use lustre_api::LustreWorkspaceClass;
use lustre_cloud::Subnet;

use super::{Action, Inputs, Wait};

type Plan<T> = ControlFlow<Action, T>;

/// The file system's subnet (an existing file system's own; else the class's in the
/// workspace's zone, or in its first pod's; else the class's first), and the class's VPC.
pub(super) struct Placement<'a> {
    pub vpc_id: &'a str,
    pub subnet: &'a Subnet,
}

fn refuse<T>(field: &str, message: String) -> Plan<T> {
    Break(Action::invalid(field, message))
}

pub(super) fn placement<'a>(i: &Inputs<'a>, class: &LustreWorkspaceClass) -> Plan<Placement<'a>> {
    let ws = i.workspace;
    let known = |id: &str| i.aws.subnets.iter().find(|s| s.id == id);
    // The file system's own subnet when the operator made it (the class's subnets may have
    // changed since). An adopted one is never looked up: it may be adopted only from one of
    // the class's subnets, and a look at a file system the workspace may not adopt would
    // tell its tenant about it.
    let fs_subnet = i
        .aws
        .file_system
        .filter(|_| ws.spec.file_system_id.is_none())
        .and_then(|f| f.subnet_id.as_deref());
    let ids = class.spec.subnets();
    if let Some(missing) = ids
        .iter()
        .map(String::as_str)
        .chain(fs_subnet)
        .find(|id| known(id).is_none())
    {
        return Break(Action::LookUpSubnet {
            subnet_id: missing.to_string(),
        });
    }
    let subnets: Vec<&'a Subnet> = ids.iter().filter_map(|id| known(id)).collect();
    let class_name = class.name_any();
    let Some(first) = subnets.first() else {
        return refuse(
            "spec.className",
            format!("class {class_name} names no subnet"),
        );
    };
    if subnets.iter().any(|s| s.vpc_id != first.vpc_id) {
        return refuse(
            "spec.className",
            format!(
                "the subnets of class {class_name} are in more than one VPC: a file system and its security group live in one; the platform team must fix the class"
            ),
        );
    }
    let subnet = match (fs_subnet.and_then(known), &ws.spec.availability_zone) {
        (Some(s), _) => s,
        (None, Some(zone)) => in_zone(&subnets, zone, "spec.availabilityZone", || {
            format!("class {class_name} has no subnet in {zone}")
        })?,
        (None, None) if super::first_pod(ws, class, i.aws.file_system) => {
            let zone = first_pod_zone(i)?;
            in_zone(&subnets, zone, "spec.className", || {
                format!(
                    "the first pod using the claim was scheduled in {zone}, where class {class_name} has no subnet (schedule it in one of its zones, or name one in spec.availabilityZone)"
                )
            })?
        }
        (None, None) => first,
    };
    Continue(Placement {
        vpc_id: &first.vpc_id,
        subnet,
    })
}

/// The class's subnet in `zone`, or the refusal `why` gives, listing the class's zones.
fn in_zone<'a>(
    subnets: &[&'a Subnet],
    zone: &str,
    field: &str,
    why: impl FnOnce() -> String,
) -> Plan<&'a Subnet> {
    match subnets.iter().find(|s| s.availability_zone == zone) {
        Some(s) => Continue(s),
        None => {
            let zones: Vec<&str> = subnets
                .iter()
                .map(|s| s.availability_zone.as_str())
                .collect();
            refuse(
                field,
                format!("{}: its zones are {}", why(), zones.join(", ")),
            )
        }
    }
}

/// `placement: MatchPods`: the first-pod StorageClass and the claim first, then the zone of
/// the node the scheduler picks for the first pod that uses the claim.
fn first_pod_zone<'a>(i: &Inputs<'a>) -> Plan<&'a str> {
    let k = i.kube;
    if !k.first_pod_storage_class {
        return Break(Action::ApplyStorageClass);
    }
    if k.claim.is_none() {
        return Break(Action::ApplyClaim);
    }
    match &k.first_pod_zone {
        Some(zone) => Continue(zone),
        None => Break(Action::Wait(Wait::FirstPod)),
    }
}
