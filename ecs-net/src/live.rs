//! Observing the live state: every resource carrying the stack's owner tag, read concurrently,
//! converted into plain values so that the decisions made from it are pure functions.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{Filter, IpPermission, Tag};
use aws_sdk_ec2::Client;
use ecs_core::{Context, Tags, OWNER_TAG, RESOURCE_TAG};

pub(crate) use crate::eip::LiveEip;
pub(crate) use crate::endpoint::LiveEndpoint;
use crate::error::Result;
pub(crate) use crate::igw::LiveIgw;
pub(crate) use crate::nat::LiveNat;
pub(crate) use crate::route_table::LiveRouteTable;
use crate::rules::{Peer, Rule};
pub(crate) use crate::security_group::LiveSg;
pub(crate) use crate::subnet::LiveSubnet;
pub(crate) use crate::vpc::LiveVpc;

/// A resource found by tag.
pub(crate) trait Owned {
    fn id(&self) -> &str;
    fn tags(&self) -> &Tags;
    fn logical(&self) -> Option<&str> {
        self.tags().get(RESOURCE_TAG)
    }
}

macro_rules! owned {
    ($($t:ty),*) => {$(
        impl Owned for $t {
            fn id(&self) -> &str { &self.id }
            fn tags(&self) -> &Tags { &self.tags }
        }
    )*};
}

impl Owned for LiveNat {
    fn id(&self) -> &str {
        &self.id
    }
    fn tags(&self) -> &Tags {
        &self.tags
    }
    fn logical(&self) -> Option<&str> {
        self.logical.as_deref()
    }
}

owned!(
    LiveVpc,
    LiveIgw,
    LiveSubnet,
    LiveRouteTable,
    LiveEip,
    LiveSg,
    LiveEndpoint
);

/// Everything the stack owns in EC2.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    pub(crate) vpcs: Vec<LiveVpc>,
    pub(crate) igws: Vec<LiveIgw>,
    pub(crate) subnets: Vec<LiveSubnet>,
    pub(crate) route_tables: Vec<LiveRouteTable>,
    pub(crate) eips: Vec<LiveEip>,
    pub(crate) nats: Vec<LiveNat>,
    pub(crate) sgs: Vec<LiveSg>,
    pub(crate) endpoints: Vec<LiveEndpoint>,
}

impl Live {
    /// Every owned resource, as (kind, id), for inventories and reports.
    pub(crate) fn inventory(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        out.extend(self.vpcs.iter().map(|r| ("vpc", r.id.clone())));
        out.extend(self.igws.iter().map(|r| ("internet-gateway", r.id.clone())));
        out.extend(self.subnets.iter().map(|r| ("subnet", r.id.clone())));
        out.extend(
            self.route_tables
                .iter()
                .map(|r| ("route-table", r.id.clone())),
        );
        out.extend(self.eips.iter().map(|r| ("elastic-ip", r.id.clone())));
        out.extend(self.nats.iter().map(|r| ("nat-gateway", r.id.clone())));
        out.extend(self.sgs.iter().map(|r| ("security-group", r.id.clone())));
        out.extend(
            self.endpoints
                .iter()
                .map(|r| ("vpc-endpoint", r.id.clone())),
        );
        out
    }
}

/// The filter selecting the stack's resources.
pub(crate) fn owner_filter(ctx: &Context) -> Filter {
    Filter::builder()
        .name(format!("tag:{OWNER_TAG}"))
        .values(ctx.stack().as_str())
        .build()
}

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

pub(crate) fn tags_of(tags: &[Tag]) -> Tags {
    Tags::from_pairs(tags.iter().map(|t| (t.key(), t.value())))
}

