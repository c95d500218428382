//! The EC2 query API (form-encoded `Action=...&Version=2016-11-15`, XML answers) for the
//! subnet and security-group operations the operator uses.

use std::collections::{BTreeMap, BTreeSet};

use super::fsx_api::ApiError;
use super::state::{Peer, Rule, SecurityGroup, State};

/// Form parameters of one request.
pub type Params = BTreeMap<String, String>;

/// Values of a flattened list: `prefix.1`, `prefix.2`, ... (in index order).
fn list(p: &Params, prefix: &str) -> Vec<String> {
    indices(p, prefix)
        .into_iter()
        .filter_map(|i| p.get(&format!("{prefix}.{i}")).cloned())
        .collect()
}

/// The indices `n` for which some `prefix.n[.rest]` key exists.
fn indices(p: &Params, prefix: &str) -> Vec<u32> {
    let lead = format!("{prefix}.");
    let set: BTreeSet<u32> = p
        .keys()
        .filter_map(|k| k.strip_prefix(&lead))
        .filter_map(|rest| rest.split('.').next())
        .filter_map(|n| n.parse().ok())
        .collect();
    set.into_iter().collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

fn response(action: &str, request_id: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\"><requestId>{request_id}</requestId>{body}</{action}Response>"
    )
}

/// An EC2 error document.
pub fn error_xml(e: &ApiError, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
        xml_escape(&e.code),
        xml_escape(&e.message)
    )
}

fn tag_set(tags: &BTreeMap<String, String>) -> String {
    let items: String = tags
        .iter()
        .map(|(k, v)| {
            format!(
                "<item><key>{}</key><value>{}</value></item>",
                xml_escape(k),
                xml_escape(v)
            )
        })
        .collect();
    format!("<tagSet>{items}</tagSet>")
}

fn group_xml(g: &SecurityGroup, owner: &str) -> String {
    // One ipPermissions item per (protocol, port range), as EC2 groups them.
    let mut by_range: BTreeMap<(String, i32, i32), Vec<&Peer>> = BTreeMap::new();
    for r in &g.ingress {
        by_range
            .entry((r.protocol.clone(), r.from_port, r.to_port))
            .or_default()
            .push(&r.peer);
    }
    let permissions: String = by_range
        .iter()
        .map(|((proto, from, to), peers)| {
            let groups: String = peers
                .iter()
                .filter_map(|p| match p {
                    Peer::Group(id) => Some(format!("<item><userId>{owner}</userId><groupId>{id}</groupId></item>")),
                    Peer::Cidr(_) => None,
                })
                .collect();
            let ranges: String = peers
                .iter()
                .filter_map(|p| match p {
                    Peer::Cidr(c) => Some(format!("<item><cidrIp>{c}</cidrIp></item>")),
                    Peer::Group(_) => None,
                })
                .collect();
            let ports = match proto.as_str() {
                "-1" => String::new(),
                _ => format!("<fromPort>{from}</fromPort><toPort>{to}</toPort>"),
            };
            format!(
                "<item><ipProtocol>{proto}</ipProtocol>{ports}<groups>{groups}</groups><ipRanges>{ranges}</ipRanges><ipv6Ranges/><prefixListIds/></item>"
            )
        })
        .collect();
    format!(
        "<item><ownerId>{owner}</ownerId><groupId>{}</groupId><groupName>{}</groupName><groupDescription>{}</groupDescription><vpcId>{}</vpcId><ipPermissions>{permissions}</ipPermissions><ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups/><ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges><ipv6Ranges/><prefixListIds/></item></ipPermissionsEgress>{}</item>",
        g.id,
        xml_escape(&g.name),
        xml_escape(&g.description),
        g.vpc_id,
        tag_set(&g.tags)
    )
}

fn group_not_found(id: &str) -> ApiError {
    ApiError::new(
        400,
        "InvalidGroup.NotFound",
        format!("The security group '{id}' does not exist"),
    )
}

pub fn describe_subnets(s: &mut State, p: &Params, rid: &str) -> Result<String, ApiError> {
    let ids = list(p, "SubnetId");
    let mut items = String::new();
    let subnets: Vec<_> = if ids.is_empty() {
        s.subnets.values().collect()
    } else {
        ids.iter()
            .map(|id| {
                s.subnets.get(id).ok_or_else(|| {
                    ApiError::new(
                        400,
                        "InvalidSubnetID.NotFound",
                        format!("The subnet ID '{id}' does not exist"),
                    )
                })
            })
            .collect::<Result<_, _>>()?
    };
    for sn in subnets {
        items.push_str(&format!(
            "<item><subnetId>{}</subnetId><state>available</state><vpcId>{}</vpcId><cidrBlock>{}</cidrBlock><availabilityZone>{}</availabilityZone><ownerId>{}</ownerId></item>",
            sn.id, sn.vpc_id, sn.cidr, sn.availability_zone, s.account_id
        ));
    }
    Ok(response(
        "DescribeSubnets",
        rid,
        &format!("<subnetSet>{items}</subnetSet>"),
    ))
}

