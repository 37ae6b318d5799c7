//! A stateful fake of the EC2 networking API (feature `fake-ec2`): what a mocked EC2 client
//! answers from, and what its mutating calls change, so a test deploys, reads back, redeploys
//! and destroys against one account without a network or an emulator.
//!
//! [`FakeEc2`] holds an [`Ec2State`] (plain SDK types a test can set up and inspect) and
//! builds the mock rules that answer from it; every call they answer is recorded, input
//! included, in the [`Journal`] the fake was made with. It covers the calls a managed or an
//! imported network makes: VPCs and their DNS attributes (and the default security group AWS
//! gives each), subnets, internet gateways, route tables with their routes and associations,
//! Elastic IP addresses, NAT gateways, security groups and their rules, VPC endpoints, tags,
//! and the describes with their filters (`tag:<key>` everywhere; `vpc-id`, `subnet-id`,
//! `availability-zone`, `cidr-block`, `attachment.vpc-id`, `group-name`, `group-id`, `state`,
//! `vpc-endpoint-state` and `service-name` where EC2 has them; any other filter is refused,
//! as EC2 refuses one it does not know, even when nothing would match).
//!
//! As in EC2:
//! * a resource created with an `ecs:resource` tag gets an id derived from it
//!   (`subnet/public/us-east-1a` → `subnet-public-us-east-1a`, `vpc` → `vpc-1`), others a
//!   numbered one — ids a test can name in advance;
//! * a new VPC has DNS support on and DNS hostnames off, and a default security group
//!   (`sg-default` for the first) admitting all traffic from itself and letting all out;
//! * a new NAT gateway is `pending`, and `available` once it has been described by id; a
//!   deleted one stays, `deleted`;
//! * deletes refuse with `DependencyViolation` what EC2 refuses: a VPC that still has
//!   subnets, groups, route tables, endpoints or an attached gateway; a subnet with a NAT
//!   gateway; a group another group's rules name; an attached internet gateway; a route table
//!   with associations; an address a NAT gateway still holds (`InvalidIPAddress.InUse`).
//!
//! A test puts its own rules in front of the fake's ([`FakeEc2::client_with`]) to inject
//! errors or sequences (in `RuleMode::MatchAny` the first matching rule answers).
//!
//! ```
//! use ecs_core::testing::{FakeEc2, Journal};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeEc2::new(&Journal::default(), Default::default());
//! let ec2 = fake.client();
//! let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.unwrap();
//! let id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
//! assert_eq!(fake.state().vpcs.len(), 1);
//! assert_eq!(fake.journal().ops(), ["CreateVpc"]);
//! ec2.delete_vpc().vpc_id(&id).send().await.unwrap();
//! assert!(fake.state().vpcs.is_empty());
//! # });
//! ```
//!
//! [`Journal`]: super::Journal

use std::collections::BTreeMap;

use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::allocate_address::*;
use aws_sdk_ec2::operation::associate_route_table::*;
use aws_sdk_ec2::operation::attach_internet_gateway::*;
use aws_sdk_ec2::operation::authorize_security_group_egress::*;
use aws_sdk_ec2::operation::authorize_security_group_ingress::*;
use aws_sdk_ec2::operation::create_internet_gateway::*;
use aws_sdk_ec2::operation::create_nat_gateway::*;
use aws_sdk_ec2::operation::create_route::*;
use aws_sdk_ec2::operation::create_route_table::*;
use aws_sdk_ec2::operation::create_security_group::*;
use aws_sdk_ec2::operation::create_subnet::*;
use aws_sdk_ec2::operation::create_tags::*;
use aws_sdk_ec2::operation::create_vpc::*;
use aws_sdk_ec2::operation::create_vpc_endpoint::*;
use aws_sdk_ec2::operation::delete_internet_gateway::*;
use aws_sdk_ec2::operation::delete_nat_gateway::*;
use aws_sdk_ec2::operation::delete_route::*;
use aws_sdk_ec2::operation::delete_route_table::*;
use aws_sdk_ec2::operation::delete_security_group::*;
use aws_sdk_ec2::operation::delete_subnet::*;
use aws_sdk_ec2::operation::delete_tags::*;
use aws_sdk_ec2::operation::delete_vpc::*;
use aws_sdk_ec2::operation::delete_vpc_endpoints::*;
use aws_sdk_ec2::operation::describe_addresses::*;
use aws_sdk_ec2::operation::describe_availability_zones::*;
use aws_sdk_ec2::operation::describe_internet_gateways::*;
use aws_sdk_ec2::operation::describe_nat_gateways::*;
use aws_sdk_ec2::operation::describe_network_interfaces::*;
use aws_sdk_ec2::operation::describe_route_tables::*;
use aws_sdk_ec2::operation::describe_security_groups::*;
use aws_sdk_ec2::operation::describe_subnets::*;
use aws_sdk_ec2::operation::describe_vpc_attribute::*;
use aws_sdk_ec2::operation::describe_vpc_endpoints::*;
use aws_sdk_ec2::operation::describe_vpcs::*;
use aws_sdk_ec2::operation::detach_internet_gateway::*;
use aws_sdk_ec2::operation::disassociate_route_table::*;
use aws_sdk_ec2::operation::modify_vpc_attribute::*;
use aws_sdk_ec2::operation::modify_vpc_endpoint::*;
use aws_sdk_ec2::operation::release_address::*;
use aws_sdk_ec2::operation::replace_route::*;
use aws_sdk_ec2::operation::revoke_security_group_egress::*;
use aws_sdk_ec2::operation::revoke_security_group_ingress::*;
use aws_sdk_ec2::types::{
    Address, AttachmentStatus, AttributeBooleanValue, AvailabilityZone, AvailabilityZoneState,
    Filter, InternetGateway, InternetGatewayAttachment, IpPermission, IpRange, Ipv6Range,
    NatGateway, NatGatewayAddress, NatGatewayState, PrefixListId, ResourceType, Route, RouteTable,
    RouteTableAssociation, SecurityGroup, State, Subnet, Tag, TagSpecification, UserIdGroupPair,
    Vpc, VpcAttributeName, VpcEndpoint, VpcEndpointType,
};
use aws_sdk_ec2::Client;

use super::{aws_error as error, mock, Rule};
use crate::tags::RESOURCE_TAG;

/// What the fake account holds, as the describes report it. Fields are plain SDK types: a
/// test sets up a world by pushing to them and inspects what a run left the same way.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Ec2State {
    /// The VPCs.
    pub vpcs: Vec<Vpc>,
    /// DNS support and DNS hostnames of each VPC, by id (a VPC not listed has both on).
    pub dns: BTreeMap<String, (bool, bool)>,
    /// The internet gateways.
    pub internet_gateways: Vec<InternetGateway>,
    /// The subnets.
    pub subnets: Vec<Subnet>,
    /// The route tables, with their routes and associations.
    pub route_tables: Vec<RouteTable>,
    /// The Elastic IP addresses.
    pub addresses: Vec<Address>,
    /// The NAT gateways, deleted ones included (`deleted`, as EC2 shows them for a while).
    pub nat_gateways: Vec<NatGateway>,
    /// The security groups, each VPC's default group included.
    pub security_groups: Vec<SecurityGroup>,
    /// The VPC endpoints.
    pub vpc_endpoints: Vec<VpcEndpoint>,
    /// The zones `DescribeAvailabilityZones` answers (by default `us-east-1a` to `c`).
    pub availability_zones: Vec<AvailabilityZone>,
    /// How many ids have been numbered.
    numbered: u32,
}