/// Reads everything the stack owns, all describes at once.
pub(crate) async fn observe(ctx: &Context, ec2: &Client) -> Result<Live> {
    let stack = format!("stack {}", ctx.stack());
    let owner = owner_filter(ctx);
    let vpcs = async {
        let out = ctx
            .call("DescribeVpcs", &stack, || {
                ec2.describe_vpcs().filters(owner.clone()).send()
            })
            .await?;
        let attrs = out.vpcs().iter().map(|v| async move {
            let id = v.vpc_id().unwrap_or_default().to_string();
            let tags = tags_of(v.tags());
            // The default group is read only in a VPC that carries the stack's tag.
            let default_sg = async {
                if tags.get(OWNER_TAG) == Some(ctx.stack().as_str()) {
                    crate::default_sg::read(ctx, ec2, &id, &tags).await
                } else {
                    Ok(None)
                }
            };
            let ((hostnames, support), default_sg) =
                futures_util::try_join!(vpc_dns(ctx, ec2, &id), default_sg)?;
            Ok::<_, crate::Error>(LiveVpc {
                default_sg,
                tags,
                cidr: v.cidr_block().unwrap_or_default().to_string(),
                dns_hostnames: hostnames,
                dns_support: support,
                id,
            })
        });
        futures_util::future::try_join_all(attrs).await
    };
    let igws = async {
        let out = ctx
            .call("DescribeInternetGateways", &stack, || {
                ec2.describe_internet_gateways()
                    .filters(owner.clone())
                    .send()
            })
            .await?;
        Ok::<_, crate::Error>(
            out.internet_gateways()
                .iter()
                .map(|g| LiveIgw {
                    id: g.internet_gateway_id().unwrap_or_default().to_string(),
                    tags: tags_of(g.tags()),
                    attached_vpc: g
                        .attachments()
                        .iter()
                        .find_map(|a| a.vpc_id().map(str::to_string)),
                })
                .collect::<Vec<_>>(),
        )
    };
    let subnets = async {
        let out = ctx
            .call("DescribeSubnets", &stack, || {
                ec2.describe_subnets().filters(owner.clone()).send()
            })
            .await?;
        Ok::<_, crate::Error>(
            out.subnets()
                .iter()
                .map(|s| LiveSubnet {
                    id: s.subnet_id().unwrap_or_default().to_string(),
                    tags: tags_of(s.tags()),
                    cidr: s.cidr_block().unwrap_or_default().to_string(),
                    az: s.availability_zone().unwrap_or_default().to_string(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let route_tables = async {
        let out = ctx
            .call("DescribeRouteTables", &stack, || {
                ec2.describe_route_tables().filters(owner.clone()).send()
            })
            .await?;
        Ok::<_, crate::Error>(
            out.route_tables()
                .iter()
                .map(|t| LiveRouteTable {
                    id: t.route_table_id().unwrap_or_default().to_string(),
                    tags: tags_of(t.tags()),
                    default_target: t
                        .routes()
                        .iter()
                        .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
                        .and_then(|r| r.nat_gateway_id().or(r.gateway_id()).map(str::to_string)),
                    associations: t
                        .associations()
                        .iter()
                        .filter(|a| !a.main().unwrap_or(false))
                        .filter_map(|a| {
                            Some((
                                a.route_table_association_id()?.to_string(),
                                a.subnet_id()?.to_string(),
                            ))
                        })
                        .collect(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let eips = async {
        let out = ctx
            .call("DescribeAddresses", &stack, || {
                ec2.describe_addresses().filters(owner.clone()).send()
            })
            .await?;
        Ok::<_, crate::Error>(
            out.addresses()
                .iter()
                .map(|a| LiveEip {
                    id: a.allocation_id().unwrap_or_default().to_string(),
                    tags: tags_of(a.tags()),
                })
                .collect::<Vec<_>>(),
        )
    };
    let nats = async {
        let out = ctx
            .call("DescribeNatGateways", &stack, || {
                ec2.describe_nat_gateways()
                    .filter(owner.clone())
                    .filter(filter("state", ["pending", "available"]))
                    .send()
            })
            .await?;
        Ok::<_, crate::Error>(
            out.nat_gateways()
                .iter()
                .filter(|n| matches!(n.state().map(|s| s.as_str()), Some("pending" | "available")))
                .map(|n| LiveNat {
                    id: n.nat_gateway_id().unwrap_or_default().to_string(),
                    tags: tags_of(n.tags()),
                    subnet_id: n.subnet_id().unwrap_or_default().to_string(),
                    logical: None,
                })
                .collect::<Vec<_>>(),
        )
    };
    let sgs = async {
        let out = ctx
            .call("DescribeSecurityGroups", &stack, || {
                ec2.describe_security_groups().filters(owner.clone()).send()
            })
            .await?;
        Ok::<_, crate::Error>(
            out.security_groups()
                .iter()
                .map(|g| LiveSg {
                    id: g.group_id().unwrap_or_default().to_string(),
                    tags: tags_of(g.tags()),
                    ingress: rules_of(g.ip_permissions()),
                    egress: rules_of(g.ip_permissions_egress()),
                })
                .collect::<Vec<_>>(),
        )
    };
    let endpoints = async {
        let out = ctx
            .call("DescribeVpcEndpoints", &stack, || {
                ec2.describe_vpc_endpoints()
                    .filters(owner.clone())
                    .filters(filter(
                        "vpc-endpoint-state",
                        ["pendingAcceptance", "pending", "available"],
                    ))
                    .send()
            })
            .await?;
        Ok::<_, crate::Error>(
            out.vpc_endpoints()
                .iter()
                .filter(|e| {
                    !matches!(
                        e.state().map(|s| s.as_str()),
                        Some("deleting" | "deleted" | "Deleting" | "Deleted")
                    )
                })
                .map(|e| LiveEndpoint {
                    id: e.vpc_endpoint_id().unwrap_or_default().to_string(),
                    tags: tags_of(e.tags()),
                    route_tables: e.route_table_ids().iter().cloned().collect(),
                    subnets: e.subnet_ids().iter().cloned().collect(),
                })
                .collect::<Vec<_>>(),
        )
    };
    let (vpcs, igws, subnets, route_tables, eips, nats, sgs, endpoints) = futures_util::try_join!(
        vpcs,
        igws,
        subnets,
        route_tables,
        eips,
        nats,
        sgs,
        endpoints
    )?;
    // The tag filter is a request; the owner tag is the rule. Keep only what carries it, so a
    // filter an API (or an emulator) ignores can never make us touch another stack's resource.
    let subnets = owned_by(ctx, subnets);
    // A NAT gateway is the stack's only if it also sits in one of the stack's public subnets,
    // and it is known by that subnet's zone: a structural guard besides its tags (moto 5.2.5
    // ignores the tag and state filters of DescribeNatGateways).
    let nats = owned_by(ctx, nats)
        .into_iter()
        .filter_map(|mut n| {
            let subnet = subnets.iter().find(|s| s.id == n.subnet_id)?;
            let zone = subnet.logical()?.strip_prefix("subnet/public/")?;
            n.logical = Some(crate::ids::nat_id(zone));
            Some(n)
        })
        .collect();
    Ok(Live {
        vpcs: owned_by(ctx, vpcs),
        igws: owned_by(ctx, igws),
        subnets,
        route_tables: owned_by(ctx, route_tables),
        eips: owned_by(ctx, eips),
        nats,
        sgs: owned_by(ctx, sgs),
        endpoints: owned_by(ctx, endpoints),
    })
}

fn owned_by<T: Owned>(ctx: &Context, items: Vec<T>) -> Vec<T> {
    items
        .into_iter()
        .filter(|i| i.tags().get(OWNER_TAG) == Some(ctx.stack().as_str()))
        .collect()
}

async fn vpc_dns(ctx: &Context, ec2: &Client, vpc_id: &str) -> Result<(bool, bool)> {
    use aws_sdk_ec2::types::VpcAttributeName;
    let resource = format!("vpc {vpc_id}");
    let (hostnames, support) = futures_util::try_join!(
        ctx.call("DescribeVpcAttribute", &resource, || {
            ec2.describe_vpc_attribute()
                .vpc_id(vpc_id)
                .attribute(VpcAttributeName::EnableDnsHostnames)
                .send()
        }),
        ctx.call("DescribeVpcAttribute", &resource, || {
            ec2.describe_vpc_attribute()
                .vpc_id(vpc_id)
                .attribute(VpcAttributeName::EnableDnsSupport)
                .send()
        }),
    )?;
    Ok((
        hostnames
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
        support
            .enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(false),
    ))
}

/// The rules of a list of EC2 permissions, one rule per peer.
pub(crate) fn rules_of(perms: &[IpPermission]) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for p in perms {
        let protocol = p.ip_protocol().unwrap_or("-1").to_string();
        let (from, to) = if protocol == "-1" {
            (-1, -1)
        } else {
            (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1))
        };
        let rule = |peer| Rule {
            protocol: protocol.clone(),
            from,
            to,
            peer,
        };
        out.extend(
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip())
                .map(|c| rule(Peer::Cidr(c.to_string()))),
        );
        out.extend(
            p.ipv6_ranges()
                .iter()
                .filter_map(|r| r.cidr_ipv6())
                .map(|c| rule(Peer::Cidr(c.to_string()))),
        );
        out.extend(
            p.user_id_group_pairs()
                .iter()
                .filter_map(|g| g.group_id())
                .map(|g| rule(Peer::Group(g.to_string()))),
        );
        out.extend(
            p.prefix_list_ids()
                .iter()
                .filter_map(|l| l.prefix_list_id())
                .map(|l| rule(Peer::PrefixList(l.to_string()))),
        );
    }
    out
}