fn tags_from_spec(p: &Params) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for spec in indices(p, "TagSpecification") {
        let base = format!("TagSpecification.{spec}.Tag");
        for i in indices(p, &base) {
            if let Some(k) = p.get(&format!("{base}.{i}.Key")) {
                tags.insert(
                    k.clone(),
                    p.get(&format!("{base}.{i}.Value"))
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    }
    tags
}

pub fn create_security_group(s: &mut State, p: &Params, rid: &str) -> Result<String, ApiError> {
    let name = p.get("GroupName").cloned().unwrap_or_default();
    let description = p.get("GroupDescription").cloned().unwrap_or_default();
    let vpc = p.get("VpcId").cloned().unwrap_or_default();
    if name.is_empty() || description.is_empty() {
        return Err(ApiError::new(
            400,
            "MissingParameter",
            "GroupName and GroupDescription are required",
        ));
    }
    if name.len() > 255 || name.starts_with("sg-") {
        return Err(ApiError::new(
            400,
            "InvalidParameterValue",
            format!("Invalid group name '{name}'"),
        ));
    }
    if !s.vpcs.contains(&vpc) {
        return Err(ApiError::new(
            400,
            "InvalidVpcID.NotFound",
            format!("The vpc ID '{vpc}' does not exist"),
        ));
    }
    if s.security_groups
        .values()
        .any(|g| g.vpc_id == vpc && g.name == name)
    {
        return Err(ApiError::new(
            400,
            "InvalidGroup.Duplicate",
            format!("The security group '{name}' already exists for VPC '{vpc}'"),
        ));
    }
    let tags = tags_from_spec(p);
    if tags.len() > 50 {
        return Err(ApiError::new(
            400,
            "TagLimitExceeded",
            "A resource can have at most 50 tags",
        ));
    }
    let id = s.new_id("sg");
    let tag_xml = tag_set(&tags);
    s.security_groups.insert(
        id.clone(),
        SecurityGroup {
            id: id.clone(),
            name,
            description,
            vpc_id: vpc,
            tags,
            ingress: BTreeSet::new(),
        },
    );
    Ok(response(
        "CreateSecurityGroup",
        rid,
        &format!("<return>true</return><groupId>{id}</groupId>{tag_xml}"),
    ))
}

fn rules_from(s: &State, p: &Params) -> Result<Vec<Rule>, ApiError> {
    let mut rules = Vec::new();
    for i in indices(p, "IpPermissions") {
        let get = |k: &str| p.get(&format!("IpPermissions.{i}.{k}")).cloned();
        let protocol = get("IpProtocol").unwrap_or_default();
        let port = |k: &str| -> Result<i32, ApiError> {
            get(k).unwrap_or_default().parse().map_err(|_| {
                ApiError::new(
                    400,
                    "InvalidPermission.Malformed",
                    format!("Invalid {k} in IpPermissions.{i}"),
                )
            })
        };
        // All traffic ("-1") takes no ports (EC2 reads them as -1).
        let (from, to) = match protocol.as_str() {
            "-1" => (-1, -1),
            _ => (port("FromPort")?, port("ToPort")?),
        };
        let tcp = protocol == "tcp" && from <= to && (0..=65535).contains(&from) && to <= 65535;
        if protocol != "-1" && !tcp {
            return Err(ApiError::new(
                400,
                "InvalidPermission.Malformed",
                format!("Unsupported permission {protocol} {from}-{to}"),
            ));
        }
        let mut peers = Vec::new();
        for g in list_field(p, &format!("IpPermissions.{i}.Groups"), "GroupId") {
            if !s.security_groups.contains_key(&g) {
                return Err(group_not_found(&g));
            }
            peers.push(Peer::Group(g));
        }
        for c in list_field(p, &format!("IpPermissions.{i}.IpRanges"), "CidrIp") {
            peers.push(Peer::Cidr(c));
        }
        if peers.is_empty() {
            return Err(ApiError::new(
                400,
                "InvalidPermission.Malformed",
                "A permission needs a group or a CIDR",
            ));
        }
        rules.extend(peers.into_iter().map(|peer| Rule {
            protocol: protocol.clone(),
            from_port: from,
            to_port: to,
            peer,
        }));
    }
    Ok(rules)
}

/// `prefix.n.field` values in index order.
fn list_field(p: &Params, prefix: &str, field: &str) -> Vec<String> {
    indices(p, prefix)
        .into_iter()
        .filter_map(|n| p.get(&format!("{prefix}.{n}.{field}")).cloned())
        .collect()
}

pub fn authorize_ingress(s: &mut State, p: &Params, rid: &str) -> Result<String, ApiError> {
    let id = p.get("GroupId").cloned().unwrap_or_default();
    if !s.security_groups.contains_key(&id) {
        return Err(group_not_found(&id));
    }
    let rules = rules_from(s, p)?;
    if rules.is_empty() {
        return Err(ApiError::new(
            400,
            "MissingParameter",
            "IpPermissions is required",
        ));
    }
    let group = s
        .security_groups
        .get_mut(&id)
        .ok_or_else(|| group_not_found(&id))?;
    if let Some(dup) = rules.iter().find(|r| group.ingress.contains(r)) {
        let peer = match &dup.peer {
            Peer::Group(g) => g.clone(),
            Peer::Cidr(c) => c.clone(),
        };
        return Err(ApiError::new(
            400,
            "InvalidPermission.Duplicate",
            format!(
                "the specified rule \"peer: {peer}, TCP, from port: {}, to port: {}, ALLOW\" already exists",
                dup.from_port, dup.to_port
            ),
        ));
    }
    group.ingress.extend(rules);
    Ok(response(
        "AuthorizeSecurityGroupIngress",
        rid,
        "<return>true</return>",
    ))
}

pub fn describe_security_groups(s: &mut State, p: &Params, rid: &str) -> Result<String, ApiError> {
    let ids = list(p, "GroupId");
    for id in &ids {
        if !s.security_groups.contains_key(id) {
            return Err(group_not_found(id));
        }
    }
    let mut filters: Vec<(String, Vec<String>)> = Vec::new();
    for i in indices(p, "Filter") {
        let name = p
            .get(&format!("Filter.{i}.Name"))
            .cloned()
            .unwrap_or_default();
        filters.push((name, list(p, &format!("Filter.{i}.Value"))));
    }
    let matches = |g: &SecurityGroup| {
        (ids.is_empty() || ids.contains(&g.id))
            && filters.iter().all(|(name, values)| {
                let actual = if let Some(key) = name.strip_prefix("tag:") {
                    g.tags.get(key).cloned()
                } else {
                    match name.as_str() {
                        "group-name" => Some(g.name.clone()),
                        "group-id" => Some(g.id.clone()),
                        "vpc-id" => Some(g.vpc_id.clone()),
                        _ => None,
                    }
                };
                actual.is_some_and(|a| values.contains(&a))
            })
    };
    let all: Vec<&SecurityGroup> = s.security_groups.values().filter(|g| matches(g)).collect();
    let max = p.get("MaxResults").and_then(|m| m.parse::<usize>().ok());
    if max.is_some() && !ids.is_empty() {
        return Err(ApiError::new(
            400,
            "InvalidParameterCombination",
            "MaxResults cannot be used with GroupId",
        ));
    }
    let start: usize = p.get("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let take = max.unwrap_or(usize::MAX).clamp(5, 1000);
    let chunk: Vec<&&SecurityGroup> = all.iter().skip(start).take(take).collect();
    let items: String = chunk.iter().map(|g| group_xml(g, &s.account_id)).collect();
    let next = if start + chunk.len() < all.len() {
        format!("<nextToken>{}</nextToken>", start + chunk.len())
    } else {
        String::new()
    };
    Ok(response(
        "DescribeSecurityGroups",
        rid,
        &format!("<securityGroupInfo>{items}</securityGroupInfo>{next}"),
    ))
}

pub fn delete_security_group(s: &mut State, p: &Params, rid: &str) -> Result<String, ApiError> {
    let id = p.get("GroupId").cloned().unwrap_or_default();
    if !s.security_groups.contains_key(&id) {
        return Err(group_not_found(&id));
    }
    if let Some(fs) = s.file_systems_using(&id).first() {
        return Err(ApiError::new(
            400,
            "DependencyViolation",
            format!(
                "resource {id} has a dependent object (network interface {} of {})",
                fs.network_interface_ids[0], fs.id
            ),
        ));
    }
    let referenced = s
        .security_groups
        .values()
        .any(|g| g.id != id && g.ingress.iter().any(|r| r.peer == Peer::Group(id.clone())));
    if referenced {
        return Err(ApiError::new(
            400,
            "DependencyViolation",
            format!("resource {id} has a dependent object"),
        ));
    }
    s.security_groups.remove(&id);
    Ok(response(
        "DeleteSecurityGroup",
        rid,
        &format!("<return>true</return><groupId>{id}</groupId>"),
    ))
}