impl Default for Ec2State {
    fn default() -> Self {
        Self {
            vpcs: Vec::new(),
            dns: BTreeMap::new(),
            internet_gateways: Vec::new(),
            subnets: Vec::new(),
            route_tables: Vec::new(),
            addresses: Vec::new(),
            nat_gateways: Vec::new(),
            security_groups: Vec::new(),
            vpc_endpoints: Vec::new(),
            availability_zones: ["us-east-1a", "us-east-1b", "us-east-1c"]
                .map(|z| zone(z, "availability-zone"))
                .to_vec(),
            numbered: 0,
        }
    }
}

/// An available zone named `name` of type `kind` (`availability-zone`, `local-zone`, …).
pub fn zone(name: &str, kind: &str) -> AvailabilityZone {
    AvailabilityZone::builder()
        .zone_name(name)
        .zone_type(kind)
        .state(AvailabilityZoneState::Available)
        .build()
}

/// The tags of `pairs`, as the SDK has them.
pub fn ec2_tags<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Tag> {
    pairs
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The id the fake gives a resource whose `ecs:resource` tag is `logical`:
/// `subnet/public/us-east-1a` → `subnet-public-us-east-1a`, `vpc` → `vpc-1`.
pub fn derived_id(prefix: &str, logical: &str) -> String {
    match logical.split_once('/') {
        Some((_, rest)) => format!("{prefix}-{}", rest.replace('/', "-")),
        None => format!("{prefix}-1"),
    }
}

/// The operation error `$err` of an error's metadata.
macro_rules! generic {
    ($err:ty) => {
        |e: ErrorMetadata| <$err>::generic(e)
    };
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn tags_of(specs: &[TagSpecification], kind: ResourceType) -> Vec<Tag> {
    specs
        .iter()
        .filter(|s| s.resource_type() == Some(&kind))
        .flat_map(|s| s.tags().iter().cloned())
        .collect()
}

/// Whether a resource with `tags` whose other filterable fields `field` gives passes every
/// filter (each filter one of its values, as EC2 combines them); an unknown filter name is
/// the error EC2 gives.
fn passes(
    filters: &[Filter],
    tags: &[Tag],
    field: impl Fn(&str) -> Option<Option<String>>,
) -> Result<bool, ErrorMetadata> {
    for f in filters {
        let name = f.name().unwrap_or_default();
        let value = match name.strip_prefix("tag:") {
            Some(key) => tag_value(tags, key).map(str::to_string),
            None => field(name).ok_or_else(|| {
                error(
                    "InvalidParameterValue",
                    format!("The filter '{name}' is invalid"),
                )
            })?,
        };
        if !value.is_some_and(|v| f.values().contains(&v)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// EC2's error for a filter name it does not know, when `filters` has one that is not
/// `tag:<key>` or one of `known`: checked before any resource is, so a mistyped filter fails
/// on an empty account too.
fn check_filters(filters: &[Filter], known: &[&str]) -> Result<(), ErrorMetadata> {
    match filters
        .iter()
        .map(|f| f.name().unwrap_or_default())
        .find(|n| !n.starts_with("tag:") && !known.contains(n))
    {
        Some(name) => Err(error(
            "InvalidParameterValue",
            format!("The filter '{name}' is invalid"),
        )),
        None => Ok(()),
    }
}

/// `items` whose id is one of `ids` (all of them when `ids` is empty), or the not-found error
/// `code` naming the first id that is not there.
fn by_ids<T: Clone>(
    items: &[T],
    ids: &[String],
    id: impl Fn(&T) -> Option<&str>,
    code: &str,
) -> Result<Vec<T>, ErrorMetadata> {
    if ids.is_empty() {
        return Ok(items.to_vec());
    }
    if let Some(missing) = ids.iter().find(|x| !items.iter().any(|i| id(i) == Some(x))) {
        return Err(error(code, format!("The id '{missing}' does not exist")));
    }
    Ok(items
        .iter()
        .filter(|i| id(i).is_some_and(|v| ids.iter().any(|x| x == v)))
        .cloned()
        .collect())
}

/// Each permission split into one per peer: how rules are stored and compared.
fn split(perms: &[IpPermission]) -> Vec<IpPermission> {
    let mut out = Vec::new();
    for p in perms {
        let base = || {
            IpPermission::builder()
                .set_ip_protocol(p.ip_protocol().map(str::to_string))
                .set_from_port(p.from_port())
                .set_to_port(p.to_port())
        };
        for r in p.ip_ranges() {
            out.push(
                base()
                    .ip_ranges(
                        IpRange::builder()
                            .set_cidr_ip(r.cidr_ip().map(str::to_string))
                            .build(),
                    )
                    .build(),
            );
        }
        for r in p.ipv6_ranges() {
            out.push(
                base()
                    .ipv6_ranges(
                        Ipv6Range::builder()
                            .set_cidr_ipv6(r.cidr_ipv6().map(str::to_string))
                            .build(),
                    )
                    .build(),
            );
        }
        for g in p.user_id_group_pairs() {
            out.push(
                base()
                    .user_id_group_pairs(
                        UserIdGroupPair::builder()
                            .set_group_id(g.group_id().map(str::to_string))
                            .build(),
                    )
                    .build(),
            );
        }
        for l in p.prefix_list_ids() {
            out.push(
                base()
                    .prefix_list_ids(
                        PrefixListId::builder()
                            .set_prefix_list_id(l.prefix_list_id().map(str::to_string))
                            .build(),
                    )
                    .build(),
            );
        }
    }
    out
}

impl Ec2State {
    /// A fresh id for a resource of `prefix` created with `tags`.
    fn new_id(&mut self, prefix: &str, tags: &[Tag]) -> String {
        // Taken when some resource (any kind) has it.
        let taken = |s: &mut Self, id: &str| s.tags_mut(id).is_some() || s.dns.contains_key(id);
        if let Some(logical) = tag_value(tags, RESOURCE_TAG) {
            let id = derived_id(prefix, logical);
            if !taken(self, &id) {
                return id;
            }
        }
        loop {
            self.numbered += 1;
            let id = format!("{prefix}-{:04}", self.numbered);
            if !taken(self, &id) {
                return id;
            }
        }
    }

    /// The tags of the resource `id`, whatever its kind.
    fn tags_mut(&mut self, id: &str) -> Option<&mut Option<Vec<Tag>>> {
        let some = |x: &Option<String>| x.as_deref() == Some(id);
        if let Some(r) = self.vpcs.iter_mut().find(|r| some(&r.vpc_id)) {
            return Some(&mut r.tags);
        }
        if let Some(r) = self
            .internet_gateways
            .iter_mut()
            .find(|r| some(&r.internet_gateway_id))
        {
            return Some(&mut r.tags);
        }
        if let Some(r) = self.subnets.iter_mut().find(|r| some(&r.subnet_id)) {
            return Some(&mut r.tags);
        }
        if let Some(r) = self
            .route_tables
            .iter_mut()
            .find(|r| some(&r.route_table_id))
        {
            return Some(&mut r.tags);
        }
        if let Some(r) = self.addresses.iter_mut().find(|r| some(&r.allocation_id)) {
            return Some(&mut r.tags);
        }
        if let Some(r) = self
            .nat_gateways
            .iter_mut()
            .find(|r| some(&r.nat_gateway_id))
        {
            return Some(&mut r.tags);
        }
        if let Some(r) = self.security_groups.iter_mut().find(|r| some(&r.group_id)) {
            return Some(&mut r.tags);
        }
        if let Some(r) = self
            .vpc_endpoints
            .iter_mut()
            .find(|r| some(&r.vpc_endpoint_id))
        {
            return Some(&mut r.tags);
        }
        None
    }

    fn group_mut(&mut self, id: Option<&str>) -> Result<&mut SecurityGroup, ErrorMetadata> {
        self.security_groups
            .iter_mut()
            .find(|g| g.group_id() == id)
            .ok_or_else(|| {
                error(
                    "InvalidGroup.NotFound",
                    format!(
                        "The security group '{}' does not exist",
                        id.unwrap_or_default()
                    ),
                )
            })
    }

    fn table_mut(&mut self, id: Option<&str>) -> Result<&mut RouteTable, ErrorMetadata> {
        self.route_tables
            .iter_mut()
            .find(|t| t.route_table_id() == id)
            .ok_or_else(|| {
                error(
                    "InvalidRouteTableID.NotFound",
                    format!(
                        "The routeTable ID '{}' does not exist",
                        id.unwrap_or_default()
                    ),
                )
            })
    }

    fn igw_mut(&mut self, id: Option<&str>) -> Result<&mut InternetGateway, ErrorMetadata> {
        self.internet_gateways
            .iter_mut()
            .find(|g| g.internet_gateway_id() == id)
            .ok_or_else(|| {
                error(
                    "InvalidInternetGatewayID.NotFound",
                    format!(
                        "The internetGateway ID '{}' does not exist",
                        id.unwrap_or_default()
                    ),
                )
            })
    }

    fn in_use(what: &str) -> ErrorMetadata {
        error(
            "DependencyViolation",
            format!("The {what} has dependencies and cannot be deleted."),
        )
    }
}

fake_handle! {
    /// A stateful fake of the EC2 networking API over an [`Ec2State`]. See the
    /// [module](self) docs.
    FakeEc2,
    Ec2State,
    aws_sdk_ec2
}

impl FakeEc2 {
    /// The rules that answer from the account and change it, one per operation.
    pub fn rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        let mut rules = self.describe_rules();
        rules.extend([
            j.on(w, "CreateVpc", mock!(Client::create_vpc), |s, r, _| {
                let tags = tags_of(r.tag_specifications(), ResourceType::Vpc);
                let id = s.new_id("vpc", &tags);
                let vpc = Vpc::builder()
                    .vpc_id(&id)
                    .set_cidr_block(r.cidr_block().map(str::to_string))
                    .set_tags(Some(tags))
                    .build();
                s.vpcs.push(vpc.clone());
                s.dns.insert(id.clone(), (true, false));
                // AWS gives every VPC a default group: all in from itself, all out.
                let group = s.new_id("sg", &ec2_tags([(RESOURCE_TAG, "sg/default")]));
                s.security_groups.push(
                    SecurityGroup::builder()
                        .group_id(&group)
                        .group_name("default")
                        .description("default VPC security group")
                        .vpc_id(&id)
                        .ip_permissions(
                            IpPermission::builder()
                                .ip_protocol("-1")
                                .user_id_group_pairs(
                                    UserIdGroupPair::builder().group_id(&group).build(),
                                )
                                .build(),
                        )
                        .ip_permissions_egress(
                            IpPermission::builder()
                                .ip_protocol("-1")
                                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                                .build(),
                        )
                        .build(),
                );
                Ok(CreateVpcOutput::builder().vpc(vpc).build())
            }),
            j.on(
                w,
                "ModifyVpcAttribute",
                mock!(Client::modify_vpc_attribute),
                |s, r, _| {
                    let id = r.vpc_id().unwrap_or_default();
                    if !s.vpcs.iter().any(|v| v.vpc_id() == Some(id)) {
                        return Err(ModifyVpcAttributeError::generic(error(
                            "InvalidVpcID.NotFound",
                            format!("The vpc ID '{id}' does not exist"),
                        )));
                    }
                    let entry = s.dns.entry(id.to_string()).or_insert((true, true));
                    if let Some(v) = r.enable_dns_support().and_then(|v| v.value()) {
                        entry.0 = v;
                    }
                    if let Some(v) = r.enable_dns_hostnames().and_then(|v| v.value()) {
                        entry.1 = v;
                    }
                    Ok(ModifyVpcAttributeOutput::builder().build())
                },
            ),
            j.on(w, "DeleteVpc", mock!(Client::delete_vpc), |s, r, _| {
                let id = r.vpc_id().map(str::to_string);
                let id = id.as_deref();
                let e = generic!(DeleteVpcError);
                if !s.vpcs.iter().any(|v| v.vpc_id() == id) {
                    return Err(e(error(
                        "InvalidVpcID.NotFound",
                        format!("The vpc ID '{}' does not exist", id.unwrap_or_default()),
                    )));
                }
                let depends = s.subnets.iter().any(|x| x.vpc_id() == id)
                    || s.security_groups
                        .iter()
                        .any(|g| g.vpc_id() == id && g.group_name() != Some("default"))
                    || s.route_tables.iter().any(|t| t.vpc_id() == id)
                    || s.vpc_endpoints.iter().any(|x| x.vpc_id() == id)
                    || s.internet_gateways
                        .iter()
                        .any(|g| g.attachments().iter().any(|a| a.vpc_id() == id));
                if depends {
                    return Err(e(Ec2State::in_use(&format!(
                        "vpc '{}'",
                        id.unwrap_or_default()
                    ))));
                }
                s.vpcs.retain(|v| v.vpc_id() != id);
                s.security_groups.retain(|g| g.vpc_id() != id);
                s.dns.remove(id.unwrap_or_default());
                Ok(DeleteVpcOutput::builder().build())
            }),
            j.on(
                w,
                "CreateSubnet",
                mock!(Client::create_subnet),
                |s, r, _| {
                    let tags = tags_of(r.tag_specifications(), ResourceType::Subnet);
                    let subnet = Subnet::builder()
                        .subnet_id(s.new_id("subnet", &tags))
                        .set_vpc_id(r.vpc_id().map(str::to_string))
                        .set_cidr_block(r.cidr_block().map(str::to_string))
                        .set_availability_zone(r.availability_zone().map(str::to_string))
                        .set_tags(Some(tags))
                        .build();
                    s.subnets.push(subnet.clone());
                    Ok(CreateSubnetOutput::builder().subnet(subnet).build())
                },
            ),
            j.on(
                w,
                "DeleteSubnet",
                mock!(Client::delete_subnet),
                |s, r, _| {
                    let id = r.subnet_id();
                    let e = generic!(DeleteSubnetError);
                    if !s.subnets.iter().any(|x| x.subnet_id() == id) {
                        return Err(e(error(
                            "InvalidSubnetID.NotFound",
                            format!("The subnet ID '{}' does not exist", id.unwrap_or_default()),
                        )));
                    }
                    if s.nat_gateways.iter().any(|n| {
                        n.subnet_id() == id && n.state() != Some(&NatGatewayState::Deleted)
                    }) {
                        return Err(e(Ec2State::in_use(&format!(
                            "subnet '{}'",
                            id.unwrap_or_default()
                        ))));
                    }
                    s.subnets.retain(|x| x.subnet_id() != id);
                    // Its route table association goes with it.
                    for t in &mut s.route_tables {
                        if let Some(a) = t.associations.as_mut() {
                            a.retain(|x| x.subnet_id() != id);
                        }
                    }
                    Ok(DeleteSubnetOutput::builder().build())
                },
            ),
            j.on(
                w,
                "CreateInternetGateway",
                mock!(Client::create_internet_gateway),
                |s, r, _| {
                    let tags = tags_of(r.tag_specifications(), ResourceType::InternetGateway);
                    let igw = InternetGateway::builder()
                        .internet_gateway_id(s.new_id("igw", &tags))
                        .set_tags(Some(tags))
                        .build();
                    s.internet_gateways.push(igw.clone());
                    Ok(CreateInternetGatewayOutput::builder()
                        .internet_gateway(igw)
                        .build())
                },
            ),
            j.on(
                w,
                "AttachInternetGateway",
                mock!(Client::attach_internet_gateway),
                |s, r, _| {
                    let g = s
                        .igw_mut(r.internet_gateway_id())
                        .map_err(generic!(AttachInternetGatewayError))?;
                    if !g.attachments().is_empty() {
                        return Err(AttachInternetGatewayError::generic(error(
                            "Resource.AlreadyAssociated",
                            "The internet gateway is already attached",
                        )));
                    }
                    g.attachments = Some(vec![InternetGatewayAttachment::builder()
                        .set_vpc_id(r.vpc_id().map(str::to_string))
                        .state(AttachmentStatus::Attached)
                        .build()]);
                    Ok(AttachInternetGatewayOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DetachInternetGateway",
                mock!(Client::detach_internet_gateway),
                |s, r, _| {
                    let g = s
                        .igw_mut(r.internet_gateway_id())
                        .map_err(generic!(DetachInternetGatewayError))?;
                    if !g.attachments().iter().any(|a| a.vpc_id() == r.vpc_id()) {
                        return Err(DetachInternetGatewayError::generic(error(
                            "Gateway.NotAttached",
                            "The internet gateway is not attached to that VPC",
                        )));
                    }
                    g.attachments = Some(Vec::new());
                    Ok(DetachInternetGatewayOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteInternetGateway",
                mock!(Client::delete_internet_gateway),
                |s, r, _| {
                    let g = s
                        .igw_mut(r.internet_gateway_id())
                        .map_err(generic!(DeleteInternetGatewayError))?;
                    if !g.attachments().is_empty() {
                        return Err(DeleteInternetGatewayError::generic(Ec2State::in_use(
                            "internet gateway",
                        )));
                    }
                    s.internet_gateways
                        .retain(|g| g.internet_gateway_id() != r.internet_gateway_id());
                    Ok(DeleteInternetGatewayOutput::builder().build())
                },
            ),
            j.on(
                w,
                "CreateRouteTable",
                mock!(Client::create_route_table),
                |s, r, _| {
                    let tags = tags_of(r.tag_specifications(), ResourceType::RouteTable);
                    let table = RouteTable::builder()
                        .route_table_id(s.new_id("rtb", &tags))
                        .set_vpc_id(r.vpc_id().map(str::to_string))
                        .set_routes(Some(Vec::new()))
                        .set_associations(Some(Vec::new()))
                        .set_tags(Some(tags))
                        .build();
                    s.route_tables.push(table.clone());
                    Ok(CreateRouteTableOutput::builder().route_table(table).build())
                },
            ),
            j.on(w, "CreateRoute", mock!(Client::create_route), |s, r, _| {
                let t = s
                    .table_mut(r.route_table_id())
                    .map_err(generic!(CreateRouteError))?;
                let cidr = r.destination_cidr_block();
                if t.routes()
                    .iter()
                    .any(|x| x.destination_cidr_block() == cidr)
                {
                    return Err(CreateRouteError::generic(error(
                        "RouteAlreadyExists",
                        "The route identified by the destination already exists",
                    )));
                }
                t.routes.get_or_insert_with(Vec::new).push(
                    Route::builder()
                        .set_destination_cidr_block(cidr.map(str::to_string))
                        .set_gateway_id(r.gateway_id().map(str::to_string))
                        .set_nat_gateway_id(r.nat_gateway_id().map(str::to_string))
                        .build(),
                );
                Ok(CreateRouteOutput::builder().r#return(true).build())
            }),
            j.on(
                w,
                "ReplaceRoute",
                mock!(Client::replace_route),
                |s, r, _| {
                    let t = s
                        .table_mut(r.route_table_id())
                        .map_err(generic!(ReplaceRouteError))?;
                    let cidr = r.destination_cidr_block();
                    let Some(route) = t
                        .routes
                        .get_or_insert_with(Vec::new)
                        .iter_mut()
                        .find(|x| x.destination_cidr_block() == cidr)
                    else {
                        return Err(ReplaceRouteError::generic(error(
                            "InvalidRoute.NotFound",
                            "No route with that destination",
                        )));
                    };
                    route.gateway_id = r.gateway_id().map(str::to_string);
                    route.nat_gateway_id = r.nat_gateway_id().map(str::to_string);
                    Ok(ReplaceRouteOutput::builder().build())
                },
            ),
            j.on(w, "DeleteRoute", mock!(Client::delete_route), |s, r, _| {
                let t = s
                    .table_mut(r.route_table_id())
                    .map_err(generic!(DeleteRouteError))?;
                let cidr = r.destination_cidr_block();
                let routes = t.routes.get_or_insert_with(Vec::new);
                if !routes.iter().any(|x| x.destination_cidr_block() == cidr) {
                    return Err(DeleteRouteError::generic(error(
                        "InvalidRoute.NotFound",
                        "No route with that destination",
                    )));
                }
                routes.retain(|x| x.destination_cidr_block() != cidr);
                Ok(DeleteRouteOutput::builder().build())
            }),
            j.on(
                w,
                "AssociateRouteTable",
                mock!(Client::associate_route_table),
                |s, r, _| {
                    let subnet = r.subnet_id().unwrap_or_default().to_string();
                    let id = format!("rtbassoc-{subnet}");
                    let t = s
                        .table_mut(r.route_table_id())
                        .map_err(generic!(AssociateRouteTableError))?;
                    t.associations.get_or_insert_with(Vec::new).push(
                        RouteTableAssociation::builder()
                            .route_table_association_id(&id)
                            .set_route_table_id(r.route_table_id().map(str::to_string))
                            .subnet_id(subnet)
                            .main(false)
                            .build(),
                    );
                    Ok(AssociateRouteTableOutput::builder()
                        .association_id(id)
                        .build())
                },
            ),
            j.on(
                w,
                "DisassociateRouteTable",
                mock!(Client::disassociate_route_table),
                |s, r, _| {
                    let id = r.association_id();
                    let found = s.route_tables.iter_mut().find(|t| {
                        t.associations()
                            .iter()
                            .any(|a| a.route_table_association_id() == id)
                    });
                    let Some(t) = found else {
                        return Err(DisassociateRouteTableError::generic(error(
                            "InvalidAssociationID.NotFound",
                            "No such association",
                        )));
                    };
                    t.associations
                        .get_or_insert_with(Vec::new)
                        .retain(|a| a.route_table_association_id() != id);
                    Ok(DisassociateRouteTableOutput::builder().build())
                },
            ),
            j.on(
                w,
                "DeleteRouteTable",
                mock!(Client::delete_route_table),
                |s, r, _| {
                    let t = s
                        .table_mut(r.route_table_id())
                        .map_err(generic!(DeleteRouteTableError))?;
                    if !t.associations().is_empty() {
                        return Err(DeleteRouteTableError::generic(Ec2State::in_use(
                            "route table",
                        )));
                    }
                    s.route_tables
                        .retain(|t| t.route_table_id() != r.route_table_id());
                    Ok(DeleteRouteTableOutput::builder().build())
                },
            ),
            j.on(
                w,
                "AllocateAddress",
                mock!(Client::allocate_address),
                |s, r, _| {
                    let tags = tags_of(r.tag_specifications(), ResourceType::ElasticIp);
                    let id = s.new_id("eipalloc", &tags);
                    s.addresses.push(
                        Address::builder()
                            .allocation_id(&id)
                            .set_domain(r.domain().cloned())
                            .set_tags(Some(tags))
                            .build(),
                    );
                    Ok(AllocateAddressOutput::builder().allocation_id(id).build())
                },
            ),
            j.on(
                w,
                "ReleaseAddress",
                mock!(Client::release_address),
                |s, r, _| {
                    let id = r.allocation_id();
                    if !s.addresses.iter().any(|a| a.allocation_id() == id) {
                        return Err(ReleaseAddressError::generic(error(
                            "InvalidAllocationID.NotFound",
                            "No such address",
                        )));
                    }
                    let held = s.nat_gateways.iter().any(|n| {
                        n.state() != Some(&NatGatewayState::Deleted)
                            && n.nat_gateway_addresses()
                                .iter()
                                .any(|a| a.allocation_id() == id)
                    });
                    if held {
                        return Err(ReleaseAddressError::generic(error(
                            "InvalidIPAddress.InUse",
                            "The address is in use",
                        )));
                    }
                    s.addresses.retain(|a| a.allocation_id() != id);
                    Ok(ReleaseAddressOutput::builder().build())
                },
            ),
            j.on(
                w,
                "CreateNatGateway",
                mock!(Client::create_nat_gateway),
                |s, r, _| {
                    let tags = tags_of(r.tag_specifications(), ResourceType::Natgateway);
                    let vpc = s
                        .subnets
                        .iter()
                        .find(|x| x.subnet_id() == r.subnet_id())
                        .and_then(|x| x.vpc_id())
                        .map(str::to_string);
                    let nat = NatGateway::builder()
                        .nat_gateway_id(s.new_id("nat", &tags))
                        .set_subnet_id(r.subnet_id().map(str::to_string))
                        .set_vpc_id(vpc)
                        .nat_gateway_addresses(
                            NatGatewayAddress::builder()
                                .set_allocation_id(r.allocation_id().map(str::to_string))
                                .build(),
                        )
                        .state(NatGatewayState::Pending)
                        .set_tags(Some(tags))
                        .build();
                    s.nat_gateways.push(nat.clone());
                    Ok(CreateNatGatewayOutput::builder().nat_gateway(nat).build())
                },
            ),
            j.on(
                w,
                "DeleteNatGateway",
                mock!(Client::delete_nat_gateway),
                |s, r, _| {
                    let id = r.nat_gateway_id();
                    let Some(n) = s.nat_gateways.iter_mut().find(|n| n.nat_gateway_id() == id)
                    else {
                        return Err(DeleteNatGatewayError::generic(error(
                            "NatGatewayNotFound",
                            "No such NAT gateway",
                        )));
                    };
                    n.state = Some(NatGatewayState::Deleted);
                    Ok(DeleteNatGatewayOutput::builder()
                        .set_nat_gateway_id(id.map(str::to_string))
                        .build())
                },
            ),
            j.on(
                w,
                "CreateSecurityGroup",
                mock!(Client::create_security_group),
                |s, r, _| {
                    let taken = s
                        .security_groups
                        .iter()
                        .any(|g| g.vpc_id() == r.vpc_id() && g.group_name() == r.group_name());
                    if taken {
                        return Err(CreateSecurityGroupError::generic(error(
                            "InvalidGroup.Duplicate",
                            "A group with that name exists in the VPC",
                        )));
                    }
                    let tags = tags_of(r.tag_specifications(), ResourceType::SecurityGroup);
                    let id = s.new_id("sg", &tags);
                    s.security_groups.push(
                        SecurityGroup::builder()
                            .group_id(&id)
                            .set_group_name(r.group_name().map(str::to_string))
                            .set_description(r.description().map(str::to_string))
                            .set_vpc_id(r.vpc_id().map(str::to_string))
                            .set_ip_permissions(Some(Vec::new()))
                            .ip_permissions_egress(
                                IpPermission::builder()
                                    .ip_protocol("-1")
                                    .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                                    .build(),
                            )
                            .set_tags(Some(tags))
                            .build(),
                    );
                    Ok(CreateSecurityGroupOutput::builder().group_id(id).build())
                },
            ),
            j.on(
                w,
                "DeleteSecurityGroup",
                mock!(Client::delete_security_group),
                |s, r, _| {
                    let id = r.group_id();
                    let group = s
                        .group_mut(id)
                        .map_err(generic!(DeleteSecurityGroupError))?;
                    if group.group_name() == Some("default") {
                        return Err(DeleteSecurityGroupError::generic(error(
                            "CannotDelete",
                            "the specified group: \"default\" name: \"default\" cannot be deleted by a user",
                        )));
                    }
                    let named = s.security_groups.iter().any(|g| {
                        g.group_id() != id
                            && g.ip_permissions()
                                .iter()
                                .chain(g.ip_permissions_egress())
                                .any(|p| p.user_id_group_pairs().iter().any(|x| x.group_id() == id))
                    });
                    if named {
                        return Err(DeleteSecurityGroupError::generic(Ec2State::in_use(
                            "security group",
                        )));
                    }
                    s.security_groups.retain(|g| g.group_id() != id);
                    Ok(DeleteSecurityGroupOutput::builder().build())
                },
            ),
            j.on(
                w,
                "AuthorizeSecurityGroupIngress",
                mock!(Client::authorize_security_group_ingress),
                |s, r, _| {
                    let g = s
                        .group_mut(r.group_id())
                        .map_err(generic!(AuthorizeSecurityGroupIngressError))?;
                    authorize(
                        g.ip_permissions.get_or_insert_with(Vec::new),
                        r.ip_permissions(),
                    )
                    .map_err(AuthorizeSecurityGroupIngressError::generic)?;
                    Ok(AuthorizeSecurityGroupIngressOutput::builder()
                        .r#return(true)
                        .build())
                },
            ),
            j.on(
                w,
                "AuthorizeSecurityGroupEgress",
                mock!(Client::authorize_security_group_egress),
                |s, r, _| {
                    let g = s
                        .group_mut(r.group_id())
                        .map_err(generic!(AuthorizeSecurityGroupEgressError))?;
                    authorize(
                        g.ip_permissions_egress.get_or_insert_with(Vec::new),
                        r.ip_permissions(),
                    )
                    .map_err(AuthorizeSecurityGroupEgressError::generic)?;
                    Ok(AuthorizeSecurityGroupEgressOutput::builder()
                        .r#return(true)
                        .build())
                },
            ),
            j.on(
                w,
                "RevokeSecurityGroupIngress",
                mock!(Client::revoke_security_group_ingress),
                |s, r, _| {
                    let g = s
                        .group_mut(r.group_id())
                        .map_err(generic!(RevokeSecurityGroupIngressError))?;
                    revoke(
                        g.ip_permissions.get_or_insert_with(Vec::new),
                        r.ip_permissions(),
                    )
                    .map_err(RevokeSecurityGroupIngressError::generic)?;
                    Ok(RevokeSecurityGroupIngressOutput::builder()
                        .r#return(true)
                        .build())
                },
            ),
            j.on(
                w,
                "RevokeSecurityGroupEgress",
                mock!(Client::revoke_security_group_egress),
                |s, r, _| {
                    let g = s
                        .group_mut(r.group_id())
                        .map_err(generic!(RevokeSecurityGroupEgressError))?;
                    revoke(
                        g.ip_permissions_egress.get_or_insert_with(Vec::new),
                        r.ip_permissions(),
                    )
                    .map_err(RevokeSecurityGroupEgressError::generic)?;
                    Ok(RevokeSecurityGroupEgressOutput::builder()
                        .r#return(true)
                        .build())
                },
            ),
            j.on(
                w,
                "CreateVpcEndpoint",
                mock!(Client::create_vpc_endpoint),
                |s, r, _| {
                    let tags = tags_of(r.tag_specifications(), ResourceType::VpcEndpoint);
                    let endpoint = VpcEndpoint::builder()
                        .vpc_endpoint_id(s.new_id("vpce", &tags))
                        .set_vpc_id(r.vpc_id().map(str::to_string))
                        .set_service_name(r.service_name().map(str::to_string))
                        .set_vpc_endpoint_type(
                            r.vpc_endpoint_type()
                                .cloned()
                                .or(Some(VpcEndpointType::Gateway)),
                        )
                        .state(State::Available)
                        .set_route_table_ids(Some(r.route_table_ids().to_vec()))
                        .set_subnet_ids(Some(r.subnet_ids().to_vec()))
                        .set_private_dns_enabled(r.private_dns_enabled())
                        .set_tags(Some(tags))
                        .build();
                    s.vpc_endpoints.push(endpoint.clone());
                    Ok(CreateVpcEndpointOutput::builder()
                        .vpc_endpoint(endpoint)
                        .build())
                },
            ),
            j.on(
                w,
                "ModifyVpcEndpoint",
                mock!(Client::modify_vpc_endpoint),
                |s, r, _| {
                    let Some(e) = s
                        .vpc_endpoints
                        .iter_mut()
                        .find(|e| e.vpc_endpoint_id() == r.vpc_endpoint_id())
                    else {
                        return Err(ModifyVpcEndpointError::generic(error(
                            "InvalidVpcEndpointId.NotFound",
                            "No such endpoint",
                        )));
                    };
                    let apply =
                        |list: &mut Option<Vec<String>>, add: &[String], remove: &[String]| {
                            let list = list.get_or_insert_with(Vec::new);
                            list.retain(|x| !remove.contains(x));
                            list.extend(
                                add.iter()
                                    .filter(|x| !list.contains(x))
                                    .cloned()
                                    .collect::<Vec<_>>(),
                            );
                        };
                    apply(
                        &mut e.route_table_ids,
                        r.add_route_table_ids(),
                        r.remove_route_table_ids(),
                    );
                    apply(&mut e.subnet_ids, r.add_subnet_ids(), r.remove_subnet_ids());
                    Ok(ModifyVpcEndpointOutput::builder().r#return(true).build())
                },
            ),
            j.on(
                w,
                "DeleteVpcEndpoints",
                mock!(Client::delete_vpc_endpoints),
                |s, r, _| {
                    s.vpc_endpoints.retain(|e| {
                        !r.vpc_endpoint_ids()
                            .iter()
                            .any(|x| e.vpc_endpoint_id() == Some(x))
                    });
                    Ok(DeleteVpcEndpointsOutput::builder().build())
                },
            ),
            j.on(w, "CreateTags", mock!(Client::create_tags), |s, r, _| {
                for id in r.resources() {
                    let Some(tags) = s.tags_mut(id) else {
                        return Err(CreateTagsError::generic(error(
                            "InvalidID",
                            format!("The ID '{id}' is not valid"),
                        )));
                    };
                    let tags = tags.get_or_insert_with(Vec::new);
                    for t in r.tags() {
                        tags.retain(|x| x.key() != t.key());
                        tags.push(t.clone());
                    }
                }
                Ok(CreateTagsOutput::builder().build())
            }),
            j.on(w, "DeleteTags", mock!(Client::delete_tags), |s, r, _| {
                for id in r.resources() {
                    let Some(tags) = s.tags_mut(id) else {
                        return Err(DeleteTagsError::generic(error(
                            "InvalidID",
                            format!("The ID '{id}' is not valid"),
                        )));
                    };
                    tags.get_or_insert_with(Vec::new).retain(|x| {
                        !r.tags().iter().any(|t| {
                            t.key() == x.key() && t.value().is_none_or(|v| x.value() == Some(v))
                        })
                    });
                }
                Ok(DeleteTagsOutput::builder().build())
            }),
        ]);
        rules
    }

    fn describe_rules(&self) -> Vec<Rule> {
        let (j, w) = (&self.journal, &self.state);
        vec![
            j.on(
                w,
                "DescribeAvailabilityZones",
                mock!(Client::describe_availability_zones),
                |s, _, _| {
                    Ok::<_, DescribeAvailabilityZonesError>(
                        DescribeAvailabilityZonesOutput::builder()
                            .set_availability_zones(Some(s.availability_zones.clone()))
                            .build(),
                    )
                },
            ),
            j.on(
                w,
                "DescribeVpcs",
                mock!(Client::describe_vpcs),
                |s, r, _| {
                    let e = generic!(DescribeVpcsError);
                    check_filters(r.filters(), &["vpc-id", "cidr", "cidr-block"]).map_err(e)?;
                    let mut out = Vec::new();
                    for v in by_ids(&s.vpcs, r.vpc_ids(), Vpc::vpc_id, "InvalidVpcID.NotFound")
                        .map_err(e)?
                    {
                        let field = |name: &str| match name {
                            "vpc-id" => Some(v.vpc_id().map(str::to_string)),
                            "cidr" | "cidr-block" => Some(v.cidr_block().map(str::to_string)),
                            _ => None,
                        };
                        if passes(r.filters(), v.tags(), field).map_err(e)? {
                            out.push(v);
                        }
                    }
                    Ok(DescribeVpcsOutput::builder().set_vpcs(Some(out)).build())
                },
            ),
            j.on(
                w,
                "DescribeVpcAttribute",
                mock!(Client::describe_vpc_attribute),
                |s, r, _| {
                    let id = r.vpc_id().unwrap_or_default();
                    if !s.vpcs.iter().any(|v| v.vpc_id() == Some(id)) {
                        return Err(DescribeVpcAttributeError::generic(error(
                            "InvalidVpcID.NotFound",
                            format!("The vpc ID '{id}' does not exist"),
                        )));
                    }
                    let (support, hostnames) = s.dns.get(id).copied().unwrap_or((true, true));
                    let value = |v: bool| AttributeBooleanValue::builder().value(v).build();
                    let out = DescribeVpcAttributeOutput::builder().vpc_id(id);
                    Ok(match r.attribute() {
                        Some(VpcAttributeName::EnableDnsSupport) => {
                            out.enable_dns_support(value(support))
                        }
                        Some(VpcAttributeName::EnableDnsHostnames) => {
                            out.enable_dns_hostnames(value(hostnames))
                        }
                        _ => out,
                    }
                    .build())
                },
            ),
            j.on(
                w,
                "DescribeSubnets",
                mock!(Client::describe_subnets),
                |s, r, _| {
                    let e = generic!(DescribeSubnetsError);
                    check_filters(r.filters(), &["vpc-id", "availability-zone", "subnet-id"])
                        .map_err(e)?;
                    let mut out = Vec::new();
                    for x in by_ids(
                        &s.subnets,
                        r.subnet_ids(),
                        Subnet::subnet_id,
                        "InvalidSubnetID.NotFound",
                    )
                    .map_err(e)?
                    {
                        let field = |name: &str| match name {
                            "vpc-id" => Some(x.vpc_id().map(str::to_string)),
                            "availability-zone" => Some(x.availability_zone().map(str::to_string)),
                            "subnet-id" => Some(x.subnet_id().map(str::to_string)),
                            _ => None,
                        };
                        if passes(r.filters(), x.tags(), field).map_err(e)? {
                            out.push(x);
                        }
                    }
                    Ok(DescribeSubnetsOutput::builder()
                        .set_subnets(Some(out))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeInternetGateways",
                mock!(Client::describe_internet_gateways),
                |s, r, _| {
                    let e = generic!(DescribeInternetGatewaysError);
                    check_filters(r.filters(), &["attachment.vpc-id"]).map_err(e)?;
                    let mut out = Vec::new();
                    for g in by_ids(
                        &s.internet_gateways,
                        r.internet_gateway_ids(),
                        InternetGateway::internet_gateway_id,
                        "InvalidInternetGatewayID.NotFound",
                    )
                    .map_err(e)?
                    {
                        let field = |name: &str| match name {
                            "attachment.vpc-id" => Some(
                                g.attachments()
                                    .first()
                                    .and_then(|a| a.vpc_id())
                                    .map(str::to_string),
                            ),
                            _ => None,
                        };
                        if passes(r.filters(), g.tags(), field).map_err(e)? {
                            out.push(g);
                        }
                    }
                    Ok(DescribeInternetGatewaysOutput::builder()
                        .set_internet_gateways(Some(out))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeRouteTables",
                mock!(Client::describe_route_tables),
                |s, r, _| {
                    let e = generic!(DescribeRouteTablesError);
                    check_filters(r.filters(), &["vpc-id"]).map_err(e)?;
                    let mut out = Vec::new();
                    for t in by_ids(
                        &s.route_tables,
                        r.route_table_ids(),
                        RouteTable::route_table_id,
                        "InvalidRouteTableID.NotFound",
                    )
                    .map_err(e)?
                    {
                        let field = |name: &str| match name {
                            "vpc-id" => Some(t.vpc_id().map(str::to_string)),
                            _ => None,
                        };
                        if passes(r.filters(), t.tags(), field).map_err(e)? {
                            out.push(t);
                        }
                    }
                    Ok(DescribeRouteTablesOutput::builder()
                        .set_route_tables(Some(out))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeAddresses",
                mock!(Client::describe_addresses),
                |s, r, _| {
                    let e = generic!(DescribeAddressesError);
                    check_filters(r.filters(), &[]).map_err(e)?;
                    let mut out = Vec::new();
                    for a in by_ids(
                        &s.addresses,
                        r.allocation_ids(),
                        Address::allocation_id,
                        "InvalidAllocationID.NotFound",
                    )
                    .map_err(e)?
                    {
                        if passes(r.filters(), a.tags(), |_| None).map_err(e)? {
                            out.push(a);
                        }
                    }
                    Ok(DescribeAddressesOutput::builder()
                        .set_addresses(Some(out))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeNatGateways",
                mock!(Client::describe_nat_gateways),
                |s, r, _| {
                    let e = generic!(DescribeNatGatewaysError);
                    check_filters(r.filter(), &["state", "subnet-id", "vpc-id"]).map_err(e)?;
                    // Described by id, a pending gateway has become available.
                    if !r.nat_gateway_ids().is_empty() {
                        for n in s.nat_gateways.iter_mut() {
                            let named = r
                                .nat_gateway_ids()
                                .iter()
                                .any(|x| n.nat_gateway_id() == Some(x));
                            if named && n.state() == Some(&NatGatewayState::Pending) {
                                n.state = Some(NatGatewayState::Available);
                            }
                        }
                    }
                    let mut out = Vec::new();
                    for n in by_ids(
                        &s.nat_gateways,
                        r.nat_gateway_ids(),
                        NatGateway::nat_gateway_id,
                        "NatGatewayNotFound",
                    )
                    .map_err(e)?
                    {
                        let field = |name: &str| match name {
                            "state" => Some(n.state().map(|x| x.as_str().to_string())),
                            "subnet-id" => Some(n.subnet_id().map(str::to_string)),
                            "vpc-id" => Some(n.vpc_id().map(str::to_string)),
                            _ => None,
                        };
                        if passes(r.filter(), n.tags(), field).map_err(e)? {
                            out.push(n);
                        }
                    }
                    Ok(DescribeNatGatewaysOutput::builder()
                        .set_nat_gateways(Some(out))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeSecurityGroups",
                mock!(Client::describe_security_groups),
                |s, r, _| {
                    let e = generic!(DescribeSecurityGroupsError);
                    check_filters(r.filters(), &["vpc-id", "group-name", "group-id"]).map_err(e)?;
                    let mut out = Vec::new();
                    for g in by_ids(
                        &s.security_groups,
                        r.group_ids(),
                        SecurityGroup::group_id,
                        "InvalidGroup.NotFound",
                    )
                    .map_err(e)?
                    {
                        let field = |name: &str| match name {
                            "vpc-id" => Some(g.vpc_id().map(str::to_string)),
                            "group-name" => Some(g.group_name().map(str::to_string)),
                            "group-id" => Some(g.group_id().map(str::to_string)),
                            _ => None,
                        };
                        if passes(r.filters(), g.tags(), field).map_err(e)? {
                            out.push(g);
                        }
                    }
                    Ok(DescribeSecurityGroupsOutput::builder()
                        .set_security_groups(Some(out))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeVpcEndpoints",
                mock!(Client::describe_vpc_endpoints),
                |s, r, _| {
                    let e = generic!(DescribeVpcEndpointsError);
                    check_filters(
                        r.filters(),
                        &["vpc-id", "vpc-endpoint-state", "service-name"],
                    )
                    .map_err(e)?;
                    let mut out = Vec::new();
                    // Deleted endpoints are gone at once (a describe by their id answers nothing).
                    let ids: Vec<String> = r
                        .vpc_endpoint_ids()
                        .iter()
                        .filter(|x| {
                            s.vpc_endpoints
                                .iter()
                                .any(|e| e.vpc_endpoint_id() == Some(x))
                        })
                        .cloned()
                        .collect();
                    if !r.vpc_endpoint_ids().is_empty() && ids.is_empty() {
                        return Ok(DescribeVpcEndpointsOutput::builder().build());
                    }
                    for x in by_ids(
                        &s.vpc_endpoints,
                        &ids,
                        VpcEndpoint::vpc_endpoint_id,
                        "InvalidVpcEndpointId.NotFound",
                    )
                    .map_err(e)?
                    {
                        let field = |name: &str| match name {
                            "vpc-id" => Some(x.vpc_id().map(str::to_string)),
                            "vpc-endpoint-state" => Some(x.state().map(|s| s.as_str().to_string())),
                            "service-name" => Some(x.service_name().map(str::to_string)),
                            _ => None,
                        };
                        if passes(r.filters(), x.tags(), field).map_err(e)? {
                            out.push(x);
                        }
                    }
                    Ok(DescribeVpcEndpointsOutput::builder()
                        .set_vpc_endpoints(Some(out))
                        .build())
                },
            ),
            j.on(
                w,
                "DescribeNetworkInterfaces",
                mock!(Client::describe_network_interfaces),
                |_, _, _| {
                    Ok::<_, DescribeNetworkInterfacesError>(
                        DescribeNetworkInterfacesOutput::builder().build(),
                    )
                },
            ),
        ]
    }
}

/// Adds `perms` (one rule per peer) to `rules`; a rule already there is EC2's duplicate error.
fn authorize(rules: &mut Vec<IpPermission>, perms: &[IpPermission]) -> Result<(), ErrorMetadata> {
    let new = split(perms);
    let mut current = split(rules);
    if new.iter().any(|p| current.contains(p)) {
        return Err(error(
            "InvalidPermission.Duplicate",
            "the specified rule already exists",
        ));
    }
    current.extend(new);
    *rules = current;
    Ok(())
}

/// Removes `perms` (one rule per peer) from `rules`; a rule not there is EC2's not-found
/// error.
fn revoke(rules: &mut Vec<IpPermission>, perms: &[IpPermission]) -> Result<(), ErrorMetadata> {
    let gone = split(perms);
    let mut current = split(rules);
    if gone.iter().any(|p| !current.contains(p)) {
        return Err(error(
            "InvalidPermission.NotFound",
            "the specified rule does not exist",
        ));
    }
    current.retain(|p| !gone.contains(p));
    *rules = current;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Journal;

    fn code<E: aws_sdk_ec2::error::ProvideErrorMetadata>(e: &E) -> String {
        e.code().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn refuses_what_ec2_refuses_and_filters_as_ec2_does() {
        let fake = FakeEc2::new(&Journal::default(), Ec2State::default());
        let ec2 = fake.client();
        let tag = |k: &str, v: &str| {
            TagSpecification::builder()
                .resource_type(ResourceType::Subnet)
                .tags(Tag::builder().key(k).value(v).build())
                .build()
        };
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.0.0.0/20")
            .tag_specifications(tag(RESOURCE_TAG, "subnet/public/a"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            subnet.subnet().and_then(|s| s.subnet_id()),
            Some("subnet-public-a")
        );
        // A VPC with a subnet cannot go.
        let err = ec2.delete_vpc().vpc_id(&vpc).send().await.unwrap_err();
        assert_eq!(code(&err.into_service_error()), "DependencyViolation");
        // Filters: by tag and by VPC; an unknown filter is refused.
        let by = |name: &str, value: &str| Filter::builder().name(name).values(value).build();
        let found = ec2
            .describe_subnets()
            .filters(by("tag:ecs:resource", "subnet/public/a"))
            .filters(by("vpc-id", &vpc))
            .send()
            .await
            .unwrap();
        assert_eq!(found.subnets().len(), 1);
        let none = ec2
            .describe_subnets()
            .filters(by("tag:ecs:resource", "subnet/private/a"))
            .send()
            .await
            .unwrap();
        assert!(none.subnets().is_empty());
        let err = ec2
            .describe_subnets()
            .filters(by("no-such-filter", "x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err.into_service_error()), "InvalidParameterValue");
        // The default group: its rules, once revoked, are gone; revoking again is not found.
        let default = ec2
            .describe_security_groups()
            .filters(by("vpc-id", &vpc))
            .filters(by("group-name", "default"))
            .send()
            .await
            .unwrap();
        let group = &default.security_groups()[0];
        let egress = group.ip_permissions_egress().to_vec();
        let revoke = || {
            ec2.revoke_security_group_egress()
                .group_id(group.group_id().unwrap())
                .set_ip_permissions(Some(egress.clone()))
                .send()
        };
        revoke().await.unwrap();
        let err = revoke().await.unwrap_err();
        assert_eq!(
            code(&err.into_service_error()),
            "InvalidPermission.NotFound"
        );
        // Once its subnet is gone, the VPC goes, with its default group.
        ec2.delete_subnet()
            .subnet_id("subnet-public-a")
            .send()
            .await
            .unwrap();
        ec2.delete_vpc().vpc_id(&vpc).send().await.unwrap();
        let state = fake.state();
        assert!(state.vpcs.is_empty() && state.security_groups.is_empty());
        assert_eq!(
            fake.journal().mutating(),
            [
                "CreateVpc",
                "CreateSubnet",
                "DeleteVpc",
                "RevokeSecurityGroupEgress",
                "RevokeSecurityGroupEgress",
                "DeleteSubnet",
                "DeleteVpc"
            ]
        );
    }
}
